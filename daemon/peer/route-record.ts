/**
 * The link-state record each node originates about itself, and the RouteSync message that carries
 * records between direct peers. Binary, little-endian; decoding is bounds-checked and returns null
 * on anything malformed rather than throwing.
 *
 * RouteSync payload: kind u8 (1) | count u16 | count x (len u16 | record)
 * record: peerId u32 | version u32 | timestamp f64 | features u32 | ipv4 u32 | prefix u8
 *         | hostname (u8 len + utf8) | proxy CIDRs (u8 count, each u8 len + ascii)
 *         | neighbours (u16 count, each peerId u32 + cost u16)
 *         [| ipv6 16 bytes | ipv6 prefix u8]   -- only when the node has a virtual IPv6
 *
 * The IPv6 tail is optional so that a node without --ipv6 sends exactly what nodes before IPv6
 * support sent and still decode (they reject a record with trailing bytes).
 */
import { readU16, readU32, writeU16, writeU32 } from './wire.js';

/** Feature bits, numbered as EasyTier's PeerFeatureFlag fields: bit n = field n. */
export const Feature = {
  KcpInput: 1 << 3,
  NoRelayKcp: 1 << 4,
  QuicInput: 1 << 6,
  NoRelayQuic: 1 << 7,
  /**
   * tstier's own (no EasyTier field): this node's KCP carrier decodes per-peer adaptive FEC
   * (carrier/kcp/path-fec.ts). A high bit, clear of EasyTier's numbering.
   */
  KcpFec: 1 << 24,
  /** tstier's own: this node's KCP carrier takes ACKs of several flows in one datagram (carrier/kcp/ack-bundle.ts). */
  KcpBundle: 1 << 25,
} as const;

export interface Neighbour {
  peerId: number;
  cost: number;
}

/** A virtual IPv6 address (16 bytes, network order) and its prefix length. */
export interface Ipv6Net {
  address: Uint8Array;
  prefix: number;
}

export interface RouteRecord {
  peerId: number;
  /** Raised by the origin on every change; a higher version replaces a lower one everywhere. */
  version: number;
  /** Origin's clock when it made this version (informational). */
  timestamp: number;
  hostname: string;
  /** Virtual address as a u32 (0 = none) and its prefix length. */
  ipv4: number;
  prefix: number;
  /** Virtual IPv6, when the node has one. */
  ipv6?: Ipv6Net;
  /** As configured: "192.168.1.0/24" or "192.168.1.0/24->10.1.0.0/24". */
  proxyCidrs: string[];
  features: number;
  neighbours: Neighbour[];
  /** The node's software version as it announced it (EasyTier's wire carries one; tstier's does not). */
  softwareVersion?: string;
}

const KIND_RECORDS = 1;
const IPV6_TAIL = 17;
/** Records are sent in messages of at most this many bytes, to fit one underlay datagram. */
export const MAX_SYNC_PAYLOAD = 1200;

export function encodeRecord(r: RouteRecord): Buffer {
  const host = Buffer.from(r.hostname, 'utf8').subarray(0, 255);
  const cidrs = r.proxyCidrs.slice(0, 255).map((c) => Buffer.from(c, 'ascii').subarray(0, 255));
  const nbrs = r.neighbours.slice(0, 0xffff);
  const size = 4 + 4 + 8 + 4 + 4 + 1 + 1 + host.length + 1 + cidrs.reduce((n, c) => n + 1 + c.length, 0) + 2 + nbrs.length * 6
    + (r.ipv6 ? IPV6_TAIL : 0);
  const b = Buffer.alloc(size);
  let at = 0;
  writeU32(b, at, r.peerId); at += 4;
  writeU32(b, at, r.version); at += 4;
  b.writeDoubleLE(r.timestamp, at); at += 8;
  writeU32(b, at, r.features); at += 4;
  writeU32(b, at, r.ipv4); at += 4;
  b[at++] = r.prefix;
  b[at++] = host.length;
  host.copy(b, at); at += host.length;
  b[at++] = cidrs.length;
  for (const c of cidrs) { b[at++] = c.length; c.copy(b, at); at += c.length; }
  writeU16(b, at, nbrs.length); at += 2;
  for (const n of nbrs) { writeU32(b, at, n.peerId); writeU16(b, at + 4, Math.min(n.cost, 0xffff)); at += 6; }
  if (r.ipv6) { b.set(r.ipv6.address.subarray(0, 16), at); b[at + 16] = r.ipv6.prefix; }
  return b;
}

