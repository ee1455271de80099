/**
 * kcptube's configuration files: `key=value` lines, `#` comments, and in relay mode the
 * `[listener]` (faces clients) and `[forwarder]` (faces the server) sections. Keys are
 * case-insensitive, empty values are ignored, unknown keys are errors (all as kcptube does).
 *
 * Parsing never stops at the first problem: every bad key is collected as an issue naming its
 * file, line and key, so `--check-config` can list them all. `loadKcptubeConfig` throws one
 * TSTIER_E_BAD_CONFIG listing every issue.
 */
import { readFileSync, statSync } from 'node:fs';
import { badConfig } from '../errors.js';
import {
  KCPTUBE_DEFAULT_MODE, KCPTUBE_MANUAL_WND, KCPTUBE_PRESETS, isKcptubeMode, type KcptubeKcpMode, type KcptubeKcpParams,
} from './modes.js';
import { CRYPT_OVERHEAD, type KcptubeCipher } from './crypt.js';
import { FEC_OVERHEAD, TUNNEL_HEADER_SIZE } from './wire.js';

export type KcptubeRole = 'client' | 'server' | 'relay';

export interface PortRange {
  start: number;
  end: number;
}

/** The settings of one KCP side (client, server, or one section of a relay), defaults applied. */
export interface KcptubeSide extends KcptubeKcpParams {
  listenOn: string[];
  listenPorts: PortRange | null;
  destinationAddresses: string[];
  destinationPorts: PortRange | null;
  /** Seconds between destination-port changes; 0 disables hopping. */
  dportRefresh: number;
  encryption: KcptubeCipher;
  password: string;
  /** Seconds an idle UDP session lives (application ↔ kcptube). */
  udpTimeout: number;
  /** Seconds between keep-alives between the KCP ends; 0 disables. */
  keepAlive: number;
  muxTunnels: number;
  stunServer: string;
  logPath: string;
  /** FEC data:redundant shards; both 0 when off. */
  fecData: number;
  fecRedundant: number;
  /** The KCP engine's datagram budget (segments + FEC header), kcptube's kcp_mtu. */
  kcpMtu: number;
  kcp: KcptubeKcpMode;
  /** Bits per second; 0 means not set. */
  outboundBandwidth: number;
  inboundBandwidth: number;
  ipv4Only: boolean;
  ipv6Only: boolean;
  /** Flush KCP on every write (kcptube's Refresh) rather than at the next interval tick. Default on. */
  blast: boolean;
}

export interface KcptubeConfig {
  file: string;
  mode: KcptubeRole;
  /** Client or server settings; in relay mode the [listener] side. */
  main: KcptubeSide;
  /** Relay mode only: the [forwarder] side. */
  forwarder: KcptubeSide | null;
}

export interface ConfigIssue {
  file: string;
  /** 1-based line, 0 when the problem is the file as a whole (a missing key). */
  line: number;
  key: string;
  problem: string;
}

export const DPORT_REFRESH_DEFAULT = 60;
export const DPORT_REFRESH_MIN = 20;
const DPORT_REFRESH_MAX = 32767;
export const UDP_TIMEOUT_DEFAULT = 180;
/** kcptube's packet_length − 2 bytes of checksum/IV: the KCP MTU without FEC. */
export const KCP_MTU_DEFAULT = 1418;
/** With FEC, kcptube leaves room for its 13-byte FEC header. */
export const KCP_MTU_FEC_DEFAULT = 1405;
/** The KCP engine's largest datagram, all headers included (kcp-go's mtuLimit). */
const MAX_DATAGRAM = 1500;
/** IPv6 + UDP headers, taken off `mtu` to get the UDP payload budget. */
const IP_UDP_HEADERS = 48;

const CIPHERS: Record<string, KcptubeCipher> = {
  none: 'none', 'aes-gcm': 'aes-gcm', 'aes-ocb': 'aes-ocb', chacha20: 'chacha20', xchacha20: 'xchacha20',
};

/** Raw values of one scope, keyed by config key, with the line each came from. */
type Scope = Map<string, { value: string; line: number }>;

const KEYS = new Set([
  'mode', 'listen_on', 'listen_port', 'destination_address', 'destination_port', 'dport_refresh',
  'encryption_algorithm', 'encryption_password', 'udp_timeout', 'keep_alive', 'mux_tunnels', 'stun_server',
  'log_path', 'fec', 'mtu', 'kcp_mtu', 'kcp', 'kcp_sndwnd', 'kcp_rcvwnd', 'kcp_nodelay', 'kcp_interval',
  'kcp_resend', 'kcp_nc', 'outbound_bandwidth', 'inbound_bandwidth', 'ipv4_only', 'ipv6_only', 'blast',
]);

