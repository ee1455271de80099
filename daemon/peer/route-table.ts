/**
 * Link-state routing, sans-IO. Every node originates one versioned record about itself (address,
 * proxied CIDRs, features, live neighbours) and floods it to its direct peers; each node keeps the
 * newest version of every record and runs a shortest-path search over the links both ends claim.
 *
 * - Flooding: a record newer than ours is stored and passed to every direct peer except the sender;
 *   an older one makes us answer the sender with the newer one.
 * - Anti-entropy: every `syncMs` each direct peer gets our whole database, which repairs anything a
 *   lossy underlay dropped; a new link gets it at once.
 * - Expiry: a record whose origin is unreachable from us for `expireMs` is deleted (peer ids are
 *   per process start, so a restarted node comes back as a new record).
 * - Paths: Dijkstra on record costs (1 per hop); an edge counts only if both ends list each other
 *   (our own edges: the live sessions). Identical databases give consistent, loop-free next hops;
 *   while they differ, the relays' forward counter bounds any transient loop.
 */
import { advertisedProxyPrefix, prefixMask } from './ipv4-prefix.js';
import { decodeSync, encodeRecord, encodeSync, type Ipv6Net, type RouteRecord } from './route-record.js';

export interface LocalNode {
  peerId: number;
  hostname: string;
  /** u32, 0 when the node has no virtual address. */
  ipv4: number;
  prefix: number;
  /** Virtual IPv6, when the node has one. */
  ipv6?: Ipv6Net;
  proxyCidrs: string[];
  features: number;
}

export interface RouteTableOptions {
  syncMs: number;
  expireMs: number;
}

export const DEFAULT_ROUTE_OPTIONS: RouteTableOptions = { syncMs: 5000, expireMs: 30_000 };

export interface RouteEntry {
  record: RouteRecord;
  nextHop: number;
  cost: number;
}

export interface RouteMessage {
  to: number;
  payload: Buffer;
}

interface ProxyRoute {
  net: number;
  mask: number;
  prefix: number;
  peerId: number;
}

export class RouteTable {
  /** RouteSync payloads that did not parse; they are dropped whole. */
  malformed = 0;
  /** Bumped whenever paths or reachable records may have changed; owners compare it to react. */
  generation = 0;
  private own: RouteRecord;
  private readonly db = new Map<number, RouteRecord>();
  private readonly encoded = new Map<number, Buffer>();
  private readonly links = new Set<number>();
  private readonly out: RouteMessage[] = [];
  private paths = new Map<number, { nextHop: number; cost: number }>();
  private readonly unreachableSince = new Map<number, number>();
  private ipv4Map = new Map<number, number>();
  /** Reachable nodes' virtual IPv6 addresses, nearest first; compared bytewise so lookups allocate nothing. */
  private ipv6Owners: { address: Uint8Array; peerId: number }[] = [];
  private proxyRoutes: ProxyRoute[] = [];
  private nextSync: number;

  constructor(local: LocalNode, now: number, private readonly opts: RouteTableOptions = DEFAULT_ROUTE_OPTIONS) {
    this.own = { ...local, version: 1, timestamp: now, neighbours: [] };
    this.store(this.own);
    this.nextSync = now + opts.syncMs;
    this.recompute(now);
  }

  get peerId(): number {
    return this.own.peerId;
  }

  /** Changes what we advertise about ourselves (e.g. feature flags) and floods it. */
  updateLocal(patch: Partial<Omit<LocalNode, 'peerId'>>, now: number): void {
    Object.assign(this.own, patch);
    this.originate(now);
  }

  linkUp(peerId: number, now: number): void {
    if (peerId === this.own.peerId || this.links.has(peerId)) return;
    this.links.add(peerId);
    this.originate(now);
    this.sendAll(peerId);
  }

  linkDown(peerId: number, now: number): void {
    if (!this.links.delete(peerId)) return;
    this.originate(now);
  }

  /** A RouteSync payload from direct peer `from`. Returns false if it was malformed (and dropped). */
  input(from: number, payload: Uint8Array, now: number): boolean {
    if (!this.links.has(from)) return true; // stale: the link went down meanwhile
    const records = decodeSync(payload);
    if (!records) {
      this.malformed++;
      return false;
    }
    let changed = false;
    for (const rec of records) {
      if (rec.peerId === this.own.peerId) {
        // A copy of us newer than we know can only be stale state from our own past; outgrow it.
        if (rec.version >= this.own.version) {
          this.own.version = rec.version;
          this.originate(now);
        }
        continue;
      }
      const cur = this.db.get(rec.peerId);
      if (!cur || rec.version > cur.version) {
        this.store(rec);
        this.flood(rec.peerId, from);
        changed = true;
      } else if (rec.version < cur.version) {
        this.queueRecords(from, [this.encoded.get(rec.peerId)!]);
      }
    }
    if (changed) this.recompute(now);
    return true;
  }

  pollTransmit(): RouteMessage | undefined {
    return this.out.shift();
  }

  pollTimeout(): number {
    let t = this.nextSync;
    for (const since of this.unreachableSince.values()) t = Math.min(t, since + this.opts.expireMs);
    return t;
  }

  handleTimeout(now: number): void {
    if (now >= this.nextSync) {
      for (const peer of this.links) this.sendAll(peer);
      this.nextSync = now + this.opts.syncMs;
    }
    let expired = false;
    for (const [peerId, since] of this.unreachableSince) {
      if (now < since + this.opts.expireMs) continue;
      this.db.delete(peerId);
      this.encoded.delete(peerId);
      this.unreachableSince.delete(peerId);
      expired = true;
    }
    if (expired) this.recompute(now);
  }

