/**
 * One easytier-core node: the TUN device, the peer layer (listeners, connectors, sessions, route
 * sync, relaying) and the forwarding between them. It is also what the control plane reads.
 *
 * Outbound: an IP packet from the TUN goes first to the registered interceptors (the TCP proxy
 * claims its flows there), then by destination — a node's virtual address, else the longest
 * proxied CIDR — to that node as a Data packet. Unroutable packets get an ICMP host-unreachable
 * (rate-limited) and are dropped. Inbound: a Data packet addressed to one of our addresses or
 * proxied ranges is written to the TUN; anything else a peer sends us is dropped.
 *
 * IPv6 (`--ipv6`) is routed by exact virtual address only: no proxied IPv6 ranges, and an
 * unroutable IPv6 packet is dropped without an ICMPv6 error.
 */
import type { NodeConfig } from './config/node-config.js';
import { createLogger, type Logger } from './log.js';
import { collectMetrics } from './metrics/collect.js';
import type { Family } from './metrics/family.js';
import { MetricsHttp } from './metrics/http.js';
import { renderPrometheus } from './metrics/prometheus.js';
import { Fronts } from './node/fronts.js';
import { DuplicateAddressWatch } from './node/duplicate-address.js';
import { KernelRoutes } from './node/kernel-routes.js';
import { hostUnreachableFor } from './node/unreachable.js';
import { advertisedProxyPrefix, ipv4Destination, u32ToIpv4 } from './peer/ipv4-prefix.js';
import type { PeerLayer } from './peer/peer-layer.js';
import { createPeerLayer, type PeerLayerOptions } from './node/peer-layer.js';
import { peerAddon } from './peer/native.js';
import { formatIpAddress } from './packet/address.js';
import { ipVersion } from './packet/flow-key.js';
import { type NodeAddresses, resolveAddresses } from './config/addresses.js';
import { Feature, type Ipv6Net } from './peer/route-record.js';
import { PacketType } from './peer/wire.js';
import type { ControlPlaneSource, NodeInfoView, PeerConnView, PeerFeatures, PortForwardControl, ProxyEntryView,
  RouteView } from './rpc/source.js';
import { TunDevice } from './tun/tun-device.js';
import { TcpProxy } from './proxy/tcp-proxy.js';
import { transportNow } from './proxy/transport-now.js';
import { nowMs } from './io/clock.js';

export const NODE_VERSION = '0.1.0';

/** Claims an outbound IP packet (return true) before normal forwarding; the packet is valid only during the call. */
export type OutboundInterceptor = (packet: Buffer) => boolean;

export interface NodeStartOptions {
  log?: Logger;
  /** Peer-layer timers and tick, for tests that want faster failure detection. */
  peer?: Pick<PeerLayerOptions, 'timers' | 'backoff'>;
}

export interface NodeStats {
  tunRxPackets: number;
  tunTxPackets: number;
  /** Outbound packets with no reachable owner; each may have earned an ICMP unreachable. */
  noRoute: number;
  /** Packets that are neither IPv4 nor IPv6, or inbound packets not addressed to us. */
  dropped: number;
  /** TUN packets dropped because handling them threw (a bug; logged at the 1st, 2nd, 4th, ...). */
  tunPacketFaults: number;
}

/** ICMP errors per second at most, so a scan of dead addresses cannot make us flood the TUN. */
const UNREACHABLE_PER_SECOND = 100;
/** Offset of the destination address in an IPv6 header. */
const IPV6_DST = 24;

function featureBits(cfg: NodeConfig): number {
  return (cfg.disableKcpInput ? 0 : Feature.KcpInput) | (cfg.disableQuicInput ? 0 : Feature.QuicInput)
    | (cfg.disableRelayKcp ? Feature.NoRelayKcp : 0) | (cfg.disableRelayQuic ? Feature.NoRelayQuic : 0)
    | Feature.KcpFec | Feature.KcpBundle;
}

export function featuresView(bits: number): PeerFeatures {
  return { kcpInput: (bits & Feature.KcpInput) !== 0, quicInput: (bits & Feature.QuicInput) !== 0,
    noRelayKcp: (bits & Feature.NoRelayKcp) !== 0, noRelayQuic: (bits & Feature.NoRelayQuic) !== 0 };
}

