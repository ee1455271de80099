/**
 * Where the destination node dials for a flow addressed to `dst`: a mapped proxy range (`-n
 * real->mapped`) is translated back to the real range, host bits kept; and a flow aimed at one of
 * this node's own service ports (its peer listeners, its RPC portal) is refused, so the proxy cannot
 * be used to reach what the node keeps to itself. With --no-tun, the node's own address is dialled
 * on loopback, as EasyTier does.
 */
import type { NodeConfig } from '../config/node-config.js';
import { ipv4ToU32, parseIpv4Prefix, prefixMask, u32ToIpv4 } from '../peer/ipv4-prefix.js';
import type { SocketAddr } from '../carrier/flow-frames.js';
import { formatIpAddress, parseIpv6Address } from '../packet/address.js';

export type DialTarget = { ok: true; ip: string } | { ok: false; why: string };

export function dstDialTarget(dst: SocketAddr, cfg: NodeConfig): DialTarget {
  const addr = ipv4ToU32(dst.ip);
  if (addr === null) {
    const v6 = parseIpv6Address(dst.ip);
    const mine = v6 !== undefined && cfg.ipv6 !== undefined && formatIpAddress(v6) === canonicalIpv6(cfg.ipv6.address);
    if (mine && protectedPorts(cfg).has(dst.port)) return { ok: false, why: `port ${dst.port} is one of this node's own services` };
    return { ok: true, ip: dst.ip };
  }
  if (cfg.ipv4 && ipv4ToU32(cfg.ipv4.address) === addr && protectedPorts(cfg).has(dst.port)) {
    return { ok: false, why: `port ${dst.port} is one of this node's own services` };
  }
  // With --no-tun nothing listens on the virtual address: the node's own services are on loopback.
  if (cfg.noTun && cfg.ipv4 && ipv4ToU32(cfg.ipv4.address) === addr) return { ok: true, ip: '127.0.0.1' };
  for (const pn of cfg.proxyNetworks) {
    const mapped = pn.mappedCidr ? parseIpv4Prefix(pn.mappedCidr) : null;
    const real = parseIpv4Prefix(pn.cidr);
    if (!mapped || !real || ((addr & prefixMask(mapped.prefix)) >>> 0) !== mapped.net) continue;
    const host = (addr & ~prefixMask(real.prefix)) >>> 0;
    return { ok: true, ip: u32ToIpv4((real.net | host) >>> 0) };
  }
  return { ok: true, ip: dst.ip };
}

function canonicalIpv6(text: string): string | undefined {
  const v6 = parseIpv6Address(text);
  return v6 && formatIpAddress(v6);
}

function protectedPorts(cfg: NodeConfig): Set<number> {
  const ports = new Set<number>();
  for (const uri of cfg.listeners) {
    const m = /:(\d+)\/?$/.exec(uri);
    if (m) ports.add(Number(m[1]));
  }
  const rpc = /:(\d+)$/.exec(cfg.rpcPortal);
  if (rpc) ports.add(Number(rpc[1]));
  return ports;
}
