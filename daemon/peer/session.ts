/**
 * One authenticated session over one underlay link, sans-IO. It runs the handshake
 * (handshake.ts), then seals and opens every packet with AES-256-GCM (aead.ts):
 *
 *   [headroom][PM header, flags |= Encrypted, len = 8 + n + 16][counter u64 LE][ciphertext n][tag 16]
 *
 * The nonce is the 64-bit send counter (never reused: one key per direction per session), the
 * AAD is the 16-byte header, and received counters pass a 2048-bit replay window. Keys are per
 * link, so a relay opens a packet and seals it again for the next hop.
 *
 * Timers: the initiator repeats its init until answered or `handshakeTimeoutMs`; an established
 * session sends a Ping every `keepaliveMs` (which also measures RTT) and goes down when nothing
 * authentic arrived for `deadMs`. The owner drives it: input(bytes, now), seal(...),
 * pollTransmit(), pollTimeout(), handleTimeout(now), pollEvent().
 */
import { COUNTER_LEN, packetOpener, packetSealer, TAG_LEN, type PacketOpener, type PacketSealer } from './aead.js';
import { HandshakeInitiator, type HandshakeResponder, type SessionKeys } from './handshake.js';
import { MAX_COUNTER, ReplayWindow } from './replay-window.js';
import { PacketType, PM_HEADER_LEN, PmFlag, readU32, writePmHeader, writeU32 } from './wire.js';

/** Bytes a sealed packet adds to its plaintext payload, besides the header. */
export const SEAL_OVERHEAD = COUNTER_LEN + TAG_LEN;

export interface SessionTimers {
  keepaliveMs: number;
  deadMs: number;
  handshakeRetryMs: number;
  handshakeTimeoutMs: number;
}

export const DEFAULT_TIMERS: SessionTimers = {
  keepaliveMs: 1000,
  deadMs: 6000,
  handshakeRetryMs: 1000,
  handshakeTimeoutMs: 5000,
};

export type SessionState = 'handshake' | 'confirming' | 'up' | 'closed';

export type SessionEvent =
  | { type: 'up'; peerId: number }
  | { type: 'down'; reason: string };

export interface SessionStats {
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
  /** Packets dropped: malformed, failed authentication, replayed, or arriving in the wrong state. */
  dropped: number;
  /** Of those: packets that failed authentication (forged or corrupted). */
  forged: number;
  /** Of those: packets whose counter the replay window had already seen or left behind. */
  replayed: number;
  rttMs: number;
  establishedAt: number;
}

export class PeerSession {
  state: SessionState;
  /** The remote peer id; 0 until the handshake tells us. */
  peerId = 0;
  readonly stats: SessionStats = { txBytes: 0, rxBytes: 0, txPackets: 0, rxPackets: 0, dropped: 0, forged: 0, replayed: 0, rttMs: 0, establishedAt: 0 };

  /** Set up once per session, from the handshake's keys (see aead.ts). */
  private keys: { send: PacketSealer; recv: PacketOpener } | null = null;
  private sendCounter = 0;
  private readonly window = new ReplayWindow();
  private readonly transmit: Buffer[] = [];
  private readonly events: SessionEvent[] = [];
  private initiator: HandshakeInitiator | null = null;
  /** The init we answered and our answer, to answer a retransmitted init the same way. */
  private answered: { init: Buffer; response: Buffer } | null = null;
  private readonly startedAt: number;
  private nextHandshakeRetry = Infinity;
  private lastRecv = 0;
  private nextPing = Infinity;

  private constructor(
    readonly myPeerId: number,
    /** Bytes left free at the front of every outgoing buffer for the underlay's own header. */
    readonly headroom: number,
    private readonly timers: SessionTimers,
    now: number,
  ) {
    this.state = 'handshake';
    this.startedAt = now;
  }

