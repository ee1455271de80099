/**
 * A prototype EasyTier member node, sans-IO: neighbour connections (conn.ts), peer RPC
 * (rpc-endpoint.ts) and route sync (route-state.ts) composed. It answers SyncRouteInfo, sends its
 * own view to each neighbour at once and every SYNC_INTERVAL_MS, answers every other service with
 * invalid_service, relays transit packets by least hops, and hands Data for us to the adapter.
 *
 * The seam for the peer layer: an adapter owns the sockets and one timer, and calls
 *   addConn(key, role, now) · input(key, pm, now) · connClosed(key, now) · handleTimeout(now)
 * then drains pollTransmit() → {key, pm} (frame and send on that link: `pm` starts after the
 * link's headroom, given to addConn), pollEvent(), pollTimeout().
 * easytier-core binds it to sockets in manager.ts (its default peer layer).
 */
import { EtPeerConn, type CloseReason, type EtConnTimers } from './conn.js';
import { EtRpcEndpoint } from './rpc-endpoint.js';
import { EtRouteState } from './route-state.js';
import { EtPacketType, RPC_ORIGIN_FORWARD_COUNTER, forwardInPlace, pastHopLimit, type PmHeader } from './pm.js';
import { OSPF_SERVICE, SYNC_ROUTE_INFO_METHOD, SYNC_ROUTE_TIMEOUT_MS, decodeSyncRouteInfoRequest, encodeSyncRouteInfoRequest, encodeSyncRouteInfoResponse, type RoutePeerInfo } from './route-msg.js';
import { invalidServiceResponse } from './rpc.js';
import type { EtCipher } from './cipher.js';
import type { LocalIdentity } from './handshake.js';
import type { SecureIdentity } from './secure-handshake.js';
import { SecureRelay } from './secure-relay.js';
import { randomBytes } from 'node:crypto';

/** EasyTier's initiator re-sends at least every 10 s; we send our view this often to each neighbour. */
export const SYNC_INTERVAL_MS = 5000;
/**
 * A receiver stamps an info with its own clock only when the version rises, and drops infos older
 * than 3660 s; EasyTier bumps its version hourly. We bump ours every half hour, to stay well clear.
 */
export const INFO_REFRESH_MS = 30 * 60_000;

export type EtNodeEvent =
  | { type: 'peer-up'; key: string; peerId: number }
  /** A link ended, or never came up (then peerId may be 0); the reason says why. */
  | { type: 'peer-down'; key: string; peerId: number; reason: CloseReason | 'underlay' }
  | { type: 'routes-changed' }
  /** Data (an IP packet) for us, opened; `key` is the link it arrived on. */
  | { type: 'data'; key: string; from: number; payload: Uint8Array }
  /** A kcp-sys packet for us (KcpSrc goes to our dst endpoint, KcpDst to our src endpoint), opened. */
  | { type: 'kcp'; key: string; packetType: number; from: number; payload: Uint8Array }
  /** Any other payload type the owner asked for (`deliverTypes`): QUIC proxy, tstier's carriers. Opened. */
  | { type: 'packet'; key: string; packetType: number; from: number; payload: Uint8Array };

export interface EtNodeOptions {
  me: LocalIdentity;
  cipher: EtCipher;
  /** Our RoutePeerInfo as first advertised (version 1); peerId must equal me.peerId. */
  info: RoutePeerInfo;
  now: number;
  /** Packet types besides Data and KcpSrc/KcpDst handed up as 'packet' events. */
  deliverTypes?: readonly number[];
  /** Packet types of others this node will not relay (no_relay_kcp / no_relay_quic); counted. */
  refuseRelay?: readonly number[];
  /** Secure mode: every link runs the Noise handshake and its own session (conn.ts). */
  secure?: SecureIdentity;
  /** Every link's liveness timers (default EasyTier's). */
  timers?: EtConnTimers;
}

interface Link {
  conn: EtPeerConn;
  /** Our session id toward this neighbour; a new link gets a new one, so the far end resends all. */
  sessionId: bigint;
  nextSyncAt: number;
}