export class Node implements ControlPlaneSource {
  readonly stats: NodeStats = { tunRxPackets: 0, tunTxPackets: 0, noRoute: 0, dropped: 0, tunPacketFaults: 0 };
  /** The listeners as bound (a configured port 0 shows its real port here). */
  readonly listening: string[] = [];
  private tun: TunDevice | undefined;
  private proxy: TcpProxy | undefined;
  private fronts: Fronts | undefined;
  private metricsHttp: MetricsHttp | undefined;
  private kernelRoutes: KernelRoutes | undefined;
  private readonly interceptors: OutboundInterceptor[] = [];
  private readonly offloadInterceptors: OutboundInterceptor[] = [];
  private readonly inboundInterceptors: OutboundInterceptor[] = [];
  private readonly myIpv4: number;
  /** Our virtual IPv6 address (16 bytes), or null without --ipv6. */
  private readonly myIpv6: Uint8Array | null;
  /** The config's addresses and prefixes, resolved once. */
  readonly addresses: NodeAddresses;
  private unreachableBudget = UNREACHABLE_PER_SECOND;
  private budgetSecond = 0;
  private closed = false;

  private constructor(readonly config: NodeConfig, addresses: NodeAddresses, readonly peer: PeerLayer,
    private readonly log: Logger) {
    this.addresses = addresses;
    this.myIpv4 = addresses.ipv4?.u32 ?? 0;
    this.myIpv6 = addresses.ipv6?.bytes ?? null;
  }

  static async start(cfg: NodeConfig, opts: NodeStartOptions = {}): Promise<Node> {
    const log = opts.log ?? createLogger('node');
    const addresses = resolveAddresses(cfg);
    const ipv4 = addresses.ipv4?.u32 ?? 0;
    const ipv6: Ipv6Net | undefined = addresses.ipv6 ? { address: addresses.ipv6.bytes, prefix: addresses.ipv6.prefix } : undefined;
    const peer = createPeerLayer(cfg, {
      networkName: cfg.networkName, networkSecret: cfg.networkSecret, log: createLogger('peer'), ...opts.peer,
      local: { hostname: cfg.hostname, ipv4, prefix: cfg.ipv4?.prefix ?? 0,
        proxyCidrs: cfg.proxyNetworks.map((p) => (p.mappedCidr ? `${p.cidr}->${p.mappedCidr}` : p.cidr)),
        features: featureBits(cfg), ...(ipv6 ? { ipv6 } : {}) },
    });
    // Loaded now, not on the first packet: a broken addon is a start-up error naming its file.
    peerAddon();
    const node = new Node(cfg, addresses, peer, log);
    if (cfg.ipv6 && !cfg.ipv4 && !cfg.noTun) log.warn('--ipv6 without -i: no TUN is opened, so the address is only advertised');
    try {
      for (const uri of cfg.listeners) node.listening.push(await peer.listen(uri));
      if (!cfg.noTun && cfg.ipv4) node.openTun();
      node.proxy = await TcpProxy.start(node, createLogger('proxy'));
      node.fronts = await Fronts.start(node, node.proxy, createLogger('fronts'));
      if (cfg.metricsListen) node.metricsHttp = await MetricsHttp.start(cfg.metricsListen, () => renderPrometheus(node.metrics()), log);
    } catch (e) {
      await node.close();
      throw e;
    }
    peer.onPacket(PacketType.Data, (_from, payload) => node.fromPeer(payload));
    const duplicates = new DuplicateAddressWatch(peer.peerId, ipv4, node.myIpv6, log);
    peer.on('routes', () => {
      duplicates.check(peer.routes.routes());
      void node.syncKernelRoutes();
    });
    for (const uri of cfg.peers) peer.connect(uri);
    log.info(`node ready peer_id=${peer.peerId} ipv4=${cfg.ipv4 ? `${cfg.ipv4.address}/${cfg.ipv4.prefix}` : '-'}`
      + ` ipv6=${cfg.ipv6 ? `${cfg.ipv6.address}/${cfg.ipv6.prefix}` : '-'}`
      + ` tun=${node.tun?.name ?? '-'}`, { listeners: cfg.listeners.join(','), peers: cfg.peers.join(',') });
    return node;
  }

  /** Interceptors run in registration order; the first to return true owns the packet. */
  addInterceptor(fn: OutboundInterceptor): void {
    this.interceptors.push(fn);
  }

  /**
   * Claims a TCP super-packet read from the TUN (docs/tun.md, "Offloads") before it is cut into
   * ordinary packets for the other interceptors; the claimer writes it back with writeToTun(p, true).
   */
  addOffloadInterceptor(fn: OutboundInterceptor): void {
    this.offloadInterceptors.push(fn);
  }

