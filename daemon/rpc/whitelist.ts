/**
 * The rpc portal's caller check (`--rpc-portal-whitelist`), and the warning for a portal that faces
 * the network with no whitelist: the portal has no authentication, and it can change port forwards.
 */
import { BlockList, isIP } from 'node:net';

/** "1.2.3.4:5", "[::1]:5" (grpc-js peer strings; "ipv4:"/"ipv6:" prefixes accepted) → the address; null if unreadable. */
export function peerAddress(peer: string): string | null {
  const m = /^(?:ipv[46]:)?\[?([^\]]+?)\]?:\d+$/.exec(peer);
  const ip = m?.[1]?.replace(/^::ffff:(?=\d+\.)/, '');
  return ip && isIP(ip) ? ip : null;
}

/** Null: everyone may call. Otherwise a test of a grpc-js peer string. */
export function whitelistCheck(cidrs: readonly string[] | undefined): ((peer: string) => boolean) | null {
  if (!cidrs || cidrs.length === 0) return null;
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, len] = c.split('/') as [string, string];
    list.addSubnet(addr, Number(len), isIP(addr) === 6 ? 'ipv6' : 'ipv4');
  }
  return (peer) => {
    const ip = peerAddress(peer);
    return ip !== null && list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
  };
}

/** A warning naming the risk when `portal` ("ip:port") is reachable from the network and unguarded. */
export function portalRisk(portal: string, cidrs: readonly string[] | undefined): string | null {
  const host = portal.slice(0, portal.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const loopback = host === '::1' || /^127\./.test(host);
  if (loopback || (cidrs && cidrs.length > 0)) return null;
  return `rpc portal ${portal} is not on loopback and has no --rpc-portal-whitelist: anyone who can reach it can read `
    + 'this node\'s peers, routes and flows and add or remove its port forwards';
}
