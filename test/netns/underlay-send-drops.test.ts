/**
 * A UDP underlay send lost at a full backlog (udp-batch.ts: the send buffer full and BACKLOG_MAX
 * sends already held back) is counted where the metrics read it (udpDropTotals, behind
 * tstier_underlay_dropped_packets_total{reason="udp_send_backlog_full"}), once per lost send, and
 * still after its socket closed. The send buffer stays full because the namespace's loopback has a
 * slow tbf qdisc: a queued datagram holds its share of the buffer until it leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason } from './lib/netns.js';

const SKIP = unavailableReason();
const FIXTURE = new URL('./fixtures/send-backlog.js', import.meta.url);
const SENDS = 6000;

test('sends lost at a full UDP send backlog are counted for the metrics, once each, closed sockets too', { skip: SKIP ?? false }, async (t) => {
  const net = await Netns.create('t25-backlog', t);
  const ns = await net.ns('a');
  await ns.exec(['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '10mb']);
  const r = await ns.node(FIXTURE, [String(SENDS)]).waitForEvent<{ lost: number; open: number; closed: number }>('result');
  assert.ok(r.lost > 0, `no send was lost: ${JSON.stringify(r)}`);
  assert.deepEqual({ open: r.open, closed: r.closed }, { open: r.lost, closed: r.lost });
});