/**
 * Bandwidth in bits per second from kcptube's notation: a plain number is bps; an upper-case K/M/G
 * suffix multiplies by 1024, 1024², 1024³, a lower-case k/m/g by 1000, 1000², 1000³.
 * Returns null for anything else.
 */
export function parseBandwidth(text: string): number | null {
  const m = /^(\d+)([KkMmGg]?)$/.exec(text.trim());
  if (m === null) return null;
  const n = Number(m[1]);
  const unit = m[2]!;
  const base = unit === '' ? 1 : unit === unit.toUpperCase() ? 1024 : 1000;
  const power = 'kmg'.indexOf(unit.toLowerCase()) + 1;
  const v = n * base ** power;
  return Number.isSafeInteger(v) ? v : null;
}

/** "N" or "N-M", ports 1..65535, N ≤ M. */
export function parsePortRange(text: string): PortRange | null {
  const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(text.trim());
  if (m === null) return null;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start < 1 || end > 65535 || start > end) return null;
  return { start, end };
}

function parseBool(text: string): boolean | null {
  const v = text.toLowerCase();
  if (v === 'yes' || v === 'true' || v === '1') return true;
  if (v === 'no' || v === 'false' || v === '0') return false;
  return null;
}

function parseInt32(text: string): number | null {
  return /^-?\d{1,10}$/.test(text) ? Number(text) : null;
}

/** Splits the text into scopes: top level, and relay mode's [listener] / [forwarder]. */
function splitScopes(file: string, text: string, issues: ConfigIssue[]): Record<'top' | 'listener' | 'forwarder', Scope | null> {
  const scopes: Record<'top' | 'listener' | 'forwarder', Scope | null> = { top: new Map(), listener: null, forwarder: null };
  let current = scopes.top!;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const lineNo = i + 1;
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[') && line.endsWith(']')) {
      const name = line.slice(1, -1).trim().toLowerCase();
      if (name !== 'listener' && name !== 'forwarder') {
        issues.push({ file, line: lineNo, key: line, problem: 'unknown section' });
        continue;
      }
      current = scopes[name] ??= new Map();
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) {
      issues.push({ file, line: lineNo, key: line, problem: 'not a key=value line' });
      continue;
    }
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    if (!KEYS.has(key)) {
      issues.push({ file, line: lineNo, key, problem: 'unknown key' });
      continue;
    }
    if (value === '') continue; // kcptube ignores empty values
    if (current.has(key)) issues.push({ file, line: lineNo, key, problem: `set twice (first on line ${current.get(key)!.line})` });
    current.set(key, { value, line: lineNo });
  }
  return scopes;
}

