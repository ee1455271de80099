/**
 * The peer layer at work: listeners and connectors (underlay/), one PeerSession per link, the
 * RouteTable fed by the sessions that are up, and forwarding by peer id. This is the adapter that
 * binds the sans-IO cores to sockets and one timer; the decisions live in the cores.
 *
 * The seam for other modules (the KCP/QUIC proxy): `onPacket(type, handler)` receives packets of a type
 * addressed to this node; `sendTo(peerId, type, payload)` delivers one to any reachable node, via
 * relays when needed; `routes` answers who has which address and which features.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { LogFields, Logger } from '../log.js';
import type { PeerConnView } from '../rpc/source.js';
import { nowMs, wallMsAt } from '../io/clock.js';
import { PassScheduler } from '../io/pass-scheduler.js';
import type { PacketHandler, PeerLayer, PeerLayerStats } from './peer-layer.js';
export type { PacketHandler, PeerLayerStats } from './peer-layer.js';
import { backoffDelay, DEFAULT_BACKOFF, logFailedAttempt, type BackoffOptions } from './backoff.js';
import { derivePsk, HandshakeResponder, INIT_LEN } from './handshake.js';
import { Feature } from './route-record.js';
import { DEFAULT_ROUTE_OPTIONS, RouteTable, type LocalNode, type RouteTableOptions } from './route-table.js';
import { DEFAULT_TIMERS, PeerSession, type SessionTimers } from './session.js';
import { parseUnderlayUri, type LinkEnd, type UnderlayLink, type UnderlayListener } from './underlay/link.js';
import { dialTcp, TcpListener } from './underlay/tcp.js';
import { dialUdp, UdpListener } from './underlay/udp.js';
import { dialFakeTcp, FakeTcpUnderlayListener } from './underlay/faketcp.js';
import { MAX_FORWARD_COUNTER, PacketType, PM_HEADER_LEN, PmFlag, pmFrom, pmTo, pmType } from './wire.js';

/** The stack of an unexpected exception, on one line (the logger escapes newlines). */
function stackOf(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}


/** An inbound link's first packet must be a handshake init; a stream announcing more is closed unread. */
const MAX_FIRST_PACKET = PM_HEADER_LEN + INIT_LEN;

export interface PeerManagerOptions {
  networkName: string;
  networkSecret: string;
  local: Omit<LocalNode, 'peerId'>;
  log: Logger;
  timers?: SessionTimers;
  route?: RouteTableOptions;
  backoff?: BackoffOptions;
  /** How often a connector replaces its session with a fresh handshake (new keys). */
  rekeyMs?: number;
}

/**
 * Fresh session keys this often (with up to 10% jitter): a key that leaks exposes minutes of
 * traffic, not a link's whole life. Make-before-break, so routes never see it.
 */
export const DEFAULT_REKEY_MS = 5 * 60_000;


interface Conn {
  link: UnderlayLink;
  session: PeerSession;
  up: boolean;
  dead: boolean;
  connector: Connector | undefined;
  /**
   * A rekey's session this one replaces, kept up until the peer has sent on this one: till then the
   * peer may not have taken this session up (a starved process, a delayed packet) and still sends on
   * the old link, which must not answer with a closed port, the sign of a dead peer.
   */
  predecessor: Conn | undefined;
  /** Set on a peer's pending session when its last live one ended as if the peer were gone (why). */
  goneUnlessUp: string | undefined;
}

interface Connector {
  uri: string;
  attempt: number;
  /** The cause of the last failed dial, so a new cause is a warning and a repeat is not. */
  lastError: string;
  timer: NodeJS.Timeout | undefined;
  /** The session that carries this connection; a rekey's new session replaces it once up. */
  current: Conn | undefined;
  rekeyAt: number;
  rekeying: boolean;
  /** The peer id of the node this connector last reached: a different one there means it restarted. */
  lastPeer: number;
}

/**
 * Events: 'routes' (the route table may have changed), 'peer-up' (peerId), 'peer-down' (peerId,
 * silentForMs: how long nothing had come from it), the last two once per direct peer, not per
 * connection; 'peer-gone' (peerId): that node's process is gone — its last session ended by its
 * goodbye, a TCP close or a refused UDP port, or a connector found a new peer id where it was (a
 * restart) — so whatever we held for it (proxied flows) is dead, unlike after a mere outage.
 */
