/**
 * Cost of idle flows in the userspace TCP stack: opens N flows (handshake completed, no data),
 * then reports linear memory per flow, the cost of poll() with nothing due, and the cost of one
 * data segment to one flow among N — both should not grow with N, because every flow has its own
 * socket set and timer entry. Run with N=1 for the baseline.
 *
 *   node dist/bench/smoltcp-idle.js [flows=10000] [bufferBytes=16384]
 */
import { SmoltcpStack } from '../daemon/intercept/smoltcp/stack.js';
import { TCP_ACK, TCP_PSH } from '../daemon/packet/tcp.js';
import { TestClient, parseSegment } from '../test/unit/smoltcp/harness.js';

const flows = Number(process.argv[2] ?? 10_000);
const buffer = Number(process.argv[3] ?? 16 * 1024);
const stack = await SmoltcpStack.create({ rxBuffer: buffer, txBuffer: buffer, maxFlows: flows + 10, maxPending: flows + 10 });
let now = 1000;

function deliver(): void {
  for (let p; (p = stack.pollTransmit()); ) {
    const seg = parseSegment(p.slice());
    const c = byPort.get(`${seg.dst.join('.')}|${seg.dstPort}`);
    c?.receive(seg);
    for (const reply of c?.drain() ?? []) stack.input(reply, now);
  }
}

const byPort = new Map<string, TestClient>();
const ids: number[] = [];
const memoryBefore = stack.memoryBytes();
const openStarted = performance.now();
for (let i = 0; i < flows; i++) {
  const c = new TestClient(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 10000 + (i % 50000), '203.0.113.1', 443);
  byPort.set(c.key, c);
  stack.input(c.syn(), now);
  for (let e; (e = stack.pollEvent()); ) {
    if (e.type === 'new') {
      stack.accept(e.id);
      ids.push(e.id);
    }
  }
  deliver();
}
const openMs = performance.now() - openStarted;
// Let delayed ACKs and other short timers run out (keep-alives are minutes away).
for (let i = 0; i < 100 && stack.pollTimeout() < now + 1000; i++) {
  now = Math.max(now, stack.pollTimeout());
  stack.poll(now);
  deliver();
}
while (stack.pollEvent());
const memoryAfter = stack.memoryBytes();
const stats = stack.stats();

function timeUs(rounds: number, fn: () => void): number {
  const t = performance.now();
  for (let i = 0; i < rounds; i++) fn();
  return ((performance.now() - t) * 1000) / rounds;
}
const pollUs = timeUs(10_000, () => stack.poll(++now));
const probe = byPort.values().next().value!;
const data = new Uint8Array(1000);
// Built beforehand, so the timing covers the stack and binding, not the test client.
const WARMUP_SEGMENTS = 5_000;
const segments = Array.from({ length: WARMUP_SEGMENTS + 20_000 }, () => {
  const p = probe.packet(TCP_ACK | TCP_PSH, data);
  probe.sndNxt = (probe.sndNxt + data.length) >>> 0;
  return p;
});
let next = 0;
const deliverOne = (): void => {
  stack.input(segments[next++]!, ++now);
  stack.poll(now);
  while (stack.recv(ids[0]!));
  stack.poll(now);
  while (stack.pollTransmit());
  while (stack.pollEvent());
};
for (let i = 0; i < WARMUP_SEGMENTS; i++) deliverOne();
const segmentUs = timeUs(segments.length - WARMUP_SEGMENTS, deliverOne);

const kib = (b: number): string => (b / 1024).toFixed(1) + ' KiB';
console.log(`smoltcp idle flows: ${flows} established (open ${stats.openFlows}), buffers ${buffer}+${buffer} bytes`);
console.log(`  opening: ${(openMs / flows * 1000).toFixed(1)} us per flow (SYN, accept, SYN-ACK, ACK)`);
console.log(`  memory: ${kib(memoryBefore)} -> ${kib(memoryAfter)}, ${kib((memoryAfter - memoryBefore) / flows)} per flow`);
console.log(`  poll() with nothing due: ${pollUs.toFixed(2)} us; next timer: ${stack.pollTimeout()}`);
console.log(`  one 1000-byte segment to one flow (input, poll, recv, ACK out): ${segmentUs.toFixed(2)} us`);