/** Resolves one side from its scope, falling back to the top level for keys the section lacks. */
function resolveSide(file: string, scope: Scope, top: Scope | null, issues: ConfigIssue[]): KcptubeSide {
  const get = (key: string): { value: string; line: number } | undefined => scope.get(key) ?? top?.get(key);
  const bad = (key: string, problem: string): void => {
    issues.push({ file, line: get(key)?.line ?? 0, key, problem });
  };
  const int = (key: string, min: number, max: number): number | null => {
    const e = get(key);
    if (e === undefined) return null;
    const n = parseInt32(e.value);
    if (n === null || n < min || n > max) {
      bad(key, `must be an integer in [${min}, ${max}], got "${e.value}"`);
      return null;
    }
    return n;
  };
  const bool = (key: string, absent = false): boolean => {
    const e = get(key);
    if (e === undefined) return absent;
    const b = parseBool(e.value);
    if (b === null) bad(key, `must be yes/true/1 or no/false/0, got "${e.value}"`);
    return b ?? absent;
  };
  const ports = (key: string): PortRange | null => {
    const e = get(key);
    if (e === undefined) return null;
    const r = parsePortRange(e.value);
    if (r === null) bad(key, `must be a port 1-65535 or a range N-M, got "${e.value}"`);
    return r;
  };
  const list = (key: string): string[] => {
    const e = get(key);
    if (e === undefined) return [];
    const items = e.value.split(',').map((s) => s.trim().replace(/^\[(.*)\]$/, '$1'));
    if (items.some((s) => s === '' || /\s/.test(s))) bad(key, `must be a comma-separated list of addresses, got "${e.value}"`);
    return items.filter((s) => s !== '');
  };
  const bandwidth = (key: string): number => {
    const e = get(key);
    if (e === undefined) return 0;
    const v = parseBandwidth(e.value);
    if (v === null) bad(key, `must be a number of bits/s with an optional K/M/G (binary) or k/m/g (decimal) suffix, got "${e.value}"`);
    return v ?? 0;
  };

  let encryption: KcptubeCipher = 'none';
  const alg = get('encryption_algorithm');
  if (alg !== undefined) {
    const c = CIPHERS[alg.value.toLowerCase()];
    if (c === undefined) bad('encryption_algorithm', `must be one of AES-GCM, AES-OCB, chacha20, xchacha20, none, got "${alg.value}"`);
    else encryption = c;
  }
  const password = get('encryption_password')?.value ?? '';
  if (encryption !== 'none' && password === '') bad('encryption_password', `is required with encryption_algorithm=${alg!.value}`);

  let fecData = 0;
  let fecRedundant = 0;
  const fec = get('fec');
  if (fec !== undefined) {
    const m = /^(\d{1,3})\s*:\s*(\d{1,3})$/.exec(fec.value);
    if (m === null) bad('fec', `must be D:R, got "${fec.value}"`);
    else if (Number(m[1]) + Number(m[2]) > 255) bad('fec', `D + R must be at most 255, got "${fec.value}"`);
    else if (Number(m[1]) > 0 && Number(m[2]) > 0) {
      fecData = Number(m[1]);
      fecRedundant = Number(m[2]);
    }
  }

  const modeEntry = get('kcp');
  let kcp: KcptubeKcpMode = KCPTUBE_DEFAULT_MODE;
  if (modeEntry !== undefined) {
    const v = modeEntry.value.toLowerCase();
    if (isKcptubeMode(v)) kcp = v;
    else bad('kcp', `must be manual, fast1..fast6 or regular1..regular5, got "${modeEntry.value}"`);
  }
  const preset = kcp === 'manual' ? null : KCPTUBE_PRESETS[kcp];
  const tuned = (key: string, min: number, max: number, fallback: number | undefined): number => {
    const v = key === 'kcp_nc' ? ncValue() : int(key, min, max);
    if (v !== null) return v;
    if (fallback === undefined) {
      if (get(key) === undefined) issues.push({ file, line: modeEntry?.line ?? 0, key, problem: 'is required with kcp=manual' });
      return 0;
    }
    return fallback;
  };
  const ncValue = (): number | null => {
    if (get('kcp_nc') === undefined) return null;
    return bool('kcp_nc') ? 1 : 0;
  };

  let dportRefresh = DPORT_REFRESH_DEFAULT;
  const dr = int('dport_refresh', 0, 65535);
  if (dr !== null) dportRefresh = dr === 0 ? 0 : Math.min(DPORT_REFRESH_MAX, Math.max(DPORT_REFRESH_MIN, dr));

  const udpTimeout = int('udp_timeout', 0, 65535) || UDP_TIMEOUT_DEFAULT;

  const mtu = int('mtu', 300, 65535);
  const kcpMtuSet = int('kcp_mtu', 100, 65000);
  let kcpMtu = kcpMtuSet ?? (fecData > 0 ? KCP_MTU_FEC_DEFAULT : KCP_MTU_DEFAULT);
  if (mtu !== null && kcpMtuSet === null) {
    // The UDP payload that fits in one IP packet, less our tunnel header and the cipher's bytes.
    kcpMtu = mtu - IP_UDP_HEADERS - TUNNEL_HEADER_SIZE - CRYPT_OVERHEAD[encryption] - (fecData > 0 ? FEC_OVERHEAD : 0);
    if (kcpMtu < 100) bad('mtu', `leaves only ${kcpMtu} bytes for KCP`);
  }
  const whole = kcpMtu + TUNNEL_HEADER_SIZE + CRYPT_OVERHEAD[encryption] + (fecData > 0 ? FEC_OVERHEAD : 0);
  if (whole > MAX_DATAGRAM) {
    bad(kcpMtuSet !== null ? 'kcp_mtu' : 'mtu', `makes ${whole}-byte datagrams; the KCP engine's limit is ${MAX_DATAGRAM}`);
  }

  const logPath = get('log_path')?.value ?? '';
  if (logPath !== '') {
    let isDir = false;
    try {
      isDir = statSync(logPath).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) bad('log_path', `"${logPath}" is not an existing directory`);
  }

  const side: KcptubeSide = {
    listenOn: list('listen_on'),
    listenPorts: ports('listen_port'),
    destinationAddresses: list('destination_address'),
    destinationPorts: ports('destination_port'),
    dportRefresh,
    encryption,
    password,
    udpTimeout,
    keepAlive: int('keep_alive', 0, 65535) ?? 0,
    muxTunnels: int('mux_tunnels', 0, 65535) ?? 0,
    stunServer: get('stun_server')?.value ?? '',
    logPath,
    fecData,
    fecRedundant,
    kcpMtu,
    kcp,
    sndWnd: int('kcp_sndwnd', 1, 65535) ?? preset?.sndWnd ?? KCPTUBE_MANUAL_WND,
    rcvWnd: int('kcp_rcvwnd', 1, 65535) ?? preset?.rcvWnd ?? KCPTUBE_MANUAL_WND,
    nodelay: tuned('kcp_nodelay', 0, 2, preset?.nodelay),
    interval: tuned('kcp_interval', 0, 5000, preset?.interval),
    resend: tuned('kcp_resend', 0, 65535, preset?.resend),
    nc: tuned('kcp_nc', 0, 1, preset?.nc),
    outboundBandwidth: bandwidth('outbound_bandwidth'),
    inboundBandwidth: bandwidth('inbound_bandwidth'),
    ipv4Only: bool('ipv4_only'),
    ipv6Only: bool('ipv6_only'),
    blast: bool('blast', true), // kcptube's default is on
  };
  if (side.ipv4Only && side.ipv6Only) bad('ipv6_only', 'ipv4_only and ipv6_only are both set');
  return side;
}

