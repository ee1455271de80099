/**
 * What one node knows of an EasyTier network, sans-IO: every node's RoutePeerInfo (newest version
 * wins), every node's neighbour set (newest conn version wins), and the routes that follow (least
 * hops, breadth-first from us). Feeds and is fed by SyncRouteInfo (route-msg.ts).
 *
 * Bounded: at most MAX_NODES nodes are kept; nodes unreachable for UNREACHABLE_EXPIRY_MS are
 * forgotten, as EasyTier forgets them after 90 s.
 */
import { buildConnBitmap, prefixLengthsValid, type RoutePeerInfo, type SyncRouteInfoIn, type SyncRouteInfoRequest } from './route-msg.js';

export const MAX_NODES = 4096;
export const UNREACHABLE_EXPIRY_MS = 90_000;

export interface EtRoute {
  peerId: number;
  hostname?: string;
  ipv4?: number;
  networkLength: number;
  /** Hops: 1 = direct. */
  cost: number;
  nextHop: number;
  easytierVersion: string;
  info: RoutePeerInfo;
}

interface NodeEntry {
  info?: RoutePeerInfo;
  conn?: { version: number; neighbours: number[] };
  /** Monotonic ms when the node was last seen reachable. */
  reachableAt: number;
}

export class EtRouteState {
  readonly myPeerId: number;
  #myInfo: RoutePeerInfo;
  #myConnVersion = 1;
  #myNeighbours: number[] = [];
  readonly #nodes = new Map<number, NodeEntry>();
  #routes = new Map<number, EtRoute>();
  /** Infos dropped by `merge` because a prefix length is impossible (route-msg.ts prefixLengthsValid). */
  refusedInfos = 0;

  constructor(myInfo: RoutePeerInfo) {
    this.myPeerId = myInfo.peerId;
    this.#myInfo = myInfo;
  }

  get myInfo(): RoutePeerInfo {
    return this.#myInfo;
  }

  /** Replaces our own info (a changed field, or the hourly refresh): the version goes up by one. */
  updateMyInfo(change: Partial<RoutePeerInfo>): void {
    const { raw: _stale, ...rest } = this.#myInfo;
    this.#myInfo = { ...rest, ...change, version: this.#myInfo.version + 1 };
  }

  /** Our live neighbours changed: bump our conn version and recompute routes. */
  setNeighbours(ids: number[], now: number): void {
    const sorted = [...new Set(ids)].sort((a, b) => a - b);
    if (sorted.join() === this.#myNeighbours.join()) return;
    this.#myNeighbours = sorted;
    this.#myConnVersion++;
    for (const id of sorted) this.#entry(id, now);
    this.#recompute(now);
  }

  /** Merges a neighbour's sync; true if anything we hold changed (then others should hear of it). */
  merge(sync: SyncRouteInfoIn, now: number): boolean {
    let changed = false;
    for (const info of sync.peerInfos) {
      // Our own id from elsewhere is someone else's (or our previous life's): #entry never adopts it.
      if (info.version < 1) continue;
      // EasyTier takes any u32 here; a /33 or /129 would turn into a nonsense mask downstream.
      if (!prefixLengthsValid(info)) {
        this.refusedInfos++;
        continue;
      }
      const e = this.#entry(info.peerId, now);
      if (!e || (e.info && e.info.version >= info.version)) continue;
      e.info = info;
      changed = true;
    }
    for (const [id, conn] of sync.conns) {
      const e = this.#entry(id, now);
      if (!e || (e.conn && e.conn.version >= conn.version)) continue;
      e.conn = conn;
      for (const n of conn.neighbours) this.#entry(n, now);
      changed = true;
    }
    if (changed) this.#recompute(now);
    return changed;
  }

  /** The full view for one neighbour: every reachable node's info but its own, and all conn info. */
  syncRequestFor(neighbour: number, sessionId: bigint, isInitiator: boolean): SyncRouteInfoRequest {
    const infos = [this.#myInfo];
    for (const [id, e] of this.#nodes) if (e.info && id !== neighbour && this.#routes.has(id)) infos.push(e.info);
    const versions = [{ peerId: this.myPeerId, version: this.#myConnVersion }];
    const conns = new Map<number, readonly number[]>([[this.myPeerId, this.#myNeighbours]]);
    for (const [id, e] of this.#nodes) {
      versions.push({ peerId: id, version: e.conn?.version ?? 0 });
      if (e.conn) conns.set(id, e.conn.neighbours);
    }
    return { myPeerId: this.myPeerId, mySessionId: sessionId, isInitiator, peerInfos: infos, connBitmap: buildConnBitmap(versions, conns) };
  }

  /** Reachable nodes with an info, by peer id. */
  routes(): EtRoute[] {
    return [...this.#routes.values()];
  }

  route(peerId: number): EtRoute | undefined {
    return this.#routes.get(peerId);
  }

  /** Forgets nodes unreachable for too long. */
  expire(now: number): void {
    let removed = false;
    for (const [id, e] of this.#nodes) {
      if (now - e.reachableAt >= UNREACHABLE_EXPIRY_MS && !this.#routes.has(id)) {
        this.#nodes.delete(id);
        removed = true;
      }
    }
    if (removed) this.#recompute(now);
  }

  /** The entry for another node, created on first mention; never one for us. */
  #entry(id: number, now: number): NodeEntry | undefined {
    if (id === this.myPeerId) return undefined;
    let e = this.#nodes.get(id);
    if (!e) {
      if (this.#nodes.size >= MAX_NODES) return undefined;
      e = { reachableAt: now };
      this.#nodes.set(id, e);
    }
    return e;
  }

  /** Least-hop routes: breadth-first over "u lists v as a neighbour" edges, from us. */
  #recompute(now: number): void {
    const routes = new Map<number, EtRoute>();
    const firstHop = new Map<number, number>();
    const depth = new Map<number, number>([[this.myPeerId, 0]]);
    const queue: number[] = [];
    for (const n of this.#myNeighbours) {
      if (depth.has(n)) continue;
      depth.set(n, 1);
      firstHop.set(n, n);
      queue.push(n);
    }
    for (let i = 0; i < queue.length; i++) {
      const u = queue[i]!;
      for (const v of this.#nodes.get(u)?.conn?.neighbours ?? []) {
        if (depth.has(v)) continue;
        depth.set(v, depth.get(u)! + 1);
        firstHop.set(v, firstHop.get(u)!);
        queue.push(v);
      }
    }
    for (const [id, hops] of depth) {
      const e = this.#nodes.get(id);
      if (id === this.myPeerId || !e) continue;
      e.reachableAt = now;
      if (!e.info) continue;
      routes.set(id, {
        peerId: id,
        ...(e.info.hostname !== undefined ? { hostname: e.info.hostname } : {}),
        ...(e.info.ipv4 !== undefined ? { ipv4: e.info.ipv4 } : {}),
        networkLength: e.info.networkLength || 24,
        cost: hops,
        nextHop: firstHop.get(id)!,
        easytierVersion: e.info.easytierVersion,
        info: e.info,
      });
    }
    this.#routes = routes;
  }
}