export class PeerManager extends EventEmitter implements PeerLayer {
  /** Random per process start, never 0 (0 means "unknown" in headers). */
  readonly peerId = randomInt(1, 2 ** 32 - 1);
  readonly routes: RouteTable;
  readonly stats: PeerLayerStats = { forwarded: 0, noRoute: 0, hopLimit: 0, unhandled: 0, rejectedLinks: 0,
    relayRefused: 0, rekeys: 0, sessionFaults: 0 };
  private readonly psk: Buffer;
  readonly responder: HandshakeResponder;
  private readonly log: Logger;
  private readonly timers: SessionTimers;
  private readonly backoff: BackoffOptions;
  private readonly rekeyMs: number;
  private readonly conns = new Set<Conn>();
  /** Live sessions per direct peer, newest first; the first one carries our traffic. */
  private readonly direct = new Map<number, Conn[]>();
  private readonly handlers = new Map<number, PacketHandler>();
  private readonly openListeners: UnderlayListener[] = [];
  private readonly connectors = new Set<Connector>();
  /** One timer for every session, connector and the route table, armed for the earliest deadline. */
  private readonly wakes = new PassScheduler(() => this.onTick(), nowMs);
  private closed = false;
  private announcedGeneration = -1;
  /** Packet types we advertise we do not relay, and so do not (no_relay_kcp / no_relay_quic). */
  private readonly refusedRelay: Set<number>;

  constructor(opts: PeerManagerOptions) {
    super();
    this.log = opts.log;
    this.timers = opts.timers ?? DEFAULT_TIMERS;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.rekeyMs = opts.rekeyMs ?? DEFAULT_REKEY_MS;
    this.psk = derivePsk(opts.networkName, opts.networkSecret);
    const f = opts.local.features;
    this.refusedRelay = new Set([
      ...(f & Feature.NoRelayKcp ? [PacketType.KcpSrc, PacketType.KcpDst] : []),
      ...(f & Feature.NoRelayQuic ? [PacketType.QuicSrc, PacketType.QuicDst] : []),
    ]);
    this.responder = new HandshakeResponder(this.psk, this.peerId);
    this.routes = new RouteTable({ ...opts.local, peerId: this.peerId }, nowMs(), opts.route ?? DEFAULT_ROUTE_OPTIONS);
    this.wakes.arm(this.routes.pollTimeout());
  }

  /**
   * Opens a listener and returns the URI it is bound to; rejects with TSTIER_E_ADDR_IN_USE
   * (naming the listener) if the port is taken.
   */
  async listen(uri: string): Promise<string> {
    const addr = parseUnderlayUri(uri, 'listeners');
    const accept = (link: UnderlayLink, first: Buffer): void => this.acceptLink(link, first);
    const l = addr.scheme === 'udp' ? await UdpListener.open(uri, addr, accept)
      : addr.scheme === 'faketcp' ? await FakeTcpUnderlayListener.open(uri, addr, accept)
      : await TcpListener.open(uri, addr, accept, { log: this.log, maxFirstPacket: MAX_FIRST_PACKET });
    if (this.closed) await l.close();
    else this.openListeners.push(l);
    return l.boundUri;
  }

  /** Keeps a connection to `uri` up for the node's lifetime, redialling with backoff. */
  connect(uri: string): void {
    parseUnderlayUri(uri, 'peers');
    const c: Connector = { uri, attempt: 0, lastError: '', timer: undefined, current: undefined, rekeyAt: Infinity,
      rekeying: false, lastPeer: 0 };
    this.connectors.add(c);
    void this.dial(c);
  }

  /** Registers the receiver of one packet type (one receiver per type). */
  onPacket(type: number, handler: PacketHandler): void {
    this.handlers.set(type, handler);
  }

  /** Sends a packet of `type` to any reachable node. False if there is no route right now. */
  sendTo(peerId: number, type: number, payload: Uint8Array, flags = 0): boolean {
    return this.sendVia(peerId, this.peerId, type, flags, 1, payload);
  }

