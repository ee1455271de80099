/**
 * The route lookups the node and the TCP proxy use (../peer-layer.ts RouteLookup), over what
 * EasyTier's route sync taught us (route-state.ts). Rebuilt once per route change, so a lookup on
 * the data path is a map read or a short prefix scan.
 *
 * Features: a tstier node says in its private field (route-msg.ts tstierFeatures) that it speaks
 * tstier's KCP and QUIC carriers; only then do its records carry KcpInput/QuicInput, so the proxy
 * never sends a tstier carrier to an EasyTier node (whose kcp_input means kcp-sys). What EasyTier
 * advertised stays readable through `advertised`, for the CLI and for a kcp-sys carrier.
 */
import { advertisedProxyPrefix, prefixMask } from '../ipv4-prefix.js';
import { Feature, type RouteRecord } from '../route-record.js';
import type { RouteLookup } from '../peer-layer.js';
import type { RouteEntry } from '../route-record.js';
import type { EtRouteState } from './route-state.js';
import type { PeerFeatureFlag, RoutePeerInfo } from './route-msg.js';

interface ProxyRoute {
  net: number;
  mask: number;
  prefix: number;
  peerId: number;
}

/** EasyTier's feature flags as tstier's bits (route-record.ts numbers them as EasyTier's fields). */
export function featureBitsOf(f: PeerFeatureFlag): number {
  return (f.kcpInput ? Feature.KcpInput : 0) | (f.quicInput ? Feature.QuicInput : 0)
    | (f.noRelayKcp ? Feature.NoRelayKcp : 0) | (f.noRelayQuic ? Feature.NoRelayQuic : 0);
}

/** The bits the proxy may act on: a tstier node's own, an EasyTier node's relay refusals only. */
function carrierFeatures(info: RoutePeerInfo): number {
  if (info.tstierFeatures !== undefined) return info.tstierFeatures;
  return featureBitsOf(info.featureFlag) & (Feature.NoRelayKcp | Feature.NoRelayQuic);
}

function recordOf(info: RoutePeerInfo): RouteRecord {
  return {
    peerId: info.peerId, version: info.version, hostname: info.hostname ?? '',
    ipv4: info.ipv4 ?? 0, prefix: info.ipv4 === undefined ? 0 : info.networkLength || 24,
    proxyCidrs: [...info.proxyCidrs], features: carrierFeatures(info),
    softwareVersion: info.easytierVersion, ...(info.ipv6 ? { ipv6: info.ipv6 } : {}),
  };
}

export class EtRouteView implements RouteLookup {
  #entries: RouteEntry[] = [];
  #paths = new Map<number, { nextHop: number; cost: number }>();
  #records = new Map<number, RouteRecord>();
  #advertised = new Map<number, number>();
  #ipv4 = new Map<number, number>();
  #proxy: ProxyRoute[] = [];
  #ipv6: { address: Uint8Array; peerId: number }[] = [];

  constructor(private readonly state: EtRouteState) {
    this.rebuild();
  }

  /** Re-reads the route state; call after every change it reported. */
  rebuild(): void {
    const routes = this.state.routes().sort((a, b) => a.peerId - b.peerId);
    const me = this.state.myInfo;
    this.#paths = new Map(routes.map((r) => [r.peerId, { nextHop: r.nextHop, cost: r.cost }]));
    this.#records = new Map(routes.map((r) => [r.peerId, recordOf(r.info)]));
    this.#advertised = new Map(routes.map((r) => [r.peerId, featureBitsOf(r.info.featureFlag)]));
    this.#entries = routes.map((r) => ({ record: this.#records.get(r.peerId)!, nextHop: r.nextHop, cost: r.cost }));
    const reachable = [{ info: me, cost: 0 }, ...routes.map((r) => ({ info: r.info, cost: r.cost }))];
    this.#ipv4 = new Map();
    // Nearer (then lower id) wins: set it last.
    for (const r of [...reachable].sort((a, b) => b.cost - a.cost || b.info.peerId - a.info.peerId)) {
      if (r.info.ipv4) this.#ipv4.set(r.info.ipv4, r.info.peerId);
    }
    this.#ipv6 = reachable.flatMap((r) => (r.info.ipv6 ? [{ address: r.info.ipv6.address, peerId: r.info.peerId, cost: r.cost }] : []))
      .sort((a, b) => a.cost - b.cost || a.peerId - b.peerId);
    this.#proxy = reachable.flatMap((r) => r.info.proxyCidrs.flatMap((c) => {
      const p = advertisedProxyPrefix(c);
      return p ? [{ net: p.net, mask: prefixMask(p.prefix), prefix: p.prefix, peerId: r.info.peerId, cost: r.cost }] : [];
    })).sort((a, b) => b.prefix - a.prefix || a.cost - b.cost || a.peerId - b.peerId);
  }

  nextHop(peerId: number): number | undefined {
    return this.#paths.get(peerId)?.nextHop;
  }

  lookupIpv4(addr: number): number | undefined {
    return this.#ipv4.get(addr);
  }

  /** The owner of the virtual IPv6 address in `packet[at..at+16]` (our own id for ours), nearest first. */
  lookupIpv6(packet: Uint8Array, at = 0): number | undefined {
    if (packet.length < at + 16) return undefined;
    outer: for (const o of this.#ipv6) {
      for (let i = 15; i >= 0; i--) if (o.address[i] !== packet[at + i]) continue outer; // host bits differ first
      return o.peerId;
    }
    return undefined;
  }

  lookupProxy(addr: number): number | undefined {
    for (const r of this.#proxy) if (((addr & r.mask) >>> 0) === r.net) return r.peerId;
    return undefined;
  }

  record(peerId: number): RouteRecord | undefined {
    return this.#records.get(peerId);
  }

  /** The feature bits a node advertised in EasyTier's flags (kcp_input means kcp-sys on an EasyTier node). */
  advertised(peerId: number): number | undefined {
    return this.#advertised.get(peerId);
  }

  reachable(): IterableIterator<number> {
    return this.#paths.keys();
  }

  routes(): RouteEntry[] {
    return this.#entries;
  }
}
