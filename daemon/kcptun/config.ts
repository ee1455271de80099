/**
 * kcptun's command line and JSON config (-c), with kcptun v20210922's flag names, meanings and
 * defaults, plus the later `--framesize`, `--closewait` and `--ratelimit`.
 *
 * Order of precedence is kcptun's: defaults, then flags, then the JSON file overriding only the
 * keys it contains (case-insensitive keys, unknown keys ignored, as Go's encoding/json does).
 * Every problem is a `TSTIER_E_BAD_CONFIG` naming the flag or key.
 */
import { requireFakeTcpCapabilities } from '../faketcp/firewall.js';
import { readFileSync } from 'node:fs';
import { badConfig } from '../errors.js';
import { kcpModeParams, type KcpMode } from '../transport/kcp/modes.js';

export type KcptunRole = 'client' | 'server';

export interface KcptunConfig {
  role: KcptunRole;
  /** Client: where TCP is accepted. Server: the UDP listen address (`host:port` or `host:min-max`). */
  localaddr: string;
  /** Client: the kcptun server (`host:port` or `host:min-max`). Server: the TCP target. */
  remoteaddr: string;
  key: string;
  crypt: string;
  mode: string;
  conn: number;
  autoexpire: number;
  scavengettl: number;
  mtu: number;
  sndwnd: number;
  rcvwnd: number;
  datashard: number;
  parityshard: number;
  dscp: number;
  nocomp: boolean;
  acknodelay: boolean;
  nodelay: number;
  interval: number;
  resend: number;
  nc: number;
  sockbuf: number;
  smuxver: number;
  smuxbuf: number;
  framesize: number;
  streambuf: number;
  keepalive: number;
  closewait: number;
  ratelimit: number;
  snmplog: string;
  snmpperiod: number;
  log: string;
  quiet: boolean;
  tcp: boolean;
  pprof: boolean;
}

type Kind = 'string' | 'int' | 'bool';
interface FlagSpec {
  /** Field in KcptunConfig. */
  field: keyof KcptunConfig;
  /** Long flag name (also the JSON key unless `json` says otherwise). */
  name: string;
  aliases?: string[];
  kind: Kind;
  roles: KcptunRole[];
  json?: string;
}

