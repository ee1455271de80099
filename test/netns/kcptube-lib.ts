/**
 * What the kcptube namespace tests share: the applications at both ends (as inline Node scripts
 * run inside a namespace), starting tstier-kcptube and the impairment relay, and config files.
 *
 * The destination app is a TCP echo (half-close honoured) and a UDP echo on one port. The client
 * app sends random bytes over TCP and compares the sha256 of what it sent with what came back,
 * then sends numbered UDP datagrams one at a time (re-sent after a quiet second, at most 10
 * times) and checks each echo byte for byte. Both print one JSON line per result.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Namespace, NsProcess } from './lib/netns.js';

const root = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
export const KCPTUBE = root('bin/tstier-kcptube');
const RELAY = root('dist/bench/relay.js');

const DEST_APP = (host: string, port: number): string => `
import net from 'node:net'; import dgram from 'node:dgram';
const t = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); });
const u = dgram.createSocket('${host.includes(':') ? 'udp6' : 'udp4'}');
u.on('message', (m, r) => u.send(m, r.port, r.address));
let up = 0; const ready = () => { if (++up === 2) console.log(JSON.stringify({ event: 'ready' })); };
t.listen(${port}, '${host}', ready); u.bind(${port}, '${host}', ready);
`;

export interface AppOptions {
  host: string;
  port: number;
  /** TCP bytes to send (0: no TCP). */
  bytes: number;
  /** Spread the TCP bytes over this long (0: as fast as possible). */
  spreadMs: number;
  /** UDP datagrams to echo (0: no UDP). */
  datagrams: number;
}

const CLIENT_APP = (o: AppOptions): string => `
import net from 'node:net'; import dgram from 'node:dgram'; import { createHash, randomBytes } from 'node:crypto';
const out = (o) => console.log(JSON.stringify(o));
async function tcp() {
  const sent = createHash('sha256'); const got = createHash('sha256'); let n = 0;
  const s = net.connect(${o.port}, '${o.host}');
  await new Promise((r, j) => { s.once('connect', r); s.once('error', j); });
  s.on('data', (d) => { got.update(d); n += d.length; });
  const ended = new Promise((r) => s.once('end', r));
  const chunk = 64 * 1024; const total = ${o.bytes};
  const ticks = Math.max(1, Math.ceil(total / chunk)); const every = ${o.spreadMs} / ticks;
  const began = Date.now();
  for (let off = 0; off < total; off += chunk) {
    const d = randomBytes(Math.min(chunk, total - off)); sent.update(d);
    if (!s.write(d)) await new Promise((r) => s.once('drain', r));
    const due = began + (off / chunk + 1) * every - Date.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
  }
  s.end(); await ended;
  out({ event: 'tcp', bytes: n, sent: sent.digest('hex'), got: got.digest('hex'), ms: Date.now() - began });
}
async function udp() {
  const u = dgram.createSocket('${o.host.includes(':') ? 'udp6' : 'udp4'}');
  let matched = 0, mismatched = 0, lost = 0;
  for (let i = 0; i < ${o.datagrams}; i++) {
    const d = Buffer.concat([Buffer.from(String(i).padStart(6, '0')), randomBytes(1 + (i * 97) % 1200)]);
    let ok = false;
    for (let attempt = 0; attempt < 10 && !ok; attempt++) {
      u.send(d, ${o.port}, '${o.host}');
      const echo = await new Promise((r) => {
        const timer = setTimeout(() => { u.off('message', on); r(null); }, 1000);
        function on(m) { if (m.subarray(0, 6).equals(d.subarray(0, 6))) { clearTimeout(timer); u.off('message', on); r(m); } }
        u.on('message', on);
      });
      if (echo !== null) { ok = true; if (echo.equals(d)) matched++; else mismatched++; }
    }
    if (!ok) lost++;
  }
  u.close();
  out({ event: 'udp', matched, mismatched, lost });
}
if (${o.bytes} > 0) await tcp();
if (${o.datagrams} > 0) await udp();
out({ event: 'done' });
`;

function inline(ns: Namespace, script: string): NsProcess {
  return ns.spawn([process.execPath, '--input-type=module', '-e', script]);
}

export async function startDestApp(ns: Namespace, host: string, port: number): Promise<NsProcess> {
  const p = inline(ns, DEST_APP(host, port));
  await p.waitForEvent('ready');
  return p;
}

export interface TcpResult { bytes: number; sent: string; got: string; ms: number }
export interface UdpResult { matched: number; mismatched: number; lost: number }

export function startClientApp(ns: Namespace, o: AppOptions): NsProcess {
  return inline(ns, CLIENT_APP(o));
}

/** tstier-kcptube with its stderr log merged into the stdout lines a test waits on. */
export async function startKcptube(ns: Namespace, configs: string[]): Promise<NsProcess> {
  const quoted = [process.execPath, KCPTUBE, ...configs].map((a) => `'${a}'`).join(' ');
  const p = ns.spawn(['sh', '-c', `exec ${quoted} 2>&1`]);
  await p.waitForLine(/tstier-kcptube ready/);
  return p;
}

/** The impairment relay (bench/relay.ts) inside a namespace: listen → target, lossy both ways. */
export async function startLossyRelay(ns: Namespace, listen: string, target: string, loss: number, delayMs: number): Promise<NsProcess> {
  const p = ns.spawn([process.execPath, RELAY, '--listen', listen, '--target', target, '--loss', String(loss),
    '--delay', String(delayMs), '--jitter', '2', '--seed', '7']);
  await p.waitForLine(/relay listening/);
  return p;
}

/** A temporary directory for config files and logs, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; write(name: string, text: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    write(name, text) {
      const f = join(dir, name);
      writeFileSync(f, text);
      return f;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