  /**
   * A session that dials: its init is ready in pollTransmit at once. `now` (monotonic) drives the
   * timers; `wallMs` is the handshake's timestamp, which the other node checks against its own wall clock.
   */
  static initiate(psk: Buffer, myPeerId: number, headroom: number, now: number,
    timers: SessionTimers = DEFAULT_TIMERS, wallMs = now): PeerSession {
    const s = new PeerSession(myPeerId, headroom, timers, now);
    s.initiator = new HandshakeInitiator(psk, myPeerId, wallMs);
    s.queueHandshake(0, s.initiator.message);
    s.nextHandshakeRetry = now + timers.handshakeRetryMs;
    return s;
  }

  /**
   * A session for the first packet of an unknown link. Returns null — and the caller keeps no
   * state and sends nothing — unless the packet is a valid, fresh handshake init.
   */
  static accept(responder: HandshakeResponder, myPeerId: number, headroom: number, first: Uint8Array, now: number,
    timers: SessionTimers = DEFAULT_TIMERS, wallMs = now): PeerSession | null {
    const body = handshakeBody(first);
    if (!body) return null;
    const ok = responder.accept(body, wallMs);
    if (typeof ok === 'string') return null;
    const s = new PeerSession(myPeerId, headroom, timers, now);
    s.state = 'confirming';
    s.peerId = ok.initiatorPeerId;
    s.keys = packetCiphers(ok.keys);
    s.answered = { init: Buffer.from(body), response: ok.response };
    s.queueHandshake(s.peerId, ok.response);
    return s;
  }

  /**
   * Feeds one packet from the link. Returns the decrypted payload when the packet is for the
   * layer above (its header is still readable in `wire`), null when consumed here or dropped.
   */
  input(wire: Uint8Array, now: number): Buffer | null {
    if (this.state === 'closed' || wire.length < PM_HEADER_LEN) return this.drop();
    const len = readU32(wire, 12);
    if (PM_HEADER_LEN + len !== wire.length) return this.drop();
    if (wire[8] === PacketType.Handshake) return this.inputHandshake(wire, now);
    if (!this.keys || (wire[9]! & PmFlag.Encrypted) === 0 || len < SEAL_OVERHEAD) return this.drop();
    const lo = readU32(wire, PM_HEADER_LEN);
    const hi = readU32(wire, PM_HEADER_LEN + 4);
    const counter = hi * 2 ** 32 + lo;
    if (!this.window.check(counter)) {
      this.stats.replayed++;
      return this.drop();
    }
    const plain = this.keys.recv.open(wire);
    if (!plain) {
      this.stats.forged++;
      return this.drop();
    }
    this.window.update(counter);
    this.lastRecv = now;
    this.stats.rxPackets++;
    this.stats.rxBytes += wire.length;
    if (this.state === 'confirming') this.becomeUp(now);
    const type = wire[8];
    if (type === PacketType.Ping) {
      this.queueSealed(PacketType.Pong, plain);
      return null;
    }
    if (type === PacketType.Pong) {
      if (plain.length === 8) this.stats.rttMs = Math.max(0, now - plain.readDoubleLE(0));
      return null;
    }
    return plain;
  }

  /**
   * Seals a packet for the link: a buffer with `headroom` free bytes, then the wire packet.
   * Returns null when the session cannot send yet (or any more).
   */
  seal(from: number, to: number, type: number, flags: number, forwardCounter: number, payload: Uint8Array): Buffer | null {
    if (this.state !== 'up' || !this.keys || this.sendCounter >= MAX_COUNTER) return null;
    const counter = this.sendCounter++;
    const h = this.headroom;
    const out = Buffer.allocUnsafe(h + PM_HEADER_LEN + SEAL_OVERHEAD + payload.length);
    writePmHeader(out, h, { from, to, type, flags: flags | PmFlag.Encrypted, forwardCounter,
      len: SEAL_OVERHEAD + payload.length });
    writeU32(out, h + PM_HEADER_LEN, counter % 2 ** 32);
    writeU32(out, h + PM_HEADER_LEN + 4, Math.floor(counter / 2 ** 32));
    this.keys.send.seal(out, h, payload);
    this.stats.txPackets++;
    this.stats.txBytes += out.length - h;
    return out;
  }

