/**
 * The KCP proxy's carrier (two nodes' peer paths: the path controller, adaptive FEC, RACK) on the
 * simulator's virtual clock: one bulk flow from A to B over a link with random loss and delay each way
 * (easytier-compare's relay: a constant delay keeps datagrams in order), optionally a rate cap with a
 * drop-tail queue and busy hosts. Goodput after a warm-up, over many seeds. The virtual clock does not
 * care how loaded the machine is, so two builds (or two settings) can be compared in seconds where the
 * wall-clock bench needs an idle machine and many repeats to see a few MB/s.
 *
 *   node dist/bench/kcp-carrier-sim.js [--loss 0.05,0.2] [--delay 20] [--seconds 4] [--warm 2] [--seeds 10]
 *        [--rate MBPS [--queue-ms 50]] [--stalls EVERY_MS:MAX_MS] [--socket-kb KB] [--fec on|off] [--jitter MS]
 *
 * Per loss: goodput (median and per seed, MB/s), and over the whole run A's resends per segment sent,
 * the segments B got twice, parity per data shard, the share of the link's losses B rebuilt, and the
 * datagrams B's socket dropped (with --stalls and --socket-kb: its host's drops, which cut A's in-flight cap).
 */
import { socketAddrOf } from '../daemon/packet/flow-key.js';
import { BulkNode } from '../test/sim/carrier-bulk.js';
import { Rng, World } from '../test/sim/world.js';
import { benchArgs } from './lib/args.js';

const USAGE = 'node dist/bench/kcp-carrier-sim.js [--loss 0.05,0.2] [--delay 20] [--seconds 4] [--warm 2] [--seeds 10] ' +
  '[--rate MBPS [--queue-ms 50]] [--stalls EVERY_MS:MAX_MS] [--socket-kb KB] [--fec on|off] [--jitter MS]';
const { opt } = benchArgs('kcp-carrier-sim', USAGE,
  ['loss', 'delay', 'seconds', 'warm', 'seeds', 'rate', 'queue-ms', 'stalls', 'socket-kb', 'fec', 'jitter']);

function num(name: string, dflt: string, min = 0): number {
  const v = Number(opt(name, dflt));
  if (!Number.isFinite(v) || v < min) {
    process.stderr.write(`kcp-carrier-sim: --${name} ${opt(name, dflt)} is not a valid value\n`);
    process.exit(2);
  }
  return v;
}

const LOSSES = opt('loss', '0.05,0.2').split(',').map((s) => {
  const v = Number(s);
  if (!(v >= 0 && v < 1)) {
    process.stderr.write(`kcp-carrier-sim: --loss ${s} is not a share in [0, 1)\n`);
    process.exit(2);
  }
  return v;
});
const DELAY = num('delay', '20');
const SECONDS = num('seconds', '4', 0.1);
const WARM = num('warm', '2');
const SEEDS = num('seeds', '10', 1);
/** MB/s of the link each way (0: no cap), with a drop-tail queue of QUEUE_MS of its rate. */
const RATE = num('rate', '0');
const QUEUE_MS = num('queue-ms', '50');
const JITTER = num('jitter', '0');
const SOCKET_KB = num('socket-kb', '0');
const FEC = opt('fec', 'on') !== 'off';
const STALLS = ((): { everyMs: number; maxMs: number } | null => {
  const s = opt('stalls', '');
  if (s === '') return null;
  const [every, max] = s.split(':').map(Number);
  if (!(every! > 0 && max! >= 1)) {
    process.stderr.write(`kcp-carrier-sim: --stalls ${s} is not EVERY_MS:MAX_MS\n`);
    process.exit(2);
  }
  return { everyMs: every!, maxMs: max! };
})();
/** The flow's bytes (4 MiB over and over): more than any run carries, so it is backlogged to the end. */
const FLOW_BYTES = 2 ** 50;
const payload = new Rng(1).bytes(4 << 20);

