/**
 * A KcpCarrier as one end of the simulated world: datagrams are the peer packet type byte followed
 * by the carrier's payload. Subclasses play the applications by reacting to the carrier's events.
 *
 * It behaves as the daemon's driver does: the datagrams that arrive within one virtual millisecond
 * are answered by one flushAcks() pass (not one ACK datagram each, nor one per KCP interval), and
 * the applications react again while the carrier has news (a pacer grant that freed send room).
 *
 * A busy host (`stalls`): now and then the node's event loop is held for a while, as on a loaded
 * machine. Meanwhile nothing is sent and datagrams queue; when it is free again it takes them all in
 * one batch, answers them with one ACK pass and runs its timers late. So ACKs come in bursts and RTT
 * samples carry delay that no bottleneck queue caused: what the path controller must not read as a
 * faster (or a congested) path. Its socket holds `socketBytes` of them (unbounded unless set): what
 * comes beyond that is dropped and counted in socketDrops, which the carrier reads as its host's drops.
 */
import { KcpCarrier, type KcpCarrierOptions } from '../../daemon/carrier/kcp/endpoint.js';
import type { Rng, SimEndpoint } from './world.js';

export interface HostStalls {
  /** Mean time between stalls (exponentially distributed), ms. */
  everyMs: number;
  /** A stall lasts 1..maxMs ms. */
  maxMs: number;
  rng: Rng;
}

export const TYPES = { fromInitiator: 11, fromAcceptor: 12 };

export abstract class CarrierNode implements SimEndpoint {
  readonly carrier: KcpCarrier;
  /** When input() took datagrams whose ACKs the next pass sends; Infinity when none wait. */
  private acksDueAt = Infinity;
  /** Busy host: the event loop is held until then; datagrams that came meanwhile wait in `backlog`. */
  private busyUntil = -Infinity;
  private stalled = false;
  private nextStallAt = -1;
  private backlog: Uint8Array[] = [];
  private backlogBytes = 0;
  /** The bytes a busy host's socket queues before it drops, and how many datagrams it dropped. */
  socketBytes = Infinity;
  socketDrops = 0;
  private readonly stalls: HostStalls | null;
  /**
   * A loaded host: its timers fire this many ms late, and a datagram's pass runs the carrier's timers
   * that fell due before the pass's ACK flush, as the daemon's Drive does (0: on time, ACKs first).
   */
  timerLateMs = 0;

  constructor(protected readonly otherId: number, seed: number, lingerMs: number, options: Partial<KcpCarrierOptions> = {}, stalls: HostStalls | null = null) {
    // Bundled ACKs, as between daemons (every tstier node announces KcpBundle).
    this.carrier = new KcpCarrier({
      types: TYPES, lingerMs, openTimeoutMs: 60_000, convSeed: seed, peerTakesBundles: () => true, hostDrops: () => this.socketDrops, ...options,
    });
    this.stalls = stalls;
  }

  /** The applications' side: act on the events the carrier's flows have. */
  abstract react(now: number): void;

  input(d: Uint8Array, now: number): void {
    if (now < this.busyUntil) {
      if (this.backlogBytes + d.length > this.socketBytes) {
        this.socketDrops++;
        return;
      }
      this.backlog.push(d); // the world hands over a fresh copy
      this.backlogBytes += d.length;
      return;
    }
    this.take(d, now);
    if (this.timerLateMs > 0 && this.carrier.pollTimeout() <= now) this.carrier.handleTimeout(now);
    this.settle(now);
    this.maybeStall(now);
  }

  private take(d: Uint8Array, now: number): void {
    this.carrier.input(this.otherId, d[0]!, d.subarray(1), now);
    if (this.acksDueAt === Infinity) this.acksDueAt = now;
  }

  private maybeStall(now: number): void {
    const s = this.stalls;
    if (s === null) return;
    if (this.nextStallAt < 0) this.nextStallAt = now - s.everyMs * Math.log(1 - s.rng.float());
    if (now < this.nextStallAt) return;
    this.busyUntil = now + s.rng.range(1, s.maxMs);
    this.nextStallAt = this.busyUntil - s.everyMs * Math.log(1 - s.rng.float());
    this.stalled = true;
  }

  /** The applications act until the carrier has no news left (bounded: a livelock fails the test's run). */
  private settle(now: number): void {
    this.react(now);
    for (let i = 0; i < 64 && this.carrier.hasEvents(); i++) this.react(now);
  }

  pollTransmit(now: number): Uint8Array | null {
    if (now < this.busyUntil) return null;
    const t = this.carrier.pollTransmit();
    if (!t) return null;
    const out = new Uint8Array(1 + t.data.length);
    out[0] = t.type;
    out.set(t.data, 1);
    this.carrier.recycle(t);
    return out;
  }

  pollTimeout(): number {
    // A stall ends with a pass: what queued meanwhile (datagrams in and out) goes then.
    if (this.stalled) return this.busyUntil;
    return Math.min(this.carrier.pollTimeout() + this.timerLateMs, this.acksDueAt);
  }

  handleTimeout(now: number): void {
    if (now < this.busyUntil) return;
    this.stalled = false;
    if (this.backlog.length > 0) {
      for (const d of this.backlog) this.take(d, now);
      this.backlog = [];
      this.backlogBytes = 0;
      this.settle(now);
    }
    if (this.acksDueAt <= now) {
      this.acksDueAt = Infinity;
      this.carrier.flushAcks(now);
    }
    this.carrier.handleTimeout(now);
    this.settle(now);
    this.maybeStall(now);
  }
}
