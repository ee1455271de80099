/**
 * EasyTier's route sync messages (service OspfRouteRpc, method 1 SyncRouteInfo): what a node tells
 * each direct neighbour about every node it knows (RoutePeerInfo) and about who is connected to
 * whom (RouteConnBitmap).
 *
 * A RoutePeerInfo is originated only by the node it describes and relayed by others as the raw
 * bytes they received, unknown fields included, so each decoded info keeps its `raw` encoding.
 */
import { ProtoWriter, protoFields, repeatedU32, str, u32 } from './proto.js';

export const OSPF_SERVICE = 'OspfRouteRpc';
export const SYNC_ROUTE_INFO_METHOD = 1;
/** EasyTier's timeout for SyncRouteInfo calls. */
export const SYNC_ROUTE_TIMEOUT_MS = 3000;

/** `common.PeerFeatureFlag`; absent flags read as false. */
export interface PeerFeatureFlag {
  isPublicServer?: boolean;
  avoidRelayData?: boolean;
  kcpInput?: boolean;
  noRelayKcp?: boolean;
  supportConnListSync?: boolean;
  quicInput?: boolean;
  noRelayQuic?: boolean;
  isCredentialPeer?: boolean;
  needP2p?: boolean;
  disableP2p?: boolean;
  ipv6PublicAddrProvider?: boolean;
}

const FLAG_FIELDS: (keyof PeerFeatureFlag)[] = [
  'isPublicServer', 'avoidRelayData', 'kcpInput', 'noRelayKcp', 'supportConnListSync', 'quicInput',
  'noRelayQuic', 'isCredentialPeer', 'needP2p', 'disableP2p', 'ipv6PublicAddrProvider',
];

export function encodeFeatureFlag(f: PeerFeatureFlag): Uint8Array {
  const w = new ProtoWriter();
  FLAG_FIELDS.forEach((k, i) => w.bool(i + 1, f[k]));
  return w.finish();
}

export function decodeFeatureFlag(buf: Uint8Array): PeerFeatureFlag {
  const out: PeerFeatureFlag = {};
  for (const f of protoFields(buf)) {
    const k = FLAG_FIELDS[f.no - 1];
    if (k && f.varint !== 0n) out[k] = true;
  }
  return out;
}

/** RoutePeerInfo's private field for tstierFeatures: far above EasyTier's numbers, below protobuf's reserved 19000. */
export const TSTIER_FEATURES_FIELD = 1000;

/** The fields of `peer_rpc.RoutePeerInfo` a member node reads and writes. */
export interface RoutePeerInfo {
  peerId: number;
  /** The instance UUID, 16 bytes (on the wire: four big-endian u32 words). */
  instId: Uint8Array;
  /** Virtual IPv4 as a u32 (octets big-endian), absent if the node has none. */
  ipv4?: number;
  networkLength: number;
  /** Virtual IPv6 (16 bytes) and its prefix length (common.Ipv6Inet, field 15), absent if none. */
  ipv6?: { address: Uint8Array; prefix: number };
  proxyCidrs: string[];
  hostname?: string;
  udpNatType: number;
  /** Sender's clock; a receiver replaces it with its own now. */
  lastUpdate?: { seconds: bigint; nanos: number };
  /** ≥ 1; a receiver keeps an info only if its version is greater than the stored one. */
  version: number;
  easytierVersion: string;
  featureFlag: PeerFeatureFlag;
  peerRouteId: bigint;
  /**
   * tstier's own feature bits (route-record.ts Feature), present only on tstier nodes: it says the
   * node speaks tstier's KCP and QUIC carriers. A private field (TSTIER_FEATURES_FIELD): EasyTier
   * skips it when decoding and relays it unchanged inside the raw info.
   */
  tstierFeatures?: number;
  /** Secure mode: the node's Noise static public key (field 18), as EasyTier advertises it. */
  noiseStaticPubkey?: Uint8Array;
  /** The encoding this info arrived in (set by decode), to relay unchanged. */
  raw?: Uint8Array;
}

