/**
 * The engine's `rack` option (time-based loss detection) on a hand-driven virtual link: a one-way
 * delay, reordering within the allowance, and chosen drops. What must hold: no resend at all when
 * nothing is lost (reordered ACK batches included), a lost segment and a lost retransmission are
 * resent after about a round trip and never by the RTO, and every byte arrives in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kcp } from '../../../daemon/transport/kcp/kcp.js';
import { IKCP_CMD_PUSH, IKCP_OVERHEAD, readU32 } from '../../../daemon/transport/kcp/segment.js';
import { Rack } from '../../../daemon/transport/kcp/rack.js';
import { Segment } from '../../../daemon/transport/kcp/segment-store.js';
import { Rng } from '../../sim/world.js';

const ONE_WAY_MS = 20;

interface InFlight { at: number; to: Kcp; data: Uint8Array }

function engines(): [Kcp, Kcp] {
  const opts = { conv: 7, mtu: 1200, sndWnd: 512, rcvWnd: 512, nodelay: 1, interval: 10, resend: 2, nc: 1, streamMode: true, rack: true };
  return [new Kcp(opts), new Kcp(opts)];
}

/** The sns of the PUSH segments in a datagram. */
function pushes(d: Uint8Array): number[] {
  const sns: number[] = [];
  for (let off = 0; off + IKCP_OVERHEAD <= d.length; off += IKCP_OVERHEAD + readU32(d, off + 20)) {
    if (d[off + 4] === IKCP_CMD_PUSH) sns.push(readU32(d, off + 12));
  }
  return sns;
}

/**
 * Sends `total` bytes from a to b. `drop(sn, nthSend)` drops a datagram carrying that PUSH; `jitter`
 * adds 0..jitter ms to each datagram's delay (reordering). Returns when b has every byte.
 */
function transfer(total: number, drop: (sn: number, nth: number) => boolean, jitter: number, seed: number): { a: Kcp; b: Kcp; got: Uint8Array; ms: number } {
  const [a, b] = engines();
  const rng = new Rng(seed);
  const data = rng.bytes(total);
  const got = new Uint8Array(total);
  let have = 0;
  let off = 0;
  const wire: InFlight[] = [];
  const sends = new Map<number, number>();
  const move = (from: Kcp, to: Kcp, now: number): void => {
    for (let d = from.pollTransmit(); d !== null; d = from.pollTransmit()) {
      const body = d.slice(from.headroom);
      from.recycleTransmit(d);
      const lost = pushes(body).some((sn) => {
        const n = (sends.get(sn) ?? 0) + 1;
        if (from === a) sends.set(sn, n);
        return from === a && drop(sn, n);
      });
      if (!lost) wire.push({ at: now + ONE_WAY_MS + (jitter > 0 ? rng.int(jitter + 1) : 0), to, data: body });
    }
  };
  for (let now = 0; now < 60_000; now++) {
    while (off < total && a.canWrite()) {
      const n = Math.min(4096, total - off);
      a.send(data.subarray(off, off + n));
      off += n;
    }
    for (let i = 0; i < wire.length; ) {
      if (wire[i]!.at <= now) {
        const p = wire.splice(i, 1)[0]!;
        p.to.input(p.data, now);
      } else i++;
    }
    for (const k of [a, b]) if (k.pollTimeout() <= now) k.handleTimeout(now);
    b.flush(now); // ACKs once a ms, as a driver pass
    have += b.read(got, have);
    move(a, b, now);
    move(b, a, now);
    if (have === total) return { a, b, got: got.subarray(0, have), ms: now };
  }
  throw new Error(`transfer stalled at ${have} of ${total}`);
}

test('rack: a clean link with reordering within the allowance resends nothing', () => {
  const data = new Rng(1).bytes(1 << 20);
  const r = transfer(data.length, () => false, 1, 1);
  assert.deepEqual(r.got, data);
  assert.equal(r.a.retransSegs, 0, `spurious resends: fast ${r.a.fastRetransSegs}, timeout ${r.a.lostSegs}`);
});

test('rack: a lost segment and its lost retransmission are resent after about a round trip, never by the RTO', () => {
  const data = new Rng(2).bytes(1 << 20);
  // sn 40: the first and the second transmission are lost; sn 300: the first.
  const r = transfer(data.length, (sn, n) => (sn === 40 && n <= 2) || (sn === 300 && n === 1), 0, 2);
  assert.deepEqual(r.got, data);
  assert.equal(r.a.lostSegs, 0, 'an RTO fired');
  assert.equal(r.a.fastRetransSegs, 3, 'one resend per lost transmission, nothing spurious');
});

