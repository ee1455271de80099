/**
 * The peer layer on EasyTier 2.6's wire (easytier-core's default): the sans-IO member node
 * (node-core.ts: handshake, encryption, peer RPC, route sync, relaying, ping) bound to tstier's
 * underlays (../underlay/: udp:// with EasyTier's Syn/Sack, tcp:// whose framing is EasyTier's
 * already, faketcp:// with tstier's framing) and to one timer. It offers the node the PeerLayer
 * seam (../peer-layer.ts) that forwarding, the TCP proxy and the CLI use.
 *
 * Packet types: Data is EasyTier's. tstier's KCP/QUIC carriers register EasyTier's KcpSrc/...
 * numbers, which on this wire carry kcp-sys and quinn-plaintext; they travel as tstier's private
 * types instead (pm.ts TstierPacketType) and only toward tstier nodes (route-view.ts). EasyTier's
 * own KcpSrc/KcpDst and QuicSrc/QuicDst are the kcp-sys / QUIC proxy's: `onEasyTierPacket` and
 * `sendEasyTier` are that carrier's hook.
 */
import { EventEmitter } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import type { Logger } from '../../log.js';
import type { PeerConnView } from '../../rpc/source.js';
import { nowMs } from '../../io/clock.js';
import { PassScheduler } from '../../io/pass-scheduler.js';
import { backoffDelay, DEFAULT_BACKOFF, logFailedAttempt, type BackoffOptions } from '../backoff.js';
import { advertisedProxyPrefix, u32ToIpv4 } from '../ipv4-prefix.js';
import type { PacketHandler, PeerLayer, PeerLayerStats } from '../peer-layer.js';
import { Feature } from '../route-record.js';
import type { LocalNode } from '../route-record.js';
import { parseUnderlayUri, type LinkEnd, type UnderlayLink, type UnderlayListener } from '../underlay/link.js';
import { dialTcp, TcpListener, tcpQueueDrops } from '../underlay/tcp.js';
import { dialUdp, UdpListener } from '../underlay/udp.js';
import { udpDropTotals } from '../underlay/udp-drops.js';
import { dialFakeTcp, FakeTcpUnderlayListener } from '../underlay/faketcp.js';
import { PacketType, PM_HEADER_LEN } from '../wire.js';
import { etCipher, type EtAlgorithm } from './cipher.js';
import { secretDigest } from './identity.js';
import type { EtConnTimers } from './conn.js';
import { EtNodeCore } from './node-core.js';
import { EtPacketType, TstierPacketType, splitPm } from './pm.js';
import { decodeHandshake, judgeHandshake, type LocalIdentity } from './handshake.js';
import { EtRouteView } from './route-view.js';
import { isNoiseType, type SecureIdentity } from './secure-handshake.js';
import { SecureSessionStore } from './secure-session-store.js';
import { parseSecureAlgorithm } from './secure-datagram.js';
import { x25519FromPrivate, x25519Generate } from './secure-noise.js';
import { TstierError } from '../../errors.js';

/** The version string other nodes show for us (EasyTier shows its own as "2.6.4-<commit>"). */
export const ET_SOFTWARE_VERSION = '2.6.4-tstier';
/** A handshake is about 100 bytes; an inbound stream announcing more in its first frame is closed unread. */
const MAX_FIRST_PACKET = PM_HEADER_LEN + 512;

/** tstier's carrier types and the private types they travel as on this wire. */
const CARRIER_TYPES = new Map<number, number>([
  [PacketType.KcpSrc, TstierPacketType.KcpSrc], [PacketType.KcpDst, TstierPacketType.KcpDst],
  [PacketType.QuicSrc, TstierPacketType.QuicSrc], [PacketType.QuicDst, TstierPacketType.QuicDst],
]);
const wireType = (type: number): number => CARRIER_TYPES.get(type) ?? type;

/**
 * Why an inbound link's first packet is refused, or null to take the link: it must be a
 * well-formed HandShake of our network with our digest (handshake.ts judgeHandshake).
 */
