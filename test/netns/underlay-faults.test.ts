/**
 * The underlay failing under a running easytier-core: real daemons with real TUNs in namespaces.
 *
 * Proves: a node whose peers are unroutable (an empty namespace) or do not resolve keeps running
 * and keeps redialling with backoff, logging the cause once and then only at attempts 2, 4, 8, ...;
 * two peered nodes ride out a 10 s outage of their only link, once with the link down and once
 * with the address removed, and find each other again after it returns. The outage itself is a
 * deliberate 10 s hold; every other wait is on a log line or the route table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliJson, startCore, type CoreNode } from './lib/core.js';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';

const SKIP = unavailableReason();
const OUTAGE_MS = 10_000;
const UNROUTABLE = 'udp://10.255.255.1:11010';
const UNROUTABLE_TCP = 'tcp://10.255.255.1:11010';
const UNRESOLVABLE = 'udp://no.such.host.invalid:1';

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tf14h2net', '--network-secret', 'h2secret', '-i', ip, '--hostname', host, '--dev-name', 'tf14h2tun'];

/** Polls `ns`'s route table (one CLI round trip per poll, bounded) until `peerId` is in it. */
async function waitRoute(ns: Namespace, peerId: number): Promise<void> {
  let rows: { peer_id: number }[] = [];
  for (let i = 0; i < 100; i++) {
    rows = await cliJson<{ peer_id: number }>(ns, ['route']).catch(() => []);
    if (rows.some((r) => r.peer_id === peerId)) return;
  }
  assert.fail(`${ns.name}: peer ${peerId} never came back; routes: ${JSON.stringify(rows)}`);
}

function assertRunning(node: CoreNode, what: string): void {
  assert.equal(node.proc.child.exitCode, null, `${what} exited:\n${node.proc.lines.slice(-30).join('\n')}`);
  assert.equal(node.proc.child.signalCode, null, `${what} was killed`);
}

test('unroutable and unresolvable peers at start-up: the node keeps running and redialling',
  { skip: SKIP ?? false, timeout: 60_000 }, async (t) => {
    const net = await Netns.create('tf14h2-dial', t);
    const ns = await net.ns('a'); // nothing but loopback: every address is unroutable, no resolver answers
    const node = await startCore(ns, [...common('10.144.150.1', 'lonely'), '--no-listener',
      '-p', UNROUTABLE, '-p', UNROUTABLE_TCP, '-p', UNRESOLVABLE]);
    // Attempt 4 comes after three backoff periods (0.25 + 0.5 + 1 s at most).
    // Waited on together: each wait walks past the lines it has seen.
    await Promise.all([UNROUTABLE, UNROUTABLE_TCP, UNRESOLVABLE].map((uri) => {
      const escaped = uri.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      return node.proc.waitForLine(new RegExp(`peer dial still failing.* remote=${escaped} attempt=4 `), 20_000);
    }));
    assertRunning(node, 'easytier-core');
    const [info] = await cliJson<{ peer_id: number; hostname: string }>(ns, ['node']);
    assert.deepEqual([info?.peer_id, info?.hostname], [node.peerId, 'lonely']);
    for (const uri of [UNROUTABLE, UNROUTABLE_TCP, UNRESOLVABLE]) {
      const lines = node.proc.lines.filter((l) => l.includes(`remote=${uri} `));
      // The cause once (attempt 1), then attempts 2 and 4 only, until attempt 8.
      const attempts = lines.map((l) => Number(/attempt=(\d+)/.exec(l)?.[1]));
      assert.deepEqual(attempts.filter((a) => a < 8), [1, 2, 4], lines.join('\n'));
      assert.match(lines[0]!, /WARN .*peer dial failed; retrying with backoff.*err=/);
    }
    assert.ok(!node.proc.lines.some((l) => /bug:|unhandled|ERR_SOCKET/.test(l)), node.proc.lines.join('\n'));
  });

interface Outage {
  name: string;
  cut: (ns: Namespace, ifname: string) => Promise<unknown>;
  restore: (ns: Namespace, ifname: string) => Promise<unknown>;
}

const OUTAGES: Outage[] = [
  {
    name: 'link down',
    cut: (ns, ifname) => ns.exec(['ip', 'link', 'set', ifname, 'down']),
    restore: (ns, ifname) => ns.exec(['ip', 'link', 'set', ifname, 'up']),
  },
  {
    name: 'address removed',
    cut: (ns, ifname) => ns.exec(['ip', 'addr', 'del', '10.252.1.2/24', 'dev', ifname]),
    restore: (ns, ifname) => ns.exec(['ip', 'addr', 'add', '10.252.1.2/24', 'dev', ifname]),
  },
];

for (const outage of OUTAGES) {
  test(`a 10 s underlay outage (${outage.name}): both daemons stay up and peer again`,
    { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
      const net = await Netns.create(`tf14h2-${outage.name === 'link down' ? 'down' : 'addr'}`, t);
      const [a, b] = [await net.ns('a'), await net.ns('b')];
      const ifname = await net.link(a, b, '10.252.1.1/24', '10.252.1.2/24');
      const na = await startCore(a, [...common('10.144.151.1', 'node-a'), '-l', 'udp://0.0.0.0:11010', '-l', 'tcp://0.0.0.0:11010']);
      const nb = await startCore(b, [...common('10.144.151.2', 'node-b'), '--no-listener',
        '-p', 'udp://10.252.1.1:11010', '-p', 'tcp://10.252.1.1:11010']);
      await waitRoute(a, nb.peerId);
      await waitRoute(b, na.peerId);

      const cutAt = Date.now();
      const linesBefore = [na, nb].map((n) => n.proc.lines.length);
      await outage.cut(b, ifname);
      // Both sessions die of silence (6 s), then B redials into a network that is not there.
      await nb.proc.waitForLine(/peer down/, OUTAGE_MS);
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - cutAt))); // the outage itself: a deliberate hold
      assertRunning(na, 'node A during the outage');
      assertRunning(nb, 'node B during the outage');
      await outage.restore(b, ifname);

      await nb.proc.waitForLine(/peer up/, 30_000);
      await waitRoute(a, nb.peerId);
      await waitRoute(b, na.peerId);
      assertRunning(na, 'node A');
      assertRunning(nb, 'node B');
      for (const [i, node] of [na, nb].entries()) {
        assert.ok(!node.proc.lines.some((l) => /bug:|unhandled|ERR_SOCKET/.test(l)), node.proc.lines.join('\n'));
        // Peer down and up, and for each of B's two connectors the cause once and then attempts 4
        // and 8 at most: not a line per packet or per attempt.
        const outageLines = node.proc.lines.slice(linesBefore[i]);
        assert.ok(outageLines.length <= 8, outageLines.join('\n'));
      }
    });
}
