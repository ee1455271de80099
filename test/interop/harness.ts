/**
 * Interop harness: start kcptun or tstier-kcptun processes, a sink/source TCP target, and drive
 * many concurrent streams through the tunnel, checking sha256 at both ends.
 *
 * Stream protocol (independent of half-close semantics, which differ between kcptun versions):
 *   client → target: header [id u32][up u32][down u32], then `up` random bytes;
 *   target → client: `down` random bytes, then one trailer byte sent only once all `up` bytes
 *   arrived. The client closes after the trailer; the target closes on EOF.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { readdirSync } from 'node:fs';
import assert from 'node:assert/strict';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const TSTIER_KCPTUN = resolve(REPO_ROOT, 'bin/tstier-kcptun');

/** A free port for both TCP and UDP at the time of asking (kcptun cannot report a port-0 bind). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      udp.once('error', () => r(false));
      udp.bind(port, '127.0.0.1', () => r(true));
    });
    if (ok) udp.close();
    srv.close();
    await once(srv, 'close');
    if (ok) return port;
  }
  throw new Error('no free port');
}

export interface Proc {
  child: ChildProcess;
  /** Everything written to stdout+stderr so far. */
  output(): string;
  /** Resolves when the output contains `text` (or the predicate holds); rejects if the process exits first. */
  waitFor(text: string | RegExp | ((output: string) => boolean)): Promise<void>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  kill(): Promise<void>;
}

export function startProc(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: { test: (s: string) => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.test(out)) {
        waiters[i]!.resolve();
        waiters.splice(i, 1);
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`${cmd} exited (${code}) before the expected output:\n${out}`));
    r(code);
  }));
  return {
    child,
    output: () => out,
    waitFor(text) {
      const test = (s: string): boolean =>
        typeof text === 'string' ? s.includes(text) : typeof text === 'function' ? text(s) : text.test(s);
      if (test(out)) return Promise.resolve();
      if (child.exitCode !== null) return Promise.reject(new Error(`${cmd} already exited:\n${out}`));
      return new Promise((resolve, reject) => waiters.push({ test, resolve, reject }));
    },
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

export function startTstier(role: 'client' | 'server', args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return startProc(process.execPath, [TSTIER_KCPTUN, role, ...args], env);
}

export function startKcptun(role: 'client' | 'server', args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return startProc(role === 'client' ? 'kcptun-client' : 'kcptun-server', args, env);
}

/** Sends SIGUSR1 and returns the counters of the `KCP SNMP:&{...}` dump it logs to the output. */
export async function snmpOf(p: Proc): Promise<Record<string, number>> {
  const dumps = (out: string): number => out.match(/KCP SNMP:&\{[^}]*\}/g)?.length ?? 0;
  const seen = dumps(p.output());
  p.child.kill('SIGUSR1');
  await p.waitFor((out) => dumps(out) > seen);
  return parseSnmpDump(p.output());
}

/** The counters of the last `KCP SNMP:&{Name:value ...}` line in text. */
export function parseSnmpDump(text: string): Record<string, number> {
  const all = [...text.matchAll(/KCP SNMP:&\{([^}]*)\}/g)];
  const last = all[all.length - 1];
  if (!last) return {};
  return Object.fromEntries(last[1]!.split(' ').map((kv) => {
    const [k, v] = kv.split(':');
    return [k!, Number(v)];
  }));
}

/** Both implementations print this once their sockets are bound and the key is derived. */
export async function waitReady(p: Proc): Promise<void> {
  await p.waitFor(/key derivation done|listening on: /);
  await p.waitFor(/key derivation done/);
}

interface TargetRecord {
  upHash: string;
  downHash: string;
}

/** The TCP target: records the hash of what each stream sent and received, by stream id. */
export class SinkSource {
  readonly records = new Map<number, TargetRecord>();
  readonly errors: Error[] = [];
  private server: Server;
  private readonly sockets = new Set<Socket>();
  /** Waiters for the moment no connection is open (see idle()). */
  private readonly idleWaiters: (() => void)[] = [];

  constructor() {
    this.server = createServer((s) => this.handle(s));
  }

