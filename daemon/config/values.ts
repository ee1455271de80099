/**
 * Parsers for single config values. Each takes the raw text and the name the user knows it by
 * (`--mtu`, `ET_MTU`, `flags.mtu`) and either returns the validated value or throws
 * badConfig(name, ...) — so every error names the key it came from, whatever the source.
 */
import { BlockList, isIP, isIPv4 } from 'node:net';
import { badConfig } from '../errors.js';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../log.js';
import type { ProxyNetwork } from './node-config.js';

/** Underlay protocols a listener given without one expands to. EasyTier has more (wg, quic, ws, wss). */
export const PEER_SCHEMES: readonly string[] = ['tcp', 'udp'];
/** What a URI may name besides: faketcp only when asked for, since it needs CAP_NET_RAW, CAP_NET_ADMIN and a packet-filter rule. */
const URI_SCHEMES: readonly string[] = [...PEER_SCHEMES, 'faketcp'];
export const DEFAULT_LISTEN_PORT = 11010;
export const DEFAULT_RPC_PORTAL = '127.0.0.1:15888';
export const MTU_MIN = 576;
export const MTU_MAX = 9000;

const quote = (raw: string): string => JSON.stringify(raw);

export function parseBool(raw: string, name: string): boolean {
  switch (raw.trim().toLowerCase()) {
    case 'true': case '1': case 'yes': case 'on': return true;
    case 'false': case '0': case 'no': case 'off': return false;
    default: throw badConfig(name, `must be true or false, got ${quote(raw)}`);
  }
}

export function parseIntInRange(raw: string, name: string, min: number, max: number): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw badConfig(name, `must be an integer in ${min}..${max}, got ${quote(raw)}`);
  }
  return n;
}

/**
 * Seconds a proxied flow outlives its peer's reachability. Plain TCP over a VPN rides out outages of
 * tens of seconds; the proxy's flows should too, but not hold an application forever.
 */
export const DEFAULT_PROXY_FLOW_TIMEOUT = 30;
export const parseProxyFlowTimeout = (raw: string, name: string): number => parseIntInRange(raw, name, 1, 86_400);

/**
 * Seconds a half-closed proxied flow may wait for its other side to finish. Half-close is honoured
 * (one side may go on sending after the other's FIN), but an application that never ends its side
 * must not hold two sockets and a carrier flow forever. Generous, since a long answer after a
 * request's FIN is legitimate.
 */
export const DEFAULT_PROXY_CLOSE_WAIT = 600;
export const parseProxyCloseWait = (raw: string, name: string): number => parseIntInRange(raw, name, 0, 86_400);

export const parseMtu = (raw: string, name: string): number => parseIntInRange(raw, name, MTU_MIN, MTU_MAX);

export function parseNonEmpty(raw: string, name: string): string {
  if (raw.trim() === '') throw badConfig(name, 'must not be empty');
  return raw;
}

/**
 * The network name is the HKDF `info` of the session key derivation, which takes at most 1024
 * bytes; a longer name could never key a session, so it is refused here, naming the flag.
 */
export const NETWORK_NAME_MAX_BYTES = 1024;
/** A route record carries the hostname with a one-byte length. */
export const HOSTNAME_MAX_BYTES = 255;

export function parseNetworkName(raw: string, name: string): string {
  return parseBoundedText(raw, name, NETWORK_NAME_MAX_BYTES);
}

export function parseHostname(raw: string, name: string): string {
  return parseBoundedText(raw, name, HOSTNAME_MAX_BYTES);
}

function parseBoundedText(raw: string, name: string, maxBytes: number): string {
  const bytes = Buffer.byteLength(parseNonEmpty(raw, name));
  if (bytes > maxBytes) throw badConfig(name, `must be at most ${maxBytes} bytes (UTF-8), got ${bytes}`);
  return raw;
}

export function parseLogLevel(raw: string, name: string): LogLevel {
  const level = raw.trim().toLowerCase();
  if (!isLogLevel(level)) throw badConfig(name, `must be one of ${LOG_LEVELS.join(', ')}, got ${quote(raw)}`);
  return level;
}

const QUIC_CONGESTION = ['bbr', 'cubic', 'newreno'] as const;

export function parseQuicCongestion(raw: string, name: string): (typeof QUIC_CONGESTION)[number] {
  const cc = raw.trim().toLowerCase();
  if (!(QUIC_CONGESTION as readonly string[]).includes(cc)) {
    throw badConfig(name, `must be one of ${QUIC_CONGESTION.join(', ')}, got ${quote(raw)}`);
  }
  return cc as (typeof QUIC_CONGESTION)[number];
}

/** A Linux interface name: at most 15 bytes, no '/', no whitespace. Empty = choose one. */
export function parseDevName(raw: string, name: string): string {
  if (raw === '') return raw;
  if (Buffer.byteLength(raw) > 15 || /[\s/]/.test(raw) || raw === '.' || raw === '..') {
    throw badConfig(name, `must be a network interface name (at most 15 characters, no '/' or spaces), got ${quote(raw)}`);
  }
  return raw;
}

