/**
 * An EasyTier TOML config file → a Layer. Keys we do not support are ignored with a warning, as
 * EasyTier ignores unknown `[flags]` keys; a supported key with a bad value is an error naming
 * the key (`flags.mtu`, `peer[1].uri`, ...).
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import { badConfig, TstierError } from '../errors.js';
import type { PortForwardSpec, ProxyNetwork } from './node-config.js';
import { parsePortForward } from './port-forward-value.js';
import { parseSecureKeyPair } from './peer-protocol-value.js';
import { OPTIONS, type Layer, type OptionDef } from './options.js';
import { parseIpv4Cidr, parseMappedCidr, parsePeerUri } from './values.js';

export interface FileLayer {
  layer: Layer;
  /** One line per ignored key, for the daemon to log. */
  warnings: string[];
}

type Table = Record<string, unknown>;

const isTable = (value: unknown): value is Table =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);

// Tables of [[array]] entries handled below rather than through OPTIONS.
const ARRAY_TABLES = new Set(['peer', 'proxy_network', 'port_forward']);

/**
 * A config file is a few KiB of TOML; this bound keeps a wrong path (a log, an image) from being
 * read whole into memory.
 */
export const CONFIG_FILE_MAX_BYTES = 1024 * 1024;

/** Reads and parses the file at `path`; `name` is how the user gave it (--config-file, ET_CONFIG_FILE). */
export function readConfigFile(path: string, name: string): FileLayer {
  return parseConfigToml(readBoundedFile(path, name), path);
}

/**
 * Only a regular file, of at most CONFIG_FILE_MAX_BYTES: a device such as /dev/zero or a FIFO
 * would never end (or never start). The read itself is bounded too, in case the file grows.
 */
function readBoundedFile(path: string, name: string): string {
  const quoted = JSON.stringify(path);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw badConfig(name, `cannot read ${quoted}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw badConfig(name, `${quoted} is not a regular file`);
    if (st.size > CONFIG_FILE_MAX_BYTES) {
      throw badConfig(name, `${quoted} is ${st.size} bytes; a config file may have at most ${CONFIG_FILE_MAX_BYTES}`);
    }
    const buf = Buffer.alloc(CONFIG_FILE_MAX_BYTES + 1);
    let len = 0;
    for (let n = 1; n > 0 && len < buf.length; len += n) n = readSync(fd, buf, len, buf.length - len, null);
    if (len > CONFIG_FILE_MAX_BYTES) throw badConfig(name, `${quoted} grew past ${CONFIG_FILE_MAX_BYTES} bytes while being read`);
    return buf.toString('utf8', 0, len);
  } catch (err) {
    if (err instanceof TstierError) throw err;
    throw badConfig(name, `cannot read ${quoted}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

export function parseConfigToml(text: string, origin: string): FileLayer {
  let doc: Table;
  try {
    doc = parse(text) as Table;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const first = err.message.split('\n')[0] ?? 'invalid TOML';
    throw new TstierError('TSTIER_E_BAD_CONFIG', `${origin}: ${first} (line ${err.line}, column ${err.column})`, { cause: err });
  }
  const layer: Layer = {};
  const warnings: string[] = [];
  const known = new Set<string>();
  const where = ` (in ${origin})`;
  const wrap = (fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      if (err instanceof TstierError) err.message += where;
      throw err;
    }
  };

  for (const def of OPTIONS) {
    if (def.toml === undefined) continue;
    known.add(def.toml.join('.'));
    const value = lookup(doc, def.toml);
    if (value !== undefined) wrap(() => setFromToml(layer, def, value, def.toml!.join('.')));
  }
  wrap(() => {
    if (doc['peer'] !== undefined) layer.peers = readPeers(doc['peer']);
    if (doc['proxy_network'] !== undefined) layer.proxyNetworks = readProxyNetworks(doc['proxy_network']);
    if (doc['port_forward'] !== undefined) layer.portForwards = readPortForwards(doc['port_forward']);
    const key = readSecureKey(doc['secure_mode']);
    if (key) layer.secureStaticKey = key;
  });
  for (const k of SECURE_KEYS) known.add(`secure_mode.${k}`);
  for (const key of unknownKeys(doc, known)) {
    warnings.push(key === 'rpc_portal'
      ? `config: ignoring rpc_portal in ${origin}; set it with -r/--rpc-portal (as EasyTier since 2.5)`
      : `config: ignoring unsupported key ${key} in ${origin}`);
  }
  return { layer, warnings };
}

function lookup(doc: Table, path: readonly string[]): unknown {
  let node: unknown = doc;
  for (const part of path) {
    if (!isTable(node)) return undefined;
    node = node[part];
  }
  return node;
}

function setFromToml(layer: Layer, def: OptionDef, value: unknown, name: string): void {
  const target = layer as Record<string, unknown>;
  if (def.kind === 'list') {
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
      throw badConfig(name, 'must be an array of strings');
    }
    target[def.field] = value.flatMap((item, i) => def.parse(item, `${name}[${i}]`) as unknown[]);
    return;
  }
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    throw badConfig(name, `must be a ${def.kind === 'string' ? 'string' : def.kind === 'int' ? 'number' : 'boolean'}`);
  }
  target[def.field] = def.parse(String(value), name);
}