const BOTH: KcptunRole[] = ['client', 'server'];
const FLAGS: FlagSpec[] = [
  { field: 'localaddr', name: 'localaddr', aliases: ['l'], kind: 'string', roles: ['client'] },
  { field: 'remoteaddr', name: 'remoteaddr', aliases: ['r'], kind: 'string', roles: ['client'] },
  { field: 'localaddr', name: 'listen', aliases: ['l'], kind: 'string', roles: ['server'] },
  { field: 'remoteaddr', name: 'target', aliases: ['t'], kind: 'string', roles: ['server'] },
  { field: 'key', name: 'key', kind: 'string', roles: BOTH },
  { field: 'crypt', name: 'crypt', kind: 'string', roles: BOTH },
  { field: 'mode', name: 'mode', kind: 'string', roles: BOTH },
  { field: 'conn', name: 'conn', kind: 'int', roles: ['client'] },
  { field: 'autoexpire', name: 'autoexpire', kind: 'int', roles: ['client'] },
  { field: 'scavengettl', name: 'scavengettl', kind: 'int', roles: ['client'] },
  { field: 'mtu', name: 'mtu', kind: 'int', roles: BOTH },
  { field: 'sndwnd', name: 'sndwnd', kind: 'int', roles: BOTH },
  { field: 'rcvwnd', name: 'rcvwnd', kind: 'int', roles: BOTH },
  { field: 'datashard', name: 'datashard', aliases: ['ds'], kind: 'int', roles: BOTH },
  { field: 'parityshard', name: 'parityshard', aliases: ['ps'], kind: 'int', roles: BOTH },
  { field: 'dscp', name: 'dscp', kind: 'int', roles: BOTH },
  { field: 'nocomp', name: 'nocomp', kind: 'bool', roles: BOTH },
  { field: 'acknodelay', name: 'acknodelay', kind: 'bool', roles: BOTH },
  { field: 'nodelay', name: 'nodelay', kind: 'int', roles: BOTH },
  { field: 'interval', name: 'interval', kind: 'int', roles: BOTH },
  { field: 'resend', name: 'resend', kind: 'int', roles: BOTH },
  { field: 'nc', name: 'nc', kind: 'int', roles: BOTH },
  { field: 'sockbuf', name: 'sockbuf', kind: 'int', roles: BOTH },
  { field: 'smuxver', name: 'smuxver', kind: 'int', roles: BOTH },
  { field: 'smuxbuf', name: 'smuxbuf', kind: 'int', roles: BOTH },
  { field: 'framesize', name: 'framesize', kind: 'int', roles: BOTH },
  { field: 'streambuf', name: 'streambuf', kind: 'int', roles: BOTH },
  { field: 'keepalive', name: 'keepalive', kind: 'int', roles: BOTH },
  { field: 'closewait', name: 'closewait', kind: 'int', roles: BOTH },
  { field: 'ratelimit', name: 'ratelimit', kind: 'int', roles: BOTH },
  { field: 'snmplog', name: 'snmplog', kind: 'string', roles: BOTH },
  { field: 'snmpperiod', name: 'snmpperiod', kind: 'int', roles: BOTH },
  { field: 'log', name: 'log', kind: 'string', roles: BOTH },
  { field: 'quiet', name: 'quiet', kind: 'bool', roles: BOTH },
  { field: 'tcp', name: 'tcp', kind: 'bool', roles: BOTH },
  { field: 'pprof', name: 'pprof', kind: 'bool', roles: ['server'] },
];

export const KCPTUN_DEFAULT_KEY = "it's a secrect";

export function defaultKcptunConfig(role: KcptunRole): KcptunConfig {
  const client = role === 'client';
  return {
    role,
    localaddr: client ? ':12948' : ':29900',
    remoteaddr: client ? 'vps:29900' : '127.0.0.1:12948',
    key: KCPTUN_DEFAULT_KEY,
    crypt: 'aes',
    mode: 'fast',
    conn: 1,
    autoexpire: 0,
    scavengettl: 600,
    mtu: 1350,
    sndwnd: client ? 128 : 1024,
    rcvwnd: client ? 512 : 1024,
    datashard: 10,
    parityshard: 3,
    dscp: 0,
    nocomp: false,
    acknodelay: false,
    nodelay: 0,
    interval: 50,
    resend: 0,
    nc: 0,
    sockbuf: 4194304,
    smuxver: 1,
    smuxbuf: 4194304,
    framesize: 32768,
    streambuf: 2097152,
    keepalive: 10,
    closewait: 0,
    ratelimit: 0,
    snmplog: '',
    snmpperiod: 60,
    log: '',
    quiet: false,
    tcp: false,
    pprof: false,
  };
}

/** The ciphers of kcptun 2021 (`--crypt`). */
/** kcptun 2021's ciphers, plus the newer null and aes-128-gcm (kcptun ≥ 2022-06 / v20251212; not in the 2021 binary). */
export const KCPTUN_CIPHERS = [
  'aes', 'aes-128', 'aes-192', 'salsa20', 'blowfish', 'twofish', 'cast5', '3des', 'tea', 'xtea', 'xor', 'sm4', 'none',
  'null', 'aes-128-gcm',
] as const;

const KCPTUN_MODE_NAMES: readonly KcpMode[] = ['normal', 'fast', 'fast2', 'fast3', 'manual'];

export interface ParseResult {
  config: KcptunConfig;
  /** `--help`/`--version` was asked for; print and exit 0. */
  help?: 'help' | 'version';
}

function findFlag(role: KcptunRole, name: string): FlagSpec | undefined {
  return FLAGS.find((f) => f.roles.includes(role) && (f.name === name || f.aliases?.includes(name)));
}

