/**
 * Where the destination node dials for a flow addressed to `dst`: a mapped proxy range (`-n
 * real->mapped`) is translated back to the real range, host bits kept; and a flow aimed at one of
 * this node's own service ports (its peer listeners, its RPC portal) is refused, so the proxy cannot
 * be used to reach what the node keeps to itself. With --no-tun, the node's own address is dialled
 * on loopback, as EasyTier does. The address becomes text only here, for the socket's connect.
 */
import { isOwnAddress, type NodeAddresses } from '../config/addresses.js';
import { formatIpAddress } from '../packet/address.js';
import { readU32 } from '../packet/bytes.js';
import type { SocketAddr } from '../packet/flow-key.js';
import { prefixMask, u32ToIpv4 } from '../peer/ipv4-prefix.js';

export type DialTarget = { ok: true; ip: string } | { ok: false; why: string };

export function dstDialTarget(dst: SocketAddr, addrs: NodeAddresses, noTun: boolean): DialTarget {
  const own = isOwnAddress(addrs, dst.ip);
  if (own && addrs.servicePorts.has(dst.port)) return { ok: false, why: `port ${dst.port} is one of this node's own services` };
  if (dst.ip.length !== 4) return { ok: true, ip: formatIpAddress(dst.ip) };
  // With --no-tun nothing listens on the virtual address: the node's own services are on loopback.
  if (own && noTun) return { ok: true, ip: '127.0.0.1' };
  const addr = readU32(dst.ip, 0);
  for (const { real, mapped } of addrs.proxyNetworks) {
    if (!mapped || ((addr & prefixMask(mapped.prefix)) >>> 0) !== mapped.net) continue;
    const host = (addr & ~prefixMask(real.prefix)) >>> 0;
    return { ok: true, ip: u32ToIpv4((real.net | host) >>> 0) };
  }
  return { ok: true, ip: formatIpAddress(dst.ip) };
}
