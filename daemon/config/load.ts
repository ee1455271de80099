/**
 * Resolves easytier-core's settings into one NodeConfig.
 * Precedence, highest first: command-line flags > ET_* environment > the -c TOML file > defaults.
 * A list set by a higher source replaces the lower one's list entirely (no merging), and
 * --no-listener wins over any listeners.
 */
import { hostname as osHostname } from 'node:os';
import { isLogLevel } from '../log.js';
import { parseArgv } from './argv.js';
import { readEnv } from './env.js';
import type { NodeConfig } from './node-config.js';
import type { Layer, Settings } from './options.js';
import { readConfigFile } from './toml-file.js';
import { secureModeProblem } from './peer-protocol-value.js';
import { usage } from './usage.js';
import { requireFakeTcpCapabilities } from '../faketcp/firewall.js';
import { badConfig } from '../errors.js';
import { DEFAULT_LISTEN_PORT, DEFAULT_PROXY_FLOW_TIMEOUT, DEFAULT_RPC_PORTAL, PEER_SCHEMES } from './values.js';

export type LoadResult =
  | { kind: 'help'; text: string }
  | { kind: 'config'; config: NodeConfig; warnings: string[]; configFile: string | undefined };

function defaults(env: NodeJS.ProcessEnv): Settings {
  const presetLevel = env['TSTIER_LOG_LEVEL']?.toLowerCase();
  return {
    instanceName: 'default',
    hostname: osHostname(),
    networkName: 'default',
    networkSecret: '',
    ipv4: undefined,
    ipv6: undefined,
    listeners: PEER_SCHEMES.map((scheme) => `${scheme}://0.0.0.0:${DEFAULT_LISTEN_PORT}`),
    noListener: false,
    peers: [],
    proxyNetworks: [],
    rpcPortal: DEFAULT_RPC_PORTAL,
    devName: '',
    mtu: 1380,
    noTun: false,
    useSmoltcp: false,
    enableKcpProxy: false,
    disableKcpInput: false,
    enableQuicProxy: false,
    disableQuicInput: false,
    quicCongestion: 'bbr',
    disableRelayKcp: false,
    disableRelayQuic: false,
    proxyOptimistic: false,
    socks5: undefined,
    socks5AllowOutside: false,
    portForwards: [],
    metricsListen: undefined,
    proxyFlowTimeout: DEFAULT_PROXY_FLOW_TIMEOUT,
    // TSTIER_LOG_LEVEL, which already set the level while loading, stays the default.
    logLevel: presetLevel !== undefined && isLogLevel(presetLevel) ? presetLevel : 'info',
    configFile: undefined,
  };
}

/** Throws TstierError('TSTIER_E_BAD_CONFIG') naming the flag, variable or key at fault. */
export function loadNodeConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): LoadResult {
  const parsed = parseArgv(argv);
  if (parsed.help) return { kind: 'help', text: usage() };
  const flags = parsed.layer;
  const envLayer = readEnv(env);
  const configFile = flags.configFile ?? envLayer.configFile;
  const fileKey = flags.configFile !== undefined ? '--config-file' : 'ET_CONFIG_FILE';
  const file = configFile === undefined ? { layer: {}, warnings: [] } : readConfigFile(configFile, fileKey);
  const merged = merge(defaults(env), file.layer, envLayer, flags);
  const config = toNodeConfig(merged);
  // A faketcp:// URI cannot work without raw sockets and its packet-filter rule, nor over IPv6:
  // say so up front (exit 2) rather than at every redial.
  for (const [key, uris] of [['listeners', config.listeners], ['peers', config.peers]] as const) {
    const fake = uris.filter((u) => u.startsWith('faketcp://'));
    const v6 = fake.find((u) => u.startsWith('faketcp://['));
    if (v6) throw badConfig(key, `fake TCP carries IPv4 only, not ${v6}`);
    if (fake.length > 0) requireFakeTcpCapabilities(`${key} ${fake[0]}`);
  }
  // Only when asked for: unset, redirect is the default where the kernel terminates, and these two
  // simply mean it does not.
  if (config.proxyRedirect === true && (config.useSmoltcp || config.noTun)) {
    throw badConfig('--proxy-redirect', `terminates flows at the kernel's TUN; it cannot be combined with ${config.useSmoltcp ? '--use-smoltcp' : '--no-tun'}`);
  }
  const secure = secureModeProblem(config);
  if (secure) throw badConfig('--secure-mode', secure);
  return { kind: 'config', config, warnings: file.warnings, configFile };
}

function merge(base: Settings, ...layers: Layer[]): Settings {
  const out: Settings = { ...base };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) (out as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return out;
}

function toNodeConfig(s: Settings): NodeConfig {
  const { noListener, configFile: _configFile, ipv4, ipv6, ...rest } = s;
  const config: NodeConfig = { ...rest, listeners: noListener ? [] : dedupe(s.listeners), peers: dedupe(s.peers) };
  if (ipv4 !== undefined) config.ipv4 = ipv4;
  if (ipv6 !== undefined) config.ipv6 = ipv6;
  return config;
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}