export class EtNodeCore {
  readonly #me: LocalIdentity;
  readonly #cipher: EtCipher;
  readonly #secure: SecureIdentity | undefined;
  /** Secure mode: end-to-end sessions with nodes that are not neighbours. */
  readonly #relay: SecureRelay | undefined;
  /** The last time the core was handed, for sends that come without a clock. */
  #now: number;
  readonly #links = new Map<string, Link>();
  readonly routes: EtRouteState;
  readonly #rpc: EtRpcEndpoint;
  #tx: { key: string; pm: Buffer }[] = [];
  #events: EtNodeEvent[] = [];
  #refreshAt: number;
  readonly #deliver: ReadonlySet<number>;
  readonly #refuseRelay: ReadonlySet<number>;
  readonly #timers: EtConnTimers | undefined;
  /** Dropped packets by reason (RPC garbage, no route, hop limit, a type nobody here handles, a relay we refuse). */
  readonly #drops = { 'rpc-malformed': 0, 'no-route': 0, 'hop-limit': 0, unhandled: 0, 'relay-refused': 0 };
  /** Packets relayed for others. */
  forwarded = 0;
  /** What closed links had dropped (their conns are gone, their counts are not). */
  readonly #retiredConnDrops: Record<string, number> = {};

  constructor(o: EtNodeOptions) {
    this.#me = o.me;
    this.#cipher = o.cipher;
    this.#secure = o.secure;
    this.routes = new EtRouteState(o.info);
    this.#relay = o.secure ? new SecureRelay(o.secure, (id) => this.routes.route(id)?.info.noiseStaticPubkey) : undefined;
    this.#now = o.now;
    this.#rpc = new EtRpcEndpoint(o.me.peerId);
    this.#refreshAt = o.now + INFO_REFRESH_MS;
    this.#deliver = new Set(o.deliverTypes ?? []);
    this.#refuseRelay = new Set(o.refuseRelay ?? []);
    this.#timers = o.timers;
  }

  /** The connection behind a link key (for its peer id, state, RTT and drops), if the link is open. */
  conn(key: string): EtPeerConn | undefined {
    return this.#links.get(key)?.conn;
  }

  /** Closes one link from our side (its underlay is going away); reported as peer-down 'local'. */
  closeConn(key: string, now: number): void {
    this.#links.get(key)?.conn.close();
    this.#drain(key, now);
  }