/** Parses one config file's text; never throws. `config` is null when the mode is unusable. */
export function parseKcptubeConfig(file: string, text: string): { config: KcptubeConfig | null; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const scopes = splitScopes(file, text, issues);
  const top = scopes.top!;
  const missing = (key: string, problem = 'is required'): void => {
    if (!issues.some((i) => i.key === key)) issues.push({ file, line: 0, key, problem }); // one issue per key
  };
  const modeEntry = top.get('mode');
  const mode = modeEntry?.value.toLowerCase();
  if (mode !== 'client' && mode !== 'server' && mode !== 'relay') {
    if (modeEntry === undefined) missing('mode', 'is required (client, server or relay)');
    else issues.push({ file, line: modeEntry.line, key: 'mode', problem: `must be client, server or relay, got "${modeEntry.value}"` });
    return { config: null, issues };
  }
  for (const s of ['listener', 'forwarder'] as const) {
    if (scopes[s] !== null && mode !== 'relay') missing(`[${s}]`, 'is a relay-mode section');
  }

  let main: KcptubeSide;
  let forwarder: KcptubeSide | null = null;
  if (mode === 'relay') {
    if (scopes.listener === null) missing('[listener]', 'is required in relay mode');
    if (scopes.forwarder === null) missing('[forwarder]', 'is required in relay mode');
    main = resolveSide(file, scopes.listener ?? new Map(), top, issues);
    forwarder = resolveSide(file, scopes.forwarder ?? new Map(), top, issues);
    if (main.listenPorts === null) missing('listen_port', 'is required in [listener]');
    if (forwarder.destinationAddresses.length === 0) missing('destination_address', 'is required in [forwarder]');
    if (forwarder.destinationPorts === null) missing('destination_port', 'is required in [forwarder]');
    if (main.muxTunnels > 0 || forwarder.muxTunnels > 0) missing('mux_tunnels', 'is for client mode only');
  } else {
    main = resolveSide(file, top, null, issues);
    if (main.listenPorts === null) missing('listen_port');
    if (main.destinationAddresses.length === 0) missing('destination_address');
    if (main.destinationPorts === null) missing('destination_port');
    if (mode === 'client' && main.listenPorts !== null && main.listenPorts.start !== main.listenPorts.end) {
      missing('listen_port', 'must be a single port in client mode (ranges are for server mode)');
    }
    if (mode === 'server') {
      if (main.destinationPorts !== null && main.destinationPorts.start !== main.destinationPorts.end) {
        missing('destination_port', 'must be a single port in server mode (ranges are for client mode)');
      }
      if (main.destinationAddresses.length > 1) missing('destination_address', 'must be a single address in server mode');
      if (main.muxTunnels > 0) missing('mux_tunnels', 'is for client mode only');
    }
  }
  if (main.stunServer !== '' && main.listenPorts !== null && main.listenPorts.start !== main.listenPorts.end) {
    missing('stun_server', 'cannot be used with a listen_port range');
  }
  return { config: issues.length === 0 ? { file, mode, main, forwarder } : null, issues };
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}${i.line > 0 ? `:${i.line}` : ''}: ${i.key}: ${i.problem}`;
}

/** Reads and parses a file; throws one TSTIER_E_BAD_CONFIG naming every bad key. */
export function loadKcptubeConfig(path: string): KcptubeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw badConfig(path, `cannot read: ${(e as Error).message}`);
  }
  const { config, issues } = parseKcptubeConfig(path, text);
  if (config === null) {
    throw badConfig(issues.map((i) => i.key).join(', '), issues.map(formatIssue).join('; '));
  }
  return config;
}
