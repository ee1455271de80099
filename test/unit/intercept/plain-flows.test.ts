import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlainFlowTracker } from '../../../daemon/intercept/plain-flows.js';
import type { PlainRow } from '../../../daemon/intercept/terminator.js';
import { buildTcpPacket } from '../../../daemon/packet/build.js';
import { parseIpv4Address } from '../../../daemon/packet/address.js';
import { TCP_ACK, TCP_FIN, TCP_SYN } from '../../../daemon/packet/tcp.js';

function pkt(sport: number, flags: number, payload = 0): Uint8Array {
  return buildTcpPacket(
    { src: parseIpv4Address('10.144.144.1')!, dst: parseIpv4Address('10.144.144.3')! },
    { srcPort: sport, dstPort: 80, seq: 1, ack: 0, flags, window: 65535, urgent: 0, options: {}, payload: new Uint8Array(payload) },
  );
}

function row(): PlainRow & { ends: (string | undefined)[] } {
  const ends: (string | undefined)[] = [];
  return { counters: { txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 0, duplicates: 0 }, ends, ended: (why) => void ends.push(why) };
}

test('plain-flow tracker: counts a followed flow\'s outbound payload and ends its row once, at its FIN', () => {
  const tracker = new PlainFlowTracker();
  const followed = row();
  assert.equal(tracker.track(pkt(40000, TCP_SYN), followed), true);
  assert.equal(tracker.isTracked(pkt(40000, TCP_SYN)), true, 'a retransmitted SYN of the flow');
  assert.equal(tracker.isTracked(pkt(40001, TCP_SYN)), false, 'another flow');

  tracker.observe(pkt(40000, TCP_ACK, 1000));
  tracker.observe(pkt(40001, TCP_ACK, 500)); // not followed: counts nowhere
  tracker.observe(pkt(40000, TCP_ACK, 300));
  assert.equal(followed.counters.txBytes, 1300);
  assert.deepEqual(followed.ends, []);

  tracker.observe(pkt(40000, TCP_ACK | TCP_FIN, 10));
  assert.equal(followed.counters.txBytes, 1310);
  assert.deepEqual(followed.ends, [undefined], 'ended once, with no reason of its own');
  tracker.observe(pkt(40000, TCP_ACK | TCP_FIN));
  assert.deepEqual(followed.ends, [undefined], 'forgotten after its FIN');
  assert.equal(tracker.isTracked(pkt(40000, TCP_SYN)), false);
});