function encodeUuid(b: Uint8Array): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  const w = new ProtoWriter();
  for (let i = 0; i < 4; i++) w.uint(i + 1, dv.getUint32(4 * i, false));
  return w.finish();
}

/** common.Ipv6Inet {1 address: Ipv6Addr {1..4 part: u32, big-endian words}, 2 network_length}. */
function encodeIpv6Inet(v: { address: Uint8Array; prefix: number }): Uint8Array {
  return new ProtoWriter().message(1, encodeUuid(v.address)).uint(2, v.prefix).finish();
}

function decodeIpv6Inet(buf: Uint8Array): { address: Uint8Array; prefix: number } {
  const out: { address: Uint8Array; prefix: number } = { address: new Uint8Array(16), prefix: 0 };
  for (const f of protoFields(buf)) {
    if (f.no === 1) out.address = decodeUuid(f.bytes);
    else if (f.no === 2) out.prefix = u32(f);
  }
  return out;
}

function decodeUuid(buf: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  for (const f of protoFields(buf)) if (f.no >= 1 && f.no <= 4) dv.setUint32(4 * (f.no - 1), u32(f), false);
  return out;
}

export function encodeRoutePeerInfo(p: RoutePeerInfo): Uint8Array {
  const w = new ProtoWriter().uint(1, p.peerId).message(2, encodeUuid(p.instId));
  if (p.ipv4 !== undefined) w.message(4, new ProtoWriter().uint(1, p.ipv4).finish());
  for (const c of p.proxyCidrs) w.string(5, c, true);
  w.string(6, p.hostname, true).uint(7, p.udpNatType);
  if (p.lastUpdate) w.message(8, new ProtoWriter().uint(1, p.lastUpdate.seconds).uint(2, p.lastUpdate.nanos).finish());
  w.uint(9, p.version)
    .string(10, p.easytierVersion)
    .message(11, encodeFeatureFlag(p.featureFlag))
    .uint(12, p.peerRouteId)
    .uint(13, p.networkLength);
  if (p.ipv6) w.message(15, encodeIpv6Inet(p.ipv6));
  w.bytes(18, p.noiseStaticPubkey);
  return w
    .optionalUint(TSTIER_FEATURES_FIELD, p.tstierFeatures)
    .finish();
}

/** The IPv4 network length is at most 32 and the IPv6 prefix at most 128 (0 = unset, EasyTier's default /24). */
export function prefixLengthsValid(p: RoutePeerInfo): boolean {
  return p.networkLength <= 32 && (p.ipv6 === undefined || p.ipv6.prefix <= 128);
}

export function decodeRoutePeerInfo(buf: Uint8Array): RoutePeerInfo {
  const p: RoutePeerInfo = {
    peerId: 0, instId: new Uint8Array(16), networkLength: 0, proxyCidrs: [], udpNatType: 0, version: 0,
    easytierVersion: '', featureFlag: {}, peerRouteId: 0n, raw: buf,
  };
  for (const f of protoFields(buf)) {
    if (f.no === 1) p.peerId = u32(f);
    else if (f.no === 2) p.instId = decodeUuid(f.bytes);
    else if (f.no === 4) {
      p.ipv4 = 0;
      for (const g of protoFields(f.bytes)) if (g.no === 1) p.ipv4 = u32(g);
    } else if (f.no === 5) p.proxyCidrs.push(str(f));
    else if (f.no === 6) p.hostname = str(f);
    else if (f.no === 7) p.udpNatType = u32(f);
    else if (f.no === 8) {
      const t = { seconds: 0n, nanos: 0 };
      for (const g of protoFields(f.bytes)) {
        if (g.no === 1) t.seconds = BigInt.asIntN(64, g.varint);
        else if (g.no === 2) t.nanos = u32(g);
      }
      p.lastUpdate = t;
    } else if (f.no === 9) p.version = u32(f);
    else if (f.no === 10) p.easytierVersion = str(f);
    else if (f.no === 11) p.featureFlag = decodeFeatureFlag(f.bytes);
    else if (f.no === 12) p.peerRouteId = f.varint;
    else if (f.no === 13) p.networkLength = u32(f);
    else if (f.no === 15) p.ipv6 = decodeIpv6Inet(f.bytes);
    else if (f.no === 18) p.noiseStaticPubkey = f.bytes;
    else if (f.no === TSTIER_FEATURES_FIELD) p.tstierFeatures = u32(f);
  }
  return p;
}

