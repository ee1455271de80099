/**
 * Plain forwarding keeps a flow's packets in order, delivers each once, and leaves them unchanged.
 *
 * Two easytier-core nodes with real TUNs, joined by a veth (udp:// peer link). Numbered UDP streams
 * (fixtures/udp-sequence.ts) cross the TUNs as forwarded packets, two A→B and one B→A at the same
 * time, in bursts that fill the nodes' TUN read batches and sendmmsg/recvmmsg runs, in sizes that
 * mix ACK-sized and full packets. An inner TCP reads a packet that arrives after a later one as a
 * loss (three of them trigger a fast retransmit), and a duplicate as a spurious retransmission: under
 * loss that halves what it sends (docs/forwarding-latency.md). On a clean veth with these buffers
 * nothing should be missing either, so every datagram must arrive, once, in order, byte-exact, but
 * for those a busy host dropped for want of buffer (lib/host-drops.ts counts them where they fell).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { startCore, waitPeers } from './lib/core.js';
import { hostDrops } from './lib/host-drops.js';

const SKIP = unavailableReason();
const SEQ = new URL('./fixtures/udp-sequence.js', import.meta.url);
const COUNT = 4000;
const VIP = ['10.144.201.1', '10.144.201.2'] as const;
const TUN = 't20ftun';

interface Result { received: number; outOfOrder: number; duplicates: number; corrupt: number; missing: number; gaps: string[] }

const common = (vip: string, host: string): string[] =>
  ['--network-name', 't20f', '--network-secret', 'order', '-i', vip, '--hostname', host, '--dev-name', TUN];

/** One numbered stream from `from` to `to`'s virtual address `dst`:`port`; resolves to the receiver's account. */
async function stream(from: Namespace, to: Namespace, dst: string, port: number): Promise<Result> {
  const rx = to.node(SEQ, ['recv', String(port), String(COUNT)]);
  await rx.waitForEvent('listening');
  const tx = from.node(SEQ, ['send', dst, String(port), String(COUNT)]);
  try {
    await tx.waitForEvent('sent', 30_000);
    return await rx.waitForEvent<Result>('result', 3_000).catch(() => {
      // The end marker never came (a full socket buffer dropped it too): the receiver's account so
      // far says what went missing. The marker left last on a path that keeps order, so anything
      // still to come would have come by now.
      rx.send('report');
      return rx.waitForEvent<Result>('result', 5_000);
    });
  } finally {
    await Promise.all([tx.stop(), rx.stop()]);
  }
}

test('plain forwarding: each flow in order, once, byte-exact', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('t20f-order', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  const veth = await net.link(a, b, '10.251.20.1/24', '10.251.20.2/24');
  const nb = await startCore(b, [...common(VIP[1], 'order-b'), '-l', 'udp://0.0.0.0:11010']);
  const na = await startCore(a, [...common(VIP[0], 'order-a'), '--no-listener', '-p', 'udp://10.251.20.2:11010']);
  t.after(() => Promise.all([na.proc.stop(), nb.proc.stop()]));
  await waitPeers(a, 1);
  // A route is listed before the TUN path carries packets: the first ping that answers says it does.
  for (let i = 0; i < 20 && (await a.exec(['ping', '-c', '1', '-W', '1', VIP[1]], { allowFailure: true })).code !== 0; i++);

  const results = await Promise.all([
    stream(a, b, VIP[1], 9001),
    stream(a, b, VIP[1], 9002),
    stream(b, a, VIP[0], 9003),
  ]);
  // Datagrams dropped for want of buffer (a node or a receiver that the busy host did not run in
  // time: the TUNs' queues, the peer link's sockets and veth, the streams' own sockets) are the
  // host's losses, not the forwarding path's: every other datagram must arrive.
  const drops = await hostDrops({ name: 'a', ns: a, peerId: na.peerId }, { name: 'b', ns: b, peerId: nb.peerId }, TUN, veth);
  const missing = results.reduce((m, r) => m + r.missing, 0);
  assert.ok(missing <= drops.excused, `${missing} datagrams missing, but only ${drops.excused} counted as dropped for want of buffer: `
    + `${JSON.stringify(drops.where)}; the nodes' other losses: ${JSON.stringify(drops.otherLosses)}; streams: ${JSON.stringify(results)}`);
  // Enough of each stream arrives for its order to mean something (the drops are bursts of a stall).
  results.forEach((r, i) => assert.ok(r.received >= COUNT / 4, `stream ${i + 1}: only ${r.received} of ${COUNT} arrived`));
  results.forEach(({ outOfOrder, duplicates, corrupt }, i) =>
    assert.deepEqual({ outOfOrder, duplicates, corrupt }, { outOfOrder: 0, duplicates: 0, corrupt: 0 }, `stream ${i + 1} (${i < 2 ? 'A→B' : 'B→A'}): ${JSON.stringify(results[i])}`));
});