function firstPacketVerdict(me: LocalIdentity, secure: boolean, pm: Uint8Array): { reason: string; peerId: number } | null {
  const p = splitPm(pm);
  // In secure mode the Noise handshake judges the peer (its proof comes in msg3); a plain
  // handshake there, or a Noise one here, is the other mode: say so, as EasyTier refuses it.
  if (p && (isNoiseType(p.header.type) || p.header.type === EtPacketType.HandShake) && isNoiseType(p.header.type) !== secure) {
    return { reason: reasonText('secure-mode-mismatch'), peerId: p.header.from };
  }
  if (secure && p?.header.type === EtPacketType.NoiseHandshakeMsg1) return null;
  if (!p || p.header.type !== EtPacketType.HandShake || p.header.len !== p.body.length) return { reason: 'not a handshake', peerId: 0 };
  let theirs;
  try {
    theirs = decodeHandshake(p.body);
  } catch {
    return { reason: 'malformed handshake', peerId: 0 };
  }
  const v = judgeHandshake(me, theirs);
  return v.ok ? null : { reason: reasonText(v.reason), peerId: theirs.myPeerId };
}

/** A conn's close reason in the words the node logs ("handshake timeout", "peer silent"). */
function reasonText(reason: string): string {
  if (reason === 'secure-mode-mismatch') return 'secure mode mismatch: both ends must run --secure-mode, or neither';
  return reason === 'ping-timeout' ? 'peer silent' : reason.replace(/-/g, ' ');
}

export interface EtPeerManagerOptions {
  networkName: string;
  networkSecret: string;
  local: LocalNode;
  /** 'none' is --disable-encryption. */
  encryption: EtAlgorithm;
  /** EasyTier's secure mode (--secure-mode): Noise handshakes and per-link sessions; needs an AEAD. */
  secureMode?: boolean;
  /** Secure mode's raw X25519 static private key (from the config); absent: a fresh one. */
  secureStaticKey?: Uint8Array;
  /** Test-only: secure sessions change key epoch this often (default secure-datagram.ts's ten minutes). */
  secureEpochMs?: number;
  log: Logger;
  backoff?: BackoffOptions;
  /** Each link's liveness timers (default EasyTier's: a ping a second, five lost close it). */
  timers?: EtConnTimers;
}

interface Link {
  key: string;
  underlay: UnderlayLink;
  connector: Connector | undefined;
  peerId: number;
  up: boolean;
  establishedAt: number;
  lastHeard: number;
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
}

interface Connector {
  uri: string;
  attempt: number;
  lastError: string;
  timer: NodeJS.Timeout | undefined;
  /** The peer id last reached here: a different one means the node there restarted. */
  lastPeer: number;
}

export class EtPeerManager extends EventEmitter implements PeerLayer {
  readonly peerId = randomInt(1, 2 ** 32 - 1);
  readonly routes: EtRouteView;
  /** What this adapter counts; the core's own drops are added in `stats`. */
  private readonly counts = { noRoute: 0, unhandled: 0, rejectedLinks: 0, sessionFaults: 0 };
  readonly core: EtNodeCore;
  private readonly me: LocalIdentity;
  private readonly secure: SecureIdentity | undefined;
  private readonly log: Logger;
  private readonly backoff: BackoffOptions;
  private readonly links = new Map<string, Link>();
  /** Up links per direct peer: the first carries nothing special, the core picks by route. */
  private readonly direct = new Map<number, Set<Link>>();
  private readonly handlers = new Map<number, PacketHandler>();
  private readonly etHandlers = new Map<number, PacketHandler>();
  private readonly openListeners: UnderlayListener[] = [];
  private readonly connectors = new Set<Connector>();
  /** One timer for the core's earliest deadline (pings, handshakes, route sync), re-armed after each service. */
  private readonly wakes = new PassScheduler(() => this.onTick(), nowMs);
  private nextKey = 1;
  private closed = false;

