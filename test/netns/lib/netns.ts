/**
 * Network-namespace harness for tests that need real devices (TUNs, veths, sockets) without
 * touching the host's network.
 *
 *   const net = await Netns.create('tt4-tun', t);   // t: the test context; cleanup via t.after
 *   const a = await net.ns('a');                     // namespace "tt4-tun-a", loopback up
 *   const b = await net.ns('b');
 *   await net.link(a, b, '10.10.0.1/24', '10.10.0.2/24');
 *   await a.exec(['ping', '-c1', '10.10.0.2']);
 *   const p = a.node(fixtureUrl, ['--flag']);         // node itself runs inside the namespace
 *   await p.waitForLine(/listening/);
 *   await net.destroy();                              // also done by t.after and at process exit
 *
 * Names: every namespace is "<prefix>-<name>"; use one prefix per test file (start it with your
 * area's tag, e.g. "tt4"). `create` first removes leftovers with the same prefix from a crashed
 * run, killing processes still inside them. Interfaces are created inside the namespaces, so
 * their names cannot collide with the host's or another test's.
 * Waiting is event-driven (lines on stdout, process exit); timeouts only turn a hang into a failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { StringDecoder } from 'node:string_decoder';

/** What a TestContext offers that we use (kept structural so this file needs no node:test import). */
interface HasAfter {
  after(fn: () => unknown): void;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Resolve even on a non-zero exit instead of rejecting. Default false. */
  allowFailure?: boolean;
  /** Kill the command after this long (a hang becomes an error). Default 30 s. */
  timeoutMs?: number;
  /** Written to stdin, which is then closed. */
  input?: string | Uint8Array;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Runs argv to completion (outside any namespace); rejects with stderr on failure. */
export function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      if (code === 0 || opts.allowFailure) resolve(result);
      else reject(new Error(`${argv.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || stdout.trim()}`));
    });
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** Why namespace tests cannot run here, or null if they can (root and `ip` available). */
export function unavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'network-namespace tests need root';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `ip netns is unusable: ${r.error?.message ?? r.stderr}`;
  return null;
}

/** Kills every process inside the namespace, then deletes it. Synchronous: used at exit too. */
function deleteNamespaceSync(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  spawnSync('ip', ['netns', 'del', name]);
}

/** Every harness alive in this process, so an exit without cleanup still removes namespaces. */
const live = new Set<Netns>();
process.once('exit', () => {
  for (const net of live) net.destroySync();
});

export class Netns {
  readonly prefix: string;
  readonly #namespaces: Namespace[] = [];
  readonly #processes = new Set<NsProcess>();
  #links = 0;

  private constructor(prefix: string) {
    this.prefix = prefix;
  }

  /**
   * Starts a harness for names "<prefix>-*", removing leftovers of an earlier crashed run first.
   * With a test context, destroy() is registered with t.after so cleanup runs on failure too.
   */
  static async create(prefix: string, t?: HasAfter): Promise<Netns> {
    if (!/^[a-z0-9][a-z0-9-]{1,30}$/.test(prefix)) throw new Error(`bad namespace prefix "${prefix}"`);
    const list = await run(['ip', 'netns', 'list']);
    for (const line of list.stdout.split('\n')) {
      const name = line.split(' ')[0]!;
      if (name.startsWith(`${prefix}-`)) deleteNamespaceSync(name);
    }
    const net = new Netns(prefix);
    live.add(net);
    t?.after(() => net.destroy());
    return net;
  }