/** A cursor that turns every overrun into `ok = false` instead of an exception. */
class Reader {
  ok = true;
  at = 0;
  constructor(private readonly b: Uint8Array) {}
  private take(n: number): number {
    const at = this.at;
    if (at + n > this.b.length) { this.ok = false; return -1; }
    this.at += n;
    return at;
  }
  u8(): number { const at = this.take(1); return at < 0 ? 0 : this.b[at]!; }
  u16(): number { const at = this.take(2); return at < 0 ? 0 : readU16(this.b, at); }
  u32(): number { const at = this.take(4); return at < 0 ? 0 : readU32(this.b, at); }
  f64(): number {
    const at = this.take(8);
    return at < 0 ? 0 : Buffer.from(this.b.buffer, this.b.byteOffset + at, 8).readDoubleLE(0);
  }
  bytes(n: number): Uint8Array { const at = this.take(n); return at < 0 ? new Uint8Array(0) : this.b.subarray(at, at + n); }
  get done(): boolean { return this.at === this.b.length; }
}

export function decodeRecord(b: Uint8Array): RouteRecord | null {
  const r = new Reader(b);
  const peerId = r.u32();
  const version = r.u32();
  const timestamp = r.f64();
  const features = r.u32();
  const ipv4 = r.u32();
  const prefix = r.u8();
  const hostname = Buffer.from(r.bytes(r.u8())).toString('utf8');
  const proxyCidrs: string[] = [];
  for (let n = r.u8(); n > 0 && r.ok; n--) proxyCidrs.push(Buffer.from(r.bytes(r.u8())).toString('ascii'));
  const neighbours: Neighbour[] = [];
  for (let n = r.u16(); n > 0 && r.ok; n--) neighbours.push({ peerId: r.u32(), cost: r.u16() });
  let ipv6: Ipv6Net | undefined;
  if (r.ok && !r.done) {
    const address = new Uint8Array(r.bytes(16)); // a copy: the record outlives the message
    ipv6 = { address, prefix: r.u8() };
    if (ipv6.prefix > 128) return null;
  }
  if (!r.ok || !r.done || prefix > 32 || !Number.isFinite(timestamp) || peerId === 0) return null;
  const rec: RouteRecord = { peerId, version, timestamp, hostname, ipv4, prefix, proxyCidrs, features, neighbours };
  if (ipv6) rec.ipv6 = ipv6;
  return rec;
}

/** Packs encoded records into as few RouteSync payloads as fit MAX_SYNC_PAYLOAD each. */
export function encodeSync(records: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let batch: Buffer[] = [];
  let size = 3;
  const flush = (): void => {
    if (batch.length === 0) return;
    const m = Buffer.alloc(size);
    m[0] = KIND_RECORDS;
    writeU16(m, 1, batch.length);
    let at = 3;
    for (const r of batch) { writeU16(m, at, r.length); r.copy(m, at + 2); at += 2 + r.length; }
    out.push(m);
    batch = [];
    size = 3;
  };
  for (const r of records) {
    if (size + 2 + r.length > MAX_SYNC_PAYLOAD) flush();
    batch.push(r);
    size += 2 + r.length;
  }
  flush();
  return out;
}

/** The records in a RouteSync payload; null if the message is malformed as a whole. */
export function decodeSync(payload: Uint8Array): RouteRecord[] | null {
  const r = new Reader(payload);
  if (r.u8() !== KIND_RECORDS) return null;
  const records: RouteRecord[] = [];
  for (let n = r.u16(); n > 0 && r.ok; n--) {
    const rec = decodeRecord(r.bytes(r.u16()));
    if (!rec) return null;
    records.push(rec);
  }
  return r.ok && r.done ? records : null;
}