  /** One row per live session. */
  peerConns(): PeerConnView[] {
    const rows: PeerConnView[] = [];
    for (const c of this.conns) {
      if (!c.up) continue;
      const s = c.session.stats;
      rows.push({ peerId: c.session.peerId, remoteUri: c.link.remoteUri, outbound: c.link.outbound, rttMs: s.rttMs,
        txBytes: s.txBytes, rxBytes: s.rxBytes, txPackets: s.txPackets, rxPackets: s.rxPackets,
        establishedAt: wallMsAt(s.establishedAt), dropped: s.dropped, forged: s.forged, replayed: s.replayed });
    }
    return rows;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakes.close();
    for (const c of this.connectors) clearTimeout(c.timer);
    for (const c of [...this.conns]) c.link.close();
    await Promise.all(this.openListeners.map((l) => l.close()));
  }

  private async dial(c: Connector): Promise<void> {
    c.timer = undefined;
    if (this.closed) return;
    const addr = parseUnderlayUri(c.uri, 'peers');
    let link: UnderlayLink;
    try {
      link = addr.scheme === 'udp' ? await dialUdp(c.uri, addr)
        : addr.scheme === 'faketcp' ? await dialFakeTcp(c.uri, addr) : await dialTcp(c.uri, addr);
    } catch (e) {
      return this.dialFailed(c, e);
    }
    if (this.closed) return link.close();
    this.attach(link, PeerSession.initiate(this.psk, this.peerId, link.headroom, nowMs(), this.timers, Date.now()), c);
  }