  constructor(opts: EtPeerManagerOptions) {
    super();
    this.log = opts.log;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    const l = opts.local;
    const f = l.features;
    const now = nowMs();
    this.me = { peerId: this.peerId, networkName: opts.networkName, digest: secretDigest(opts.networkName, opts.networkSecret) };
    this.secure = opts.secureMode ? secureIdentity(this.me, opts) : undefined;
    this.core = new EtNodeCore({
      ...(this.secure ? { secure: this.secure } : {}),
      me: this.me,
      cipher: etCipher(opts.encryption, opts.networkSecret),
      now,
      info: {
        peerId: this.peerId, instId: randomBytes(16), ...(l.ipv4 ? { ipv4: l.ipv4 } : {}), networkLength: l.prefix || 24,
        ...(l.ipv6 ? { ipv6: l.ipv6 } : {}),
        // EasyTier announces the range others route to: the mapped one of "real->mapped".
        proxyCidrs: l.proxyCidrs.flatMap((c) => {
          const p = advertisedProxyPrefix(c);
          return p ? [`${u32ToIpv4(p.net)}/${p.prefix}`] : [];
        }),
        hostname: l.hostname, udpNatType: 0, lastUpdate: { seconds: BigInt(Math.floor(Date.now() / 1000)), nanos: 0 },
        version: 1, easytierVersion: ET_SOFTWARE_VERSION,
        // kcp_input / quic_input mean kcp-sys and quinn-plaintext to EasyTier: not ours (yet), so
        // an EasyTier node sends us plain TCP; tstier nodes read our carriers from tstierFeatures.
        featureFlag: { kcpInput: false, quicInput: false, noRelayKcp: (f & Feature.NoRelayKcp) !== 0, noRelayQuic: (f & Feature.NoRelayQuic) !== 0 },
        peerRouteId: randomBytes(8).readBigUInt64LE(0), tstierFeatures: f,
        ...(this.secure ? { noiseStaticPubkey: this.secure.staticKey.publicKey } : {}),
      },
      deliverTypes: [...CARRIER_TYPES.values(), EtPacketType.QuicSrc, EtPacketType.QuicDst],
      refuseRelay: [
        ...(f & Feature.NoRelayKcp ? [EtPacketType.KcpSrc, EtPacketType.KcpDst, TstierPacketType.KcpSrc, TstierPacketType.KcpDst] : []),
        ...(f & Feature.NoRelayQuic ? [EtPacketType.QuicSrc, EtPacketType.QuicDst, TstierPacketType.QuicSrc, TstierPacketType.QuicDst] : []),
      ],
      timers: opts.timers,
    });
    this.routes = new EtRouteView(this.core.routes);
    this.wakes.arm(this.core.pollTimeout());
  }

  async listen(uri: string): Promise<string> {
    const addr = parseUnderlayUri(uri, 'listeners');
    const accept = (link: UnderlayLink, first: Buffer): void => this.accept(link, first);
    const l = addr.scheme === 'udp' ? await UdpListener.open(uri, addr, accept)
      : addr.scheme === 'faketcp' ? await FakeTcpUnderlayListener.open(uri, addr, accept)
      : await TcpListener.open(uri, addr, accept, { log: this.log, maxFirstPacket: MAX_FIRST_PACKET });
    if (this.closed) await l.close();
    else this.openListeners.push(l);
    return l.boundUri;
  }

  connect(uri: string): void {
    parseUnderlayUri(uri, 'peers');
    const c: Connector = { uri, attempt: 0, lastError: '', timer: undefined, lastPeer: 0 };
    this.connectors.add(c);
    void this.dial(c);
  }

  onPacket(type: number, handler: PacketHandler): void {
    this.handlers.set(wireType(type), handler);
  }

  sendTo(peerId: number, type: number, payload: Uint8Array): boolean {
    return this.send(peerId, wireType(type), payload);
  }

  /**
   * The kcp-sys / QUIC proxy's hook: receives EasyTier's own KcpSrc, KcpDst, QuicSrc or QuicDst
   * packets addressed to us (opened), from any node.
   */
  onEasyTierPacket(type: number, handler: PacketHandler): void {
    this.etHandlers.set(type, handler);
  }

  /** Sends one of EasyTier's own proxy packet types (sealed, routed); false without a route. */
  sendEasyTier(peerId: number, type: number, payload: Uint8Array): boolean {
    return this.send(peerId, type, payload);
  }