  /** Creates namespace "<prefix>-<name>" with loopback up. */
  async ns(name: string): Promise<Namespace> {
    const full = `${this.prefix}-${name}`;
    await run(['ip', 'netns', 'add', full]);
    const ns = new Namespace(full, this.#processes);
    this.#namespaces.push(ns);
    await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /**
   * Connects two namespaces with a veth pair and gives each end an address ("10.0.0.1/24" or an
   * IPv6 CIDR; IPv6 skips duplicate address detection so it is usable at once).
   * Returns the interface names (the same name in each namespace: "vethN").
   */
  async link(a: Namespace, b: Namespace, addrA: string, addrB: string, opts: { mtu?: number } = {}): Promise<string> {
    const ifname = `veth${this.#links++}`;
    await run(['ip', '-n', a.name, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', ifname, 'netns', b.name]);
    for (const [ns, addr] of [[a, addrA], [b, addrB]] as const) {
      const v6 = addr.includes(':');
      await ns.exec(['ip', ...(v6 ? ['-6'] : []), 'addr', 'add', addr, 'dev', ifname, ...(v6 ? ['nodad'] : [])]);
      if (opts.mtu) await ns.exec(['ip', 'link', 'set', ifname, 'mtu', String(opts.mtu)]);
      await ns.exec(['ip', 'link', 'set', ifname, 'up']);
    }
    return ifname;
  }

  /** Stops every process started through this harness and deletes its namespaces. Idempotent. */
  async destroy(): Promise<void> {
    await Promise.all([...this.#processes].map((p) => p.stop()));
    this.destroySync();
  }

  /** The synchronous part of destroy(), also run at process exit. */
  destroySync(): void {
    for (const p of this.#processes) p.kill('SIGKILL');
    for (const ns of this.#namespaces.splice(0)) deleteNamespaceSync(ns.name);
    live.delete(this);
  }
}

export class Namespace {
  readonly name: string;
  readonly #processes: Set<NsProcess>;

  constructor(name: string, processes: Set<NsProcess>) {
    this.name = name;
    this.#processes = processes;
  }

  /** Runs a command inside the namespace to completion; rejects on non-zero exit unless allowFailure. */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', this.name, ...argv], opts);
  }

  /** Starts a long-running command inside the namespace. It is stopped by Netns.destroy(). */
  spawn(argv: string[]): NsProcess {
    const p = new NsProcess(['ip', 'netns', 'exec', this.name, ...argv], this.#processes);
    this.#processes.add(p);
    return p;
  }

  /** Runs a Node script (path or file: URL, e.g. a compiled fixture) inside the namespace. */
  node(script: string | URL, args: string[] = []): NsProcess {
    const path = typeof script === 'string' ? script : fileURLToPath(script);
    return this.spawn([process.execPath, path, ...args]);
  }
}

interface LineWaiter {
  re: RegExp;
  resolve: (m: RegExpMatchArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A process running in a namespace, with its stdout split into lines you can wait for. */
export class NsProcess {
  readonly argv: string[];
  readonly child: ChildProcess;
  /** Every complete stdout line so far. */
  readonly lines: string[] = [];
  stderr = '';
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #partial = '';
  #waiters: LineWaiter[] = [];
  #searchedFrom = 0;

  constructor(argv: string[], registry: Set<NsProcess>) {
    this.argv = argv;
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const decoder = new StringDecoder('utf8');
    this.child.stdout!.on('data', (d: Buffer) => this.#onStdout(decoder.write(d)));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.child.stdin!.on('error', () => {}); // writes after exit are the test's mistake, reported by waits
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.#exit = { code, signal };
        registry.delete(this);
        this.#failWaiters();
        resolve(this.#exit);
      };
      this.child.on('close', done);
      this.child.on('error', (e) => {
        this.stderr += String(e);
        done(null, null);
      });
    });
  }

  #onStdout(text: string): void {
    const parts = (this.#partial + text).split('\n');
    this.#partial = parts.pop()!;
    for (const line of parts) {
      this.lines.push(line);
      for (const w of [...this.#waiters]) {
        const m = w.re.exec(line);
        if (m) this.#settle(w, () => w.resolve(m));
      }
    }
  }

  #settle(w: LineWaiter, fn: () => void): void {
    clearTimeout(w.timer);
    this.#waiters = this.#waiters.filter((x) => x !== w);
    fn();
  }

  #failWaiters(): void {
    for (const w of [...this.#waiters]) {
      this.#settle(w, () => w.reject(new Error(`${this.#describe()} exited before a line matched ${w.re}`)));
    }
  }

  #describe(): string {
    const how = this.#exit ? (this.#exit.signal ?? `exit ${this.#exit.code}`) : 'running';
    return `[${this.argv.slice(4).join(' ')}] (${how}); stderr: ${this.stderr.trim().slice(-2000) || '(none)'}`;
  }

  /**
   * Resolves with the first line matching `re` that has not been returned by an earlier wait
   * (lines printed before the call count), so successive waits walk forward through the output.
   * Rejects if the process exits first or after timeoutMs.
   */
  waitForLine(re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    for (let i = this.#searchedFrom; i < this.lines.length; i++) {
      const m = re.exec(this.lines[i]!);
      if (m) {
        this.#searchedFrom = i + 1;
        return Promise.resolve(m);
      }
    }
    this.#searchedFrom = this.lines.length;
    if (this.#exit) return Promise.reject(new Error(`${this.#describe()} exited before a line matched ${re}`));
    return new Promise((resolve, reject) => {
      const w: LineWaiter = {
        re,
        resolve: (m) => {
          this.#searchedFrom = this.lines.length;
          resolve(m);
        },
        reject,
        timer: setTimeout(() => this.#settle(w, () => reject(new Error(`timed out waiting for ${re}: ${this.#describe()}`))), timeoutMs),
      };
      this.#waiters.push(w);
    });
  }

  /**
   * For fixtures that print one JSON object per line: waits for the next object whose `event`
   * field equals `event` and returns it parsed.
   */
  async waitForEvent<T = Record<string, unknown>>(event: string, timeoutMs?: number): Promise<T> {
    const m = await this.waitForLine(new RegExp(`^\\{.*"event":"${event}"`), timeoutMs);
    return JSON.parse(m.input!) as T;
  }

  /** Writes one line to the process's stdin (fixtures read commands this way). */
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.#exit) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within a grace period; resolves once it has exited. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.#exit) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
