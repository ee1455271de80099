/**
 * A userspace UDP impairment relay: netem for machines without it.
 *
 * Clients send to the relay's port; for each client address the relay opens one upstream socket
 * towards the target (like a NAT), so the target sees one source per client. Each direction has
 * its own seeded loss, delay, jitter and rate limit:
 *  - loss: each datagram is dropped with probability `loss`;
 *  - delay/jitter: each datagram leaves `delay ± jitter` ms after it arrived (uniform jitter, so
 *    datagrams can be reordered, as with netem's jitter);
 *  - rate: bytes/s through a serialising link; the departure time is `max(now, lastDeparture) +
 *    size/rate`, and a datagram that would wait more than `queueMs` is dropped (a full queue).
 *
 * Usable as a module (`startRelay`) and as a CLI; the CLI runs at nice -10, ahead of the pair it
 * carries (bench/lib/link-priority.ts says why):
 *   node dist/bench/relay.js --listen 127.0.0.1:40000 --target 127.0.0.1:29900 \
 *        --loss 0.1 --delay 20 --jitter 5 --rate 12500000 --seed 7
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { runAheadOfPair } from './lib/link-priority.js';

export interface DirectionImpairment {
  /** Drop probability, 0..1. */
  loss?: number;
  /** One-way delay in ms. */
  delay?: number;
  /** Uniform jitter in ms added to or removed from the delay. */
  jitter?: number;
  /** Bytes per second; 0 or absent: unlimited. */
  rate?: number;
  /** Largest queueing delay the rate limiter accepts before dropping, ms (default 200). */
  queueMs?: number;
}

export interface RelayOptions {
  listenHost?: string;
  /** 0 picks a free port. */
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  /** Client → target. */
  up?: DirectionImpairment;
  /** Target → client. */
  down?: DirectionImpairment;
  seed?: number;
}

export interface RelayStats {
  forwarded: number;
  dropped: number;
  queueDropped: number;
}

export interface Relay {
  readonly port: number;
  readonly up: RelayStats;
  readonly down: RelayStats;
  close(): Promise<void>;
}

/** mulberry32: small, fast, seedable; good enough for impairment decisions. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Pending {
  at: number;
  data: Buffer;
  out: Socket;
  port: number;
  host: string;
}

/** One direction: decides drops and departure times, and sends in departure order with one timer. */
class Lane {
  readonly stats: RelayStats = { forwarded: 0, dropped: 0, queueDropped: 0 };
  private readonly queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private lastDeparture = 0;
  private closed = false;

  constructor(
    private readonly imp: DirectionImpairment,
    private readonly rand: () => number,
  ) {}

  push(data: Buffer, out: Socket, host: string, port: number): void {
    if (this.closed) return;
    const imp = this.imp;
    if (imp.loss && this.rand() < imp.loss) {
      this.stats.dropped++;
      return;
    }
    const now = performance.now();
    let at = now;
    if (imp.rate && imp.rate > 0) {
      const start = Math.max(now, this.lastDeparture);
      if (start - now > (imp.queueMs ?? 200)) {
        this.stats.queueDropped++;
        return;
      }
      this.lastDeparture = start + (data.length * 1000) / imp.rate;
      at = this.lastDeparture;
    }
    at += (imp.delay ?? 0) + (imp.jitter ? (this.rand() * 2 - 1) * imp.jitter : 0);
    if (at <= now) {
      this.send({ at, data, out, host, port });
      return;
    }
    // Insert keeping the queue sorted by departure; most arrivals go at the end.
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.at > at) i--;
    this.queue.splice(i, 0, { at, data, out, host, port });
    this.arm();
  }

  private send(p: Pending): void {
    this.stats.forwarded++;
    p.out.send(p.data, p.port, p.host, () => undefined);
  }

  private arm(): void {
    const head = this.queue[0];
    if (!head || head.at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = head.at;
    this.timer = setTimeout(() => this.drain(), Math.max(0, head.at - performance.now()));
  }

  private drain(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    // setTimeout has 1 ms granularity; send everything due within half a millisecond.
    const now = performance.now() + 0.5;
    let n = 0;
    while (n < this.queue.length && this.queue[n]!.at <= now) this.send(this.queue[n++]!);
    this.queue.splice(0, n);
    this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

const SOCKET_BUFFER = 8 << 20;

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const rand = seededRandom(opts.seed ?? 1);
  const upLane = new Lane(opts.up ?? {}, rand);
  const downLane = new Lane(opts.down ?? {}, rand);
  // Large socket buffers: the relay models a link, so its own receive queue must not be what drops.
  const front = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
  const upstreams = new Map<string, Socket>();
  const all: Socket[] = [front];

  front.on('message', (msg: Buffer, from: RemoteInfo) => {
    const key = `${from.address}:${from.port}`;
    let up = upstreams.get(key);
    if (!up) {
      const sock = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
      up = sock;
      upstreams.set(key, sock);
      all.push(sock);
      sock.on('message', (back: Buffer) => downLane.push(back, front, from.address, from.port));
      sock.on('error', () => undefined);
      // Loopback targets keep the relay on loopback; a target in a test namespace needs a routable source.
      sock.bind(0, opts.targetHost.startsWith('127.') ? '127.0.0.1' : undefined);
    }
    upLane.push(msg, up, opts.targetHost, opts.targetPort);
  });
  front.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind(opts.listenPort ?? 0, opts.listenHost ?? '127.0.0.1', () => {
      front.off('error', reject);
      resolve();
    });
  });
  return {
    port: front.address().port,
    up: upLane.stats,
    down: downLane.stats,
    async close() {
      upLane.close();
      downLane.close();
      await Promise.all(all.map((s) => new Promise<void>((r) => {
        try {
          s.close(() => r());
        } catch {
          r();
        }
      })));
    },
  };
}

function splitHostPort(text: string): [string, number] {
  const i = text.lastIndexOf(':');
  return [text.slice(0, i) || '127.0.0.1', Number(text.slice(i + 1))];
}

async function main(argv: string[]): Promise<void> {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string): number | undefined => (get(name) === undefined ? undefined : Number(get(name)));
  const listen = get('listen') ?? '127.0.0.1:0';
  const target = get('target');
  if (!target) {
    process.stderr.write('usage: relay --listen host:port --target host:port [--loss p] [--delay ms] [--jitter ms] [--rate B/s] [--seed n]\n');
    process.exit(2);
  }
  runAheadOfPair('relay');
  const imp: DirectionImpairment = { loss: num('loss'), delay: num('delay'), jitter: num('jitter'), rate: num('rate') };
  const [lh, lp] = splitHostPort(listen);
  const [th, tp] = splitHostPort(target);
  const relay = await startRelay({ listenHost: lh, listenPort: lp, targetHost: th, targetPort: tp, up: imp, down: imp, seed: num('seed') ?? 1 });
  process.stdout.write(`relay listening on ${lh}:${relay.port} -> ${target}\n`);
  const stop = (): void => {
    process.stdout.write(`up ${JSON.stringify(relay.up)} down ${JSON.stringify(relay.down)}\n`);
    void relay.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) void main(process.argv.slice(2));