function parseInt10(flag: string, text: string): number {
  if (!/^[+-]?\d+$/.test(text.trim())) throw badConfig(flag, `not an integer: ${JSON.stringify(text)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw badConfig(flag, `out of range: ${text}`);
  return n;
}

function parseBool(flag: string, text: string): boolean {
  // Go's strconv.ParseBool spellings.
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text)) return false;
  throw badConfig(flag, `not a boolean: ${JSON.stringify(text)}`);
}

function assign(cfg: KcptunConfig, spec: FlagSpec, value: string | number | boolean): void {
  (cfg as unknown as Record<string, unknown>)[spec.field] = value;
}

/**
 * Parses argv (without the `client`/`server` word) the way urfave/cli does for kcptun:
 * `-x v`, `--x v`, `--x=v`; booleans take no value unless written `--x=false`.
 */
export function parseKcptunArgs(
  role: KcptunRole,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  readText: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): ParseResult {
  const cfg = defaultKcptunConfig(role);
  if (env.KCPTUN_KEY !== undefined && env.KCPTUN_KEY !== '') cfg.key = env.KCPTUN_KEY;
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-' || arg === '--') throw badConfig(arg, 'unexpected argument');
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    let inline: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (name === 'help' || name === 'h') return { config: cfg, help: 'help' };
    if (name === 'version' || name === 'v') return { config: cfg, help: 'version' };
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw badConfig(`--${name}`, 'needs a value');
      return v;
    };
    if (name === 'c') {
      configFile = takeValue();
      continue;
    }
    const spec = findFlag(role, name);
    if (!spec) throw badConfig(`--${name}`, `unknown flag for kcptun ${role}`);
    const flag = `--${spec.name}`;
    if (spec.kind === 'bool') assign(cfg, spec, inline === undefined ? true : parseBool(flag, inline));
    else if (spec.kind === 'int') assign(cfg, spec, parseInt10(flag, takeValue()));
    else assign(cfg, spec, takeValue());
    inline = undefined;
  }
  if (configFile !== undefined) applyJsonConfig(cfg, configFile, readText);
  applyMode(cfg);
  validate(cfg);
  return { config: cfg };
}

/** `-c` JSON keys per role, as kcptun names them, including the later framesize/closewait/ratelimit. */
function jsonKeyOf(spec: FlagSpec): string {
  return spec.json ?? spec.name;
}

function applyJsonConfig(cfg: KcptunConfig, path: string, readText: (path: string) => string): void {
  let text: string;
  try {
    text = readText(path);
  } catch (e) {
    throw badConfig('-c', `cannot read ${path}: ${(e as Error).message}`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw badConfig('-c', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw badConfig('-c', `${path} must hold a JSON object`);
  for (const [rawKey, value] of Object.entries(obj as Record<string, unknown>)) {
    const key = rawKey.toLowerCase();
    const spec = FLAGS.find((f) => f.roles.includes(cfg.role) && jsonKeyOf(f).toLowerCase() === key);
    if (!spec) continue; // Go's encoding/json ignores unknown keys.
    const where = `${path}: "${rawKey}"`;
    if (value === null) continue; // encoding/json leaves the field unchanged for null
    if (spec.kind === 'bool') {
      if (typeof value !== 'boolean') throw badConfig(where, 'must be true or false');
      assign(cfg, spec, value);
    } else if (spec.kind === 'int') {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw badConfig(where, 'must be an integer');
      assign(cfg, spec, value);
    } else {
      if (typeof value !== 'string') throw badConfig(where, 'must be a string');
      assign(cfg, spec, value);
    }
  }
}

function applyMode(cfg: KcptunConfig): void {
  if (!(KCPTUN_MODE_NAMES as readonly string[]).includes(cfg.mode)) {
    throw badConfig('--mode', `unknown mode ${JSON.stringify(cfg.mode)} (${KCPTUN_MODE_NAMES.join(', ')})`);
  }
  Object.assign(cfg, kcpModeParams(cfg.mode as KcpMode, cfg));
}

function range(flag: string, v: number, lo: number, hi: number): void {
  if (v < lo || v > hi) throw badConfig(flag, `${v} is outside ${lo}..${hi}`);
}

/** Parsed `host:port` or `host:min-max` (kcptun's multiport form). */
export interface HostPortRange {
  host: string;
  minPort: number;
  maxPort: number;
}

export function parseHostPortRange(flag: string, text: string): HostPortRange {
  const m = /^(.*):([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
  if (!m) throw badConfig(flag, `expected host:port or host:min-max, got ${JSON.stringify(text)}`);
  let host = m[1]!;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const minPort = Number(m[2]);
  const maxPort = m[3] === undefined ? minPort : Number(m[3]);
  if (!(minPort <= maxPort && maxPort <= 65535)) throw badConfig(flag, `bad port range in ${JSON.stringify(text)}`);
  if (minPort === 0 && maxPort !== 0) throw badConfig(flag, `bad port range in ${JSON.stringify(text)}`);
  return { host, minPort, maxPort };
}

function validate(cfg: KcptunConfig): void {
  const client = cfg.role === 'client';
  if (!(KCPTUN_CIPHERS as readonly string[]).includes(cfg.crypt)) {
    throw badConfig('--crypt', `unknown cipher ${JSON.stringify(cfg.crypt)} (${KCPTUN_CIPHERS.join(', ')})`);
  }
  range('--mtu', cfg.mtu, 100, 1500);
  range('--sndwnd', cfg.sndwnd, 1, 65535);
  range('--rcvwnd', cfg.rcvwnd, 1, 65535);
  range('--datashard', cfg.datashard, 0, 255);
  range('--parityshard', cfg.parityshard, 0, 255);
  if (cfg.datashard > 0 && cfg.parityshard > 0 && cfg.datashard + cfg.parityshard > 255) {
    throw badConfig('--parityshard', 'datashard + parityshard must stay below 256');
  }
  range('--dscp', cfg.dscp, 0, 63);
  range('--nodelay', cfg.nodelay, 0, 2);
  range('--interval', cfg.interval, 1, 5000);
  range('--resend', cfg.resend, 0, 1000);
  range('--nc', cfg.nc, 0, 1);
  range('--sockbuf', cfg.sockbuf, 0, 1 << 30);
  if (cfg.smuxver !== 1 && cfg.smuxver !== 2) throw badConfig('--smuxver', `must be 1 or 2, got ${cfg.smuxver}`);
  range('--smuxbuf', cfg.smuxbuf, 1024, 1 << 30);
  range('--framesize', cfg.framesize, 256, 65535);
  range('--streambuf', cfg.streambuf, 1024, 1 << 30);
  range('--keepalive', cfg.keepalive, 1, 86400);
  range('--closewait', cfg.closewait, 0, 86400);
  range('--ratelimit', cfg.ratelimit, 0, 2 ** 40);
  range('--snmpperiod', cfg.snmpperiod, 1, 86400);
  if (client) {
    range('--conn', cfg.conn, 1, 4096);
    range('--autoexpire', cfg.autoexpire, 0, 2 ** 31);
    range('--scavengettl', cfg.scavengettl, 0, 2 ** 31);
    parseHostPortRange('--localaddr', cfg.localaddr);
    parseHostPortRange('--remoteaddr', cfg.remoteaddr);
  } else {
    parseHostPortRange('--listen', cfg.localaddr);
    if (!/^.*:\d{1,5}$/.test(cfg.remoteaddr) && !cfg.remoteaddr.startsWith('/')) {
      throw badConfig('--target', `expected host:port or a unix socket path, got ${JSON.stringify(cfg.remoteaddr)}`);
    }
  }
  // Fake TCP needs raw sockets and a packet-filter rule: fail at start, not at the first dial.
  if (cfg.tcp) requireFakeTcpCapabilities('--tcp');
}
