/**
 * A simulated application on one KCP engine: it writes its payload as kcptun does (send + flush while
 * the 2021 back-pressure rule allows) and reads everything the engine delivers, either as soon as it
 * arrives or, as a slow reader, a budget of bytes every so often (which fills windows and makes the
 * engine probe). Optionally frames each datagram with a CRC-32 in the headroom, standing in for the
 * checksum layer, so corrupted datagrams are dropped before KCP sees them.
 */
import { crc32Ieee } from '../../daemon/transport/checksum/crc32.js';
import { Kcp, type KcpOptions } from '../../daemon/transport/kcp/kcp.js';
import { readU32, writeU32 } from '../../daemon/transport/kcp/segment.js';
import type { Rng, SimEndpoint } from './world.js';

export interface KcpPeerOptions {
  kcp: KcpOptions;
  payload: Uint8Array;
  /** Largest single application write (stream mode) or message (message mode). */
  maxWrite: number;
  /** Guard each datagram with a CRC-32 in headroom bytes [headroom−4, headroom). Needs headroom ≥ 4. */
  crc: boolean;
  /** Slow reader: every `readEveryMs` read at most `readBudget` bytes (message mode: whole messages, at least one). */
  slowReader?: { readEveryMs: number; readBudget: number };
  /** Share of datagrams fed as FEC-rebuilt (regular=false): they must not update the window or RTT. */
  rebuiltShare?: number;
  rng: Rng;
}

export class KcpPeer implements SimEndpoint {
  readonly kcp: Kcp;
  readonly received: Uint8Array;
  receivedBytes = 0;
  /** Sizes of the messages sent and received (message mode), to check boundaries are kept. */
  readonly sentSizes: number[] = [];
  readonly receivedSizes: number[] = [];
  crcDrops = 0;
  inputErrors = 0;
  /** Set when the engine delivered more bytes than the peer sent: a duplicate got through. */
  overflow = false;

  private sent = 0;
  private lastOut: Uint8Array | null = null;
  private nextReadAt: number;
  private readonly headroom: number;

  constructor(private readonly o: KcpPeerOptions, expectedBytes: number, start: number) {
    this.kcp = new Kcp(o.kcp);
    this.headroom = o.kcp.headroom ?? 0;
    this.received = new Uint8Array(expectedBytes);
    this.nextReadAt = o.slowReader ? start + o.slowReader.readEveryMs : Infinity;
  }

  get done(): boolean {
    return this.receivedBytes === this.received.length;
  }

  input(datagram: Uint8Array, now: number): void {
    const h = this.headroom;
    if (this.o.crc && (datagram.length < h || crc32Ieee(datagram, h) !== readU32(datagram, h - 4))) {
      this.crcDrops++;
      return;
    }
    const regular = !this.o.rng.chance(this.o.rebuiltShare ?? 0);
    if (this.kcp.input(datagram.subarray(h), now, regular) !== 0) this.inputErrors++;
    this.react(now);
  }

  pollTransmit(): Uint8Array | null {
    if (this.lastOut !== null) this.kcp.recycleTransmit(this.lastOut); // the world copied it
    const d = this.kcp.pollTransmit();
    this.lastOut = d;
    if (d !== null && this.o.crc) writeU32(d, this.headroom - 4, crc32Ieee(d, this.headroom));
    return d;
  }

  pollTimeout(): number {
    return Math.min(this.kcp.pollTimeout(), this.nextReadAt);
  }

  handleTimeout(now: number): void {
    this.kcp.handleTimeout(now); // harmless when only the read timer is due
    const slow = this.o.slowReader;
    if (slow !== undefined && now >= this.nextReadAt) {
      this.nextReadAt = now + slow.readEveryMs;
      this.readUpTo(slow.readBudget);
    }
    this.react(now);
  }

  private react(now: number): void {
    if (this.o.slowReader === undefined) this.readUpTo(Infinity);
    this.write(now);
  }

  private write(now: number): void {
    const { payload, maxWrite, rng } = this.o;
    while (this.sent < payload.length && this.kcp.canWrite()) {
      const n = Math.min(rng.range(1, maxWrite), payload.length - this.sent);
      const r = this.kcp.send(payload.subarray(this.sent, this.sent + n));
      if (r !== n) throw new Error(`send(${n}) returned ${r}`);
      this.sentSizes.push(n);
      this.sent += n;
      this.kcp.flush(now);
    }
  }

  private readUpTo(budget: number): void {
    if (this.kcp.streamMode) {
      const room = this.received.length - this.receivedBytes;
      const want = Math.min(budget, room);
      if (want > 0) this.receivedBytes += this.kcp.read(this.received, this.receivedBytes, this.receivedBytes + want);
      if (this.receivedBytes === this.received.length && this.kcp.readable()) this.overflow = true;
      return;
    }
    // A slow reader takes whole messages until its budget is spent (at least one per tick).
    for (let got = 0; got < budget; ) {
      const msg = this.kcp.recv();
      if (msg === null) return;
      if (msg.length > this.received.length - this.receivedBytes) {
        this.overflow = true;
        return;
      }
      this.received.set(msg, this.receivedBytes);
      this.receivedBytes += msg.length;
      this.receivedSizes.push(msg.length);
      got += Math.max(1, msg.length);
    }
  }
}
