/**
 * One EasyTier PeerConn, sans-IO: the handshake, then Ping/Pong liveness, with every other packet
 * for us opened (decrypted, checked) and handed up. Framing-agnostic: `input` takes one PM packet
 * as the underlay (underlay.ts) delimited it; `pollTransmit` returns PM packets to frame and send.
 *
 *   input(pm, now) · handleTimeout(now) · pollTransmit() · pollTimeout() · pollEvent()
 *
 * Dialler speaks first; the listener waits, replies (vouching only for a matching digest), then
 * both judge the other side (handshake.ts: stricter than EasyTier). Each side pings every
 * second; five consecutive unanswered pings (2 s each) close the connection, as EasyTier's do
 * (ET_CONN_TIMERS), unless a packet for us opened in between (EasyTier 2.6.4 counts any
 * packet). Every Ping we receive is answered at once.
 */
import { decodeHandshake, encodeHandshake, judgeHandshake, listenerVouches, ourHandshake, HANDSHAKE_TIMEOUT_MS, type LocalIdentity } from './handshake.js';
import { EtPacketType, ORIGIN_FORWARD_COUNTER, buildPing, buildPm, openPm, pingSeq, pongFor, splitPm, type OpenFailure, type PmHeader } from './pm.js';
import type { EtCipher } from './cipher.js';
import { SecureHandshake, isNoiseType, type SecureFailure, type SecureIdentity } from './secure-handshake.js';
import { buildSecurePm, openSecurePm, secureSendable, type SecureDropReason } from './secure-pm.js';
import type { SecureSession } from './secure-datagram.js';
import { TstierError } from '../../errors.js';

/** A connection's liveness timers: EasyTier's by default; tests shorten them (`Node.start`'s peer timers). */
export interface EtConnTimers {
  pingIntervalMs: number;
  /** A ping unanswered this long counts as lost. */
  pingTimeoutMs: number;
  /** This many lost in a row close the connection. */
  pingsLostToClose: number;
  handshakeTimeoutMs: number;
}

export const ET_CONN_TIMERS: EtConnTimers = {
  pingIntervalMs: 1000, pingTimeoutMs: 2000, pingsLostToClose: 5, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
};
/** Outgoing packets held while the adapter does not drain them; beyond this the oldest is dropped. */
const MAX_QUEUED = 256;

export type CloseReason =
  | 'handshake-timeout'
  | 'handshake-malformed'
  | 'other-network'
  | 'zero-digest'
  | 'wrong-digest'
  | 'peer-id-conflict'
  | 'ping-timeout'
  | 'local'
  /** One side runs secure mode (a Noise handshake), the other the plain handshake. */
  | 'secure-mode-mismatch'
  | SecureFailure;

export type EtConnEvent =
  | { type: 'up'; peerId: number; features: string[] }
  /** A packet for us (or to forward, if header.to is not us), payload already opened. */
  | { type: 'packet'; header: PmHeader; payload: Uint8Array; raw: Uint8Array }
  | { type: 'closed'; reason: CloseReason };

/** Drops, by reason; each failed packet is counted once and never closes the connection. */
export type EtConnDrops = Record<OpenFailure | SecureDropReason | 'short' | 'before-up' | 'not-for-this-link', number>;

export interface EtConnOptions {
  role: 'dialler' | 'listener';
  me: LocalIdentity;
  cipher: EtCipher;
  now: number;
  /** Secure mode: a Noise handshake and a per-neighbour session instead of the network-wide cipher. */
  secure?: SecureIdentity;
  /** Bytes left free in front of every packet this conn queues: the underlay's header goes there. */
  headroom?: number;
  timers?: EtConnTimers;
}

export class EtPeerConn {
  readonly role: 'dialler' | 'listener';
  #state: 'handshake' | 'up' | 'closed' = 'handshake';
  readonly #me: LocalIdentity;
  readonly #cipher: EtCipher;
  readonly headroom: number;
  readonly #timers: EtConnTimers;
  #peerId = 0;
  #tx: Buffer[] = [];
  #events: EtConnEvent[] = [];
  #handshakeDeadline: number;
  #nextPingAt = 0;
  #pingSeq = 0;
  /** seq → sent time of pings not yet answered nor timed out. */
  readonly #inFlight = new Map<number, number>();
  #lostInARow = 0;
  readonly #secure: SecureHandshake | null;
  #session: SecureSession | null = null;
  /** The last time this link was handed, for the session's sends (send() takes no clock). */
  #now: number;
  readonly drops: EtConnDrops = {
    compressed: 0,
    'encrypted-but-off': 0,
    'decrypt-failed': 0,
    'plaintext-refused': 0,
    'bad-len': 0,
    replayed: 0,
    'bad-epoch': 0,
    'secure-no-relay': 0,
    short: 0,
    'before-up': 0,
    'not-for-this-link': 0,
  };
  /** Round-trip time of the last answered ping, ms. */
  rttMs: number | null = null;

