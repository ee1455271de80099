/**
 * A KcpCarrier as one end of the simulated world: datagrams are the peer packet type byte followed
 * by the carrier's payload. Subclasses play the applications by reacting to the carrier's events.
 *
 * It behaves as the daemon's driver does: the datagrams that arrive within one virtual millisecond
 * are answered by one flushAcks() pass (not one ACK datagram each, nor one per KCP interval), and
 * the applications react again while the carrier has news (a pacer grant that freed send room).
 */
import { KcpCarrier, type KcpCarrierOptions } from '../../daemon/carrier/kcp/endpoint.js';
import type { SimEndpoint } from './world.js';

export const TYPES = { fromInitiator: 11, fromAcceptor: 12 };

export abstract class CarrierNode implements SimEndpoint {
  readonly carrier: KcpCarrier;
  /** When input() took datagrams whose ACKs the next pass sends; Infinity when none wait. */
  private acksDueAt = Infinity;

  constructor(protected readonly otherId: number, seed: number, lingerMs: number, options: Partial<KcpCarrierOptions> = {}) {
    // Bundled ACKs, as between daemons (every tstier node announces KcpBundle).
    this.carrier = new KcpCarrier({ types: TYPES, lingerMs, openTimeoutMs: 60_000, convSeed: seed, peerTakesBundles: () => true, ...options });
  }

  /** The applications' side: act on the events the carrier's flows have. */
  abstract react(now: number): void;

  input(d: Uint8Array, now: number): void {
    this.carrier.input(this.otherId, d[0]!, d.subarray(1), now);
    if (this.acksDueAt === Infinity) this.acksDueAt = now;
    this.settle(now);
  }

  /** The applications act until the carrier has no news left (bounded: a livelock fails the test's run). */
  private settle(now: number): void {
    this.react(now);
    for (let i = 0; i < 64 && this.carrier.hasEvents(); i++) this.react(now);
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
    return Math.min(this.carrier.pollTimeout(), this.acksDueAt);
  }

  handleTimeout(now: number): void {
    if (this.acksDueAt <= now) {
      this.acksDueAt = Infinity;
      this.carrier.flushAcks(now);
    }
    this.carrier.handleTimeout(now);
    this.settle(now);
  }
}
