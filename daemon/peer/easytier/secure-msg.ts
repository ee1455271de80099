/**
 * The payloads of EasyTier's secure-mode handshake (peer_rpc.PeerConnNoiseMsg1Pb/2Pb/3Pb), carried
 * inside the Noise messages of PM types 13, 14 and 15. Field numbers as EasyTier's proto numbers
 * them; a connection id is a common.UUID (four uint32 parts).
 */
import { randomBytes } from 'node:crypto';
import { ProtoWriter, protoFields, str, u32 } from './proto.js';

/** A common.UUID: four uint32 parts. */
export type ConnId = readonly [number, number, number, number];

export function newConnId(): ConnId {
  const b = randomBytes(16);
  return [b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12)];
}

export function sameConnId(a: ConnId | undefined, b: ConnId | undefined): boolean {
  return a !== undefined && b !== undefined && a.every((v, i) => v === b[i]);
}

function encodeConnId(id: ConnId): Uint8Array {
  return new ProtoWriter().uint(1, id[0]).uint(2, id[1]).uint(3, id[2]).uint(4, id[3]).finish();
}

function decodeConnId(buf: Uint8Array): ConnId {
  const p = [0, 0, 0, 0];
  for (const f of protoFields(buf)) if (f.no >= 1 && f.no <= 4) p[f.no - 1] = u32(f);
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

/** PeerConnSessionActionPb: what the responder did with its session for this peer. */
export const SessionAction = { Join: 0, Sync: 1, Create: 2 } as const;
export type SessionAction = (typeof SessionAction)[keyof typeof SessionAction];

/**
 * A private field in msg1 and msg2 saying the sender is tstier (EasyTier skips unknown fields): when
 * both sides dial at once, tstier nodes break the tie by peer id, and yield to EasyTier (see
 * secure-session-store.ts).
 */
export const TSTIER_MARK_FIELD = 1000;

/** Role hint in msg2: 1 when the two network names are equal. */
export const ROLE_SAME_NETWORK = 1;
export const ROLE_OTHER_NETWORK = 2;

export interface NoiseMsg1 {
  version: number;
  networkName: string;
  /** The initiator's session generation for this peer, if it has one. */
  sessionGeneration?: number;
  connId: ConnId;
  encryptionAlgorithm: string;
  tstier?: boolean;
}

export interface NoiseMsg2 {
  networkName: string;
  roleHint: number;
  action: number;
  sessionGeneration: number;
  /** Sent with Sync and Create. */
  rootKey?: Uint8Array;
  initialEpoch: number;
  connId?: ConnId;
  connIdEcho?: ConnId;
  secretProof?: Uint8Array;
  encryptionAlgorithm: string;
  tstier?: boolean;
}

export interface NoiseMsg3 {
  aConnIdEcho?: ConnId;
  bConnIdEcho?: ConnId;
  secretProof?: Uint8Array;
  secretDigest: Uint8Array;
}

export function encodeMsg1(m: NoiseMsg1): Uint8Array {
  return new ProtoWriter()
    .uint(1, m.version)
    .string(2, m.networkName)
    .optionalUint(3, m.sessionGeneration)
    .message(4, encodeConnId(m.connId))
    .string(5, m.encryptionAlgorithm)
    .bool(TSTIER_MARK_FIELD, m.tstier)
    .finish();
}

export function decodeMsg1(buf: Uint8Array): NoiseMsg1 {
  const m: NoiseMsg1 = { version: 0, networkName: '', connId: [0, 0, 0, 0], encryptionAlgorithm: '' };
  for (const f of protoFields(buf)) {
    if (f.no === 1) m.version = u32(f);
    else if (f.no === 2) m.networkName = str(f);
    else if (f.no === 3) m.sessionGeneration = u32(f);
    else if (f.no === 4) m.connId = decodeConnId(f.bytes);
    else if (f.no === 5) m.encryptionAlgorithm = str(f);
    else if (f.no === TSTIER_MARK_FIELD) m.tstier = f.varint !== 0n;
  }
  return m;
}

export function encodeMsg2(m: NoiseMsg2): Uint8Array {
  return new ProtoWriter()
    .string(1, m.networkName)
    .uint(2, m.roleHint)
    .uint(3, m.action)
    .uint(4, m.sessionGeneration)
    .bytes(5, m.rootKey)
    .uint(6, m.initialEpoch)
    .message(7, m.connId && encodeConnId(m.connId))
    .message(8, m.connIdEcho && encodeConnId(m.connIdEcho))
    .bytes(9, m.secretProof)
    .string(10, m.encryptionAlgorithm)
    .bool(TSTIER_MARK_FIELD, m.tstier)
    .finish();
}

export function decodeMsg2(buf: Uint8Array): NoiseMsg2 {
  const m: NoiseMsg2 = { networkName: '', roleHint: 0, action: 0, sessionGeneration: 0, initialEpoch: 0, encryptionAlgorithm: '' };
  for (const f of protoFields(buf)) {
    if (f.no === 1) m.networkName = str(f);
    else if (f.no === 2) m.roleHint = u32(f);
    else if (f.no === 3) m.action = u32(f);
    else if (f.no === 4) m.sessionGeneration = u32(f);
    else if (f.no === 5) m.rootKey = f.bytes;
    else if (f.no === 6) m.initialEpoch = u32(f);
    else if (f.no === 7) m.connId = decodeConnId(f.bytes);
    else if (f.no === 8) m.connIdEcho = decodeConnId(f.bytes);
    else if (f.no === 9) m.secretProof = f.bytes;
    else if (f.no === 10) m.encryptionAlgorithm = str(f);
    else if (f.no === TSTIER_MARK_FIELD) m.tstier = f.varint !== 0n;
  }
  return m;
}

export function encodeMsg3(m: NoiseMsg3): Uint8Array {
  return new ProtoWriter()
    .message(1, m.aConnIdEcho && encodeConnId(m.aConnIdEcho))
    .message(2, m.bConnIdEcho && encodeConnId(m.bConnIdEcho))
    .bytes(3, m.secretProof)
    .bytes(4, m.secretDigest)
    .finish();
}

export function decodeMsg3(buf: Uint8Array): NoiseMsg3 {
  const m: NoiseMsg3 = { secretDigest: new Uint8Array(0) };
  for (const f of protoFields(buf)) {
    if (f.no === 1) m.aConnIdEcho = decodeConnId(f.bytes);
    else if (f.no === 2) m.bConnIdEcho = decodeConnId(f.bytes);
    else if (f.no === 3) m.secretProof = f.bytes;
    else if (f.no === 4) m.secretDigest = f.bytes;
  }
  return m;
}
