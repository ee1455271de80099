/**
 * Secure mode toward nodes that are not neighbours (EasyTier's RelayPeerMap), sans-IO: an end-to-end
 * session set up by a Noise IK handshake in PM types 20 (RelayHandshake) and 21 (RelayHandshakeAck),
 * prologue "easytier-relay-noise", relayed hop by hop like any packet. The initiator knows the
 * responder's static key from route sync (RoutePeerInfo field 18); the responder checks the
 * initiator's against the same. The payloads are msg1/msg2 of the PeerConn handshake without names,
 * roles or proofs; sessions are the same store's (secure-session-store.ts), so a neighbour's link
 * session and a relay session to it are one.
 *
 * Packets for a node without a session wait (at most MAX_QUEUED per node) while the handshake runs;
 * it is retried after RETRY_MS, up to MAX_ATTEMPTS, then the queue is dropped and counted. When both
 * ends start at once, the lower peer id stays initiator, as EasyTier decides. A relay session is let
 * go after IDLE_MS without traffic.
 */
import { NoiseError, NoiseHandshake } from './secure-noise.js';
import { decodeMsg1, decodeMsg2, encodeMsg1, encodeMsg2, newConnId, sameConnId, type ConnId } from './secure-msg.js';
import { directionOf, parseSecureAlgorithm, type SecureSession } from './secure-datagram.js';
import { buildSecurePm } from './secure-pm.js';
import { EtPacketType, PmFlag, isEncryptedType, type PmHeader } from './pm.js';
import { noisePm, type SecureIdentity } from './secure-handshake.js';
import { TstierError } from '../../errors.js';

const RELAY_PROLOGUE = new TextEncoder().encode('easytier-relay-noise');
const RELAY_VERSION = 1;
export const RELAY_HANDSHAKE_TIMEOUT_MS = 5000;
const RETRY_MS = 200;
const MAX_ATTEMPTS = 3;
const MAX_QUEUED = 32;
export const RELAY_IDLE_MS = 60_000;

interface Pending {
  noise: NoiseHandshake;
  connId: ConnId;
  deadline: number;
  attempt: number;
  queue: { type: number; payload: Uint8Array; forwardCounter: number }[];
}

export type RelayDrop = 'relay-no-key' | 'relay-handshake-failed' | 'relay-queue-full' | 'relay-no-session' | 'plaintext-refused' | 'compressed' | 'bad-len' | 'replayed' | 'bad-epoch' | 'decrypt-failed';

export class SecureRelay {
  readonly #me: SecureIdentity;
  /** A node's Noise static key, from route sync. */
  readonly #staticKeyOf: (peerId: number) => Uint8Array | undefined;
  readonly #pending = new Map<number, Pending>();
  /** Relay sessions this node holds in the store, with when they last carried a packet. */
  readonly #held = new Map<number, number>();
  readonly drops: Record<RelayDrop, number> = {
    'relay-no-key': 0, 'relay-handshake-failed': 0, 'relay-queue-full': 0, 'relay-no-session': 0, 'plaintext-refused': 0,
    compressed: 0, 'bad-len': 0, replayed: 0, 'bad-epoch': 0, 'decrypt-failed': 0,
  };

  constructor(me: SecureIdentity, staticKeyOf: (peerId: number) => Uint8Array | undefined) {
    this.#me = me;
    this.#staticKeyOf = staticKeyOf;
  }

