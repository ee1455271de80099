/**
 * Running a real EasyTier node (EasyTier 2.6.4, the easytier-pyo3 wheel) inside a test namespace.
 *
 *   const reason = easytierUnavailable();            // skip reason, or null
 *   const a = await startEasyTier(ns, etConfig({ name: 'net', secret: 's', ipv4: '10.9.0.1/24',
 *                                                 listeners: ['udp://0.0.0.0:11010'] }));
 *   const routes = await a.waitRoutes([b.peerId]);   // fails the test if b never shows up
 *   await a.stop();
 *
 * The node runs under test/interop/easytier/node.py in the venv that test/interop/easytier/setup.sh
 * builds (build/venv). It is kept offline: STUN lists are empty and UPnP is off, and the
 * namespaces a test creates have no default route.
 */
import { existsSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Namespace, NsProcess } from './netns.js';

const root = (p: string): string => fileURLToPath(new URL(`../../../../${p}`, import.meta.url));
export const EASYTIER_PYTHON = root('build/venv/bin/python');
export const EASYTIER_RUNNER = root('test/interop/easytier/node.py');

/** Why EasyTier interop tests cannot run here, or null if they can. */
export function easytierUnavailable(): string | null {
  if (existsSync(EASYTIER_PYTHON)) return null;
  // In CI the setup has run: a missing venv there is a failure, never a silent skip.
  if (process.env.CI) throw new Error('no EasyTier venv: bin/setup did not install it (test/interop/easytier/setup.sh)');
  return 'no EasyTier venv: run bin/setup (test/interop/easytier/setup.sh)';
}

/** The options the interop tests vary; everything else takes EasyTier's defaults. */
export interface EtOptions {
  name: string;
  secret: string;
  /** Virtual IPv4 with prefix ("10.9.0.1/24"); absent = no address (forward-only). */
  ipv4?: string;
  hostname?: string;
  listeners?: string[];
  peers?: string[];
  /** No TUN device: the node answers and routes in its own stack (smoltcp). */
  noTun?: boolean;
  enableKcpProxy?: boolean;
  disableKcpInput?: boolean;
  enableQuicProxy?: boolean;
  disableQuicInput?: boolean;
  /** "aes-gcm" (EasyTier's default), "aes-256-gcm", "chacha20", "xor", or false for none. */
  encryption?: string | false;
  /** TUN device name (keep it unique inside the namespace). */
  devName?: string;
  /** Secure mode, with a fresh X25519 key pair (EasyTier's config needs one). */
  secureMode?: boolean;
}

/** `[secure_mode]` as EasyTier's config spells it: enabled, and a base64 X25519 key pair. */
function secureModeTable(): Record<string, unknown> {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const raw = (der: Buffer): string => der.subarray(der.length - 32).toString('base64');
  return {
    enabled: true,
    local_private_key: raw(privateKey.export({ format: 'der', type: 'pkcs8' })),
    local_public_key: raw(publicKey.export({ format: 'der', type: 'spki' })),
  };
}

/** The easytier-core config layout (TOML as a dict) for `o`. */
export function etConfig(o: EtOptions): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  if (o.noTun) flags['no_tun'] = true;
  if (o.enableKcpProxy) flags['enable_kcp_proxy'] = true;
  if (o.disableKcpInput) flags['disable_kcp_input'] = true;
  if (o.enableQuicProxy) flags['enable_quic_proxy'] = true;
  if (o.disableQuicInput) flags['disable_quic_input'] = true;
  if (o.encryption === false) flags['enable_encryption'] = false;
  else if (o.encryption !== undefined) flags['encryption_algorithm'] = o.encryption;
  if (o.devName) flags['dev_name'] = o.devName;
  return {
    instance_name: o.hostname ?? 'et',
    ...(o.hostname ? { hostname: o.hostname } : {}),
    ...(o.ipv4 ? { ipv4: o.ipv4 } : {}),
    listeners: o.listeners ?? [],
    peer: (o.peers ?? []).map((uri) => ({ uri })),
    network_identity: { network_name: o.name, network_secret: o.secret },
    flags,
    ...(o.secureMode ? { secure_mode: secureModeTable() } : {}),
  };
}

/** One row of EasyTier's routes() that the tests read (the node reports more). */
export interface EtRoute {
  peer_id: number;
  hostname?: string;
  cost: number;
  next_hop_peer_id: number;
  version?: string;
  feature_flag?: Record<string, boolean>;
  ipv4_addr?: { address: { addr: number }; network_length: number };
}

/** A running EasyTier node; queries are answered in order, one at a time. */
export class EasyTierNode {
  readonly proc: NsProcess;
  readonly peerId: number;
  readonly version: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(proc: NsProcess, peerId: number, version: string) {
    this.proc = proc;
    this.peerId = peerId;
    this.version = version;
  }

  /** Sends one query line and resolves with its `result` (rejects on the runner's error line). */
  query<T>(line: string, event: string, timeoutMs = 15_000): Promise<T> {
    const next = this.#queue.then(async () => {
      this.proc.send(line);
      const m = await this.proc.waitForLine(/^\{"event": "(?!ready)/, timeoutMs);
      const reply = JSON.parse(m.input!) as { event: string; result?: T; error?: string };
      if (reply.event !== event) throw new Error(`EasyTier node: ${line}: ${reply.error ?? reply.event}`);
      return reply.result as T;
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  routes(): Promise<EtRoute[]> {
    return this.query<EtRoute[]>('routes', 'routes');
  }

  peers(): Promise<Record<string, unknown>[]> {
    return this.query('peers', 'peers');
  }

  metrics(): Promise<Record<string, unknown>[]> {
    return this.query('metrics', 'metrics');
  }

  /** Resolves with the routes once every id in `peerIds` is listed; rejects with the last routes after `timeoutS`. */
  async waitRoutes(peerIds: number[], timeoutS = 20): Promise<EtRoute[]> {
    const line = JSON.stringify({ q: 'wait_routes', peer_ids: peerIds, timeout_s: timeoutS });
    const r = await this.query<{ ok: boolean; routes: EtRoute[] }>(line, 'wait_routes', (timeoutS + 5) * 1000);
    if (!r.ok) throw new Error(`EasyTier ${this.peerId}: routes never listed ${peerIds.join(', ')}; last: ${JSON.stringify(r.routes)}`);
    return r.routes;
  }

  /** Stops the node cleanly (its TUN goes with it), killing it if it does not exit. */
  async stop(): Promise<void> {
    this.proc.send('stop');
    await this.proc.stop(5000);
  }
}

/** Starts an EasyTier node in `ns` with `config` (see etConfig) and waits until it runs. */
export async function startEasyTier(ns: Namespace, config: Record<string, unknown>): Promise<EasyTierNode> {
  const proc = ns.spawn([EASYTIER_PYTHON, EASYTIER_RUNNER, JSON.stringify(config)]);
  const m = await proc.waitForLine(/^\{"event": "ready"/, 30_000);
  const ready = JSON.parse(m.input!) as { peer_id: number; version: string };
  return new EasyTierNode(proc, ready.peer_id, ready.version);
}