  /**
   * Claims a Data packet from a peer (return true) before it is written to the TUN; the subnet proxy
   * terminates TCP to our proxied CIDRs here. The packet is valid only during the call.
   */
  addInboundInterceptor(fn: OutboundInterceptor): void {
    this.inboundInterceptors.push(fn);
  }

  get tunName(): string | undefined {
    return this.tun?.name;
  }

  /**
   * Hands a packet to the local kernel (e.g. a proxy's synthesized reply). False without a TUN.
   * `whole`: the packet is a super-packet an offload interceptor claimed, written back as read.
   */
  writeToTun(packet: Uint8Array, whole = false): boolean {
    if (!this.tun || this.tun.closed) return false;
    this.stats.tunTxPackets++;
    return whole ? this.tun.writeWhole(packet as Buffer) : this.tun.write(packet);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.metricsHttp?.close();
    this.fronts?.close();
    this.proxy?.close();
    this.tun?.close();
    await this.peer.close();
  }

  nodeInfo(): NodeInfoView {
    const c = this.config;
    return {
      peerId: this.peer.peerId, instanceName: c.instanceName, hostname: c.hostname, networkName: c.networkName,
      ipv4: c.ipv4 ? `${c.ipv4.address}/${c.ipv4.prefix}` : '',
      ipv6: this.myIpv6 && c.ipv6 ? `${formatIpAddress(this.myIpv6)}/${c.ipv6.prefix}` : '',
      proxyCidrs: c.proxyNetworks.map((p) => (p.mappedCidr ? `${p.cidr}->${p.mappedCidr}` : p.cidr)),
      listeners: [...c.listeners], features: featuresView(featureBits(c)), version: NODE_VERSION, rpcPortal: c.rpcPortal,
      kcpSettings: this.proxy?.kcpSettings ?? '',
    };
  }

  peers(): PeerConnView[] {
    const routes = this.peer.routes;
    return this.peer.peerConns().map((p) => ({ ...p, hostname: routes.record(p.peerId)?.hostname ?? '',
      version: routes.record(p.peerId)?.softwareVersion ?? '', ...this.tcpTransport(p.peerId) }));
  }

  routes(): RouteView[] {
    return this.peer.routes.routes().map(({ record: r, nextHop, cost }) => ({
      peerId: r.peerId, hostname: r.hostname, ipv4: r.ipv4 ? `${u32ToIpv4(r.ipv4)}/${r.prefix}` : '',
      ipv6: r.ipv6 ? `${formatIpAddress(r.ipv6.address)}/${r.ipv6.prefix}` : '',
      proxyCidrs: [...r.proxyCidrs], nextHopPeerId: nextHop, cost, features: featuresView(r.features), version: r.softwareVersion,
      ...this.tcpTransport(r.peerId),
    }));
  }

  /** The peer and route tables' "which transport, and why" for a new TCP flow to `peerId`. */
  private tcpTransport(peerId: number): { tcpTransport: string; tcpReason: string } {
    if (!this.proxy) return { tcpTransport: '', tcpReason: '' };
    const routes = this.peer.routes;
    const now = transportNow(this.proxy.socketCarriers(), peerId, routes.nextHop(peerId), (id) => routes.record(id)?.hostname);
    return { tcpTransport: now.transport, tcpReason: now.reason };
  }

  proxyEntries(): ProxyEntryView[] {
    return this.proxy?.entries() ?? [];
  }

  metrics(): Family[] {
    return collectMetrics({ peers: this.peer.peerConns(), peerLayer: this.peer.stats, node: this.stats, flows: this.proxy!.table,
      ...(this.tun ? { tun: this.tun.stats } : {}) });
  }

  portForwards(): PortForwardControl | undefined {
    return this.fronts?.portForwards.control();
  }

  private openTun(): void {
    const { address, prefix } = this.config.ipv4!;
    const v6 = this.config.ipv6;
    const tun = TunDevice.open({ name: this.config.devName || undefined, mtu: this.config.mtu, ipv4: `${address}/${prefix}`,
      ...(v6 ? { ipv6: `${v6.address}/${v6.prefix}` } : {}) });
    this.tun = tun;
    this.kernelRoutes = new KernelRoutes(tun.name, this.log);
    tun.on('error', (err: Error) => this.log.error('TUN failed; the node now only relays', { err }));
    if (tun.offloadRefused) this.log.warn(`TUN offloads refused by the kernel (${tun.offloadRefused}): every TCP segment crosses the TUN on its own`);
    tun.onPackets((batch, offsets, lengths, count, gso) => {
      for (let i = 0; i < count; i++) {
        // An exception here would leave the addon's callback and end the process: one bad
        // packet (a bug in whatever handled it) costs that packet, not the node.
        try {
          const pkt = batch.subarray(offsets[i]!, offsets[i]! + lengths[i]!);
          if (gso[i] === 0) this.fromTun(pkt);
          else this.fromTunOffloaded(tun, pkt, gso[i]!);
        } catch (err) {
          this.stats.tunPacketFaults++;
          const n = this.stats.tunPacketFaults;
          if ((n & (n - 1)) === 0) {
            this.log.error(`bug: handling a TUN packet threw (${n} so far); packet dropped`,
              { err, stack: err instanceof Error ? err.stack : String(err) });
          }
        }
      }
    });
  }

