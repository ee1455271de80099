/**
 * Benchmark of the QUIC core alone (quinn-proto in wasm behind QuicEndpoint): two endpoints in
 * one process on the deterministic simulator (test/sim/world.ts), one stream carrying N MiB one
 * way over a link with 5 ms each way, clean and with seeded random loss, BBR against Cubic.
 * Reports wall-clock MB/s of payload, CPU seconds per GiB (both endpoints, the simulator and the
 * hashing included), and the goodput the congestion controller reached in virtual time.
 * A second table times the core alone: the same endpoints wired back to back with no simulator,
 * no hashing and no copies beyond the wasm boundary, clock moved only to the next timer.
 * Not a test: numbers depend on the machine.
 *
 *   node dist/bench/quic-core.js [megabytes=64] [lossyMegabytes=8]
 */
import { QUIC_FIN, QuicEndpoint, type CongestionControl } from '../daemon/carrier/quic/endpoint.js';
import { loadQuicModule } from '../daemon/carrier/quic/wasm.js';
import { Rng } from '../test/sim/world.js';
import { connectedPair, payload } from '../test/unit/quic/harness.js';

interface Result {
  mbPerSec: number;
  cpuSecPerGiB: number;
  virtualMbPerSec: number;
  packets: number;
  lost: number;
}

async function run(megabytes: number, loss: number, congestion: CongestionControl): Promise<Result> {
  const { world, a, b } = await connectedPair({ seed: 7, link: { delayMs: 5, loss }, quic: { congestion } });
  const data = payload(new Rng(1), megabytes << 20);
  const startVirtual = world.now;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const s = a.send(b.node, data);
  if (s === null) throw new Error('stream did not open');
  const peer = (): boolean => [...b.streams.values()].some((x) => x.in.fin);
  const r = world.run({ until: peer, maxTime: startVirtual + 3_600_000 });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (!r.done) throw new Error(`${congestion} at ${loss * 100}% loss: did not finish within an hour of virtual time`);
  const received = [...b.streams.values()].find((x) => x.in.fin)!;
  if (received.in.digest !== s.out!.sha) throw new Error('payload corrupted');
  const bytes = data.length;
  const stats = a.ep.stats(s.conn);
  return {
    mbPerSec: bytes / 1e6 / wall,
    cpuSecPerGiB: ((cpu.user + cpu.system) / 1e6) * ((1 << 30) / bytes),
    virtualMbPerSec: bytes / 1e6 / ((world.now - startVirtual) / 1000),
    packets: stats.sentPackets,
    lost: stats.lostPackets,
  };
}

/** Back-to-back endpoints: CPU per data packet and MB/s of the core and its binding alone. */
async function runCore(megabytes: number, congestion: CongestionControl): Promise<{ mbPerSec: number; usPerPacket: number }> {
  const module = await loadQuicModule();
  const a = new QuicEndpoint(module, { seed: 1, congestion });
  const b = new QuicEndpoint(module, { seed: 2, congestion });
  const A = 1;
  const B = 2;
  const chunk = new Uint8Array(64 * 1024).map((_, i) => i * 7);
  const sink = new Uint8Array(64 * 1024);
  const total = megabytes << 20;
  let now = 0;
  let written = 0;
  let received = 0;
  let packets = 0;
  let stream = -1;
  let conn = a.connect(B, now);
  const move = (from: QuicEndpoint, fromId: number, to: QuicEndpoint): number => {
    let n = 0;
    for (let t = from.pollTransmit(); t !== null; t = from.pollTransmit()) {
      to.input(fromId, t.data, now, t.fromInitiator);
      n++;
    }
    return n;
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (received < total) {
    if (stream < 0) {
      const ref = a.openStream(B);
      if (ref !== null) ({ conn, stream } = ref);
    }
    while (stream >= 0 && written < total) {
      const n = a.write(conn, stream, chunk.subarray(0, Math.min(chunk.length, total - written)));
      if (n <= 0) break;
      written += n;
      if (written === total) a.finish(conn, stream);
    }
    const moved = move(a, A, b) + move(b, B, a);
    packets += moved;
    for (let e = b.pollEvent(); e !== null; e = b.pollEvent()) {
      if (e.type !== 'readable' && e.type !== 'stream-opened') continue;
      for (let r = b.read(e.conn, e.stream, sink); r > 0 || r === QUIC_FIN; r = b.read(e.conn, e.stream, sink)) {
        if (r === QUIC_FIN) break;
        received += r;
      }
    }
    while (a.pollEvent() !== null);
    if (moved === 0) {
      now = Math.min(a.pollTimeout(), b.pollTimeout());
      a.handleTimeout(now);
      b.handleTimeout(now);
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { mbPerSec: total / 1e6 / wall, usPerPacket: (cpu.user + cpu.system) / packets };
}

const megabytes = Number(process.argv[2] ?? 64);
const lossyMegabytes = Number(process.argv[3] ?? 8);
console.log('QUIC core, one stream, 5 ms each way, 1200-byte datagrams');
console.log('cc     loss   MiB   wall MB/s   CPU s/GiB   virtual MB/s   packets   lost');
for (const loss of [0, 0.05, 0.2]) {
  for (const cc of ['bbr', 'cubic'] as const) {
    const mib = loss === 0 ? megabytes : lossyMegabytes;
    try {
      const r = await run(mib, loss, cc);
      console.log(
        `${cc.padEnd(6)} ${(loss * 100).toFixed(0).padStart(3)}%  ${String(mib).padStart(4)}  ${r.mbPerSec.toFixed(1).padStart(10)}  ` +
          `${r.cpuSecPerGiB.toFixed(2).padStart(10)}  ${r.virtualMbPerSec.toFixed(2).padStart(13)}  ${String(r.packets).padStart(8)}  ${String(r.lost).padStart(5)}`,
      );
    } catch (e) {
      console.log(`${cc.padEnd(6)} ${(loss * 100).toFixed(0).padStart(3)}%  ${String(mib).padStart(4)}  ${(e as Error).message}`);
    }
  }
}

console.log('\ncore alone (back to back, no loss)');
console.log('cc     MiB   wall MB/s   CPU µs per datagram (both ends, data and ACKs)');
for (const cc of ['bbr', 'cubic'] as const) {
  const r = await runCore(megabytes, cc);
  console.log(`${cc.padEnd(6)} ${String(megabytes).padStart(4)}  ${r.mbPerSec.toFixed(1).padStart(10)}  ${r.usPerPacket.toFixed(2).padStart(10)}`);
}