function tablesOf(value: unknown, name: string): Table[] {
  if (!Array.isArray(value) || !value.every(isTable)) throw badConfig(name, `must be written as [[${name}]] tables`);
  return value;
}

function stringField(table: Table, key: string, name: string): string | undefined {
  const value = table[key];
  if (value !== undefined && typeof value !== 'string') throw badConfig(name, 'must be a string');
  return value;
}

function readPeers(value: unknown): string[] {
  return tablesOf(value, 'peer').map((table, i) => {
    const name = `peer[${i}].uri`;
    const uri = stringField(table, 'uri', name);
    if (uri === undefined) throw badConfig(name, 'is missing');
    return parsePeerUri(uri, name);
  });
}

function readProxyNetworks(value: unknown): ProxyNetwork[] {
  return tablesOf(value, 'proxy_network').map((table, i) => {
    const cidrName = `proxy_network[${i}].cidr`;
    const cidrText = stringField(table, 'cidr', cidrName);
    if (cidrText === undefined) throw badConfig(cidrName, 'is missing');
    const real = parseIpv4Cidr(cidrText, cidrName);
    const cidr = `${real.address}/${real.prefix}`;
    const mappedName = `proxy_network[${i}].mapped_cidr`;
    const mapped = stringField(table, 'mapped_cidr', mappedName);
    return mapped === undefined ? { cidr } : { cidr, mappedCidr: parseMappedCidr(mapped, real.prefix, mappedName) };
  });
}

/** EasyTier's `[[port_forward]]` tables: bind_addr, dst_addr, proto. */
function readPortForwards(value: unknown): PortForwardSpec[] {
  return tablesOf(value, 'port_forward').map((table, i) => {
    const field = (key: string): string => {
      const v = stringField(table, key, `port_forward[${i}].${key}`);
      if (v === undefined) throw badConfig(`port_forward[${i}].${key}`, 'is missing');
      return v;
    };
    return parsePortForward(`${field('proto')}://${field('bind_addr')}/${field('dst_addr')}`, `port_forward[${i}]`);
  });
}

const SECURE_KEYS = ['local_private_key', 'local_public_key'] as const;

/** `[secure_mode]`'s static key pair (EasyTier's keys): the private key, or undefined if not given. */
function readSecureKey(value: unknown): Uint8Array | undefined {
  if (!isTable(value)) return undefined;
  const [priv, pub] = SECURE_KEYS.map((k) => stringField(value, k, `secure_mode.${k}`));
  if (priv === undefined) {
    if (pub !== undefined) throw badConfig('secure_mode.local_public_key', 'needs local_private_key beside it');
    return undefined;
  }
  return parseSecureKeyPair(priv, pub, 'secure_mode');
}

/** Dotted paths of leaf keys that neither OPTIONS nor the [[array]] tables read. */
function unknownKeys(doc: Table, known: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const [key, value] of Object.entries(doc)) {
    if (ARRAY_TABLES.has(key) || known.has(key)) continue;
    if (!isTable(value)) {
      found.push(key);
      continue;
    }
    for (const sub of Object.keys(value)) {
      if (!known.has(`${key}.${sub}`)) found.push(`${key}.${sub}`);
    }
  }
  return found;
}
