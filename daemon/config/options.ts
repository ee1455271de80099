/**
 * The one table of easytier-core options: for each setting, its flag, its ET_* env var, where it
 * lives in the TOML file, how its text is validated, and its help line. The flag parser, the env
 * reader, the TOML reader and --help all read this table, so they cannot drift apart.
 */
import type { NodeConfig } from './node-config.js';
import {
  DEFAULT_RPC_PORTAL, parseBool, parseDevName, parseHostname, parseIpv4WithPrefix, parseIpv6WithPrefix, parseListener, parseLogLevel, parseMtu,
  parseNetworkName, parseNonEmpty, parsePeerUri, parseProxyCloseWait, parseProxyFlowTimeout, parseProxyNetwork, parseQuicCongestion, parseRpcPortal,
} from './values.js';
import { parseKcpInterval, parseKcpMode, parseKcpMtu, parseKcpNc, parseKcpNodelay, parseKcpResend, parseKcpWindow } from './kcp-values.js';
import { parsePortForward } from './port-forward-value.js';
import { parseWhitelistCidr } from './whitelist-value.js';
import { parseSocks5 } from './socks5-value.js';
import { parseEncryptionAlgorithm, parsePeerProtocol } from './peer-protocol-value.js';

/** Everything a source can set: the NodeConfig fields plus the ones that only steer loading. */
export interface Settings extends Omit<NodeConfig, 'ipv4' | 'ipv6'> {
  ipv4: NodeConfig['ipv4'];
  ipv6: NodeConfig['ipv6'];
  noListener: boolean;
  configFile: string | undefined;
}

/** What one source (flags, env, file) set; absent keys fall through to the next source. */
export type Layer = { -readonly [K in keyof Settings]?: Settings[K] };

/**
 * - `string`/`int`: one value; a repeated flag keeps the last.
 * - `bool`: `--flag`, `--flag=false`, `--flag false`; env "true"/"false"/"1"/"0".
 * - `list`: comma-separated, flag repeatable, each item parsed to one or more entries.
 */
export type OptionKind = 'string' | 'int' | 'bool' | 'list';

export interface OptionDef {
  field: keyof Settings;
  long: string;
  short?: string;
  /** A value placeholder for --help. */
  arg?: string;
  env: string;
  /** Path in the TOML file; absent when the file cannot set it (e.g. rpc portal since EasyTier 2.5). */
  toml?: readonly [string] | readonly [string, string];
  kind: OptionKind;
  /** Text → value; for lists, one item → entries. Throws badConfig(name, ...). */
  parse: (raw: string, name: string) => unknown;
  help: string;
}

const text = (raw: string): string => raw;
const one = <T>(parse: (raw: string, name: string) => T) => (raw: string, name: string): T[] => [parse(raw, name)];