  /** The direct peer to hand a packet for `peerId` to; undefined when unreachable (or ourselves). */
  nextHop(peerId: number): number | undefined {
    return this.paths.get(peerId)?.nextHop;
  }

  /** Peer id owning virtual address `addr` (our own id for our address). */
  lookupIpv4(addr: number): number | undefined {
    return this.ipv4Map.get(addr);
  }

  /** Peer id owning the virtual IPv6 address in `packet[at..at+16]` (our own id for our address). */
  lookupIpv6(packet: Uint8Array, at = 0): number | undefined {
    if (packet.length < at + 16) return undefined;
    outer: for (const o of this.ipv6Owners) {
      for (let i = 15; i >= 0; i--) if (o.address[i] !== packet[at + i]) continue outer; // host bits differ first
      return o.peerId;
    }
    return undefined;
  }

  /** Peer id proxying the longest prefix that contains `addr` (our own id for our own CIDRs). */
  lookupProxy(addr: number): number | undefined {
    for (const r of this.proxyRoutes) if (((addr & r.mask) >>> 0) === r.net) return r.peerId;
    return undefined;
  }

  record(peerId: number): RouteRecord | undefined {
    return this.db.get(peerId);
  }

  /** The peer ids of every reachable node but us. */
  reachable(): IterableIterator<number> {
    return this.paths.keys();
  }

  /** Every reachable node but us, by peer id. */
  routes(): RouteEntry[] {
    const out: RouteEntry[] = [];
    for (const [peerId, p] of this.paths) {
      const record = this.db.get(peerId);
      if (record) out.push({ record, nextHop: p.nextHop, cost: p.cost });
    }
    return out.sort((a, b) => a.record.peerId - b.record.peerId);
  }

  private originate(now: number): void {
    this.own.version++;
    this.own.timestamp = now;
    this.own.neighbours = [...this.links].sort((a, b) => a - b).map((peerId) => ({ peerId, cost: 1 }));
    this.store(this.own);
    this.flood(this.own.peerId, 0);
    this.recompute(now);
  }

  private store(rec: RouteRecord): void {
    this.db.set(rec.peerId, rec);
    this.encoded.set(rec.peerId, encodeRecord(rec));
  }

  private flood(peerId: number, except: number): void {
    const enc = this.encoded.get(peerId)!;
    for (const to of this.links) if (to !== except) this.queueRecords(to, [enc]);
  }

  private sendAll(to: number): void {
    this.queueRecords(to, [...this.encoded.values()]);
  }

  private queueRecords(to: number, records: Buffer[]): void {
    for (const payload of encodeSync(records)) this.out.push({ to, payload });
  }

  private lists(a: number, b: number): boolean {
    if (a === this.own.peerId) return this.links.has(b);
    return this.db.get(a)?.neighbours.some((n) => n.peerId === b) ?? false;
  }

  private recompute(now: number): void {
    this.generation++;
    const self = this.own.peerId;
    const dist = new Map<number, { nextHop: number; cost: number }>([[self, { nextHop: self, cost: 0 }]]);
    const done = new Set<number>();
    for (;;) {
      let u = -1;
      let best = Infinity;
      for (const [id, d] of dist) if (!done.has(id) && (d.cost < best || (d.cost === best && id < u))) { u = id; best = d.cost; }
      if (u < 0) break;
      done.add(u);
      const from = dist.get(u)!;
      const edges = u === self ? [...this.links].map((peerId) => ({ peerId, cost: 1 })) : this.db.get(u)?.neighbours ?? [];
      for (const e of edges) {
        if (done.has(e.peerId) || !this.lists(e.peerId, u)) continue;
        const cost = from.cost + Math.max(1, e.cost);
        const nextHop = u === self ? e.peerId : from.nextHop;
        const cur = dist.get(e.peerId);
        if (!cur || cost < cur.cost || (cost === cur.cost && nextHop < cur.nextHop)) dist.set(e.peerId, { nextHop, cost });
      }
    }
    dist.delete(self);
    this.paths = dist;

    for (const id of this.db.keys()) {
      if (id === self || dist.has(id)) this.unreachableSince.delete(id);
      else if (!this.unreachableSince.has(id)) this.unreachableSince.set(id, now);
    }

    const reachable = [this.own, ...[...dist.keys()].flatMap((id) => this.db.get(id) ?? [])];
    const cost = (id: number): number => dist.get(id)?.cost ?? 0;
    this.ipv4Map = new Map();
    for (const r of [...reachable].sort((a, b) => cost(b.peerId) - cost(a.peerId) || b.peerId - a.peerId)) {
      if (r.ipv4 !== 0) this.ipv4Map.set(r.ipv4, r.peerId); // nearer (then lower id) wins: set last
    }
    this.ipv6Owners = reachable.flatMap((r) => (r.ipv6 ? [{ address: r.ipv6.address, peerId: r.peerId }] : []))
      .sort((a, b) => cost(a.peerId) - cost(b.peerId) || a.peerId - b.peerId);
    this.proxyRoutes = reachable.flatMap((r) => r.proxyCidrs.flatMap((c) => {
      const p = advertisedProxyPrefix(c);
      return p ? [{ net: p.net, mask: prefixMask(p.prefix), prefix: p.prefix, peerId: r.peerId }] : [];
    })).sort((a, b) => b.prefix - a.prefix || cost(a.peerId) - cost(b.peerId) || a.peerId - b.peerId);
  }
}