test('rack: random 10 % loss each way delivers every byte with resends close to the losses', () => {
  const rng = new Rng(3);
  const data = new Rng(3).bytes(1 << 20);
  let lost = 0;
  const r = transfer(data.length, () => (rng.chance(0.1) ? (lost++, true) : false), 0, 3);
  assert.deepEqual(r.got, data);
  // ACK datagrams are not dropped here, so every resend answers a real loss.
  assert.ok(r.a.retransSegs <= lost, `${r.a.retransSegs} resends for ${lost} losses`);
});

test('rack: a timer that runs late (this host stalled) reads the waiting ACK before it resends', () => {
  const [a, b] = engines();
  a.send(new Uint8Array(100));
  a.handleTimeout(0);
  const seg = a.pollTransmit()!;
  b.input(seg.subarray(b.headroom), 20);
  b.flush(20);
  const ack = b.pollTransmit()!;
  // The ACK reached a's socket at 40, but a's event loop was held until 400: its timer runs first.
  a.handleTimeout(400);
  assert.equal(a.pollTransmit(), null, 'resent before reading what waited');
  assert.equal(a.pollTimeout(), 401, 'the timeout must be checked again right after the input');
  a.input(ack.subarray(a.headroom), 400);
  a.handleTimeout(401);
  assert.equal(a.retransSegs, 0);
  assert.equal(a.waitSnd, 0);
  // Nothing came back at all: the probe goes one ms later than it would have.
  a.send(new Uint8Array(100));
  a.flush(401);
  a.pollTransmit();
  a.handleTimeout(2000);
  assert.equal(a.pollTransmit(), null);
  a.handleTimeout(2001);
  assert.deepEqual(pushes(a.pollTransmit()!.subarray(a.headroom)), [1]);
  assert.equal(a.lostSegs, 1);
});

test('rack: on a host whose timers always run late, a timeout is deferred once, then fires', () => {
  const [a] = engines();
  a.send(new Uint8Array(100));
  a.handleTimeout(0);
  a.pollTransmit();
  a.handleTimeout(1000); // late: deferred
  assert.equal(a.pollTransmit(), null);
  a.handleTimeout(1050); // late again (the 1 ms re-arm ran 49 ms late): fires now
  assert.notEqual(a.pollTransmit(), null);
  assert.equal(a.lostSegs, 1);
});

test('rack: within one ms a resend is not taken as sent before a first transmission, but is before a later resend of the same flush', () => {
  const seg = (sn: number, ts: number, xmit: number): Segment => Object.assign(new Segment(new Uint8Array(0)), { sn, ts, xmit });
  const grantThenFlush = new Rack();
  // ms 100: a pacer grant sent new segment 50, then a full flush resent 10. 50's ACK comes first.
  grantThenFlush.acked(seg(50, 100, 1), 100, 104);
  assert.equal(grantThenFlush.candidate(seg(10, 100, 2)), false, 'the resend left after 50: not a candidate for loss yet');
  assert.equal(grantThenFlush.candidate(seg(40, 100, 1)), true, 'first transmissions of one ms go in sn order');
  assert.equal(grantThenFlush.candidate(seg(10, 99, 2)), true, 'a resend of an earlier ms was sent before');
  const oneFlush = new Rack();
  // One full flush resent 10 and 20 in ms 100; 20's resend was delivered (the ACK echoes its latest send).
  oneFlush.acked(seg(20, 100, 2), 100, 104);
  assert.equal(oneFlush.candidate(seg(10, 100, 2)), true, 'resends of one flush go in sn order');
});

test('rack: a window lost whole is repaired once the timeout\'s probes come back, not two probes per timeout', () => {
  // A receiver's socket overflowing (a cold host at start) can drop everything in flight; nothing
  // sent later arrives, so only the timeout's probes (the window's oldest segments) can show RACK a
  // delivery. Their ACKs name them as una covers them: read after the una, the probes were never seen
  // delivered, and the rest went two per RTO (here 131 timeouts, 10.6 s; 2 and 0.27 s now).
  const data = new Rng(4).bytes(200_000);
  const r = transfer(data.length, (sn, n) => sn >= 40 && n === 1, 0, 4);
  assert.deepEqual(r.got, data);
  const lost = Math.ceil(data.length / r.a.mss) - 40;
  assert.ok(r.a.lostSegs <= 4, `${r.a.lostSegs} segments resent by timeouts`);
  assert.equal(r.a.retransSegs, lost, 'one resend per lost segment');
  assert.ok(r.ms < 1_000, `repaired after ${r.ms} ms`);
});
