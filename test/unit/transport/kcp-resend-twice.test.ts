/**
 * Two of the engine's options for tstier-kcptun's link under heavy random loss: `resendTwice` (a resend
 * in the front half of the window leaves twice, in separate datagrams) and `rackAdaptiveReorder: false`
 * (an ACK echoing an earlier transmission, which toward an FEC peer is mostly a late rebuild, does not
 * widen RACK's reordering allowance).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kcp } from '../../../daemon/transport/kcp/kcp.js';
import { IKCP_CMD_PUSH, IKCP_OVERHEAD, readU32 } from '../../../daemon/transport/kcp/segment.js';
import { Rack } from '../../../daemon/transport/kcp/rack.js';
import { Segment } from '../../../daemon/transport/kcp/segment-store.js';
import { Rng } from '../../sim/world.js';
import { drivePair } from './kcp-wire-loop.js';

const WND = 64;

/** The sns of the PUSH segments in a datagram. */
function pushes(d: Uint8Array): number[] {
  const sns: number[] = [];
  for (let off = 0; off + IKCP_OVERHEAD <= d.length; off += IKCP_OVERHEAD + readU32(d, off + 20)) {
    if (d[off + 4] === IKCP_CMD_PUSH) sns.push(readU32(d, off + 12));
  }
  return sns;
}

function engine(resendTwice: boolean): Kcp {
  return new Kcp({ conv: 3, mtu: 1200, sndWnd: WND, rcvWnd: WND, nodelay: 0, interval: 30, resend: 2, nc: 1, streamMode: true, rack: true, resendTwice });
}

/** One window of data from a to b; the first transmissions of `lose` are dropped. Counts datagrams per sn. */
function window(resendTwice: boolean, lose: number[]): { sent: Map<number, number>; a: Kcp; b: Kcp } {
  const a = engine(resendTwice);
  const b = engine(false);
  const data = new Rng(5).bytes(100 + WND * a.mss);
  const sent = new Map<number, number>();
  // A first segment learns the peer's window (64, not the initial 32); then the window's worth in one go.
  a.send(data.subarray(0, 100));
  const feed = (now: number): void => {
    if (now === 100) a.send(data.subarray(100));
  };
  const r = drivePair(a, b, data, 10_000, feed, (from, body) => {
    if (from !== a) return 20;
    const sns = pushes(body);
    assert.equal(new Set(sns).size, sns.length, 'a datagram carries a segment twice');
    let drop = false;
    for (const sn of sns) {
      const n = (sent.get(sn) ?? 0) + 1;
      sent.set(sn, n);
      if (n === 1 && lose.includes(sn)) drop = true;
    }
    return drop ? -1 : 20;
  });
  assert.equal(r.got, data.length);
  return { sent, a, b };
}

test('resendTwice: a lost segment in the front half of the window is resent in two datagrams, one in the back half once', () => {
  const { sent, a, b } = window(true, [5, 50]);
  assert.equal(sent.get(5), 3, 'sn 5: the lost first transmission, the resend and its copy');
  assert.equal(sent.get(50), 2, 'sn 50 (back half): the lost first transmission and one resend');
  assert.equal(sent.get(6), 1);
  assert.equal(a.lostSegs, 0, 'found by RACK, not by the RTO');
  assert.equal(a.retransSegs, 3, 'the copy counts as a retransmission');
  assert.equal(b.repeatSegs, 1, 'the receiver drops the copy as a repeat');
});

test('resendTwice off: every resend leaves once', () => {
  const { sent, a } = window(false, [5, 50]);
  assert.equal(sent.get(5), 2);
  assert.equal(sent.get(50), 2);
  assert.equal(a.retransSegs, 2);
});

test('rack: echoes of earlier transmissions widen the allowance up to rackMaxReorder srtt/8 steps', () => {
  const resent = (sn: number): Segment => Object.assign(new Segment(new Uint8Array(0)), { sn, ts: 150, xmit: 2 });
  const widest = new Rack();
  const three = new Rack(3);
  const fixed = new Rack(1);
  for (const rack of [widest, three, fixed]) {
    // Segments resent at 150 are acknowledged by ACKs echoing their first transmissions (ts 100).
    for (let sn = 0; sn < 10; sn++) rack.acked(resent(sn), 100, 180);
  }
  // The last delivery's RTT is 80 (echo of ts 100 seen at 180).
  const srtt = 80;
  assert.equal(fixed.wait(srtt, 0), 80 + srtt / 8, '1: the allowance stays srtt/8');
  assert.equal(three.wait(srtt, 0), 80 + (3 * srtt) / 8, '3: at most 3/8 srtt');
  assert.equal(widest.wait(srtt, 0), 80 + srtt, 'the default: up to srtt');
});

test('rackMaxReorder outside 1..8 is refused with the option named', () => {
  assert.throws(() => new Kcp({ conv: 1, rack: true, rackMaxReorder: 0 }), /rackMaxReorder/);
});
