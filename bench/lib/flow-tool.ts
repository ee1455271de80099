/**
 * The TCP end points of bench/proxy-compare, run inside a namespace (`node dist/bench/lib/flow-tool.js`).
 * One JSON event per line on stdout.
 *
 *   serve <host> <port>
 *       The first byte of each connection picks the mode: 'U' sink (counts a chunked stream, see
 *       ChunkSink; at its end marker answers with the byte count and the seconds since the first byte,
 *       16 bytes), 'P' echo, 'F' one byte back and close. Event: listening.
 *   bulk <host> <port> <seconds>
 *       Streams 1 MiB chunks to a 'U' sink for `seconds`, then the end marker. Event: bulk{bytes, secs,
 *       mbps} as the sink counted them.
 *   rr <host> <port> <seconds> <max> [warm] [minCount] [capSeconds]
 *       64-byte request/response on one connection, one at a time; an answer may take 20 s. First `warm`
 *       seconds of round trips that are not counted (both ends' JIT, the flow's and path's state reach
 *       their steady state), then event warm{count}; then samples for `seconds`, and on past that until
 *       `minCount` samples or `capSeconds` (a tail quantile needs samples, and a lossy link gives few per
 *       second); never more than `max`. Event: rr{count, p50, p90, p99, p999, max} (ms).
 *       FLOW_TOOL_RR_SAMPLES=FILE also writes every sample.
 *   cfb <host> <port> <seconds> <max>
 *       One connection after another: connect, send 'F', first byte back. Event: cfb{count, stalls, p50,
 *       p99, connectP50} (ms, from the connect call; a stall is an attempt abandoned after 5 s).
 * Every client mode is bounded by its seconds and count; a stalled step ends the run with an error event.
 */
import { connect, createServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';

const [mode, host, portText, ...rest] = process.argv.slice(2);
const port = Number(portText);
const STEP_TIMEOUT_MS = 5000;

const say = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
};

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
}

/**
 * Counts the payload of a chunked stream: each chunk is a u32 length and that many bytes; a zero
 * length ends it. Chunking (not a FIN) marks the end because kcptun's smux cannot half-close.
 */
class ChunkSink {
  bytes = 0;
  #left = 0;
  #header = Buffer.alloc(4);
  #headerHave = 0;
  readonly #onEnd: () => void;

  constructor(onEnd: () => void) {
    this.#onEnd = onEnd;
  }

  push(d: Buffer): void {
    let i = 0;
    while (i < d.length) {
      if (this.#left > 0) {
        const n = Math.min(this.#left, d.length - i);
        this.#left -= n;
        this.bytes += n;
        i += n;
        continue;
      }
      this.#header[this.#headerHave++] = d[i++]!;
      if (this.#headerHave < 4) continue;
      this.#headerHave = 0;
      this.#left = this.#header.readUInt32BE(0);
      if (this.#left === 0) return this.#onEnd();
    }
  }
}

function serve(): void {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.once('data', (first: Buffer) => {
      const m = first[0];
      if (m === 0x55 /* U */) {
        const t0 = performance.now();
        const sink = new ChunkSink(() => {
          const reply = Buffer.alloc(16);
          reply.writeDoubleBE(sink.bytes, 0);
          reply.writeDoubleBE((performance.now() - t0) / 1000, 8);
          s.end(reply);
        });
        sink.push(first.subarray(1));
        s.on('data', (d: Buffer) => sink.push(d));
      } else if (m === 0x50 /* P */) {
        if (first.length > 1) s.write(first.subarray(1));
        s.on('data', (d: Buffer) => s.write(d));
        s.once('end', () => s.end());
      } else {
        s.end(first.subarray(0, 1));
      }
    });
  });
  server.listen(port, host, () => say('listening'));
}

/** Connects, failing after STEP_TIMEOUT_MS. */
async function open(): Promise<Socket> {
  const s = connect({ host, port, allowHalfOpen: true });
  s.setNoDelay(true);
  const timer = setTimeout(() => s.destroy(new Error('connect timed out')), STEP_TIMEOUT_MS);
  try {
    await once(s, 'connect');
  } finally {
    clearTimeout(timer);
  }
  // Later errors surface as a missing answer (a step timeout) or through once(), never as a crash.
  s.on('error', () => undefined);
  return s;
}

async function bulk(): Promise<void> {
  const seconds = Number(rest[0]);
  const s = await open();
  const reply: Buffer[] = [];
  let replied = 0;
  const answered = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      reply.push(d);
      if ((replied += d.length) >= 16) resolve();
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the sink answered')));
  });
  const chunk = randomBytes(4 + (1 << 20));
  chunk.writeUInt32BE(1 << 20, 0);
  s.write('U');
  let stop = false;
  setTimeout(() => (stop = true), seconds * 1000);
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (!stop) if (!s.write(chunk)) return;
      s.off('drain', pump);
      resolve();
    };
    s.on('drain', pump);
    pump();
  });
  s.write(Buffer.alloc(4));
  // The sink answers once every byte has arrived; a lossy path may need a while to drain.
  const drained = setTimeout(() => s.destroy(new Error('sink never answered')), seconds * 3000 + 10_000);
  await answered;
  clearTimeout(drained);
  const r = Buffer.concat(reply);
  const bytes = r.readDoubleBE(0);
  const secs = r.readDoubleBE(8);
  say('bulk', { bytes, secs, mbps: bytes / secs / 1e6 });
  s.destroy();
}