// ---- connection info ----

export interface PeerIdVersion {
  peerId: number;
  /** Version of that node's own neighbour set; 0 = a placeholder carrying no information. */
  version: number;
}

/** Who is directly connected to whom, as EasyTier's bitmap: N ids sorted ascending, N×N bits. */
export interface RouteConnBitmap {
  peerIds: PeerIdVersion[];
  /** ⌈N²/8⌉ bytes; bit row·N+col (LSB first) = peerIds[row] has a live link to peerIds[col]. */
  bitmap: Uint8Array;
}

/** Builds the bitmap from each node's neighbour list (`conns`: node id → its neighbours). */
export function buildConnBitmap(versions: PeerIdVersion[], conns: ReadonlyMap<number, readonly number[]>): RouteConnBitmap {
  const peerIds = [...versions].sort((a, b) => a.peerId - b.peerId);
  const n = peerIds.length;
  const index = new Map(peerIds.map((p, i) => [p.peerId, i]));
  const bitmap = new Uint8Array(Math.ceil((n * n) / 8));
  for (const [from, tos] of conns) {
    const row = index.get(from);
    if (row === undefined) continue;
    for (const to of tos) {
      const col = index.get(to);
      if (col === undefined) continue;
      const k = row * n + col;
      bitmap[k >> 3]! |= 1 << (k & 7);
    }
  }
  return { peerIds, bitmap };
}

/** Each node's neighbours as the bitmap states them; rows with version 0 carry nothing and are skipped. */
export function connsFromBitmap(b: RouteConnBitmap): Map<number, { version: number; neighbours: number[] }> {
  const n = b.peerIds.length;
  const out = new Map<number, { version: number; neighbours: number[] }>();
  if (b.bitmap.length < Math.ceil((n * n) / 8)) return out;
  b.peerIds.forEach((row, r) => {
    if (row.version === 0) return;
    const neighbours: number[] = [];
    for (let c = 0; c < n; c++) {
      const k = r * n + c;
      if (b.bitmap[k >> 3]! & (1 << (k & 7))) neighbours.push(b.peerIds[c]!.peerId);
    }
    out.set(row.peerId, { version: row.version, neighbours });
  });
  return out;
}

function encodeConnBitmap(b: RouteConnBitmap): Uint8Array {
  const w = new ProtoWriter();
  for (const p of b.peerIds) w.message(1, new ProtoWriter().uint(1, p.peerId).uint(2, p.version).finish());
  return w.bytes(2, b.bitmap).finish();
}

function decodeConnBitmap(buf: Uint8Array): RouteConnBitmap {
  const out: RouteConnBitmap = { peerIds: [], bitmap: new Uint8Array(0) };
  for (const f of protoFields(buf)) {
    if (f.no === 1) out.peerIds.push(decodePeerIdVersion(f.bytes));
    else if (f.no === 2) out.bitmap = f.bytes;
  }
  return out;
}

function decodePeerIdVersion(buf: Uint8Array): PeerIdVersion {
  const p = { peerId: 0, version: 0 };
  for (const g of protoFields(buf)) {
    if (g.no === 1) p.peerId = u32(g);
    else if (g.no === 2) p.version = u32(g);
  }
  return p;
}