/**
 * Addresses no node may take as its virtual address: they are not one host's (unspecified,
 * loopback, link-local, multicast, reserved, broadcast), and the kernel would route them elsewhere
 * or refuse them on the TUN.
 */
const NOT_A_HOST = new BlockList();
const NOT_A_HOST_V4 = [['0.0.0.0', 8], ['127.0.0.0', 8], ['169.254.0.0', 16], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const;
const NOT_A_HOST_V6 = [['::', 128], ['::1', 128], ['fe80::', 10], ['ff00::', 8]] as const;
for (const [net, prefix] of NOT_A_HOST_V4) NOT_A_HOST.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of NOT_A_HOST_V6) NOT_A_HOST.addSubnet(net, prefix, 'ipv6');

/**
 * `-i`: "10.144.144.1" (gets /24, as EasyTier) or "10.144.144.1/16". Must be a host address, and
 * neither the network nor the broadcast address of its prefix (/31 and /32 have neither).
 */
export function parseIpv4WithPrefix(raw: string, name: string): { address: string; prefix: number } {
  const net = parseAddressWithPrefix(raw, name, 4, 24);
  if (net.prefix <= 30) {
    const host = ipv4ToInt(net.address) & (2 ** (32 - net.prefix) - 1);
    if (host === 0) throw badConfig(name, `${quote(raw)} is the network address of its /${net.prefix}, not a host`);
    if (host === 2 ** (32 - net.prefix) - 1) {
      throw badConfig(name, `${quote(raw)} is the broadcast address of its /${net.prefix}, not a host`);
    }
  }
  return net;
}

/** `--ipv6`: "fd00::1" (gets /64, the usual IPv6 subnet) or "fd00::1/48"; no zone index. */
export function parseIpv6WithPrefix(raw: string, name: string): { address: string; prefix: number } {
  return parseAddressWithPrefix(raw, name, 6, 64);
}

function parseAddressWithPrefix(raw: string, name: string, family: 4 | 6, defaultPrefix: number): { address: string; prefix: number } {
  const [address = '', prefixText, extra] = raw.trim().split('/');
  if (isIP(address) !== family || address.includes('%') || extra !== undefined) {
    throw badConfig(name, `must be an IPv${family} address with optional /prefix, got ${quote(raw)}`);
  }
  const prefix = prefixText === undefined ? defaultPrefix : parseIntInRange(prefixText, name, 1, family === 4 ? 32 : 128);
  if (NOT_A_HOST.check(address, family === 4 ? 'ipv4' : 'ipv6')) {
    throw badConfig(name, `${quote(raw)} is not a unicast host address (loopback, link-local, multicast, broadcast or reserved)`);
  }
  return { address, prefix };
}

function ipv4ToInt(address: string): number {
  return address.split('.').reduce((acc, octet) => (acc * 256 + Number(octet)) >>> 0, 0);
}

/** A network in CIDR form with no host bits set, e.g. "192.168.1.0/24". */
export function parseIpv4Cidr(raw: string, name: string): { address: string; prefix: number } {
  const text = raw.trim();
  const [address = '', prefixText, extra] = text.split('/');
  if (!isIPv4(address) || prefixText === undefined || extra !== undefined) {
    throw badConfig(name, `must be an IPv4 CIDR like 192.168.1.0/24, got ${quote(raw)}`);
  }
  const prefix = parseIntInRange(prefixText, name, 0, 32);
  const hostMask = prefix === 0 ? 0xffffffff : (2 ** (32 - prefix) - 1);
  const value = ipv4ToInt(address);
  if ((value & hostMask) >>> 0 !== 0) {
    const network = (value - (value & hostMask)) >>> 0;
    const dotted = [24, 16, 8, 0].map((s) => (network >>> s) & 255).join('.');
    throw badConfig(name, `${quote(raw)} has host bits set; did you mean ${dotted}/${prefix}?`);
  }
  return { address, prefix };
}

/** `-n`: "cidr" or "cidr->mapped_cidr"; both sides must have the same prefix length. */
export function parseProxyNetwork(raw: string, name: string): ProxyNetwork {
  const parts = raw.split('->');
  if (parts.length > 2) throw badConfig(name, `must be "cidr" or "cidr->mapped_cidr", got ${quote(raw)}`);
  const real = parseIpv4Cidr(parts[0] ?? '', name);
  const cidr = `${real.address}/${real.prefix}`;
  if (parts[1] === undefined) return { cidr };
  return { cidr, mappedCidr: parseMappedCidr(parts[1], real.prefix, name) };
}

export function parseMappedCidr(raw: string, realPrefix: number, name: string): string {
  const mapped = parseIpv4Cidr(raw, name);
  if (mapped.prefix !== realPrefix) {
    throw badConfig(name, `mapped range /${mapped.prefix} must have the same prefix length as the real one (/${realPrefix})`);
  }
  return `${mapped.address}/${mapped.prefix}`;
}

export function parsePort(raw: string, name: string, min = 1): number {
  return parseIntInRange(raw, name, min, 65535);
}