  constructor(o: EtConnOptions) {
    this.role = o.role;
    this.#me = o.me;
    this.#cipher = o.cipher;
    this.headroom = o.headroom ?? 0;
    this.#timers = o.timers ?? ET_CONN_TIMERS;
    this.#handshakeDeadline = o.now + this.#timers.handshakeTimeoutMs;
    this.#now = o.now;
    this.#secure = o.secure ? new SecureHandshake(o.role, o.secure) : null;
    if (o.role === 'dialler') {
      if (this.#secure) this.#queueBuilt(this.#secure.start());
      else this.#sendHandshake(true);
    }
  }

  get state(): 'handshake' | 'up' | 'closed' {
    return this.#state;
  }

  /** The other side's peer id, once its handshake arrived. */
  get peerId(): number {
    return this.#peerId;
  }

  input(pm: Uint8Array, now: number): void {
    if (this.#state === 'closed') return;
    this.#now = now;
    const p = splitPm(pm);
    if (!p) {
      this.drops.short++;
      return;
    }
    if (this.#state === 'handshake') {
      // EasyTier skips anything else while it waits for the handshake; so do we.
      const noise = isNoiseType(p.header.type);
      if (noise !== (this.#secure !== null) && (noise || p.header.type === EtPacketType.HandShake)) this.#close('secure-mode-mismatch');
      else if (this.#secure && noise) this.#onSecureStep(this.#secure.input(p.header, p.body, now), now);
      else if (p.header.type === EtPacketType.HandShake) this.#onHandshake(p.body, now);
      else this.drops['before-up']++;
      return;
    }
    switch (p.header.type) {
      case EtPacketType.HandShake:
      case EtPacketType.NoiseHandshakeMsg1:
      case EtPacketType.NoiseHandshakeMsg2:
      case EtPacketType.NoiseHandshakeMsg3:
        return; // a repeat; the link is already up
      case EtPacketType.Ping:
        if (p.header.to === this.#me.peerId) this.#queue(pongFor(pm, this.headroom));
        else this.drops['not-for-this-link']++;
        return;
      case EtPacketType.Pong:
        this.#onPong(pingSeq(p), now);
        return;
    }
    if (p.header.to !== this.#me.peerId) {
      // Transit traffic: sealed for someone else, handed up untouched for the forwarder.
      this.#events.push({ type: 'packet', header: p.header, payload: p.body, raw: pm });
      return;
    }
    if (this.#session && p.header.from !== this.#peerId) {
      // Sealed end to end by a node further away (its relay session): the node core opens it.
      this.#events.push({ type: 'packet', header: p.header, payload: p.body, raw: pm });
      return;
    }
    const opened = this.#session ? openSecurePm(p, this.#session, now) : openPm(p, this.#cipher);
    if ('drop' in opened) {
      this.drops[opened.drop]++;
      return;
    }
    // Proof of life, as EasyTier 2.6.4 takes any packet: a busy link whose pongs queue behind data
    // is not dead. Only packets that opened count (sealed ones passed their tag).
    this.#lostInARow = 0;
    this.#events.push({ type: 'packet', header: p.header, payload: opened.payload, raw: pm });
  }

  /**
   * Sends a payload to `to` (this neighbour or, through it, a node further on): builds, seals if
   * the type is sealed, queues. RPC leaves with forward counter 2, as EasyTier's does.
   */
  send(type: number, to: number, payload: Uint8Array, forwardCounter = ORIGIN_FORWARD_COUNTER): void {
    if (this.#state !== 'up') throw new TstierError('TSTIER_E_CLOSED', `easytier conn to ${this.#peerId} is ${this.#state}`);
    const h = { from: this.#me.peerId, to, type, flags: 0, forwardCounter };
    if (!this.#session) this.#queue(buildPm(h, payload, this.#cipher, this.headroom));
    else if (secureSendable(type, to, this.#peerId)) this.#queue(buildSecurePm(h, payload, this.#session, this.#now, this.headroom));
    else this.drops['secure-no-relay']++;
  }

  /** Queues an already-built packet (a forwarder's), `headroom` bytes first. */
  sendRaw(pm: Buffer): void {
    if (this.#state === 'up') this.#queue(pm);
  }

  handleTimeout(now: number): void {
    this.#now = now;
    this.#session?.rotateIfDue(now);
    if (this.#state === 'handshake') {
      if (now >= this.#handshakeDeadline) this.#close('handshake-timeout');
      return;
    }
    if (this.#state !== 'up') return;
    for (const [seq, sentAt] of this.#inFlight) {
      if (now - sentAt < this.#timers.pingTimeoutMs) continue;
      this.#inFlight.delete(seq);
      if (++this.#lostInARow >= this.#timers.pingsLostToClose) {
        this.#close('ping-timeout');
        return;
      }
    }
    if (now >= this.#nextPingAt) {
      const seq = this.#pingSeq;
      this.#pingSeq = (this.#pingSeq + 1) >>> 0;
      this.#inFlight.set(seq, now);
      this.#queue(buildPing(this.#me.peerId, this.#peerId, seq, this.headroom));
      this.#nextPingAt = now + this.#timers.pingIntervalMs;
    }
  }

  pollTimeout(): number | null {
    if (this.#state === 'handshake') return this.#handshakeDeadline;
    if (this.#state !== 'up') return null;
    let t = this.#nextPingAt;
    for (const sentAt of this.#inFlight.values()) t = Math.min(t, sentAt + this.#timers.pingTimeoutMs);
    return t;
  }

  /** The next packet to send, after `headroom` bytes that are the underlay's. */
  pollTransmit(): Buffer | undefined {
    return this.#tx.shift();
  }

  pollEvent(): EtConnEvent | undefined {
    return this.#events.shift();
  }

  close(): void {
    this.#close('local');
  }

  #onHandshake(body: Uint8Array, now: number): void {
    let theirs;
    try {
      theirs = decodeHandshake(body);
    } catch {
      this.#close('handshake-malformed');
      return;
    }
    this.#peerId = theirs.myPeerId;
    if (this.role === 'listener') this.#sendHandshake(listenerVouches(this.#me, theirs));
    const verdict = judgeHandshake(this.#me, theirs);
    if (!verdict.ok) {
      this.#close(verdict.reason);
      return;
    }
    this.#state = 'up';
    this.#nextPingAt = now;
    this.#events.push({ type: 'up', peerId: theirs.myPeerId, features: theirs.features });
  }

  #onSecureStep(step: ReturnType<SecureHandshake['input']>, now: number): void {
    if (step.send) this.#queueBuilt(step.send);
    if (step.fail) {
      this.#close(step.fail);
      return;
    }
    if (!step.up) return;
    this.#peerId = step.up.peerId;
    this.#session = step.up.session;
    this.#state = 'up';
    this.#nextPingAt = now;
    this.#events.push({ type: 'up', peerId: step.up.peerId, features: [] });
  }

  #onPong(seq: number | null, now: number): void {
    if (seq === null) return;
    const sentAt = this.#inFlight.get(seq);
    if (sentAt === undefined) return;
    this.#inFlight.delete(seq);
    this.#lostInARow = 0;
    this.rttMs = now - sentAt;
  }

  #sendHandshake(vouch: boolean): void {
    const body = encodeHandshake(ourHandshake(this.#me, vouch));
    this.#queue(buildPm({ from: this.#me.peerId, to: 0, type: EtPacketType.HandShake, flags: 0, forwardCounter: ORIGIN_FORWARD_COUNTER }, body, this.#cipher, this.headroom));
  }

  /** Queues a packet built without headroom (a Noise or relay handshake message, a relayed secure packet): one copy behind the headroom. */
  sendBuilt(pm: Uint8Array): void {
    if (this.#state === 'up') this.#queueBuilt(pm);
  }

  #queueBuilt(pm: Uint8Array): void {
    const out = Buffer.allocUnsafe(this.headroom + pm.length);
    out.set(pm, this.headroom);
    this.#queue(out);
  }

  #queue(pm: Buffer): void {
    if (this.#tx.length >= MAX_QUEUED) this.#tx.shift();
    this.#tx.push(pm);
  }

  #close(reason: CloseReason): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#inFlight.clear();
    this.#secure?.release();
    this.#events.push({ type: 'closed', reason });
  }
}