/** RouteConnPeerList, the list form EasyTier sends only to peers advertising support_conn_list_sync. */
function decodeConnPeerList(buf: Uint8Array): Map<number, { version: number; neighbours: number[] }> {
  const out = new Map<number, { version: number; neighbours: number[] }>();
  for (const f of protoFields(buf)) {
    if (f.no !== 1) continue;
    let id: PeerIdVersion = { peerId: 0, version: 0 };
    const neighbours: number[] = [];
    for (const g of protoFields(f.bytes)) {
      if (g.no === 1) id = decodePeerIdVersion(g.bytes);
      else if (g.no === 2) repeatedU32(g, neighbours);
    }
    if (id.version !== 0) out.set(id.peerId, { version: id.version, neighbours });
  }
  return out;
}

// ---- SyncRouteInfo ----

export interface SyncRouteInfoRequest {
  myPeerId: number;
  mySessionId: bigint;
  isInitiator: boolean;
  /** Absent: nothing new; present (possibly empty) otherwise. */
  peerInfos?: RoutePeerInfo[];
  connBitmap?: RouteConnBitmap;
}

/** Decoded request; conn info from either the bitmap or the list form, per node. */
export interface SyncRouteInfoIn {
  myPeerId: number;
  mySessionId: bigint;
  isInitiator: boolean;
  peerInfos: RoutePeerInfo[];
  conns: Map<number, { version: number; neighbours: number[] }>;
}

export function encodeSyncRouteInfoRequest(r: SyncRouteInfoRequest): Uint8Array {
  const w = new ProtoWriter().uint(1, r.myPeerId).uint(2, r.mySessionId).bool(3, r.isInitiator);
  if (r.peerInfos) {
    const infos = new ProtoWriter();
    for (const p of r.peerInfos) infos.message(1, p.raw ?? encodeRoutePeerInfo(p));
    w.message(4, infos.finish());
  }
  if (r.connBitmap) w.message(5, encodeConnBitmap(r.connBitmap));
  return w.finish();
}

export function decodeSyncRouteInfoRequest(buf: Uint8Array): SyncRouteInfoIn {
  const r: SyncRouteInfoIn = { myPeerId: 0, mySessionId: 0n, isInitiator: false, peerInfos: [], conns: new Map() };
  for (const f of protoFields(buf)) {
    if (f.no === 1) r.myPeerId = u32(f);
    else if (f.no === 2) r.mySessionId = f.varint;
    else if (f.no === 3) r.isInitiator = f.varint !== 0n;
    else if (f.no === 4) {
      for (const g of protoFields(f.bytes)) if (g.no === 1) r.peerInfos.push(decodeRoutePeerInfo(g.bytes));
    } else if (f.no === 5) r.conns = connsFromBitmap(decodeConnBitmap(f.bytes));
    else if (f.no === 7) r.conns = decodeConnPeerList(f.bytes);
  }
  return r;
}

export interface SyncRouteInfoResponse {
  isInitiator: boolean;
  sessionId: bigint;
  /** Field 3, proto3 optional: present = an error (0 DuplicatePeerId, 1 Stopped). We never send it. */
  error?: number;
}

/** Never writes field 3: a present 0 means DuplicatePeerId, and a v2.6.4 member node panics on it. */
export const encodeSyncRouteInfoResponse = (r: SyncRouteInfoResponse): Uint8Array =>
  new ProtoWriter().bool(1, r.isInitiator).uint(2, r.sessionId).finish();

export function decodeSyncRouteInfoResponse(buf: Uint8Array): SyncRouteInfoResponse {
  const r: SyncRouteInfoResponse = { isInitiator: false, sessionId: 0n };
  for (const f of protoFields(buf)) {
    if (f.no === 1) r.isInitiator = f.varint !== 0n;
    else if (f.no === 2) r.sessionId = f.varint;
    else if (f.no === 3) r.error = u32(f);
  }
  return r;
}