  async listen(port = 0): Promise<number> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as { port: number }).port;
  }

  private handle(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => {
      this.sockets.delete(sock);
      if (this.sockets.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
    sock.on('error', (e) => this.errors.push(e));
    let header: Buffer | null = Buffer.alloc(0);
    let id = 0;
    let up = 0;
    let got = 0;
    const upHash = createHash('sha256');
    let trailerSent = false;
    let sendingDone = false;
    const maybeTrailer = (): void => {
      if (!trailerSent && sendingDone && got === up) {
        trailerSent = true;
        this.records.set(id, { upHash: upHash.digest('hex'), downHash: this.records.get(id)?.downHash ?? '' });
        sock.write(Buffer.from([0x5a]));
      }
    };
    sock.on('data', (chunk: Buffer) => {
      if (header) {
        header = Buffer.concat([header, chunk]);
        if (header.length < 12) return;
        id = header.readUInt32LE(0);
        up = header.readUInt32LE(4);
        const down = header.readUInt32LE(8);
        chunk = header.subarray(12);
        header = null;
        void sendRandom(sock, down).then((h) => {
          this.records.set(id, { upHash: '', downHash: h });
          sendingDone = true;
          maybeTrailer();
        }, (e: Error) => this.errors.push(e));
      }
      got += chunk.length;
      if (got > up) {
        this.errors.push(new Error(`stream ${id}: received ${got} > ${up} bytes`));
        sock.destroy();
        return;
      }
      upHash.update(chunk);
      maybeTrailer();
    });
    sock.on('end', () => sock.end());
  }

  /**
   * Resolves once no connection is open: every stream's close (a FIN through the tunnel, or a reset,
   * which lands in `errors`) has reached the target. A tunnel stopped before this may still hold
   * streams its peer closed, whose FINs had not crossed yet, and rightly resets them.
   */
  idle(): Promise<void> {
    return this.sockets.size === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The errors since the last call (so one run's failure is not reported again by the next). */
  takeErrors(): Error[] {
    return this.errors.splice(0);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

/** Writes `n` random bytes with back-pressure; resolves with their sha256. */
async function sendRandom(sock: Socket, n: number): Promise<string> {
  const h = createHash('sha256');
  let left = n;
  while (left > 0) {
    const chunk = randomBytes(Math.min(left, 65536));
    h.update(chunk);
    left -= chunk.length;
    if (!sock.write(chunk)) {
      await Promise.race([once(sock, 'drain'), once(sock, 'close').then(() => {
        throw new Error('socket closed while sending');
      })]);
    }
  }
  return h.digest('hex');
}

export interface StreamResult {
  id: number;
  upHash: string;
  downHash: string;
}

/** Connects to `port`, retrying while nothing listens yet (bounded). */
export async function connectWithRetry(port: number, tries = 100): Promise<Socket> {
  for (let i = 0; ; i++) {
    const s = connect(port, '127.0.0.1');
    try {
      await once(s, 'connect');
      return s;
    } catch (e) {
      s.destroy();
      if (i >= tries || (e as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** One stream through the tunnel: sends `up` random bytes, expects `down` + trailer back. */
export async function runStream(port: number, id: number, up: number, down: number): Promise<StreamResult> {
  const sock = await connectWithRetry(port);
  const downHash = createHash('sha256');
  let got = 0;
  let trailer = false;
  const done = new Promise<void>((resolve, reject) => {
    sock.on('data', (chunk: Buffer) => {
      const data = got + chunk.length > down ? chunk.subarray(0, Math.max(0, down - got)) : chunk;
      downHash.update(data);
      got += data.length;
      const rest = chunk.length - data.length;
      if (rest === 1 && chunk[chunk.length - 1] === 0x5a && !trailer) trailer = true;
      else if (rest > 0) reject(new Error(`stream ${id}: unexpected extra ${rest} bytes`));
      if (trailer) resolve();
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`stream ${id}: closed after ${got}/${down} bytes (trailer ${trailer})`)));
  });
  const header = Buffer.alloc(12);
  header.writeUInt32LE(id, 0);
  header.writeUInt32LE(up, 4);
  header.writeUInt32LE(down, 8);
  sock.write(header);
  const upHash = await sendRandom(sock, up);
  await done;
  sock.destroy();
  return { id, upHash, downHash: downHash.digest('hex') };
}

/**
 * Runs `streams` concurrent streams moving `totalUp`/`totalDown` bytes in all and checks every
 * hash against the target's records. Returns a list of problems (empty when all is well).
 */
export async function transferAndCheck(
  port: number,
  target: SinkSource,
  streams: number,
  totalUp: number,
  totalDown: number,
  firstId = 1,
): Promise<string[]> {
  const per = (total: number): number => Math.ceil(total / streams);
  const results = await Promise.all(
    Array.from({ length: streams }, (_, i) => runStream(port, firstId + i, per(totalUp), per(totalDown))),
  );
  const problems: string[] = [];
  for (const r of results) {
    const rec = target.records.get(r.id);
    if (!rec) problems.push(`stream ${r.id}: no record at the target`);
    else {
      if (rec.upHash !== r.upHash) problems.push(`stream ${r.id}: upload sha256 differs`);
      if (rec.downHash !== r.downHash) problems.push(`stream ${r.id}: download sha256 differs`);
    }
  }
  for (const e of target.errors) problems.push(`target: ${e.message}`);
  return problems;
}

/** How one application connection through a tunnel ended. */
export type Ending = 'eof' | 'rst' | 'refused';

/** Connects, sends a line, and resolves with how the connection ended; rejects if it is still open after `ms`. */
export function attempt(port: number, ms: number): Promise<Ending> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`still open after ${ms} ms`));
    }, ms);
    const done = (how: Ending): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(how);
    };
    s.on('connect', () => s.write('hello\n'));
    s.on('data', () => undefined);
    s.on('end', () => done('eof'));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'rst'));
    s.on('close', () => done('eof'));
  });
}

/** `n` attempts, `batch` at a time, each bounded by `ms`; returns how many ended each way. */
export async function attempts(port: number, n: number, ms: number, batch = 100): Promise<Record<Ending, number>> {
  const tally: Record<Ending, number> = { eof: 0, rst: 0, refused: 0 };
  for (let i = 0; i < n; i += batch) {
    const ends = await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => attempt(port, ms)));
    for (const e of ends) tally[e]++;
  }
  return tally;
}

/** Open descriptors of a process. */
export function fdCount(p: Proc): number {
  return readdirSync(`/proc/${p.child.pid}/fd`).length;
}

/** Polls `check` every 50 ms, at most `tries` times (for effects with no event, such as descriptor counts). */
export async function eventually(check: () => boolean, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/**
 * An error line that must appear once, not once per event: its first occurrence exactly once,
 * and at most a few "(N times in the last S s)" repeats (one per 10 s).
 */
export function assertLoggedOnce(output: string, line: RegExp): void {
  const first = new RegExp(`${line.source}$`, 'gm');
  const any = new RegExp(line.source, 'g');
  assert.equal(output.match(first)?.length, 1, `logged once: ${line}\n${output}`);
  assert.ok((output.match(any)?.length ?? 0) <= 4, `and repeats only as summaries: ${line}\n${output}`);
}
