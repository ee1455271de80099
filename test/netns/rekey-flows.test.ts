/**
 * A rekey never looks like a dead peer, proven with real daemons in namespaces: A (--enable-quic-proxy,
 * dials, rekeying every 1.5 s through the test-only TSTIER_TEST_REKEY_MS) carries TCP flows over QUIC to
 * B's servers, while B is starved: stopped (SIGSTOP) 300 ms of every 900 ms. A rekey opens a new link
 * from a fresh source port; B answers its handshake but may take the new session up only after its next
 * stop, and meanwhile goes on sending on the old link (and A's goodbye there may well be read first).
 * Had A closed the old link as soon as its own side was up, B would see a goodbye or a closed port (ICMP
 * port unreachable, the sign of a killed peer) on its only live session and reset every flow: the old
 * code did so at every rekey. Across three rekeys: transfers complete byte-exact (sha256 at both
 * ends), held flows stay open, and neither node logs a peer gone. Rekeying is tstier's protocol's, so
 * the nodes use it whatever ET_PEER_PROTOCOL a run sets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
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
    '--dev-name', 'g9rktun', '--log-level', 'info', '--peer-protocol', 'tstier'];

/** A's source ports toward B's listener (one per live link; two while a rekey is in progress). */
async function linkPorts(a: Namespace): Promise<number[]> {
  const r = await a.exec(['ss', '-Hun', 'dst', `${B_IP}:11010`]);
  return [...r.stdout.matchAll(/\s\S+:(\d+)\s+\S+:11010\s*$/gm)].map((m) => Number(m[1]));
}

/** Polls until A has exactly one link to B, other than `not`; its port. Bounded by `timeoutMs`. */
async function soleLink(a: Namespace, not: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  let ports: number[] = [];
  while (Date.now() < until) {
    ports = await linkPorts(a);
    if (ports.length === 1 && ports[0] !== not) return ports[0]!;
    await sleep(50);
  }
  throw new Error(`A's links to B: ${JSON.stringify(ports)}, not one new link within ${timeoutMs} ms`);
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

test('rekeys under a starved peer: no flow reset, no peer gone, bytes exact', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('g9rk', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '10.247.9.1/24', `${B_IP}/24`);
  const nodeB = await startCore(b, [...common(2), '-l', 'udp://0.0.0.0:11010']);
  const nodeA: CoreNode = await startCore(a, [...common(1), '--no-listener', '--enable-quic-proxy', '-p', `udp://${B_IP}:11010`],
    { TSTIER_TEST_REKEY_MS: '1500' });
  await waitPeers(a, 1).catch((e: Error) => assert.fail(`${e.message}\nnode A:\n${nodeA.proc.lines.join('\n')}\nnode B:\n${nodeB.proc.lines.join('\n')}`));
  let port = await soleLink(a, 0, 10_000);

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
    for (let i = 0; i < REKEYS; i++) {
      // A rekey: a new link from a new port, its packets held; it replaces the old one only when B took it up.
      port = await Promise.race([soleLink(a, port, 15_000), fail]);
      t.diagnostic(`rekey ${i + 1}: A's link to B now from port ${port}`);
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