export const OPTIONS: readonly OptionDef[] = [
  { field: 'configFile', long: 'config-file', short: 'c', arg: 'PATH', env: 'ET_CONFIG_FILE', kind: 'string', parse: parseNonEmpty, help: 'EasyTier TOML config file' },
  { field: 'networkName', long: 'network-name', arg: 'NAME', env: 'ET_NETWORK_NAME', toml: ['network_identity', 'network_name'], kind: 'string', parse: parseNetworkName, help: 'virtual network name (default "default")' },
  { field: 'networkSecret', long: 'network-secret', arg: 'SECRET', env: 'ET_NETWORK_SECRET', toml: ['network_identity', 'network_secret'], kind: 'string', parse: text, help: 'network secret (default empty)' },
  { field: 'ipv4', long: 'ipv4', short: 'i', arg: 'IP[/LEN]', env: 'ET_IPV4', toml: ['ipv4'], kind: 'string', parse: parseIpv4WithPrefix, help: 'virtual IPv4 of this node; a bare address gets /24' },
  { field: 'ipv6', long: 'ipv6', arg: 'IP[/LEN]', env: 'ET_IPV6', toml: ['ipv6'], kind: 'string', parse: parseIpv6WithPrefix, help: 'virtual IPv6 of this node; a bare address gets /64' },
  { field: 'peerProtocol', long: 'peer-protocol', arg: 'easytier', env: 'ET_PEER_PROTOCOL', toml: ['flags', 'peer_protocol'], kind: 'string', parse: parsePeerProtocol, help: 'the peers\' wire: EasyTier 2.6\'s, the only one (use --secure-mode for per-link keys and anti-replay)' },
  { field: 'encryptionAlgorithm', long: 'encryption-algorithm', arg: 'ALGO', env: 'ET_ENCRYPTION_ALGORITHM', toml: ['flags', 'encryption_algorithm'], kind: 'string', parse: parseEncryptionAlgorithm, help: 'EasyTier wire: aes-gcm (default), aes-256-gcm, chacha20 or xor' },
  { field: 'disableEncryption', long: 'disable-encryption', short: 'u', env: 'ET_DISABLE_ENCRYPTION', toml: ['flags', 'disable_encryption'], kind: 'bool', parse: parseBool, help: 'EasyTier wire: send payloads in clear (every node of the network must agree)' },
  { field: 'secureMode', long: 'secure-mode', env: 'ET_SECURE_MODE', toml: ['secure_mode', 'enabled'], kind: 'bool', parse: parseBool, help: 'EasyTier\'s secure mode (selects its wire): Noise handshake, per-link keys, anti-replay; every node must agree' },
  { field: 'peers', long: 'peers', short: 'p', arg: 'URI,...', env: 'ET_PEERS', kind: 'list', parse: one(parsePeerUri), help: 'peers to connect to, e.g. udp://10.1.0.2:11010 (repeatable)' },
  { field: 'listeners', long: 'listeners', short: 'l', arg: 'LISTENER,...', env: 'ET_LISTENERS', toml: ['listeners'], kind: 'list', parse: parseListener, help: 'port, ip, ip:port, proto, proto:port or URI (default tcp+udp :11010; repeatable)' },
  { field: 'noListener', long: 'no-listener', env: 'ET_NO_LISTENER', kind: 'bool', parse: parseBool, help: 'do not listen; only connect out (wins over --listeners)' },
  { field: 'proxyNetworks', long: 'proxy-networks', short: 'n', arg: 'CIDR[->CIDR],...', env: 'ET_PROXY_NETWORKS', kind: 'list', parse: one(parseProxyNetwork), help: 'LAN ranges to export, optionally mapped (repeatable)' },
  { field: 'rpcPortal', long: 'rpc-portal', short: 'r', arg: 'PORT|IP:PORT', env: 'ET_RPC_PORTAL', kind: 'string', parse: parseRpcPortal, help: `gRPC control portal (default ${DEFAULT_RPC_PORTAL}; a bare port binds 127.0.0.1)` },
  { field: 'rpcPortalWhitelist', long: 'rpc-portal-whitelist', arg: 'CIDR,...', env: 'ET_RPC_PORTAL_WHITELIST', toml: ['rpc_portal_whitelist'], kind: 'list', parse: one(parseWhitelistCidr), help: 'who may call the rpc portal (default: anyone who reaches it)' },
  { field: 'noTun', long: 'no-tun', env: 'ET_NO_TUN', toml: ['flags', 'no_tun'], kind: 'bool', parse: parseBool, help: 'no TUN device; implies the userspace stack' },
  { field: 'useSmoltcp', long: 'use-smoltcp', env: 'ET_USE_SMOLTCP', toml: ['flags', 'use_smoltcp'], kind: 'bool', parse: parseBool, help: 'terminate proxied TCP in the userspace stack' },
  { field: 'proxyRedirect', long: 'proxy-redirect', env: 'ET_PROXY_REDIRECT', toml: ['flags', 'proxy_redirect'], kind: 'bool', parse: parseBool, help: 'terminate proxied TCP this host opens at a local listener by an nftables redirect, outside the TUN (default with a TUN and no --use-smoltcp; false: kernel NAT termination; see docs/userspace-stack.md)' },
  { field: 'enableKcpProxy', long: 'enable-kcp-proxy', env: 'ET_ENABLE_KCP_PROXY', toml: ['flags', 'enable_kcp_proxy'], kind: 'bool', parse: parseBool, help: 'carry TCP flows we originate over KCP' },
  { field: 'disableKcpInput', long: 'disable-kcp-input', env: 'ET_DISABLE_KCP_INPUT', toml: ['flags', 'disable_kcp_input'], kind: 'bool', parse: parseBool, help: 'refuse KCP-proxied flows from peers' },
  { field: 'enableQuicProxy', long: 'enable-quic-proxy', env: 'ET_ENABLE_QUIC_PROXY', toml: ['flags', 'enable_quic_proxy'], kind: 'bool', parse: parseBool, help: 'carry TCP flows we originate over QUIC' },
  { field: 'quicCongestion', long: 'quic-congestion', arg: 'bbr|cubic|newreno', env: 'ET_QUIC_CONGESTION', toml: ['flags', 'quic_congestion'], kind: 'string', parse: parseQuicCongestion, help: 'congestion controller of the QUIC proxy (default bbr)' },
  { field: 'disableQuicInput', long: 'disable-quic-input', env: 'ET_DISABLE_QUIC_INPUT', toml: ['flags', 'disable_quic_input'], kind: 'bool', parse: parseBool, help: 'refuse QUIC-proxied flows from peers' },
  { field: 'disableRelayKcp', long: 'disable-relay-kcp', env: 'ET_DISABLE_RELAY_KCP', toml: ['flags', 'disable_relay_kcp'], kind: 'bool', parse: parseBool, help: 'do not relay other nodes\' KCP proxy packets' },
  { field: 'disableRelayQuic', long: 'disable-relay-quic', env: 'ET_DISABLE_RELAY_QUIC', toml: ['flags', 'disable_relay_quic'], kind: 'bool', parse: parseBool, help: 'do not relay other nodes\' QUIC proxy packets' },
  { field: 'proxyOptimistic', long: 'proxy-optimistic', env: 'ET_PROXY_OPTIMISTIC', toml: ['flags', 'proxy_optimistic'], kind: 'bool', parse: parseBool, help: 'accept the local TCP connection before the remote dial succeeds, as EasyTier does (default: wait for it)' },
  { field: 'socks5', long: 'socks5', arg: '[IP:]PORT|URL', env: 'ET_SOCKS5', toml: ['socks5_proxy'], kind: 'string', parse: parseSocks5, help: 'SOCKS5 server into the virtual network; a bare port binds 127.0.0.1; socks5://USER:PASS@IP:PORT asks for a password' },
  { field: 'socks5AllowOutside', long: 'socks5-allow-outside', env: 'ET_SOCKS5_ALLOW_OUTSIDE', toml: ['flags', 'socks5_allow_outside'], kind: 'bool', parse: parseBool, help: 'let SOCKS5 clients reach addresses outside the virtual network too' },
  { field: 'portForwards', long: 'port-forward', arg: 'PROTO://IP:PORT/VIP:PORT', env: 'ET_PORT_FORWARD', kind: 'list', parse: one(parsePortForward), help: 'forward a local tcp or udp port to an address in the virtual network (repeatable)' },
  { field: 'metricsListen', long: 'metrics-listen', arg: '[IP:]PORT', env: 'ET_METRICS_LISTEN', toml: ['metrics_listen'], kind: 'string', parse: parseRpcPortal, help: 'serve Prometheus metrics at http://IP:PORT/metrics; a bare port binds 127.0.0.1' },
  { field: 'kcpMode', long: 'kcp-mode', arg: 'MODE', env: 'ET_KCP_MODE', toml: ['kcp', 'mode'], kind: 'string', parse: parseKcpMode, help: 'KCP proxy preset: normal, fast, fast2, fast3 or manual (default: fast3 with 1024-segment windows)' },
  { field: 'kcpNodelay', long: 'kcp-nodelay', arg: '0-2', env: 'ET_KCP_NODELAY', toml: ['kcp', 'nodelay'], kind: 'int', parse: parseKcpNodelay, help: 'KCP proxy nodelay (overrides the mode)' },
  { field: 'kcpInterval', long: 'kcp-interval', arg: 'MS', env: 'ET_KCP_INTERVAL', toml: ['kcp', 'interval'], kind: 'int', parse: parseKcpInterval, help: 'KCP proxy flush interval, 10-5000 ms (overrides the mode)' },
  { field: 'kcpResend', long: 'kcp-resend', arg: 'N', env: 'ET_KCP_RESEND', toml: ['kcp', 'resend'], kind: 'int', parse: parseKcpResend, help: 'KCP proxy fast resend after N duplicate ACKs, 0 off (overrides the mode)' },
  { field: 'kcpNc', long: 'kcp-nc', arg: '0|1', env: 'ET_KCP_NC', toml: ['kcp', 'nc'], kind: 'int', parse: parseKcpNc, help: 'KCP proxy: 1 turns congestion control off (overrides the mode)' },
  { field: 'kcpSndwnd', long: 'kcp-sndwnd', arg: 'SEGMENTS', env: 'ET_KCP_SNDWND', toml: ['kcp', 'sndwnd'], kind: 'int', parse: parseKcpWindow, help: 'KCP proxy send window, 16-4096 segments (default 1024)' },
  { field: 'kcpRcvwnd', long: 'kcp-rcvwnd', arg: 'SEGMENTS', env: 'ET_KCP_RCVWND', toml: ['kcp', 'rcvwnd'], kind: 'int', parse: parseKcpWindow, help: 'KCP proxy receive window, 16-4096 segments (default 1024)' },
  { field: 'kcpMtu', long: 'kcp-mtu', arg: 'BYTES', env: 'ET_KCP_MTU', toml: ['kcp', 'mtu'], kind: 'int', parse: parseKcpMtu, help: 'KCP proxy datagram size, 256-1400 (default: the TUN MTU, at most 1400)' },
  { field: 'proxyFlowTimeout', long: 'proxy-flow-timeout', arg: 'SECONDS', env: 'ET_PROXY_FLOW_TIMEOUT', toml: ['flags', 'proxy_flow_timeout'], kind: 'int', parse: parseProxyFlowTimeout, help: 'reset proxied flows to a peer unreachable this long (default 30); a restarted peer\'s flows are reset at once' },
  { field: 'proxyCloseWait', long: 'proxy-close-wait', arg: 'SECONDS', env: 'ET_PROXY_CLOSE_WAIT', toml: ['flags', 'proxy_close_wait'], kind: 'int', parse: parseProxyCloseWait, help: 'close a half-closed proxied flow this long after its first FIN if the other side never finishes (default 600, 0: never)' },
  { field: 'devName', long: 'dev-name', arg: 'NAME', env: 'ET_DEV_NAME', toml: ['flags', 'dev_name'], kind: 'string', parse: parseDevName, help: 'TUN device name (default: chosen by the system)' },
  { field: 'mtu', long: 'mtu', arg: 'BYTES', env: 'ET_MTU', toml: ['flags', 'mtu'], kind: 'int', parse: parseMtu, help: 'TUN MTU (default 1380)' },
  { field: 'instanceName', long: 'instance-name', short: 'm', arg: 'NAME', env: 'ET_INSTANCE_NAME', toml: ['instance_name'], kind: 'string', parse: parseNonEmpty, help: 'instance name (default "default")' },
  { field: 'hostname', long: 'hostname', arg: 'NAME', env: 'ET_HOSTNAME', toml: ['hostname'], kind: 'string', parse: parseHostname, help: 'name shown to peers (default: the OS hostname)' },
  { field: 'logLevel', long: 'log-level', arg: 'LEVEL', env: 'ET_LOG_LEVEL', toml: ['console_logger', 'level'], kind: 'string', parse: parseLogLevel, help: 'error, warn, info, debug or trace (default info)' },
];

/** Long flags that also accept a second spelling (EasyTier's name for the same thing). */
export const FLAG_ALIASES: Readonly<Record<string, string>> = { 'console-log-level': 'log-level' };

/**
 * Records one textual value (from a flag or env var) in a layer. List items are comma-separated
 * and accumulate, so `-p a,b -p c` gives three peers.
 */
export function applyText(layer: Layer, def: OptionDef, raw: string, name: string): void {
  const target = layer as Record<string, unknown>;
  if (def.kind !== 'list') {
    target[def.field] = def.parse(raw, name);
    return;
  }
  const list = (target[def.field] as unknown[] | undefined) ?? [];
  for (const item of raw.split(',')) {
    if (item.trim() !== '') list.push(...(def.parse(item.trim(), name) as unknown[]));
  }
  target[def.field] = list;
}
