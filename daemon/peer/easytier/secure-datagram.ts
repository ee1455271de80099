/**
 * Secure mode's datagram protection, one session per neighbour (EasyTier's PeerSession): traffic
 * keys come from a 32-byte root key the Noise responder chose, per epoch and direction, and every
 * packet carries its nonce in the usual 28-byte tail (ciphertext ‖ tag16 ‖ nonce12). The nonce is
 * epoch u32 BE ‖ seq u64 BE, so a receiver can open packets out of order, pick the key by epoch,
 * and refuse a replay with a window per epoch.
 *
 *   key(epoch, dir) = HKDF-SHA256(salt = 32 zero bytes, ikm = root key, info = "et-traffic" ‖ epoch BE ‖ dir)
 *   dir = 0 when the sender's peer id is below the receiver's, else 1
 *
 * The sender's cipher is its own --encryption-algorithm (aes-gcm takes the key's first 16 bytes),
 * the receiver's the one the other side announced in the handshake. A sender moves to the next
 * epoch after ROTATE_AFTER_PACKETS packets or ROTATE_AFTER_MS; the receiver keeps the current and
 * the previous epoch and accepts at most MAX_EPOCH_AHEAD epochs ahead, as EasyTier does.
 *
 * Stricter than EasyTier: a decrypt failure is counted and dropped but never ends the session
 * (EasyTier drops the session after ten in a row, which lets an on-path sender cut the link).
 */
import { hkdfSync } from 'node:crypto';
import { aeadWithKey, type AeadName, type EtCipher } from './cipher.js';
import { ReplayWindow } from '../replay-window.js';
import { TstierError } from '../../errors.js';

export const ROOT_KEY_LEN = 32;
export const ROTATE_AFTER_PACKETS = 1_000_000;
export const ROTATE_AFTER_MS = 10 * 60_000;
export const MAX_EPOCH_AHEAD = 3;
/** A receive epoch without packets for this long is forgotten (its window and key go). */
export const EVICT_IDLE_MS = 30_000;
const TAG_LEN = 16;
const NONCE_LEN = 12;
const TAIL_LEN = TAG_LEN + NONCE_LEN;
/** What sealing adds to a payload: tag ‖ nonce. */
export const SECURE_TAIL_LEN = TAIL_LEN;
const ZERO_SALT = new Uint8Array(32);
const TRAFFIC_INFO = new TextEncoder().encode('et-traffic');

/** The algorithms secure mode protects datagrams with, as EasyTier names them in the handshake. */
export type SecureAlgorithm = 'aes-gcm' | 'aes-256-gcm' | 'chacha20';

export function parseSecureAlgorithm(name: string): SecureAlgorithm | null {
  return (['aes-gcm', 'aes-256-gcm', 'chacha20'] as const).find((a) => a === name) ?? null;
}

export type Direction = 0 | 1;

/** The direction of a packet from `sender` to `receiver` (peer ids compared unsigned). */
export function directionOf(sender: number, receiver: number): Direction {
  return sender >>> 0 < receiver >>> 0 ? 0 : 1;
}

export function trafficKey(rootKey: Uint8Array, epoch: number, dir: Direction): Uint8Array {
  const info = new Uint8Array(TRAFFIC_INFO.length + 5);
  info.set(TRAFFIC_INFO);
  new DataView(info.buffer).setUint32(TRAFFIC_INFO.length, epoch >>> 0, false);
  info[TRAFFIC_INFO.length + 4] = dir;
  return new Uint8Array(hkdfSync('sha256', rootKey, ZERO_SALT, info, 32));
}

/** The AEAD for a traffic key: aes-gcm takes the key's first 16 bytes, as EasyTier's does. */
function trafficCipher(alg: SecureAlgorithm, key: Uint8Array): EtCipher {
  const name: AeadName = alg === 'aes-gcm' ? 'aes-128-gcm' : alg === 'aes-256-gcm' ? 'aes-256-gcm' : 'chacha20-poly1305';
  return aeadWithKey(name, alg === 'aes-gcm' ? key.subarray(0, 16) : key);
}

interface RxSlot {
  epoch: number;
  window: ReplayWindow;
  lastRxAt: number;
}

export type SecureOpenFailure = 'replayed' | 'bad-epoch' | 'decrypt-failed';

/** Drops by reason, for the link's counters. */
export type SecureDrops = Record<SecureOpenFailure, number>;