/** "1.2.3.4" or "::1" → the form that goes in front of ":port" ("[::1]" for IPv6). */
function hostForAddress(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

interface HostPort { host: string; port?: string }

/** Splits "1.2.3.4:80", "[::1]:80", "1.2.3.4", "::1", "[::1]"; undefined when it is none of those. */
function splitHostPort(text: string): HostPort | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return isIP(bracketed[1] ?? '') === 6 ? withPort(bracketed[1] ?? '', bracketed[2]) : undefined;
  if (isIP(text) !== 0) return { host: text };
  const colon = text.lastIndexOf(':');
  if (colon > 0 && isIPv4(text.slice(0, colon))) return withPort(text.slice(0, colon), text.slice(colon + 1));
  return undefined;
}

function withPort(host: string, port: string | undefined): HostPort {
  return port === undefined ? { host } : { host, port };
}

function checkScheme(scheme: string, raw: string, name: string): void {
  if (!URI_SCHEMES.includes(scheme)) {
    throw badConfig(name, `unsupported protocol ${quote(scheme)} in ${quote(raw)} (tstier supports ${URI_SCHEMES.join(', ')})`);
  }
}

interface ParsedUri { scheme: string; host: string; port: string | undefined }

/** "proto://host[:port]" with nothing after the port. */
function parseUri(raw: string, name: string): ParsedUri {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(\[[^\]]*\]|[^/:?#[\]]+)(?::([^/?#]*))?\/?$/i.exec(raw.trim());
  if (!match) throw badConfig(name, `must be a URI like tcp://1.2.3.4:11010, got ${quote(raw)}`);
  const scheme = (match[1] ?? '').toLowerCase();
  checkScheme(scheme, raw, name);
  const hostText = match[2] ?? '';
  const host = hostText.startsWith('[') ? hostText.slice(1, -1) : hostText;
  if (hostText.startsWith('[') && isIP(host) !== 6) throw badConfig(name, `bad IPv6 address in ${quote(raw)}`);
  return { scheme, host, port: match[3] };
}

/**
 * One `-l` value → normalized listener URIs. Accepts what EasyTier accepts: a port ("11010"), an
 * address ("0.0.0.0", "[::]"), "ip:port", a protocol ("udp"), "proto:port", or a full URI. Forms
 * without a protocol expand to every protocol we speak (tcp and udp), on port 11010 if none given.
 */
export function parseListener(raw: string, name: string): string[] {
  const text = raw.trim();
  const expand = (host: string, port: number): string[] =>
    PEER_SCHEMES.map((scheme) => `${scheme}://${hostForAddress(host)}:${port}`);
  if (/^\d+$/.test(text)) return expand('0.0.0.0', parsePort(text, name));
  if (text.includes('://')) {
    const uri = parseUri(text, name);
    if (isIP(uri.host) === 0) throw badConfig(name, `listener address must be an IP address, got ${quote(raw)}`);
    const port = uri.port === undefined ? DEFAULT_LISTEN_PORT : parsePort(uri.port, name);
    return [`${uri.scheme}://${hostForAddress(uri.host)}:${port}`];
  }
  const protoPort = /^([a-z][a-z0-9]*)(?::(\d+))?$/i.exec(text);
  if (protoPort) {
    const scheme = (protoPort[1] ?? '').toLowerCase();
    checkScheme(scheme, raw, name);
    const port = protoPort[2] === undefined ? DEFAULT_LISTEN_PORT : parsePort(protoPort[2], name);
    return [`${scheme}://0.0.0.0:${port}`];
  }
  const hostPort = splitHostPort(text);
  if (hostPort) return expand(hostPort.host, hostPort.port === undefined ? DEFAULT_LISTEN_PORT : parsePort(hostPort.port, name));
  throw badConfig(name, `must be a port, ip, ip:port, protocol, protocol:port or URI, got ${quote(raw)}`);
}

/** `-p`: "proto://host:port"; host may be a name. The port is required. */
export function parsePeerUri(raw: string, name: string): string {
  const uri = parseUri(raw, name);
  if (uri.port === undefined || uri.port === '') throw badConfig(name, `peer URI needs a port, got ${quote(raw)}`);
  const port = parsePort(uri.port, name);
  return `${uri.scheme}://${hostForAddress(uri.host)}:${port}`;
}

/**
 * `-r`: a bare port N means 127.0.0.1:N. We bind loopback by default where EasyTier binds
 * 0.0.0.0 and filters by whitelist: an unauthenticated control port should not face the network
 * unless asked for. Port 0 asks the OS for a free port (used by tests).
 */
export function parseRpcPortal(raw: string, name: string): string {
  const text = raw.trim();
  if (/^\d+$/.test(text)) return `127.0.0.1:${parsePort(text, name, 0)}`;
  const hostPort = splitHostPort(text) ?? (/^localhost:\d+$/.test(text) ? { host: '127.0.0.1', port: text.slice(10) } : undefined);
  if (hostPort?.port === undefined) throw badConfig(name, `must be a port or ip:port, got ${quote(raw)}`);
  return `${hostForAddress(hostPort.host)}:${parsePort(hostPort.port, name, 0)}`;
}
