/**
 * Plain forwarding keeps a flow's packets in order, delivers each once, and leaves them unchanged.
 *
 * Two easytier-core nodes with real TUNs, joined by a veth (udp:// peer link). Numbered UDP streams
 * (fixtures/udp-sequence.ts) cross the TUNs as forwarded packets, two A→B and one B→A at the same
 * time, in bursts that fill the nodes' TUN read batches and sendmmsg/recvmmsg runs, in sizes that
 * mix ACK-sized and full packets. An inner TCP reads a packet that arrives after a later one as a
 * loss (three of them trigger a fast retransmit), and a duplicate as a spurious retransmission: under
 * loss that halves what it sends (docs/forwarding-latency.md). On a clean veth with these buffers
 * nothing should be missing either, so every datagram must arrive, once, in order, byte-exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { startCore, waitPeers } from './lib/core.js';

const SKIP = unavailableReason();
const SEQ = new URL('./fixtures/udp-sequence.js', import.meta.url);
const COUNT = 4000;
const VIP = ['10.144.201.1', '10.144.201.2'] as const;

interface Result { received: number; outOfOrder: number; duplicates: number; corrupt: number; missing: number }

const common = (vip: string, host: string): string[] =>
  ['--network-name', 't20f', '--network-secret', 'order', '-i', vip, '--hostname', host, '--dev-name', 't20ftun'];

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

/**
 * UDP datagrams the kernel in `ns` dropped at a full socket buffer, and the TUN's drops, since the
 * namespace was made (absolute: nstat's history file is per user, not per namespace).
 */
async function socketDrops(ns: Namespace): Promise<number> {
  const counters = (await ns.exec(['nstat', '-asz', 'UdpRcvbufErrors', 'UdpSndbufErrors'])).stdout;
  const udp = [...counters.matchAll(/^\w+\s+(\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
  const link = (await ns.exec(['ip', '-s', 'link', 'show', 't20ftun'])).stdout;
  const tun = [...link.matchAll(/[RT]X:.*\n\s+\d+\s+\d+\s+\d+\s+(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
  return udp + tun;
}

test('plain forwarding: each flow in order, once, byte-exact', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('t20f-order', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '10.251.20.1/24', '10.251.20.2/24');
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
  // Datagrams the kernel dropped for want of socket buffer (a node or a receiver that the busy host
  // did not run in time: the peer link's sockets, or the streams' own) are the host's losses, not the
  // forwarding path's: every other datagram must arrive.
  const drops = (await Promise.all([a, b].map(socketDrops))).reduce((x, y) => x + y, 0);
  const missing = results.reduce((m, r) => m + r.missing, 0);
  assert.ok(missing <= drops, `${missing} datagrams missing, but the kernel dropped only ${drops}: ${JSON.stringify(results)}`);
  // Enough of each stream arrives for its order to mean something (the drops are bursts of a stall).
  results.forEach((r, i) => assert.ok(r.received >= COUNT / 4, `stream ${i + 1}: only ${r.received} of ${COUNT} arrived`));
  results.forEach(({ outOfOrder, duplicates, corrupt }, i) =>
    assert.deepEqual({ outOfOrder, duplicates, corrupt }, { outOfOrder: 0, duplicates: 0, corrupt: 0 }, `stream ${i + 1} (${i < 2 ? 'A→B' : 'B→A'}): ${JSON.stringify(results[i])}`));
});