export interface SecureSessionInit {
  rootKey: Uint8Array;
  generation: number;
  initialEpoch: number;
  sendAlgorithm: SecureAlgorithm;
  recvAlgorithm: SecureAlgorithm;
  now: number;
  /** Packets per send epoch (ROTATE_AFTER_PACKETS unless a test wants it small). */
  rotateAfterPackets?: number;
  /** How long a send epoch lasts (ROTATE_AFTER_MS unless a test wants many rotations in seconds). */
  rotateAfterMs?: number;
}

export class SecureSession {
  #rootKey: Uint8Array;
  #generation: number;
  readonly sendAlgorithm: SecureAlgorithm;
  readonly recvAlgorithm: SecureAlgorithm;
  #sendEpoch: number;
  readonly #sendSeq = [0, 0];
  #epochStartedAt: number;
  #sentInEpoch = 0;
  readonly #rotateAfterPackets: number;
  readonly #rotateAfterMs: number;
  /** Per direction: [current, previous] receive epochs. */
  readonly #rx: [(RxSlot | null)[], (RxSlot | null)[]] = [
    [null, null],
    [null, null],
  ];
  /** Traffic ciphers by direction and epoch; small (the send epoch and at most two receive epochs each way). */
  #keys = new Map<number, EtCipher>();
  /** The nonce of the packet being sealed (the cipher copies it into the packet). */
  readonly #nonce = Buffer.alloc(NONCE_LEN);
  readonly drops: SecureDrops = { replayed: 0, 'bad-epoch': 0, 'decrypt-failed': 0 };

  constructor(o: SecureSessionInit) {
    if (o.rootKey.length !== ROOT_KEY_LEN) throw new TstierError('TSTIER_E_PROTOCOL', `secure session: root key is ${o.rootKey.length} bytes, not 32`);
    this.#rootKey = Uint8Array.from(o.rootKey);
    this.#generation = o.generation;
    this.#sendEpoch = o.initialEpoch >>> 0;
    this.#epochStartedAt = o.now;
    this.sendAlgorithm = o.sendAlgorithm;
    this.recvAlgorithm = o.recvAlgorithm;
    this.#rotateAfterPackets = o.rotateAfterPackets ?? ROTATE_AFTER_PACKETS;
    this.#rotateAfterMs = o.rotateAfterMs ?? ROTATE_AFTER_MS;
  }

  get generation(): number {
    return this.#generation;
  }

  get rootKey(): Uint8Array {
    return this.#rootKey;
  }

  get sendEpoch(): number {
    return this.#sendEpoch;
  }

  /** The epoch a peer syncing to this session starts at: past every epoch used so far either way. */
  nextSyncEpoch(): number {
    let max = this.#sendEpoch;
    for (const slots of this.#rx) for (const s of slots) if (s && s.epoch > max) max = s.epoch;
    return (max + 1) >>> 0;
  }

  /**
   * Takes the responder's session (Sync or Create): sending restarts at `initialEpoch`, seq 0. The
   * receive windows stay when the root key is the same (a Sync), so packets seen before cannot be
   * replayed into the fresh state; a new root key clears them with the keys.
   */
  sync(rootKey: Uint8Array, generation: number, initialEpoch: number, now: number): void {
    const sameKey = Buffer.compare(Buffer.from(rootKey), Buffer.from(this.#rootKey)) === 0;
    this.#rootKey = Uint8Array.from(rootKey);
    this.#generation = generation;
    this.#sendEpoch = initialEpoch >>> 0;
    this.#sendSeq[0] = this.#sendSeq[1] = 0;
    this.#epochStartedAt = now;
    this.#sentInEpoch = 0;
    this.#keys.clear();
    if (!sameKey) for (const slots of this.#rx) slots[0] = slots[1] = null;
  }

  /** Moves to the next send epoch when this one is old (by time); call at least once a second. */
  rotateIfDue(now: number): void {
    if (now - this.#epochStartedAt >= this.#rotateAfterMs) this.#rotate(now);
  }

  /**
   * Writes ciphertext ‖ tag ‖ nonce (plain.length + SECURE_TAIL_LEN bytes) at out[at..] for a packet
   * we send in direction `dir`; `plain` may be out[at..] itself. No allocation: the data path's.
   */
  sealInto(dir: Direction, out: Uint8Array, at: number, plain: Uint8Array, now: number): void {
    if (++this.#sentInEpoch >= this.#rotateAfterPackets) this.#rotate(now);
    const seq = this.#sendSeq[dir]!++;
    const nonce = this.#nonce;
    nonce.writeUInt32BE(this.#sendEpoch, 0);
    nonce.writeUInt32BE(Math.floor(seq / 2 ** 32), 4);
    nonce.writeUInt32BE(seq >>> 0, 8);
    this.#cipher(this.#sendEpoch, dir, this.sendAlgorithm).sealInto(out, at, plain, nonce);
  }

  /** sealInto a new buffer (tests and the control plane). */
  seal(dir: Direction, plain: Uint8Array, now: number): Uint8Array {
    const out = new Uint8Array(plain.length + TAIL_LEN);
    this.sealInto(dir, out, 0, plain, now);
    return out;
  }

  /**
   * The plaintext of a packet received in direction `dir` (opened in place: a view of `sealed`),
   * or why it is dropped (counted).
   */
  open(dir: Direction, sealed: Uint8Array, now: number): Uint8Array | SecureOpenFailure {
    if (sealed.length < TAIL_LEN) return this.#drop('decrypt-failed');
    const tail = sealed.length - NONCE_LEN;
    const nonce = sealed.subarray(tail);
    const view = new DataView(nonce.buffer, nonce.byteOffset, NONCE_LEN);
    const epoch = view.getUint32(0, false);
    const seq = view.getUint32(4, false) * 2 ** 32 + view.getUint32(8, false);
    this.#evictIdle(dir, now);
    const slot = this.#slotFor(dir, epoch);
    if (slot === 'refuse') return this.#drop('bad-epoch');
    if (slot && !slot.window.check(seq)) return this.#drop('replayed');
    const n = this.#cipher(epoch, dir, this.recvAlgorithm).openInPlace(sealed, 0, sealed.length);
    if (n < 0) {
      if (!slot) this.#keys.delete(keyId(epoch, dir)); // a forged epoch must not grow the cache
      return this.#drop('decrypt-failed');
    }
    const plain = sealed.subarray(0, n);
    // Only an authentic packet moves the windows: a forged nonce must never shift them.
    const rx = slot ?? this.#newEpoch(dir, epoch);
    rx.window.update(seq);
    rx.lastRxAt = now;
    return plain;
  }

  #drop(reason: SecureOpenFailure): SecureOpenFailure {
    this.drops[reason]++;
    return reason;
  }

  /** The slot for a received epoch; null for a new epoch we accept; 'refuse' for one too old or too far ahead. */
  #slotFor(dir: Direction, epoch: number): RxSlot | null | 'refuse' {
    const [cur, prev] = this.#rx[dir];
    if (!cur) return null;
    if (cur.epoch === epoch) return cur;
    if (prev?.epoch === epoch) return prev;
    if (epoch < cur.epoch) return 'refuse';
    const baseline = Math.max(this.#sendEpoch, cur.epoch, prev?.epoch ?? 0);
    return epoch > baseline + MAX_EPOCH_AHEAD ? 'refuse' : null;
  }

  #newEpoch(dir: Direction, epoch: number): RxSlot {
    const slots = this.#rx[dir];
    const slot: RxSlot = { epoch, window: new ReplayWindow(), lastRxAt: 0 };
    if (slots[0]) slots[1] = slots[0];
    slots[0] = slot;
    this.#pruneKeys();
    return slot;
  }

  #evictIdle(dir: Direction, now: number): void {
    const slots = this.#rx[dir];
    for (let i = 0; i < 2; i++) if (slots[i] && now - slots[i]!.lastRxAt > EVICT_IDLE_MS) slots[i] = null;
    if (!slots[0] && slots[1]) [slots[0], slots[1]] = [slots[1], null];
  }

  #rotate(now: number): void {
    this.#sendEpoch = (this.#sendEpoch + 1) >>> 0;
    this.#epochStartedAt = now;
    this.#sentInEpoch = 0;
    this.#pruneKeys();
  }

  /** One (epoch, dir) is only ever sent or only ever received on, so one algorithm per entry. */
  #cipher(epoch: number, dir: Direction, alg: SecureAlgorithm): EtCipher {
    const id = keyId(epoch, dir);
    let c = this.#keys.get(id);
    if (!c) {
      c = trafficCipher(alg, trafficKey(this.#rootKey, epoch, dir));
      this.#keys.set(id, c);
    }
    return c;
  }

  /** Keeps only the keys of epochs still in use: the send epoch and the live receive epochs. */
  #pruneKeys(): void {
    const live = new Set<number>();
    for (const dir of [0, 1] as const) {
      live.add(keyId(this.#sendEpoch, dir));
      for (const s of this.#rx[dir]) if (s) live.add(keyId(s.epoch, dir));
    }
    for (const id of this.#keys.keys()) if (!live.has(id)) this.#keys.delete(id);
  }
}

const keyId = (epoch: number, dir: Direction): number => epoch * 2 + dir;
