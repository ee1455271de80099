/**
 * UDP echo latency through tstier-kcptube vs the bare link, on loopback behind the impairment
 * relay (bench/relay.ts): 20 ms one-way delay, 0% and 5% loss each way.
 *
 *   bare:    pinger → relay → echo
 *   tunnel:  pinger → kcptube client → relay → kcptube server → echo
 *
 * Pings are sent every 20 ms (each carries its sequence number); a ping whose echo does not come
 * back within 2 s counts as lost. Prints p50/p99 RTT and the loss for each case.
 *
 *   node dist/bench/kcptube-latency.js [--pings 500] [--kcp regular3]
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { KcptubeClient } from '../daemon/kcptube/client.js';
import { parseKcptubeConfig, type KcptubeSide } from '../daemon/kcptube/config.js';
import { TubeLog, newContext } from '../daemon/kcptube/log.js';
import { KcptubeServer } from '../daemon/kcptube/server.js';
import { startRelay } from './relay.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const PINGS = Number(arg('pings', '500'));
const KCP = arg('kcp', 'regular3');
const DELAY_MS = 20;
const GAP_MS = 20;
const LOST_AFTER_MS = 2000;

async function bound(port = 0): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(port, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

function side(mode: 'client' | 'server', listenPort: number, destPort: number): KcptubeSide {
  const { config, issues } = parseKcptubeConfig('bench', `mode=${mode}
kcp=${KCP}
listen_on=127.0.0.1
listen_port=${listenPort}
destination_address=127.0.0.1
destination_port=${destPort}
dport_refresh=0
encryption_algorithm=chacha20
encryption_password=bench
`);
  if (config === null) throw new Error(JSON.stringify(issues));
  return config.main;
}

/** Pings `port` every GAP_MS; RTTs in ms of the echoes that came back, and how many did not. */
async function ping(port: number): Promise<{ rtts: number[]; lost: number }> {
  const s = await bound();
  const sentAt = new Float64Array(PINGS).fill(-1);
  const rtts: number[] = [];
  s.on('message', (m) => {
    const seq = m.readUInt32LE(0);
    if (seq < PINGS && sentAt[seq]! >= 0) {
      rtts.push(performance.now() - sentAt[seq]!);
      sentAt[seq] = -1;
    }
  });
  const payload = Buffer.alloc(200);
  for (let i = 0; i < PINGS; i++) {
    payload.writeUInt32LE(i, 0);
    sentAt[i] = performance.now();
    s.send(payload, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, GAP_MS));
  }
  await new Promise((r) => setTimeout(r, LOST_AFTER_MS));
  s.close();
  return { rtts, lost: PINGS - rtts.length };
}

function pct(sorted: number[], p: number): string {
  if (sorted.length === 0) return '-';
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(1);
}

async function runCase(loss: number, tunnel: boolean): Promise<string> {
  const echo = await bound();
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  const echoPort = echo.address().port;
  const ports = await Promise.all([bound(), bound()]);
  const [serverPort, clientPort] = ports.map((s) => s.address().port) as [number, number];
  for (const s of ports) s.close();
  const imp = { loss, delay: DELAY_MS };
  const relay = await startRelay({ targetHost: '127.0.0.1', targetPort: tunnel ? serverPort : echoPort, up: imp, down: imp, seed: 3 });
  let stop = (): void => undefined;
  let target = relay.port;
  if (tunnel) {
    const server = new KcptubeServer(side('server', serverPort, echoPort), newContext(new TubeLog('bench', '', 'server', false)));
    const client = new KcptubeClient(side('client', clientPort, relay.port), newContext(new TubeLog('bench', '', 'client', false)));
    await server.start();
    await client.start();
    stop = () => {
      client.stop();
      server.stop();
    };
    target = clientPort;
  }
  const r = await ping(target);
  stop();
  await relay.close();
  echo.close();
  const sorted = r.rtts.sort((a, b) => a - b);
  return `${tunnel ? 'tunnel' : 'bare  '}  loss ${(loss * 100).toFixed(0)}%  p50 ${pct(sorted, 50)} ms  p99 ${pct(sorted, 99)} ms  lost ${r.lost}/${PINGS}`;
}

const out: string[] = [];
for (const loss of [0, 0.05]) {
  for (const tunnel of [false, true]) out.push(await runCase(loss, tunnel));
}
process.stdout.write(`UDP echo RTT, ${DELAY_MS} ms one-way delay each way, kcp=${KCP}, ${PINGS} pings every ${GAP_MS} ms\n${out.join('\n')}\n`);
process.exit(0);
