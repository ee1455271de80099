/**
 * `tstier-kcptube [--check-config | --try] CONFIG [CONFIG...]`: every config file runs at once in
 * this process (each with its own counters and log tag).
 *   --check-config  parse every file, print every bad key (file:line: key: problem), exit 2 if any
 *   --try           client/relay: reach the server (HELLO answered) and exit 0, or exit 1;
 *                   server: bind the ports and resolve the destination, then exit
 * Errors are one line on stderr; exit status 2 for bad config or a port in use, 1 otherwise.
 */
import { lowerHelperThreads } from '../io/helper-threads.js';
import { basename } from 'node:path';
import { TstierError } from '../errors.js';
import { formatIssue, parseKcptubeConfig, type KcptubeConfig } from './config.js';
import { readFileSync } from 'node:fs';
import { KcptubeClient } from './client.js';
import { TunnelDialer, resolveDestination } from './dialer.js';
import { TubeLog, newContext, type TubeContext } from './log.js';
import { KcptubeRelay } from './relay.js';
import { KcptubeServer } from './server.js';
import { nowMs } from '../io/clock.js';

const USAGE = 'usage: tstier-kcptube [--check-config | --try] CONFIG [CONFIG...]\n';
const TRY_TIMEOUT_MS = 5000;

interface Running {
  cfg: KcptubeConfig;
  ctx: TubeContext;
  stop(): void;
}

function exitFor(e: unknown): never {
  const err = e instanceof TstierError ? e : new TstierError('TSTIER_E_PROTOCOL', String((e as Error)?.message ?? e));
  process.stderr.write(`tstier-kcptube: ${err.message}\n`);
  process.exit(err.code === 'TSTIER_E_BAD_CONFIG' || err.code === 'TSTIER_E_ADDR_IN_USE' ? 2 : 1);
}

/** Parses every file; prints every issue; null when any file is bad. */
function loadAll(files: string[]): KcptubeConfig[] | null {
  const configs: KcptubeConfig[] = [];
  let bad = false;
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      process.stderr.write(`${f}: cannot read: ${(e as Error).message}\n`);
      bad = true;
      continue;
    }
    const { config, issues } = parseKcptubeConfig(f, text);
    for (const i of issues) process.stderr.write(`${formatIssue(i)}\n`);
    if (config === null) bad = true;
    else configs.push(config);
  }
  return bad ? null : configs;
}

async function start(cfg: KcptubeConfig): Promise<Running> {
  const ctx = newContext(new TubeLog(basename(cfg.file), cfg.main.logPath, cfg.mode));
  const role = cfg.mode === 'client' ? new KcptubeClient(cfg.main, ctx)
    : cfg.mode === 'server' ? new KcptubeServer(cfg.main, ctx)
    : new KcptubeRelay(cfg.main, cfg.forwarder!, ctx);
  await role.start();
  return { cfg, ctx, stop: () => role.stop() };
}

/** One HELLO answered within the time limit, through the side that dials. */
async function tryReach(cfg: KcptubeConfig): Promise<string> {
  const side = cfg.mode === 'relay' ? cfg.forwarder! : cfg.main;
  const ctx = newContext(new TubeLog(basename(cfg.file), '', cfg.mode));
  const dialer = new TunnelDialer(side, await resolveDestination(side), ctx);
  const began = nowMs();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      tunnel.close();
      reject(new TstierError('TSTIER_E_PROTOCOL', `${cfg.file}: no answer from the server within ${TRY_TIMEOUT_MS} ms`));
    }, TRY_TIMEOUT_MS);
    const tunnel = dialer.dial({
      onEvent: (t, e) => {
        if (e.type !== 'hello-reply') return;
        clearTimeout(timer);
        t.close();
        resolve(`${cfg.file}: server reachable in ${nowMs() - began} ms, its ports ${e.reply.portStart}-${e.reply.portEnd}`);
      },
      onEnded: () => undefined,
    });
  });
}

function dumpCounters(runs: Running[]): void {
  for (const r of runs) r.ctx.log.line(`counters ${JSON.stringify({ tube: r.ctx.counters, snmp: r.ctx.snmp })}`);
}

export async function main(argv: string[]): Promise<void> {
  const check = argv.includes('--check-config');
  const tryIt = argv.includes('--try');
  const unknown = argv.filter((a) => a.startsWith('-') && !['--check-config', '--try', '-h', '--help'].includes(a));
  const files = argv.filter((a) => !a.startsWith('-'));
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (files.length === 0 || unknown.length > 0) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const configs = loadAll(files);
  if (configs === null) process.exit(2);
  if (check) {
    for (const c of configs) process.stdout.write(`${c.file}: OK (${c.mode})\n`);
    process.exit(0);
  }
  try {
    if (tryIt) {
      for (const c of configs) {
        if (c.mode === 'server') {
          const r = await start(c);
          r.stop();
          process.stdout.write(`${c.file}: ports bound, destination resolved\n`);
        } else {
          process.stdout.write(`${await tryReach(c)}\n`);
        }
      }
      process.exit(0);
    }
    const runs: Running[] = [];
    for (const c of configs) runs.push(await start(c));
    process.stdout.write(`tstier-kcptube ready: ${configs.map((c) => `${c.file} (${c.mode})`).join(', ')}\n`);
    await lowerHelperThreads();
    process.on('SIGUSR1', () => dumpCounters(runs));
    const stop = (): void => {
      dumpCounters(runs);
      for (const r of runs) r.stop();
      setTimeout(() => process.exit(0), 50).unref();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  } catch (e) {
    exitFor(e);
  }
}