  /** Packets to send toward `to` (a node that is not a neighbour): the sealed packet, or a handshake while it waits. */
  send(type: number, to: number, payload: Uint8Array, forwardCounter: number, now: number): Uint8Array[] {
    const session = this.#me.sessions.get(to);
    if (session) {
      if (this.#held.has(to)) this.#held.set(to, now);
      return [buildSecurePm({ from: this.#me.peerId, to, type, flags: 0, forwardCounter }, payload, session, now)];
    }
    let p = this.#pending.get(to);
    const out: Uint8Array[] = [];
    if (!p) {
      const first = this.#start(to, now, 0);
      if (!first) return [];
      p = first.pending;
      out.push(first.msg1);
    }
    if (p.queue.length >= MAX_QUEUED) this.drops['relay-queue-full']++;
    else p.queue.push({ type, payload, forwardCounter });
    return out;
  }

  /**
   * A packet for us from a node that is not the neighbour it came through: a relay handshake
   * message (answered by returning packets toward the sender), or a sealed payload to open.
   */
  input(header: PmHeader, body: Uint8Array, now: number): { send: Uint8Array[] } | { payload: Uint8Array } | { drop: RelayDrop } {
    if (header.type === EtPacketType.RelayHandshake) return { send: this.#onMsg1(header.from, body, now) };
    if (header.type === EtPacketType.RelayHandshakeAck) return { send: this.#onMsg2(header.from, body, now) };
    if (!isEncryptedType(header.type)) return body.length === header.len ? { payload: body } : this.#drop('bad-len');
    if (header.flags & PmFlag.Compressed) return this.#drop('compressed');
    if (!(header.flags & PmFlag.Encrypted)) return this.#drop('plaintext-refused');
    const session = this.#me.sessions.get(header.from);
    if (!session) return this.#drop('relay-no-session');
    const opened = session.open(directionOf(header.from, header.to), body, now);
    if (typeof opened === 'string') return this.#drop(opened);
    if (this.#held.has(header.from)) this.#held.set(header.from, now);
    return opened.length === header.len ? { payload: opened } : this.#drop('bad-len');
  }

  /** Retries handshakes past their deadline; lets idle relay sessions go. Returns packets to send. */
  handleTimeout(now: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const [to, p] of this.#pending) {
      if (now < p.deadline) continue;
      this.#pending.delete(to);
      if (p.attempt + 1 >= MAX_ATTEMPTS) {
        this.drops['relay-handshake-failed']++;
        continue;
      }
      const next = this.#start(to, now, p.attempt + 1);
      if (!next) continue;
      next.pending.queue = p.queue;
      out.push(next.msg1);
    }
    for (const [peer, last] of this.#held) {
      if (now - last < RELAY_IDLE_MS) continue;
      this.#held.delete(peer);
      this.#me.sessions.release(peer);
    }
    return out;
  }

  pollTimeout(): number | null {
    let t: number | null = null;
    for (const p of this.#pending.values()) if (t === null || p.deadline < t) t = p.deadline;
    for (const last of this.#held.values()) if (t === null || last + RELAY_IDLE_MS < t) t = last + RELAY_IDLE_MS;
    return t;
  }

  #drop(reason: RelayDrop): { drop: RelayDrop } {
    this.drops[reason]++;
    return { drop: reason };
  }

  #start(to: number, now: number, attempt: number): { pending: Pending; msg1: Uint8Array } | null {
    const remoteStatic = this.#staticKeyOf(to);
    if (remoteStatic?.length !== 32) {
      this.drops['relay-no-key']++;
      return null;
    }
    const noise = new NoiseHandshake({ pattern: 'IK', initiator: true, prologue: RELAY_PROLOGUE, staticKey: this.#me.staticKey, remoteStatic });
    const connId = newConnId();
    const msg1 = encodeMsg1({ version: RELAY_VERSION, networkName: '', connId, encryptionAlgorithm: this.#me.algorithm });
    // A retry waits RETRY_MS × 2^attempt beyond the handshake timeout, as EasyTier backs off.
    const pending: Pending = { noise, connId, deadline: now + RELAY_HANDSHAKE_TIMEOUT_MS + RETRY_MS * (2 ** attempt - 1), attempt, queue: [] };
    this.#pending.set(to, pending);
    return { pending, msg1: this.#pm(to, EtPacketType.RelayHandshake, noise.writeMessage(msg1)) };
  }

  #onMsg1(from: number, body: Uint8Array, now: number): Uint8Array[] {
    // Both ends started at once: the lower peer id stays initiator.
    const ours = this.#pending.get(from);
    if (ours) {
      if (from >>> 0 > this.#me.peerId >>> 0) return [];
      this.#pending.delete(from); // its queue goes once our session (as responder) exists
    }
    const expected = this.#staticKeyOf(from);
    if (expected?.length !== 32) {
      this.drops['relay-no-key']++;
      return [];
    }
    try {
      const noise = new NoiseHandshake({ pattern: 'IK', initiator: false, prologue: RELAY_PROLOGUE, staticKey: this.#me.staticKey });
      const m = decodeMsg1(noise.readMessage(body));
      if (Buffer.compare(Buffer.from(noise.remoteStatic!), Buffer.from(expected)) !== 0) return this.#failed();
      const theirAlgorithm = parseSecureAlgorithm(m.encryptionAlgorithm);
      if (!theirAlgorithm) return this.#failed();
      const d = this.#me.sessions.respond(from, m.sessionGeneration, this.#me.algorithm, theirAlgorithm, now);
      if (typeof d === 'string') return this.#failed();
      this.#hold(from, now);
      const msg2 = encodeMsg2({ networkName: '', roleHint: 0, action: d.action, sessionGeneration: d.generation, rootKey: d.rootKey,
        initialEpoch: d.initialEpoch, connId: newConnId(), connIdEcho: m.connId, encryptionAlgorithm: this.#me.algorithm });
      return [this.#pm(from, EtPacketType.RelayHandshakeAck, noise.writeMessage(msg2)), ...this.#sealQueued(from, ours?.queue ?? [], d.session, now)];
    } catch (e) {
      if (e instanceof NoiseError || e instanceof TstierError) return this.#failed();
      throw e;
    }
  }

  #onMsg2(from: number, body: Uint8Array, now: number): Uint8Array[] {
    const p = this.#pending.get(from);
    if (!p) return [];
    this.#pending.delete(from);
    try {
      const m = decodeMsg2(p.noise.readMessage(body));
      const theirAlgorithm = parseSecureAlgorithm(m.encryptionAlgorithm);
      if (!sameConnId(m.connIdEcho, p.connId) || !theirAlgorithm) return this.#failed();
      const s = this.#me.sessions.apply(from, { ...m, generation: m.sessionGeneration }, this.#me.algorithm, theirAlgorithm, now, false);
      if (typeof s === 'string') return this.#failed();
      this.#hold(from, now);
      return this.#sealQueued(from, p.queue, s, now);
    } catch (e) {
      if (e instanceof NoiseError || e instanceof TstierError) return this.#failed();
      throw e;
    }
  }

  /** Holds one store reference per relayed peer (a second handshake with it does not add another). */
  #hold(peer: number, now: number): void {
    if (this.#held.has(peer)) this.#me.sessions.release(peer);
    this.#held.set(peer, now);
  }

  #failed(): Uint8Array[] {
    this.drops['relay-handshake-failed']++;
    return [];
  }

  #pm(to: number, type: number, body: Uint8Array): Uint8Array {
    return noisePm(this.#me.peerId, to, type, body);
  }

  #sealQueued(to: number, queue: Pending['queue'], s: SecureSession, now: number): Uint8Array[] {
    return queue.map((q) => buildSecurePm({ from: this.#me.peerId, to, type: q.type, flags: 0, forwardCounter: q.forwardCounter }, q.payload, s, now));
  }
}
