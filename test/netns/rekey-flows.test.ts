/**
 * A key change never looks like a dead peer, proven with real daemons in namespaces: A and B run
 * --secure-mode, whose sessions move to a new key epoch every 1.5 s here (the test-only
 * TSTIER_TEST_EPOCH_MS; ten minutes by default). A (--enable-quic-proxy, dials) carries TCP flows over
 * QUIC to B's servers, while B is starved: stopped (SIGSTOP) 300 ms of every 900 ms, so either side
 * may be several epochs ahead of what the other last read, and packets of the old epoch still arrive
 * after the new one began. A capture on B's link (tcpdump) reads the epoch each sealed packet carries
 * in its nonce and waits until B has sent in three new epochs. Across them: transfers complete
 * byte-exact (sha256 at both ends), held flows stay open, and neither node logs a peer gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Netns, unavailableReason } from './lib/netns.js';
import { startCore, waitPeers, type CoreNode } from './lib/core.js';

const FAULTS = new URL('./fixtures/fault-flows.js', import.meta.url);
const SKIP = unavailableReason();
const B_IP = '10.247.9.2';
const VIP_B = '10.144.179.2';
const REKEYS = 3;
/** B is stopped this long, then runs twice as long, over and over: a starved process. */
const STOP_MS = 300;

const common = (n: number): string[] =>
  ['--network-name', 'g9rknet', '--network-secret', 'rekey-secret', '-i', `10.144.179.${n}`, '--hostname', `node-${n}`,
    '--dev-name', 'g9rktun', '--log-level', 'info', '--secure-mode'];
/** Both nodes change key epoch this often. */
const EPOCH_ENV = { TSTIER_TEST_EPOCH_MS: '1500' };
/** Sealed packets this long or longer are B's bulk data (pings and acks are far shorter). */
const BULK_LEN = 600;

/**
 * The key epochs of B's sealed bulk packets in a pcap file, in capture order. A secure-mode packet
 * ends with its nonce, epoch u32 BE ‖ seq u64 BE (secure-datagram.ts), so the epoch sits 12 bytes
 * from the end whatever headers come first.
 */
async function epochsIn(file: string): Promise<number[]> {
  const b = await readFile(file).catch(() => Buffer.alloc(0));
  const epochs: number[] = [];
  for (let at = 24; at + 16 <= b.length;) {
    const len = b.readUInt32LE(at + 8);
    const end = at + 16 + len;
    if (end > b.length) break; // a record still being written
    if (len >= BULK_LEN) epochs.push(b.readUInt32BE(end - 12));
    at = end;
  }
  return epochs;
}

/** Polls the capture until B's bulk packets carry an epoch past `after`; that epoch. Bounded by `timeoutMs`. */
async function nextEpoch(file: string, after: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  let seen: number[] = [];
  while (Date.now() < until) {
    seen = await epochsIn(file);
    const newer = seen.find((e) => e > after);
    if (newer !== undefined) return newer;
    await sleep(100);
  }
  throw new Error(`B's sealed packets stayed at epochs ${JSON.stringify([...new Set(seen)])} for ${timeoutMs} ms`);
}

/** Starves B: stopped STOP_MS of every 3 × STOP_MS, until stop() (bounded by the test's life). */
function starve(node: CoreNode): { stop: () => Promise<void> } {
  let running = true;
  const loop = (async (): Promise<void> => {
    while (running) {
      node.proc.kill('SIGSTOP');
      await sleep(STOP_MS);
      node.proc.kill('SIGCONT');
      await sleep(2 * STOP_MS);
    }
  })();
  return { stop: async () => { running = false; await loop; } };
}