interface Outcome {
  mbps: number;
  resentPerSeg: number;
  twice: number;
  parityPerData: number;
  rebuiltShare: number;
  hostDrops: number;
}

function run(seed: number, loss: number): Outcome {
  const world = new World({ seed });
  const stall = (s: number): { everyMs: number; maxMs: number; rng: Rng } | null => (STALLS ? { ...STALLS, rng: new Rng(s) } : null);
  const a = new BulkNode(2, seed, FEC, stall(seed * 5 + 1));
  const b = new BulkNode(1, seed ^ 0x5a5a, FEC, stall(seed * 5 + 2));
  if (SOCKET_KB > 0) b.socketBytes = SOCKET_KB * 1024;
  world.addNode(a);
  world.addNode(b);
  const cap = RATE > 0 ? { rateBytesPerMs: RATE * 1000, queueBytes: RATE * 1000 * QUEUE_MS } : {};
  world.link(0, 1, { loss, delayMs: DELAY, jitterMs: JITTER, ...cap });
  world.link(1, 0, { loss, delayMs: DELAY, jitterMs: JITTER, ...cap });
  const flow = a.carrier.open(2, { src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false }, 0);
  a.sending.set(flow, { data: payload, off: 0, rate: 0, total: FLOW_BYTES });
  const got = (): number => [...b.received.values()].reduce((n, r) => n + r.bytes, 0);
  let atWarm = 0;
  world.schedule(WARM * 1000, () => (atWarm = got()));
  const end = (WARM + SECONDS) * 1000;
  world.run({ until: () => world.now >= end, maxTime: end, maxSteps: 100_000_000 });
  const received = got();
  const st = world.stats(0, 1);
  const enc = a.carrier.fecStats(2);
  const twice = [...b.received.keys()].reduce((n, f) => n + f.duplicates, 0);
  return {
    mbps: (received - atWarm) / SECONDS / 1e6,
    resentPerSeg: flow.retransmits / Math.max(1, st.sent),
    twice,
    parityPerData: (enc?.parity ?? 0) / Math.max(1, enc?.data ?? 0),
    rebuiltShare: (b.carrier.fecStats(1)?.recovered ?? 0) / Math.max(1, st.lost + st.queueDrops),
    hostDrops: b.socketDrops,
  };
}

function median(xs: number[]): number {
  const v = [...xs].sort((x, y) => x - y);
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

console.log(`delay ${DELAY} ms, jitter ${JITTER} ms, rate ${RATE > 0 ? `${RATE} MB/s, queue ${QUEUE_MS} ms` : 'uncapped'}, ` +
  `FEC ${FEC ? 'on' : 'off'}, stalls ${STALLS ? `${STALLS.everyMs}:${STALLS.maxMs}` : 'none'}, ` +
  `B's socket ${SOCKET_KB > 0 ? `${SOCKET_KB} KiB` : 'unbounded'}, ${SEEDS} seeds, ${WARM} s warm + ${SECONDS} s`);
for (const loss of LOSSES) {
  const runs = Array.from({ length: SEEDS }, (_, i) => run(i + 1, loss));
  const mbps = runs.map((r) => r.mbps);
  const med = (f: (o: Outcome) => number): number => median(runs.map(f));
  console.log(`loss ${(loss * 100).toFixed(0)} %: MB/s median ${median(mbps).toFixed(2)} (min ${Math.min(...mbps).toFixed(2)}, ` +
    `max ${Math.max(...mbps).toFixed(2)}) [${mbps.map((m) => m.toFixed(1)).join(' ')}]`);
  console.log(`  medians: resent/datagram ${med((o) => o.resentPerSeg).toFixed(3)}, B got twice ${med((o) => o.twice)}, ` +
    `parity/data ${med((o) => o.parityPerData).toFixed(3)}, rebuilt/lost ${med((o) => o.rebuiltShare).toFixed(2)}, ` +
    `B's socket drops ${med((o) => o.hostDrops)}`);
}