  /**
   * What we advertise in EasyTier's own flags: kcp_input (we take kcp-sys flows) and quic_input (we
   * take quinn-plaintext flows). Both start false; the kcp-sys carrier turns kcp_input on once it is
   * registered, and every neighbour hears of it at once (a new info version).
   */
  advertiseEasyTierInput(input: { kcpInput: boolean; quicInput: boolean }): void {
    const flags = { ...this.core.routes.myInfo.featureFlag, ...input };
    this.core.updateMyInfo({ featureFlag: flags }, nowMs());
    this.service();
  }

  peerConns(): PeerConnView[] {
    const rows: PeerConnView[] = [];
    for (const l of this.links.values()) {
      if (!l.up) continue;
      const conn = this.core.conn(l.key);
      const drops = conn ? Object.values(conn.drops).reduce((a, b) => a + b, 0) : 0;
      rows.push({ peerId: l.peerId, remoteUri: l.underlay.remoteUri, outbound: l.underlay.outbound, rttMs: conn?.rttMs ?? 0,
        txBytes: l.txBytes, rxBytes: l.rxBytes, txPackets: l.txPackets, rxPackets: l.rxPackets, establishedAt: l.establishedAt,
        dropped: drops, forged: conn?.drops['decrypt-failed'] ?? 0, replayed: conn?.drops.replayed ?? 0 });
    }
    return rows;
  }

  /** The underlays' counts are the process's (their sockets and links count them): one node per process. */
  get stats(): PeerLayerStats {
    const d = this.core.drops();
    const udp = udpDropTotals();
    return { forwarded: this.core.forwarded, noRoute: this.counts.noRoute + (d['no-route'] ?? 0), hopLimit: d['hop-limit'] ?? 0,
      unhandled: this.counts.unhandled + (d['unhandled'] ?? 0), rejectedLinks: this.counts.rejectedLinks,
      relayRefused: d['relay-refused'] ?? 0, routeInfoRefused: d['route-info-refused'] ?? 0, sessionFaults: this.counts.sessionFaults,
      udpSendDrops: udp.sendBacklog, tcpSendDrops: tcpQueueDrops(), udpReceiveDrops: udp.receive };
  }

  /** Every packet the EasyTier layer dropped, by reason (links closed since included). */
  drops(): Record<string, number> {
    return this.core.drops();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakes.close();
    for (const c of this.connectors) clearTimeout(c.timer);
    for (const l of [...this.links.values()]) l.underlay.close();
    await Promise.all(this.openListeners.map((l) => l.close()));
  }

  /** The data path: a send queues one packet and no event, and moves no deadline, so it only transmits. */
  private send(peerId: number, type: number, payload: Uint8Array): boolean {
    const ok = this.core.sendPayload(type, peerId, payload);
    if (!ok) this.counts.noRoute++;
    this.transmit();
    return ok;
  }