  /** When the last authentic packet arrived (the caller's clock); 0 before any. */
  get lastHeard(): number {
    return this.lastRecv;
  }

  pollTransmit(): Buffer | undefined {
    return this.transmit.shift();
  }

  pollEvent(): SessionEvent | undefined {
    return this.events.shift();
  }

  pollTimeout(): number {
    switch (this.state) {
      case 'handshake': return Math.min(this.nextHandshakeRetry, this.startedAt + this.timers.handshakeTimeoutMs);
      case 'confirming': return this.startedAt + this.timers.handshakeTimeoutMs;
      case 'up': return Math.min(this.nextPing, this.lastRecv + this.timers.deadMs);
      case 'closed': return Infinity;
    }
  }

  handleTimeout(now: number): void {
    if (this.state === 'handshake' || this.state === 'confirming') {
      if (now >= this.startedAt + this.timers.handshakeTimeoutMs) return this.close('handshake timeout');
      if (this.initiator && now >= this.nextHandshakeRetry) {
        this.queueHandshake(0, this.initiator.message);
        this.nextHandshakeRetry = now + this.timers.handshakeRetryMs;
      }
      return;
    }
    if (this.state !== 'up') return;
    if (now >= this.lastRecv + this.timers.deadMs) return this.close('peer silent');
    if (now >= this.nextPing) this.sendPing(now);
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.transmit.length = 0;
    this.events.push({ type: 'down', reason });
  }

  private inputHandshake(wire: Uint8Array, now: number): null {
    const body = wire.subarray(PM_HEADER_LEN);
    if (this.initiator && this.state === 'handshake') {
      const done = this.initiator.complete(body);
      if (!done) return this.drop();
      this.keys = packetCiphers(done.keys);
      this.peerId = done.peerId;
      this.initiator = null;
      this.lastRecv = now;
      this.becomeUp(now);
      return null;
    }
    // Our answer was lost and the initiator repeated itself: answer again, identically.
    if (this.answered && this.state === 'confirming' && this.answered.init.equals(body)) {
      this.queueHandshake(this.peerId, this.answered.response);
      return null;
    }
    return this.drop();
  }

  private becomeUp(now: number): void {
    this.state = 'up';
    this.answered = null;
    this.stats.establishedAt = now;
    this.events.push({ type: 'up', peerId: this.peerId });
    // The first sealed packet is the initiator's key confirmation; it doubles as an RTT probe.
    this.sendPing(now);
  }

  private sendPing(now: number): void {
    const ts = Buffer.allocUnsafe(8);
    ts.writeDoubleLE(now);
    this.queueSealed(PacketType.Ping, ts);
    this.nextPing = now + this.timers.keepaliveMs;
  }

  private queueSealed(type: number, payload: Uint8Array): void {
    const out = this.seal(this.myPeerId, this.peerId, type, 0, 1, payload);
    if (out) this.transmit.push(out);
  }

  private queueHandshake(to: number, body: Buffer): void {
    const out = Buffer.alloc(this.headroom + PM_HEADER_LEN + body.length);
    writePmHeader(out, this.headroom, { from: this.myPeerId, to, type: PacketType.Handshake, flags: 0,
      forwardCounter: 1, len: body.length });
    body.copy(out, this.headroom + PM_HEADER_LEN);
    this.transmit.push(out);
  }

  private drop(): null {
    this.stats.dropped++;
    return null;
  }
}

function packetCiphers(k: SessionKeys): { send: PacketSealer; recv: PacketOpener } {
  return { send: packetSealer(k.send), recv: packetOpener(k.recv) };
}

/** The handshake body of a PM Handshake packet, or null. */
function handshakeBody(wire: Uint8Array): Uint8Array | null {
  if (wire.length < PM_HEADER_LEN || wire[8] !== PacketType.Handshake) return null;
  if (PM_HEADER_LEN + readU32(wire, 12) !== wire.length) return null;
  return wire.subarray(PM_HEADER_LEN);
}
