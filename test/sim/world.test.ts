import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, World, type LinkParams, type SimEndpoint } from './world.js';

test('Rng: reproducible per seed, independent across seeds, ranges respected', () => {
  const a = new Rng(9);
  const b = new Rng(9);
  const seqA = Array.from({ length: 100 }, () => a.next());
  assert.deepEqual(seqA, Array.from({ length: 100 }, () => b.next()));
  const c = new Rng(10);
  assert.notDeepEqual(seqA.slice(0, 4), Array.from({ length: 4 }, () => c.next()));
  const r = new Rng(1);
  for (let i = 0; i < 10_000; i++) {
    const v = r.range(-3, 3);
    assert.ok(Number.isInteger(v) && v >= -3 && v <= 3);
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
  }
  assert.equal(new Rng(5).bytes(7).length, 7);
});

/** Sends the datagrams it is given at chosen times and logs what arrives. */
class Probe implements SimEndpoint {
  readonly outbox: Uint8Array[] = [];
  readonly log: { at: number; data: Uint8Array }[] = [];
  input(datagram: Uint8Array, now: number): void {
    this.log.push({ at: now, data: datagram });
  }
  pollTransmit(): Uint8Array | null {
    return this.outbox.shift() ?? null;
  }
  pollTimeout(): number {
    return Infinity;
  }
  handleTimeout(): void {}
}

function oneWay(params: LinkParams, sizes: number[], seed = 1): { log: Probe['log']; world: World } {
  const world = new World({ seed, start: 1000 });
  const src = new Probe();
  const dst = new Probe();
  world.link(world.addNode(src), world.addNode(dst), params);
  world.schedule(1000, () => {
    for (const [i, n] of sizes.entries()) src.outbox.push(new Uint8Array(n).fill(i));
  });
  world.run({ until: () => false, maxTime: 100_000 });
  return { log: dst.log, world };
}

test('links: delay, rate-limited serialisation and drop-tail queue', () => {
  assert.deepEqual(oneWay({ delayMs: 10 }, [5, 5]).log.map((e) => e.at), [1010, 1010]);
  const { log } = oneWay({ delayMs: 10, rateBytesPerMs: 1, queueBytes: 150 }, [100, 100, 100]);
  assert.deepEqual(log.map((e) => [e.at, e.data[0]]), [[1110, 0], [1210, 1]], 'third waits 200 ms > 150 bytes: dropped');
});

test('links: loss, duplication, corruption and jitter reordering happen at about the configured rates', () => {
  const sizes = Array.from({ length: 2000 }, () => 20);
  const lossy = oneWay({ loss: 0.3 }, sizes);
  assert.ok(lossy.log.length > 1300 && lossy.log.length < 1500, `${lossy.log.length} of 2000 arrived`);
  assert.equal(lossy.world.stats(0, 1).lost, 2000 - lossy.log.length);
  assert.equal(oneWay({ duplicate: 1 }, [20, 20]).log.length, 4);
  const corrupted = oneWay({ corrupt: 1 }, [20]).log[0]!.data;
  assert.ok(corrupted.some((b) => b !== 0), 'bits flipped');
  const jittered = oneWay({ delayMs: 5, jitterMs: 50 }, Array.from({ length: 200 }, (_, i) => i + 1)).log;
  assert.equal(jittered.length, 200);
  assert.ok(jittered.some((e, i) => i > 0 && e.data.length < jittered[i - 1]!.data.length), 'some reordering');
});

test('same seed, same run; another seed, another run', () => {
  const sizes = Array.from({ length: 300 }, (_, i) => i + 1);
  const params: LinkParams = { loss: 0.2, delayMs: 3, jitterMs: 30, duplicate: 0.1, corrupt: 0.1 };
  const trace = (seed: number): string =>
    oneWay(params, sizes, seed).log.map((e) => `${e.at}:${Buffer.from(e.data).toString('hex')}`).join();
  assert.equal(trace(7), trace(7));
  assert.notEqual(trace(7), trace(8));
});