  /** A dial failed before any packet left (a name that does not resolve, no route to the address). */
  private dialFailed(c: Connector, e: unknown): void {
    const cause = `dial: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    this.noteFailure(c, cause, 'peer dial failed; retrying with backoff', 'peer dial still failing; retrying with backoff',
      { remote: c.uri, attempt: c.attempt + 1, err: e });
    this.connectorAttemptFailed(c);
  }

  private noteFailure(c: Connector, cause: string, first: string, again: string, fields: LogFields): void {
    logFailedAttempt(this.log, c, cause, first, again, fields);
  }

  /** A dial or handshake of `c` failed: a rekey just tries again later, anything else redials. */
  private connectorAttemptFailed(c: Connector): void {
    if (c.current && !c.current.dead) {
      c.rekeying = false;
      c.rekeyAt = nowMs() + this.rekeyMs / 10;
      this.wakes.arm(c.rekeyAt);
      return;
    }
    this.redial(c);
  }

  private redial(c: Connector): void {
    if (this.closed || c.timer) return;
    const delay = backoffDelay(c.attempt++, Math.random(), this.backoff);
    c.timer = setTimeout(() => void this.dial(c), delay);
  }

  private acceptLink(link: UnderlayLink, first: Buffer): void {
    let session: PeerSession | null = null;
    try {
      session = this.closed ? null : PeerSession.accept(this.responder, this.peerId, link.headroom, first, nowMs(), this.timers,
        Date.now());
    } catch (e) {
      this.log.error('bug: handshake from one link threw; refusing that link', { remote: link.remoteUri, err: e, stack: stackOf(e) });
    }
    if (!session) {
      this.stats.rejectedLinks++;
      link.refuse();
      return;
    }
    this.attach(link, session, undefined);
  }

  private attach(link: UnderlayLink, session: PeerSession, connector: Connector | undefined): void {
    const conn: Conn = { link, session, up: false, dead: false, connector, predecessor: undefined, goneUnlessUp: undefined };
    this.conns.add(conn);
    link.onPacket = (pkt) => this.onLinkPacket(conn, pkt);
    link.onClose = (reason, how) => this.isolated(conn, () => this.drop(conn, reason, how));
    this.isolated(conn, () => this.flush(conn));
  }

  private onLinkPacket(conn: Conn, pkt: Buffer): void {
    this.isolated(conn, () => {
      const payload = conn.session.input(pkt, nowMs());
      this.flush(conn);
      if (conn.predecessor && conn.session.stats.rxPackets > 0) this.retire(conn);
      if (!payload) return;
      if (pmTo(pkt) === this.peerId) this.deliver(conn, pkt, payload);
      else this.forward(pkt, payload);
    });
  }

  /**
   * Runs one connection's work. An exception there is a bug, but one peer's packet must not take
   * the process (and every other peer) down with it: that session is closed, logged with the stack,
   * and its connector (if any) dials again.
   */
  private isolated(conn: Conn, work: () => void): void {
    try {
      work();
    } catch (e) {
      this.stats.sessionFaults++;
      this.log.error('bug: handling one peer session threw; closing that session', {
        peer_id: conn.session.peerId, remote: conn.link.remoteUri, err: e, stack: stackOf(e) });
      if (conn.dead) return;
      try {
        this.drop(conn, 'internal error', 'local');
      } finally {
        conn.link.close();
      }
    }
  }

  private deliver(conn: Conn, header: Buffer, payload: Buffer): void {
    const type = pmType(header);
    if (type === PacketType.RouteSync) {
      // Route records come only from the direct peer at the other end of this session.
      if (pmFrom(header) !== conn.session.peerId) return;
      this.routes.input(conn.session.peerId, payload, nowMs());
      return this.flushRoutes();
    }
    const handler = this.handlers.get(type);
    if (handler) handler(pmFrom(header), payload);
    else this.stats.unhandled++;
  }

  private forward(header: Buffer, payload: Buffer): void {
    const counter = header[10]! + 1;
    if (counter > MAX_FORWARD_COUNTER) {
      this.stats.hopLimit++;
      return;
    }
    if (this.refusedRelay.has(pmType(header))) {
      this.stats.relayRefused++;
      return;
    }
    if (this.sendVia(pmTo(header), pmFrom(header), pmType(header), header[9]! & ~PmFlag.Encrypted, counter, payload)) {
      this.stats.forwarded++;
    }
  }

  private sendVia(to: number, from: number, type: number, flags: number, counter: number, payload: Uint8Array): boolean {
    const hop = this.routes.nextHop(to);
    const conn = hop === undefined ? undefined : this.direct.get(hop)?.[0];
    const out = conn?.session.seal(from, to, type, flags, counter, payload);
    if (!out) {
      this.stats.noRoute++;
      return false;
    }
    conn!.link.send(out);
    return true;
  }

  /** Sends what the session queued and acts on its events. */
  private flush(conn: Conn): void {
    const s = conn.session;
    for (let p = s.pollTransmit(); p; p = s.pollTransmit()) conn.link.send(p);
    this.wakes.arm(s.pollTimeout());
    for (let ev = s.pollEvent(); ev; ev = s.pollEvent()) {
      if (ev.type === 'down') {
        this.drop(conn, ev.reason, 'failed');
        conn.link.close();
      } else if (ev.peerId === this.peerId) {
        this.log.warn('connected to ourselves; dropping that link', { remote: conn.link.remoteUri });
        conn.link.close();
      } else {
        this.sessionUp(conn);
      }
    }
  }

  private sessionUp(conn: Conn): void {
    const peer = conn.session.peerId;
    conn.up = true;
    conn.goneUnlessUp = undefined;
    const c = conn.connector;
    const replaced = c?.current && !c.current.dead ? c.current : undefined;
    // The newest session carries the traffic: after a reconnect the older one may be dead already (its
    // goodbye lost) and would swallow packets until its dead timer fires. A rekey's old session is
    // alive, and carries on until the peer has shown it holds the new one (retire).
    const list = this.direct.get(peer) ?? [];
    if (replaced?.up && list[0] === replaced) list.splice(1, 0, conn);
    else list.unshift(conn);
    this.direct.set(peer, list);
    const firstToPeer = list.length === 1;
    if (c) {
      const before = c.lastPeer;
      c.lastPeer = peer;
      // The node at this address restarted: what we held for its previous life is gone.
      if (before !== 0 && before !== peer && !this.direct.has(before)) this.peerGone(before, 'restarted with a new peer id');
      c.attempt = 0;
      c.lastError = '';
      c.current = conn;
      c.rekeying = false;
      c.rekeyAt = nowMs() + this.rekeyMs * (0.9 + 0.1 * Math.random());
      this.wakes.arm(c.rekeyAt);
    }
    if (firstToPeer) {
      this.log.info('peer up', { peer_id: peer, remote: conn.link.remoteUri, outbound: conn.link.outbound });
      this.routes.linkUp(peer, nowMs());
      this.flushRoutes();
      this.emit('peer-up', peer);
    }
    if (replaced) {
      conn.predecessor = replaced;
      if (conn.session.stats.rxPackets > 0) this.retire(conn);
    }
  }

  /**
   * Make before break: the peer has sent on `conn`, so it holds the new session; the old one goes,
   * and `conn` carries the traffic.
   */
  private retire(conn: Conn): void {
    const old = conn.predecessor!;
    conn.predecessor = undefined;
    if (old.dead) return;
    const list = this.direct.get(conn.session.peerId);
    const at = list?.indexOf(conn) ?? -1;
    if (at > 0) list!.unshift(...list!.splice(at, 1));
    this.stats.rekeys++;
    this.log.debug('rekeyed', { peer_id: conn.session.peerId, remote: conn.link.remoteUri });
    this.drop(old, 'replaced by a fresh session', 'local');
    old.link.close();
  }

  /** A session of `peer` still being taken up (a rekey's, answered by us): whether the peer lives is up to it. */
  private pendingSession(peer: number): Conn | undefined {
    for (const c of this.conns) if (!c.up && !c.dead && c.session.peerId === peer) return c;
    return undefined;
  }

  private drop(conn: Conn, reason: string, how: LinkEnd): void {
    if (conn.dead) return;
    conn.dead = true;
    conn.session.close(reason);
    this.conns.delete(conn);
    // A wrong network secret looks exactly like this from the dialling side: no answer at all.
    if (!conn.up && conn.connector) {
      this.noteFailure(conn.connector, `handshake: ${reason}`, 'peer handshake failed', 'peer handshake still failing',
        { remote: conn.link.remoteUri, reason, attempt: conn.connector.attempt + 1 });
    }
    if (conn.up) {
      const peer = conn.session.peerId;
      const list = (this.direct.get(peer) ?? []).filter((c) => c !== conn);
      if (list.length > 0) this.direct.set(peer, list);
      else {
        this.direct.delete(peer);
        const now = nowMs();
        this.log.info('peer down', { peer_id: peer, remote: conn.link.remoteUri, reason });
        this.routes.linkDown(peer, now);
        this.flushRoutes();
        this.emit('peer-down', peer, Math.max(0, now - conn.session.lastHeard));
        // Only the last session's end says it: a rekey's old session may end with a goodbye or, its
        // goodbye lost, a refused port, while the new one carries on or is still being taken up (a
        // peer that rekeys without waiting for us): then the verdict waits for that one.
        const next = how === 'closed' || how === 'refused' ? this.pendingSession(peer) : undefined;
        if (next) next.goneUnlessUp = reason;
        else if (how === 'closed' || how === 'refused') this.peerGone(peer, reason);
      }
    }
    if (!conn.up && conn.goneUnlessUp !== undefined) this.peerGone(conn.session.peerId, conn.goneUnlessUp);
    const c = conn.connector;
    if (!c || (conn.up && c.current !== conn)) return; // a replaced session: its successor carries on
    // A rekey's session failed before the peer took it up: the old one carries on, and rekeys later.
    if (c.current === conn) c.current = conn.predecessor && !conn.predecessor.dead ? conn.predecessor : undefined;
    this.connectorAttemptFailed(c);
  }

  private peerGone(peer: number, reason: string): void {
    this.log.info('peer gone', { peer_id: peer, reason });
    this.emit('peer-gone', peer);
  }

  /** Sends what the route table queued; called after everything that can change the table. */
  private flushRoutes(): void {
    for (let m = this.routes.pollTransmit(); m; m = this.routes.pollTransmit()) {
      const conn = this.direct.get(m.to)?.[0];
      const out = conn?.session.seal(this.peerId, m.to, PacketType.RouteSync, 0, 1, m.payload);
      if (out) conn!.link.send(out);
    }
    this.wakes.arm(this.routes.pollTimeout());
    if (this.routes.generation !== this.announcedGeneration) {
      this.announcedGeneration = this.routes.generation;
      this.emit('routes');
    }
  }

  /** Runs whatever is due, then arms the one timer for the earliest deadline left. */
  private onTick(): void {
    const now = nowMs();
    let next = Infinity;
    for (const c of this.connectors) {
      if (c.rekeying || !c.current?.up || this.closed) continue;
      if (now < c.rekeyAt) next = Math.min(next, c.rekeyAt);
      else {
        c.rekeying = true;
        void this.dial(c);
      }
    }
    for (const conn of [...this.conns]) {
      if (conn.session.pollTimeout() <= now) {
        this.isolated(conn, () => {
          conn.session.handleTimeout(now);
          this.flush(conn);
        });
      }
      next = Math.min(next, conn.session.pollTimeout());
    }
    if (this.routes.pollTimeout() <= now) {
      this.routes.handleTimeout(now);
      this.flushRoutes();
    }
    this.wakes.arm(Math.min(next, this.routes.pollTimeout()));
  }
}
