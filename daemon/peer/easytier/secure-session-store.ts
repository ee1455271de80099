/**
 * Secure mode's sessions, one per neighbour peer id, shared by every link to it (EasyTier's
 * PeerSessionStore). The Noise responder decides: no session yet → Create (a fresh root key,
 * generation 1); the initiator's generation matches → Join (nothing sent); else → Sync (the current
 * root key, and a starting epoch past all used so far). The initiator takes what the responder says.
 *
 * Both sides dialling at once cross two Creates: each responder made a root key and each initiator
 * would take the other's, so they swap and disagree. EasyTier's initiator always takes what our
 * responder sent, so toward EasyTier we keep ours; between tstier nodes the lower peer id keeps its
 * own and the higher takes it (the handshake passes that choice as `keepOursOnCross`).
 *
 * A session lives while a link holds it (acquire on the handshake, release on close), so memory is
 * bounded by the links; a session is pinned to the first static key seen for that peer id.
 */
import { randomBytes } from 'node:crypto';
import { SecureSession, ROOT_KEY_LEN, type SecureAlgorithm } from './secure-datagram.js';
import { SessionAction } from './secure-msg.js';

interface Entry {
  session: SecureSession;
  refs: number;
  peerStatic: Uint8Array | null;
  /** When our responder created this session, until an initiator's apply settles it: a cross is possible. */
  createdHereAt: number | null;
}

/** A Create arriving this soon after ours is a cross (a handshake takes at most this long each way). */
const CROSS_WINDOW_MS = 5000;

export interface ResponderDecision {
  session: SecureSession;
  action: SessionAction;
  generation: number;
  rootKey?: Uint8Array;
  initialEpoch: number;
}

export interface InitiatorApply {
  action: number;
  generation: number;
  rootKey?: Uint8Array;
  initialEpoch: number;
}

/** Why a session could not be joined; the handshake fails with it. */
export type SessionRefusal = 'algorithm-changed' | 'static-key-changed' | 'no-session-to-join' | 'generation-mismatch' | 'root-key-missing' | 'bad-action';

export class SecureSessionStore {
  readonly #entries = new Map<number, Entry>();

  /** `rotateAfterMs`: every session's epoch length (secure-datagram.ts's default unless a test shortens it). */
  constructor(private readonly rotateAfterMs?: number) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The session with `peerId`, if there is one (a link's or a relay's). */
  get(peerId: number): SecureSession | undefined {
    return this.#entries.get(peerId)?.session;
  }

  /** The responder's choice for a msg1 from `peerId`; the returned session is held until release(). */
  respond(peerId: number, theirGeneration: number | undefined, sendAlgorithm: SecureAlgorithm, recvAlgorithm: SecureAlgorithm, now: number): ResponderDecision | SessionRefusal {
    const e = this.#entries.get(peerId);
    if (!e) {
      const rootKey = new Uint8Array(randomBytes(ROOT_KEY_LEN));
      const session = new SecureSession({ rootKey, generation: 1, initialEpoch: 0, sendAlgorithm, recvAlgorithm, now, rotateAfterMs: this.rotateAfterMs });
      this.#entries.set(peerId, { session, refs: 1, peerStatic: null, createdHereAt: now });
      return { session, action: SessionAction.Create, generation: 1, rootKey, initialEpoch: 0 };
    }
    if (e.session.sendAlgorithm !== sendAlgorithm || e.session.recvAlgorithm !== recvAlgorithm) return 'algorithm-changed';
    e.refs++;
    const { session } = e;
    if (theirGeneration === session.generation) return { session, action: SessionAction.Join, generation: session.generation, initialEpoch: 0 };
    return { session, action: SessionAction.Sync, generation: session.generation, rootKey: session.rootKey, initialEpoch: session.nextSyncEpoch() };
  }

  /** The initiator takes the responder's msg2 decision; the returned session is held until release(). */
  apply(peerId: number, m: InitiatorApply, sendAlgorithm: SecureAlgorithm, recvAlgorithm: SecureAlgorithm, now: number, keepOursOnCross: boolean): SecureSession | SessionRefusal {
    const e = this.#entries.get(peerId);
    if (e && (e.session.sendAlgorithm !== sendAlgorithm || e.session.recvAlgorithm !== recvAlgorithm)) return 'algorithm-changed';
    if (m.action === SessionAction.Join) {
      if (!e) return 'no-session-to-join';
      if (e.session.generation !== m.generation) return 'generation-mismatch';
      e.refs++;
      return e.session;
    }
    if (m.action !== SessionAction.Sync && m.action !== SessionAction.Create) return 'bad-action';
    if (m.rootKey?.length !== ROOT_KEY_LEN) return 'root-key-missing';
    if (!e) {
      const session = new SecureSession({ rootKey: m.rootKey, generation: m.generation, initialEpoch: m.initialEpoch, sendAlgorithm, recvAlgorithm, now, rotateAfterMs: this.rotateAfterMs });
      this.#entries.set(peerId, { session, refs: 1, peerStatic: null, createdHereAt: null });
      return session;
    }
    const crossed = m.action === SessionAction.Create && e.createdHereAt !== null && now - e.createdHereAt < CROSS_WINDOW_MS;
    e.createdHereAt = null;
    e.refs++;
    if (!(crossed && keepOursOnCross)) e.session.sync(m.rootKey, m.generation, m.initialEpoch, now);
    return e.session;
  }

  /** Pins the peer's Noise static key to its session; false if a different one was pinned before. */
  pinStatic(peerId: number, key: Uint8Array): boolean {
    const e = this.#entries.get(peerId);
    if (!e) return false;
    if (!e.peerStatic) {
      e.peerStatic = Uint8Array.from(key);
      return true;
    }
    return Buffer.compare(Buffer.from(e.peerStatic), Buffer.from(key)) === 0;
  }

  /** A link that held the session for `peerId` is gone; the last one takes the session with it. */
  release(peerId: number): void {
    const e = this.#entries.get(peerId);
    if (e && --e.refs <= 0) this.#entries.delete(peerId);
  }
}