  private async dial(c: Connector): Promise<void> {
    c.timer = undefined;
    if (this.closed) return;
    const addr = parseUnderlayUri(c.uri, 'peers');
    let link: UnderlayLink;
    try {
      link = addr.scheme === 'udp' ? await dialUdp(c.uri, addr, { syn: true })
        : addr.scheme === 'faketcp' ? await dialFakeTcp(c.uri, addr) : await dialTcp(c.uri, addr);
    } catch (e) {
      const cause = `dial: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
      this.failed(c, cause, 'peer dial failed; retrying with backoff', 'peer dial still failing; retrying with backoff',
        (attempt) => ({ remote: c.uri, attempt, err: e }));
      return;
    }
    if (this.closed) return link.close();
    this.attach(link, 'dialler', c);
  }

  /**
   * One failed attempt of `c`, logged (so an unreachable peer costs a few
   * lines; see logFailedAttempt), then a redial.
   */
  private failed(c: Connector, cause: string, first: string, again: string, fields: (attempt: number) => Record<string, unknown>): void {
    logFailedAttempt(this.log, c, cause, first, again, fields(c.attempt + 1));
    this.redial(c);
  }

  private redial(c: Connector): void {
    if (this.closed || c.timer) return;
    const delay = backoffDelay(c.attempt++, Math.random(), this.backoff);
    c.timer = setTimeout(() => void this.dial(c), delay);
  }

  /**
   * A new inbound link. Its first packet must be a handshake with our name and our digest: anything
   * else is refused without a word and without state (stricter than EasyTier, which answers a wrong
   * digest with zeros, takes a zero digest by name alone, keeps garbage open for its 5 s handshake
   * wait, and adopts another network's node as a foreign network): a stranger learns nothing, not
   * even our peer id, and a flood of them costs nothing.
   */
  private accept(underlay: UnderlayLink, first: Buffer): void {
    if (this.closed) return underlay.refuse();
    const refused = firstPacketVerdict(this.me, this.secure !== undefined, first);
    if (refused) {
      this.counts.rejectedLinks++;
      this.log.warn('peer handshake refused', { peer_id: refused.peerId, remote: underlay.remoteUri, reason: refused.reason });
      return underlay.refuse();
    }
    const link = this.attach(underlay, 'listener', undefined);
    this.input(link, first);
  }

  private attach(underlay: UnderlayLink, role: 'dialler' | 'listener', connector: Connector | undefined): Link {
    const link: Link = { key: `l${this.nextKey++}`, underlay, connector, peerId: 0, up: false, establishedAt: 0, lastHeard: nowMs(),
      txBytes: 0, rxBytes: 0, txPackets: 0, rxPackets: 0 };
    this.links.set(link.key, link);
    underlay.onPacket = (pm) => this.input(link, pm);
    underlay.onClose = (reason, how) => this.ended(link, reason, how);
    this.core.addConn(link.key, role, nowMs(), underlay.headroom);
    this.service();
    return link;
  }

  private input(link: Link, pm: Buffer): void {
    const now = nowMs();
    link.rxBytes += pm.length;
    link.rxPackets++;
    link.lastHeard = now;
    try {
      this.core.input(link.key, pm, now);
    } catch (e) {
      this.fault(link.key, e);
    }
    this.service();
  }

  /**
   * Handling one link's packet threw. That is a bug, but one peer's packet must not take the
   * process (and every other peer) down with it: that link is closed (its connector dials again)
   * and the fault is logged with its stack and counted (tstier_peer_session_faults_total).
   */
  private fault(key: string, e: unknown): void {
    this.counts.sessionFaults++;
    const link = this.links.get(key);
    this.log.error('bug: handling one peer session threw; closing that session', {
      peer_id: link?.peerId ?? 0, remote: link?.underlay.remoteUri ?? '', err: e, stack: e instanceof Error ? e.stack : String(e) });
    this.core.closeConn(key, nowMs());
  }

  /** The underlay ended. `how` says whether the far end's process is known to be gone (../underlay/link.ts). */
  private ended(link: Link, reason: string, how: LinkEnd): void {
    if (!this.links.has(link.key)) return;
    this.links.delete(link.key);
    this.core.connClosed(link.key, nowMs());
    this.service();
    this.linkDown(link, reason, how);
  }

  private linkDown(link: Link, reason: string, how: LinkEnd): void {
    const c = link.connector;
    if (link.up) {
      link.up = false;
      const set = this.direct.get(link.peerId);
      set?.delete(link);
      if (set && set.size === 0) {
        this.direct.delete(link.peerId);
        this.log.info('peer down', { peer_id: link.peerId, remote: link.underlay.remoteUri, reason });
        this.emit('peer-down', link.peerId, Math.max(0, nowMs() - link.lastHeard));
        if (how === 'closed' || how === 'refused') this.peerGone(link.peerId, reason);
      }
    } else if (c) {
      this.failed(c, `handshake: ${reason}`, 'peer handshake failed', 'peer handshake still failing',
        (attempt) => ({ remote: link.underlay.remoteUri, reason, attempt }));
      return;
    }
    if (c) this.redial(c);
  }

  /** Sends what the core queued and acts on its events. */
  private service(): void {
    const core = this.core;
    // Transmit first: a link the events below close may still have its last word queued.
    this.transmit();
    let routesChanged = false;
    for (let ev = core.pollEvent(); ev; ev = core.pollEvent()) {
      switch (ev.type) {
        case 'data':
          this.deliver(this.handlers, EtPacketType.Data, ev);
          break;
        case 'kcp':
          this.deliver(this.etHandlers, ev.packetType, ev);
          break;
        case 'packet':
          this.deliver(CARRIER_TYPES.has(ev.packetType) ? this.etHandlers : this.handlers, ev.packetType, ev);
          break;
        case 'routes-changed':
          routesChanged = true;
          break;
        case 'peer-up':
          this.peerUp(ev.key, ev.peerId);
          break;
        case 'peer-down':
          this.onCoreDown(ev.key, ev.peerId, ev.reason);
          break;
      }
    }
    this.transmit();
    this.wakes.arm(core.pollTimeout());
    if (routesChanged) {
      this.routes.rebuild();
      this.emit('routes');
    }
  }

  private transmit(): void {
    for (let out = this.core.pollTransmit(); out; out = this.core.pollTransmit()) {
      const link = this.links.get(out.key);
      if (!link) continue;
      // Built with this link's headroom: the underlay writes its header there, no copy.
      link.txBytes += out.pm.length - link.underlay.headroom;
      link.txPackets++;
      link.underlay.send(out.pm);
    }
  }

  private deliver(table: Map<number, PacketHandler>, type: number, ev: { key: string; from: number; payload: Uint8Array }): void {
    const h = table.get(type);
    if (!h) {
      this.counts.unhandled++;
      return;
    }
    const p = ev.payload;
    try {
      h(ev.from, p instanceof Buffer ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    } catch (e) {
      // Closing the link queues its peer-down, which this same pass of service() reads.
      this.fault(ev.key, e);
    }
  }

  private peerUp(key: string, peerId: number): void {
    const link = this.links.get(key);
    if (!link) return;
    link.up = true;
    link.peerId = peerId;
    link.establishedAt = Date.now();
    const set = this.direct.get(peerId) ?? new Set<Link>();
    set.add(link);
    this.direct.set(peerId, set);
    const c = link.connector;
    if (c) {
      if (c.lastPeer !== 0 && c.lastPeer !== peerId && !this.direct.has(c.lastPeer)) this.peerGone(c.lastPeer, 'restarted with a new peer id');
      c.lastPeer = peerId;
      c.attempt = 0;
      c.lastError = '';
    }
    if (set.size === 1) {
      this.log.info('peer up', { peer_id: peerId, remote: link.underlay.remoteUri, outbound: link.underlay.outbound });
      this.emit('peer-up', peerId);
    }
  }

  /** The core closed a link (a refused handshake, ping loss): close its underlay too. */
  private onCoreDown(key: string, peerId: number, reason: string): void {
    const link = this.links.get(key);
    if (!link || reason === 'underlay') return;
    if (!link.up && !link.connector) {
      this.counts.rejectedLinks++;
      this.log.warn('peer handshake refused', { peer_id: peerId, remote: link.underlay.remoteUri, reason: reasonText(reason) });
    }
    this.links.delete(key);
    link.underlay.onClose = () => {};
    // Let the reply (a listener's handshake) leave before the underlay goes.
    setImmediate(() => link.underlay.close());
    this.linkDown(link, reasonText(reason), 'failed');
  }

  private peerGone(peer: number, reason: string): void {
    this.log.info('peer gone', { peer_id: peer, reason });
    this.emit('peer-gone', peer);
  }

  /** The timer fired: run what is due (service() arms it again for the next deadline). */
  private onTick(): void {
    if (this.closed) return;
    const now = nowMs();
    if (this.core.pollTimeout() <= now) this.core.handleTimeout(now);
    this.service();
  }
}

/**
 * This node's secure-mode identity: the configured Noise static key, or a fresh one per start
 * (EasyTier pins it per session only, so either works toward EasyTier).
 */
function secureIdentity(me: LocalIdentity, opts: EtPeerManagerOptions): SecureIdentity {
  const algorithm = parseSecureAlgorithm(opts.encryption);
  if (!algorithm) throw new TstierError('TSTIER_E_BAD_CONFIG', `secure-mode: needs an AEAD, not ${opts.encryption}`);
  return { ...me, networkSecret: opts.networkSecret, staticKey: opts.secureStaticKey ? x25519FromPrivate(opts.secureStaticKey) : x25519Generate(), algorithm, sessions: new SecureSessionStore(opts.secureEpochMs) };
}