  /** Other nodes' proxied ranges, routed into our TUN. */
  syncKernelRoutes(): Promise<void> {
    if (!this.kernelRoutes || this.closed) return Promise.resolve();
    const ranges = this.peer.routes.routes().flatMap((r) => r.record.proxyCidrs.flatMap((c) => {
      const p = advertisedProxyPrefix(c);
      return p ? [`${u32ToIpv4(p.net)}/${p.prefix}`] : [];
    }));
    return this.kernelRoutes.sync(ranges);
  }

  private fromTun = (pkt: Buffer): void => {
    this.stats.tunRxPackets++;
    for (const claim of this.interceptors) if (claim(pkt)) return;
    this.forward(pkt);
  };

  /** A TCP super-packet: claimed whole (the kernel-termination NAT), or cut for everyone else. */
  private fromTunOffloaded(tun: TunDevice, pkt: Buffer, mss: number): void {
    for (const claim of this.offloadInterceptors) {
      if (claim(pkt)) {
        this.stats.tunRxPackets++;
        return;
      }
    }
    if (!tun.segment(pkt, mss, this.fromTun)) this.stats.dropped++;
  }

  /**
   * Forwards an outbound IP packet past the interceptors, as plain Data to its owner (e.g. a SYN the
   * TCP proxy held and then gave up carrying).
   */
  forward(pkt: Buffer): void {
    if (ipVersion(pkt) !== 4) return this.forwardIpv6(pkt);
    const routes = this.peer.routes;
    const dst = ipv4Destination(pkt);
    const owner = routes.lookupIpv4(dst) ?? routes.lookupProxy(dst);
    if (owner !== undefined && owner !== this.peer.peerId && this.peer.sendTo(owner, PacketType.Data, pkt)) return;
    this.stats.noRoute++;
    this.sendUnreachable(pkt);
  }

  /** An outbound non-IPv4 packet: IPv6 goes to the owner of its destination address. */
  private forwardIpv6(pkt: Buffer): void {
    if (ipVersion(pkt) !== 6) {
      this.stats.dropped++;
      return;
    }
    const owner = this.peer.routes.lookupIpv6(pkt, IPV6_DST);
    if (owner !== undefined && owner !== this.peer.peerId && this.peer.sendTo(owner, PacketType.Data, pkt)) return;
    this.stats.noRoute++;
  }

  private fromPeer(pkt: Buffer): void {
    const routes = this.peer.routes;
    if (ipVersion(pkt) !== 4) return this.fromPeerIpv6(pkt);
    for (const claim of this.inboundInterceptors) if (claim(pkt)) return;
    const dst = ipv4Destination(pkt);
    const mine = dst === this.myIpv4 || routes.lookupProxy(dst) === this.peer.peerId;
    if (!mine || !this.writeToTun(pkt)) this.stats.dropped++;
  }

  /** An inbound non-IPv4 packet: IPv6 to our virtual IPv6 goes to the TUN (the proxies' interceptors are IPv4-only). */
  private fromPeerIpv6(pkt: Buffer): void {
    const me = this.myIpv6;
    let mine = me !== null && ipVersion(pkt) === 6;
    for (let i = 0; mine && i < 16; i++) mine = pkt[IPV6_DST + i] === me![i];
    if (!mine || !this.writeToTun(pkt)) this.stats.dropped++;
  }

  private sendUnreachable(pkt: Buffer): void {
    const second = Math.floor(nowMs() / 1000);
    if (second !== this.budgetSecond) {
      this.budgetSecond = second;
      this.unreachableBudget = UNREACHABLE_PER_SECOND;
    }
    if (this.unreachableBudget <= 0) return;
    const icmp = hostUnreachableFor(pkt);
    if (icmp && this.writeToTun(icmp)) this.unreachableBudget--;
  }
}