/**
 * An RR answer may wait this long: under heavy loss the inner TCP's RTO backs off to seconds
 * (2.5 s after two losses in a row at 20 %), and such an answer is a sample of the tail, not a failure.
 */
const RR_STEP_TIMEOUT_MS = 20_000;

/** Resolves when `n` bytes have arrived on `s` after the call (or rejects after `stepMs`). */
function reader(s: Socket, stepMs = STEP_TIMEOUT_MS): (n: number) => Promise<void> {
  let want = 0;
  let wake: (() => void) | null = null;
  s.on('data', (d: Buffer) => {
    want -= d.length;
    if (want <= 0 && wake) wake();
  });
  return (n) => new Promise<void>((resolve, reject) => {
    want = n;
    const timer = setTimeout(() => reject(new Error(`no answer within ${stepMs / 1000} s`)), stepMs);
    wake = () => {
      clearTimeout(timer);
      wake = null;
      resolve();
    };
  });
}

async function rr(): Promise<void> {
  const [seconds, max, warm, minCount, cap] = [Number(rest[0]), Number(rest[1]), Number(rest[2] ?? 0), Number(rest[3] ?? 0), Number(rest[4] ?? rest[0])];
  const s = await open();
  const read = reader(s, RR_STEP_TIMEOUT_MS);
  s.write('P');
  const msg = randomBytes(64);
  const roundTrip = async (): Promise<number> => {
    const t = performance.now();
    const answered = read(64);
    s.write(msg);
    await answered;
    return performance.now() - t;
  };
  let warmed = 0;
  for (const end = performance.now() + warm * 1000; performance.now() < end; warmed++) await roundTrip();
  say('warm', { count: warmed });
  const samples: number[] = [];
  const starts: number[] = [];
  const t0 = performance.now();
  const [deadline, hardStop] = [t0 + seconds * 1000, t0 + Math.max(seconds, cap) * 1000];
  for (let t = t0; samples.length < max && (t < deadline || (samples.length < minCount && t < hardStop)); t = performance.now()) {
    starts.push(t);
    samples.push(await roundTrip());
  }
  s.destroy();
  // FLOW_TOOL_RR_SAMPLES=FILE: every sample in order with its start time, to find where a tail comes from.
  // Start times are on CLOCK_MONOTONIC (ms), the clock of /proc's schedstat, perf and V8's profiles.
  if (process.env.FLOW_TOOL_RR_SAMPLES) {
    const toMonotonic = Number(process.hrtime.bigint()) / 1e6 - performance.now();
    writeFileSync(process.env.FLOW_TOOL_RR_SAMPLES, starts.map((t, i) => `${(t + toMonotonic).toFixed(3)} ${samples[i]!.toFixed(3)}`).join('\n') + '\n');
  }
  samples.sort((a, b) => a - b);
  say('rr', { count: samples.length, p50: quantile(samples, 0.5), p90: quantile(samples, 0.9), p99: quantile(samples, 0.99),
    p999: quantile(samples, 0.999), max: samples[samples.length - 1] });
}

async function cfb(): Promise<void> {
  const [seconds, max] = [Number(rest[0]), Number(rest[1])];
  const total: number[] = [];
  const connectOnly: number[] = [];
  let stalls = 0;
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline && total.length < max) {
    const t = performance.now();
    let s: Socket | null = null;
    try {
      s = await open();
      connectOnly.push(performance.now() - t);
      const answered = reader(s)(1);
      s.write('F');
      await answered;
    } catch {
      // A connection that stalls past the step timeout counts at its elapsed time, and we go on.
      stalls++;
    }
    total.push(performance.now() - t);
    s?.destroy();
  }
  total.sort((a, b) => a - b);
  connectOnly.sort((a, b) => a - b);
  say('cfb', { count: total.length, stalls, p50: quantile(total, 0.5), p99: quantile(total, 0.99), connectP50: quantile(connectOnly, 0.5) });
}

const modes: Record<string, () => void | Promise<void>> = { serve, bulk, rr, cfb };
const run = mode ? modes[mode] : undefined;
if (!run) {
  process.stderr.write('usage: flow-tool serve|bulk|rr|cfb <host> <port> [args]\n');
  process.exit(2);
}
Promise.resolve(run()).catch((e: Error) => {
  say('error', { message: e.message });
  process.exitCode = 1;
});
