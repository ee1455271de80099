/**
 * A KcpCarrier as one end of the simulated world: datagrams are the peer packet type byte followed
 * by the carrier's payload. Subclasses play the applications by reacting to the carrier's events.
 */
import { KcpCarrier } from '../../daemon/carrier/kcp/endpoint.js';
import type { SimEndpoint } from './world.js';

export const TYPES = { fromInitiator: 11, fromAcceptor: 12 };

export abstract class CarrierNode implements SimEndpoint {
  readonly carrier: KcpCarrier;

  constructor(protected readonly otherId: number, seed: number, lingerMs: number) {
    this.carrier = new KcpCarrier({ types: TYPES, lingerMs, openTimeoutMs: 60_000, convSeed: seed });
  }

  /** The applications' side: act on the events the carrier's flows have. */
  abstract react(now: number): void;

  input(d: Uint8Array, now: number): void {
    this.carrier.input(this.otherId, d[0]!, d.subarray(1), now);
    this.react(now);
  }

  pollTransmit(): Uint8Array | null {
    const t = this.carrier.pollTransmit();
    if (!t) return null;
    const out = new Uint8Array(1 + t.data.length);
    out[0] = t.type;
    out.set(t.data, 1);
    this.carrier.recycle(t);
    return out;
  }

  pollTimeout(): number {
    return this.carrier.pollTimeout();
  }

  handleTimeout(now: number): void {
    this.carrier.handleTimeout(now);
    this.react(now);
  }
}
