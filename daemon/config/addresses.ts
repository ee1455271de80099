/**
 * The addresses of a NodeConfig, resolved once into the typed form the data path compares against:
 * bytes and u32 numbers, parsed prefixes, the set of the node's own service ports. The node does
 * this at start (a bad address is a config error naming its key); the proxy, the subnet proxy and
 * the dial target read the result and never re-parse text.
 */
import { badConfig } from '../errors.js';
import { parseIpv4Address, parseIpv6Address } from '../packet/address.js';
import { readU32 } from '../packet/bytes.js';
import { type Ipv4Prefix, parseIpv4Prefix } from '../peer/ipv4-prefix.js';
import type { NodeConfig } from './node-config.js';

export interface NodeAddresses {
  /** `-i`: the virtual IPv4 as bytes and as a u32, with its prefix; null without one. */
  readonly ipv4: { readonly bytes: Uint8Array; readonly u32: number; readonly prefix: number } | null;
  /** `--ipv6`: the virtual IPv6 (16 bytes) and its prefix; null without one. */
  readonly ipv6: { readonly bytes: Uint8Array; readonly prefix: number } | null;
  /** `-n real[->mapped]`, parsed. */
  readonly proxyNetworks: readonly { readonly real: Ipv4Prefix; readonly mapped: Ipv4Prefix | null }[];
  /** The node's own service ports (peer listeners, RPC portal): the proxy never dials them on its own address. */
  readonly servicePorts: ReadonlySet<number>;
}

export function resolveAddresses(cfg: NodeConfig): NodeAddresses {
  let ipv4: NodeAddresses['ipv4'] = null;
  if (cfg.ipv4) {
    const bytes = parseIpv4Address(cfg.ipv4.address);
    if (!bytes) throw badConfig('ipv4', `"${cfg.ipv4.address}" is not an IPv4 address`);
    ipv4 = { bytes, u32: readU32(bytes, 0), prefix: cfg.ipv4.prefix };
  }
  let ipv6: NodeAddresses['ipv6'] = null;
  if (cfg.ipv6) {
    const bytes = parseIpv6Address(cfg.ipv6.address);
    if (!bytes) throw badConfig('ipv6', `"${cfg.ipv6.address}" is not an IPv6 address`);
    ipv6 = { bytes, prefix: cfg.ipv6.prefix };
  }
  const proxyNetworks = cfg.proxyNetworks.map((pn) => {
    const real = parseIpv4Prefix(pn.cidr);
    if (!real) throw badConfig('proxy_network', `"${pn.cidr}" is not an IPv4 CIDR`);
    const mapped = pn.mappedCidr ? parseIpv4Prefix(pn.mappedCidr) : null;
    if (pn.mappedCidr && !mapped) throw badConfig('proxy_network', `"${pn.mappedCidr}" is not an IPv4 CIDR`);
    return { real, mapped };
  });
  const servicePorts = new Set<number>();
  for (const uri of cfg.listeners) {
    const m = /:(\d+)\/?$/.exec(uri);
    if (m) servicePorts.add(Number(m[1]));
  }
  const rpc = /:(\d+)$/.exec(cfg.rpcPortal);
  if (rpc) servicePorts.add(Number(rpc[1]));
  return { ipv4, ipv6, proxyNetworks, servicePorts };
}

/** Whether `ip` (4 or 16 bytes) is the node's own virtual address. */
export function isOwnAddress(a: NodeAddresses, ip: Uint8Array): boolean {
  const own = ip.length === 4 ? a.ipv4?.bytes : a.ipv6?.bytes;
  return own !== undefined && sameBytes(own, ip);
}

function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