test('key epochs change under a starved peer: no flow reset, no peer gone, bytes exact', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('g9rk', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '10.247.9.1/24', `${B_IP}/24`);
  const dir = await mkdtemp(join(tmpdir(), 'g9rk-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pcap = join(dir, 'b.pcap');
  const capture = b.spawn(['tcpdump', '-i', 'any', '-n', '-U', '-w', pcap, `udp and src host ${B_IP} and src port 11010`]);
  t.after(() => capture.stop());
  for (let i = 0; i < 100 && !capture.stderr.includes('listening on'); i++) await sleep(50);
  assert.match(capture.stderr, /listening on/, 'tcpdump started');
  const nodeB = await startCore(b, [...common(2), '-l', 'udp://0.0.0.0:11010'], EPOCH_ENV);
  const nodeA: CoreNode = await startCore(a, [...common(1), '--no-listener', '--enable-quic-proxy', '-p', `udp://${B_IP}:11010`],
    EPOCH_ENV);
  await waitPeers(a, 1).catch((e: Error) => assert.fail(`${e.message}\nnode A:\n${nodeA.proc.lines.join('\n')}\nnode B:\n${nodeB.proc.lines.join('\n')}`));

  const bulk = b.node(FAULTS, ['serve', '0.0.0.0', '7100', String(3 << 20), String(256 << 10)]);
  const hold = b.node(FAULTS, ['serve', '0.0.0.0', '7101', '0', '0']);
  await Promise.all([bulk.waitForEvent('listening'), hold.waitForEvent('listening')]);
  const fetches = [0, 1, 2].map(() => a.node(FAULTS, ['fetch', VIP_B, '7100', String(64 << 10)]));
  const holds = [0, 1].map(() => a.node(FAULTS, ['hold', VIP_B, '7101']));
  await Promise.all([...fetches.map((f) => f.waitForEvent('progress', 20_000)), ...holds.map((h) => h.waitForEvent('open', 20_000))]);
  // A fetch reports `closed` after its `done`; a hold connection reports only how it ended.
  const ended = [...holds, hold].map((p) => p.waitForEvent<{ result: string }>('peer', 120_000)
    .then((e) => `a flow ended: ${e.result}`));
  const fail = Promise.race(ended).then((why) => assert.fail(why));
  void fail.catch(() => undefined);

  const starved = starve(nodeB);
  try {
    // The capture reaches the file a little late (the kernel hands tcpdump packets in blocks): wait for it.
    await Promise.race([nextEpoch(pcap, -1, 15_000), fail]);
    let epoch = Math.max(...await epochsIn(pcap));
    assert.ok(Number.isInteger(epoch) && epoch < 1000, `B's bulk packets seen before the key changes, at a plausible epoch: ${epoch}`);
    for (let i = 0; i < REKEYS; i++) {
      // A key change: B seals with the next epoch's key; A must open it (and the last packets of the old one).
      epoch = await Promise.race([nextEpoch(pcap, epoch, 15_000), fail]);
      t.diagnostic(`key change ${i + 1}: B now sends in epoch ${epoch}`);
    }
    await starved.stop();
    const got = await Promise.race([Promise.all(fetches.map((f) => Promise.race([
      f.waitForEvent<{ bytes: number; sha256: string }>('done', 60_000),
      f.waitForEvent<{ result: string }>('peer', 60_000).then((e) => assert.fail(`a transfer ended: ${e.result}`))]))), fail]);
    const sent = await bulk.waitForEvent<{ sha256: string }>('served', 10_000);
    for (const g of got) assert.deepEqual(g, { event: 'done', bytes: 3 << 20, sha256: sent.sha256 });
    for (const n of [nodeA, nodeB]) {
      assert.equal(n.proc.lines.find((l) => /peer gone|peer down/.test(l)), undefined, 'no peer went down or gone');
    }
  } catch (e) {
    await starved.stop();
    const tail = (n: CoreNode): string => n.proc.lines.slice(-20).join('\n');
    throw new Error(`${(e as Error).message}\nnode A:\n${tail(nodeA)}\nnode B:\n${tail(nodeB)}`, { cause: e });
  }
});