  /** Our own RoutePeerInfo changed (features, addresses): bump its version and tell every neighbour. */
  updateMyInfo(change: Partial<RoutePeerInfo>, now: number): void {
    this.routes.updateMyInfo(change);
    for (const l of this.#links.values()) l.nextSyncAt = now;
  }

  /**
   * A new underlay link (after its Syn/Sack or TCP connect); the dialler's handshake is queued at
   * once. Every packet for this link leaves `headroom` free bytes first, for the underlay's header.
   */
  addConn(key: string, role: 'dialler' | 'listener', now: number, headroom = 0): void {
    const conn = new EtPeerConn({ role, me: this.#me, cipher: this.#cipher, now, headroom, timers: this.#timers, ...(this.#secure ? { secure: this.#secure } : {}) });
    this.#links.set(key, { conn, sessionId: randomBytes(8).readBigUInt64LE(0), nextSyncAt: now });
    this.#drain(key, now);
  }

  input(key: string, pm: Uint8Array, now: number): void {
    this.#now = now;
    const link = this.#links.get(key);
    if (!link) return;
    link.conn.input(pm, now);
    this.#drain(key, now);
  }

  /** The underlay ended (EOF, error): the neighbour is gone from this link. */
  connClosed(key: string, now: number): void {
    const link = this.#links.get(key);
    if (!link) return;
    this.#retire(key);
    if (link.conn.state === 'up') this.#events.push({ type: 'peer-down', key, peerId: link.conn.peerId, reason: 'underlay' });
    link.conn.close(); // lets go of what the conn holds (a secure-mode session); its events are not read again
    this.#neighboursChanged(now);
  }

  handleTimeout(now: number): void {
    this.#now = now;
    if (this.#relay) for (const pm of this.#relay.handleTimeout(now)) this.#sendRaw(pm);
    if (now >= this.#refreshAt) {
      this.#refreshAt = now + INFO_REFRESH_MS;
      this.routes.updateMyInfo({});
      for (const l of this.#links.values()) l.nextSyncAt = now;
    }
    for (const [key, link] of this.#links) {
      link.conn.handleTimeout(now);
      if (link.conn.state === 'up' && now >= link.nextSyncAt) this.#sendSync(key, link, now);
      this.#drain(key, now);
    }
    this.#rpc.expire(now);
    this.routes.expire(now);
  }

  pollTimeout(): number {
    let t = Math.min(this.#refreshAt, this.#relay?.pollTimeout() ?? Infinity);
    for (const link of this.#links.values()) {
      const c = link.conn.pollTimeout();
      if (c !== null && c < t) t = c;
      if (link.conn.state === 'up' && link.nextSyncAt < t) t = link.nextSyncAt;
    }
    return t;
  }

  /** Every packet dropped so far, by reason: this node's and its links' (conn.ts), closed links included. */
  drops(): Record<string, number> {
    const out: Record<string, number> = { ...this.#drops, 'route-info-refused': this.routes.refusedInfos, ...this.#retiredConnDrops, ...this.#relay?.drops };
    for (const link of this.#links.values()) for (const [k, v] of Object.entries(link.conn.drops)) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  pollTransmit(): { key: string; pm: Buffer } | undefined {
    return this.#tx.shift();
  }

  pollEvent(): EtNodeEvent | undefined {
    return this.#events.shift();
  }

  /** Sends an IP packet to the node `to` via its next hop; false if there is no route. */
  sendData(to: number, ipPacket: Uint8Array): boolean {
    return this.sendPayload(EtPacketType.Data, to, ipPacket);
  }

  /** Sends a Data, KcpSrc/KcpDst or QuicSrc/QuicDst payload to `to` (sealed, routed); false if no route. */
  sendPayload(type: number, to: number, payload: Uint8Array): boolean {
    const key = this.#keyToward(to);
    if (key === undefined) return false;
    this.#sendOn(key, type, to, payload);
    return true;
  }

  /** Sends on link `key` toward `to`: on the link itself, or in a relay session when `to` is further away. */
  #sendOn(key: string, type: number, to: number, payload: Uint8Array, forwardCounter?: number): void {
    const conn = this.#links.get(key)!.conn;
    if (this.#relay && to !== conn.peerId) {
      for (const pm of this.#relay.send(type, to, payload, forwardCounter ?? 1, this.#now)) conn.sendBuilt(pm);
    } else conn.send(type, to, payload, forwardCounter);
    this.#collect(key);
  }

  /** Sends a packet built elsewhere (a relay handshake) toward its destination; dropped if there is no route. */
  #sendRaw(pm: Uint8Array): void {
    const key = this.#keyToward(pm[4]! | (pm[5]! << 8) | (pm[6]! << 16) | (pm[7]! << 24));
    if (key === undefined) {
      this.#drops['no-route']++;
      return;
    }
    this.#links.get(key)!.conn.sendBuilt(pm);
    this.#collect(key);
  }

  /** Moves one link's output and events up, reacting to what its conn reported. */
  #drain(key: string, now: number): void {
    const link = this.#links.get(key);
    if (!link) return;
    for (let ev = link.conn.pollEvent(); ev; ev = link.conn.pollEvent()) {
      if (ev.type === 'up') {
        this.#events.push({ type: 'peer-up', key, peerId: ev.peerId });
        this.#neighboursChanged(now);
        this.#sendSync(key, link, now);
      } else if (ev.type === 'closed') {
        this.#collect(key);
        this.#retire(key);
        this.#events.push({ type: 'peer-down', key, peerId: link.conn.peerId, reason: ev.reason });
        this.#neighboursChanged(now);
        return;
      } else if (ev.header.to !== this.#me.peerId) {
        this.#forward(ev.raw);
      } else if (this.#relay && (ev.header.from !== link.conn.peerId || ev.header.type === EtPacketType.RelayHandshake || ev.header.type === EtPacketType.RelayHandshakeAck)) {
        const r = this.#relay.input(ev.header, ev.payload, now);
        if ('send' in r) for (const pm of r.send) this.#sendRaw(pm);
        else if ('payload' in r) this.#onPacket(key, link, ev.header, r.payload, now);
      } else {
        this.#onPacket(key, link, ev.header, ev.payload, now);
      }
    }
    this.#collect(key);
  }

  #collect(key: string): void {
    const conn = this.#links.get(key)?.conn;
    if (!conn) return;
    for (let pm = conn.pollTransmit(); pm; pm = conn.pollTransmit()) this.#tx.push({ key, pm });
  }

  #onPacket(key: string, link: Link, header: PmHeader, payload: Uint8Array, now: number): void {
    if (header.type === EtPacketType.Data) {
      this.#events.push({ type: 'data', key, from: header.from, payload });
      return;
    }
    if (header.type === EtPacketType.KcpSrc || header.type === EtPacketType.KcpDst) {
      this.#events.push({ type: 'kcp', key, packetType: header.type, from: header.from, payload });
      return;
    }
    if (this.#deliver.has(header.type)) {
      this.#events.push({ type: 'packet', key, packetType: header.type, from: header.from, payload });
      return;
    }
    if (header.type !== EtPacketType.RpcReq && header.type !== EtPacketType.RpcResp) {
      this.#drops.unhandled++;
      return;
    }
    let got;
    try {
      got = this.#rpc.input(payload, now);
    } catch {
      this.#drops['rpc-malformed']++;
      return;
    }
    if (!got) return;
    // Responses carry the neighbour's session id, which EasyTier uses to decide between a delta and
    // a full resend; this prototype always sends its full view, so it needs nothing from them.
    if (got.kind === 'response') return;
    const d = got.call.descriptor;
    if (d.serviceName === OSPF_SERVICE && d.methodIndex === SYNC_ROUTE_INFO_METHOD) {
      let sync;
      try {
        sync = decodeSyncRouteInfoRequest(got.request.request);
      } catch {
        this.#drops['rpc-malformed']++;
        return;
      }
      const changed = this.routes.merge(sync, now);
      const resp = encodeSyncRouteInfoResponse({ isInitiator: true, sessionId: link.sessionId });
      this.#reply(got.call.fromPeer, this.#rpc.respond(got.call, { response: resp }));
      if (changed) {
        this.#events.push({ type: 'routes-changed' });
        for (const [k, l] of this.#links) if (k !== key) l.nextSyncAt = now;
      }
      return;
    }
    this.#reply(got.call.fromPeer, this.#rpc.respond(got.call, invalidServiceResponse(d.serviceName)));
  }

  #reply(to: number, pieces: Uint8Array[]): void {
    const key = this.#keyToward(to);
    if (key === undefined) {
      this.#drops['no-route']++;
      return;
    }
    for (const p of pieces) this.#sendOn(key, EtPacketType.RpcResp, to, p, RPC_ORIGIN_FORWARD_COUNTER);
  }

  #sendSync(key: string, link: Link, now: number): void {
    const req = this.routes.syncRequestFor(link.conn.peerId, link.sessionId, true);
    const descriptor = { domainName: this.#me.networkName, protoName: OSPF_SERVICE, serviceName: OSPF_SERVICE, methodIndex: SYNC_ROUTE_INFO_METHOD };
    const { pieces } = this.#rpc.request(link.conn.peerId, descriptor, { request: encodeSyncRouteInfoRequest(req), timeoutMs: SYNC_ROUTE_TIMEOUT_MS });
    for (const p of pieces) link.conn.send(EtPacketType.RpcReq, link.conn.peerId, p, RPC_ORIGIN_FORWARD_COUNTER);
    link.nextSyncAt = now + SYNC_INTERVAL_MS;
    this.#collect(key);
  }

  #forward(raw: Uint8Array): void {
    if (this.#refuseRelay.has(raw[8]!)) {
      this.#drops['relay-refused']++;
      return;
    }
    if (pastHopLimit(raw)) {
      this.#drops['hop-limit']++;
      return;
    }
    const key = this.#keyToward(raw[4]! | (raw[5]! << 8) | (raw[6]! << 16) | (raw[7]! << 24));
    if (key === undefined) {
      this.#drops['no-route']++;
      return;
    }
    // The one copy of a relayed packet: out of the receive buffer, into the next link's send buffer.
    const conn = this.#links.get(key)!.conn;
    const pm = Buffer.allocUnsafe(conn.headroom + raw.length);
    pm.set(raw, conn.headroom);
    forwardInPlace(pm, conn.headroom);
    conn.sendRaw(pm);
    this.forwarded++;
    this.#collect(key);
  }

  /**
   * The link toward `peerId`: a direct one if up, else the one to its next hop. Of several links to
   * that neighbour the newest carries the traffic: after a reconnect the older one may be dead
   * already (its end unnoticed) and would swallow packets until its pings time out.
   */
  #keyToward(peerId: number): string | undefined {
    const want = peerId >>> 0;
    const hop = this.routes.route(want)?.nextHop ?? want;
    let found: string | undefined;
    for (const [key, link] of this.#links) if (link.conn.state === 'up' && link.conn.peerId === hop) found = key;
    return found;
  }

  #retire(key: string): void {
    const link = this.#links.get(key);
    if (!link) return;
    this.#links.delete(key);
    for (const [k, v] of Object.entries(link.conn.drops)) this.#retiredConnDrops[k] = (this.#retiredConnDrops[k] ?? 0) + v;
  }

  #neighboursChanged(now: number): void {
    const ids: number[] = [];
    for (const link of this.#links.values()) if (link.conn.state === 'up') ids.push(link.conn.peerId);
    this.routes.setNeighbours(ids, now);
    this.#events.push({ type: 'routes-changed' });
    for (const l of this.#links.values()) l.nextSyncAt = now;
  }
}
