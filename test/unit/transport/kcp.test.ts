import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  KCP_INPUT_BAD_CMD, KCP_INPUT_BAD_CONV, KCP_INPUT_BAD_LEN, KCP_STATE_DEAD, Kcp, type KcpOptions,
} from '../../../daemon/transport/kcp/kcp.js';
import { kcpModeParams } from '../../../daemon/transport/kcp/modes.js';
import {
  IKCP_CMD_ACK, IKCP_CMD_PUSH, IKCP_CMD_WASK, IKCP_CMD_WINS, IKCP_OVERHEAD, encodeSegment, parseSegmentHeader,
  type SegmentHeader,
} from '../../../daemon/transport/kcp/segment.js';
import { TstierError } from '../../../daemon/errors.js';
import { Rng } from '../../sim/world.js';

const CONV = 0x11223344;

/** Every segment header in a datagram (headroom already stripped). */
function segments(d: Uint8Array): SegmentHeader[] {
  const out: SegmentHeader[] = [];
  for (let off = 0; ; ) {
    const h = parseSegmentHeader(d, off);
    if (h === null) return out;
    out.push(h);
    off += IKCP_OVERHEAD + h.len;
  }
}

/** Drains `from` and returns its datagrams (copies, headroom removed). */
function drain(from: Kcp): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let d = from.pollTransmit(); d !== null; d = from.pollTransmit()) out.push(d.slice(from.headroom));
  return out;
}

function deliver(from: Kcp, to: Kcp, now: number, keep: (h: SegmentHeader) => boolean = () => true): SegmentHeader[] {
  const seen: SegmentHeader[] = [];
  for (const d of drain(from)) {
    const segs = segments(d);
    seen.push(...segs);
    if (segs.every(keep)) assert.equal(to.input(d, now), 0);
  }
  return seen;
}

const engine = (o: Partial<KcpOptions> = {}): Kcp => new Kcp({ conv: CONV, streamMode: true, ...o });

test('options are validated with config errors naming the key', () => {
  const bad: Partial<KcpOptions>[] = [{ mtu: 40 }, { mtu: 1501 }, { headroom: 1400 }, { sndWnd: 0 }, { interval: 1.5 }, { nc: 3 }];
  for (const o of bad) {
    assert.throws(() => engine(o), (e: unknown) => e instanceof TstierError && e.code === 'TSTIER_E_BAD_CONFIG' &&
      e.message.startsWith(Object.keys(o)[0]!));
  }
  const k = engine({ mtu: 1350, headroom: 28 });
  assert.equal(k.mss, 1298, 'kcptun default MSS');
});

test('kcptun mode presets', () => {
  assert.deepEqual(kcpModeParams('normal'), { nodelay: 0, interval: 40, resend: 2, nc: 1 });
  assert.deepEqual(kcpModeParams('fast'), { nodelay: 0, interval: 30, resend: 2, nc: 1 });
  assert.deepEqual(kcpModeParams('fast2'), { nodelay: 1, interval: 20, resend: 2, nc: 1 });
  assert.deepEqual(kcpModeParams('fast3'), { nodelay: 1, interval: 10, resend: 2, nc: 1 });
  assert.deepEqual(kcpModeParams('manual'), { nodelay: 0, interval: 50, resend: 0, nc: 0 });
  assert.deepEqual(kcpModeParams('manual', { interval: 15, nc: 1 }), { nodelay: 0, interval: 15, resend: 0, nc: 1 });
  assert.deepEqual(kcpModeParams('fast3', { interval: 99 }), { nodelay: 1, interval: 10, resend: 2, nc: 1 });
});

test('datagrams keep the headroom, never exceed the MTU, and pack segments in sn order', () => {
  const a = engine({ mtu: 300, headroom: 28, sndWnd: 64, rcvWnd: 64, nc: 1 });
  const payload = new Rng(1).bytes(5000);
  assert.equal(a.send(payload), 5000);
  a.flush(0);
  let sn = 0;
  for (let d = a.pollTransmit(); d !== null; d = a.pollTransmit()) {
    assert.ok(d.length <= 300);
    for (const h of segments(d.subarray(28))) {
      assert.equal(h.cmd, IKCP_CMD_PUSH);
      assert.equal(h.sn, sn++);
      assert.ok(h.len <= a.mss);
    }
    a.recycleTransmit(d);
  }
  assert.equal(sn, Math.ceil(5000 / a.mss));
});

test('stream mode tops up the last unsent segment; message mode keeps boundaries and refuses > 255 fragments', () => {
  const s = engine({ nc: 1 });
  s.send(new Uint8Array(10));
  s.send(new Uint8Array(20));
  assert.equal(s.waitSnd, 1, 'both writes share one segment');
  assert.equal(s.send(new Uint8Array(0)), -1);

  const a = engine({ streamMode: false, nc: 1, sndWnd: 256, rcvWnd: 256, mtu: 100 });
  const b = engine({ streamMode: false, nc: 1, sndWnd: 256, rcvWnd: 256, mtu: 100 });
  assert.equal(a.send(new Uint8Array(76 * 255 + 1)), -2);
  const m1 = new Rng(2).bytes(500);
  const m2 = Uint8Array.of(9);
  a.send(m1);
  a.send(m2);
  a.flush(0);
  deliver(a, b, 1);
  assert.equal(b.peekSize(), 500);
  assert.equal(b.recvInto(new Uint8Array(10)), -2, 'too small: nothing consumed');
  assert.deepEqual(b.recv(), m1);
  assert.deepEqual(b.recv(), m2);
  assert.equal(b.recv(), null);
});

test('input never throws on garbage and reports kcp-go error codes', () => {
  const k = engine();
  const rng = new Rng(3);
  for (let i = 0; i < 20_000; i++) {
    const d = rng.bytes(rng.int(200));
    if (rng.chance(0.5) && d.length >= 4) d.set([0x44, 0x33, 0x22, 0x11]); // right conv, random rest
    const r = k.input(d, i);
    assert.ok(r === 0 || r === -1 || r === -2 || r === -3);
  }
  const push = encodeSegment({ conv: CONV, cmd: IKCP_CMD_PUSH, frg: 0, wnd: 32, ts: 1, sn: 0, una: 0 }, Uint8Array.of(7, 7));
  const fresh = engine();
  assert.equal(fresh.input(push.subarray(0, 23), 0), KCP_INPUT_BAD_CONV, 'shorter than a header');
  assert.equal(fresh.input(push.subarray(0, 25), 0), KCP_INPUT_BAD_LEN, 'len past the end');
  const wrongConv = encodeSegment({ conv: CONV + 1, cmd: IKCP_CMD_PUSH, frg: 0, wnd: 32, ts: 1, sn: 1, una: 0 });
  const badCmd = encodeSegment({ conv: CONV, cmd: 80, frg: 0, wnd: 32, ts: 1, sn: 1, una: 0 });
  assert.equal(fresh.input(badCmd, 0), KCP_INPUT_BAD_CMD);
  // Segments before the bad one stay applied, as in kcp-go.
  assert.equal(fresh.input(Buffer.concat([push, wrongConv]), 0), KCP_INPUT_BAD_CONV);
  assert.deepEqual(fresh.recv(), Uint8Array.of(7, 7));
});

test('fragments that never count down to 0 make no message: recv() and read() return nothing, never throw (fuzz)', () => {
  // Found by the KCP fuzzer: two in-order segments both saying frg 1. peekSize() saw "2 queued ≥ frg+1"
  // and popMessage() then looked for a frg-0 segment past the end of the queue.
  for (const streamMode of [false, true]) {
    const k = engine({ streamMode });
    const seg = (sn: number): Uint8Array =>
      encodeSegment({ conv: CONV, cmd: IKCP_CMD_PUSH, frg: 1, wnd: 32, ts: 1, sn, una: 0 }, new Uint8Array(20).fill(sn + 1));
    assert.equal(k.input(Buffer.concat([seg(1), seg(0)]), 0), 0);
    assert.equal(k.peekSize(), -1);
    assert.equal(k.readable(), false);
    assert.equal(k.recv(), null);
    assert.equal(k.read(new Uint8Array(100)), 0);
    // A last fragment completes the (odd, three-segment) message; it is then delivered whole.
    assert.equal(k.input(encodeSegment({ conv: CONV, cmd: IKCP_CMD_PUSH, frg: 0, wnd: 32, ts: 1, sn: 2, una: 0 }, Uint8Array.of(9)), 0), 0);
    assert.equal(k.peekSize(), 41);
  }
});

test('the engine still works after a garbage storm', () => {
  const a = engine({ nc: 1 });
  const b = engine({ nc: 1 });
  const rng = new Rng(4);
  for (let i = 0; i < 2000; i++) {
    const d = rng.bytes(rng.range(24, 120));
    d.set([0x44, 0x33, 0x22, 0x11]);
    d[4] = rng.pick([IKCP_CMD_WASK, IKCP_CMD_WINS]); // harmless commands with random windows and una
    d.fill(0, 20, 24);
    b.input(d.subarray(0, 24), 0, false);
  }
  a.send(Uint8Array.of(1, 2, 3));
  a.flush(10);
  deliver(a, b, 11);
  assert.deepEqual(b.recv(), Uint8Array.of(1, 2, 3));
});

test('RTO backoff: linear by rx_rto (nodelay 0) or rx_rto/2 (nodelay 1); dead link after 20 sends', () => {
  for (const [nodelay, gaps] of [[0, [200, 400, 600, 800]], [1, [200, 300, 400, 500]]] as const) {
    const k = engine({ nodelay, interval: 10, nc: 1 });
    k.send(Uint8Array.of(1));
    let now = 1000;
    k.handleTimeout(now);
    const sends: number[] = [];
    for (; sends.length < 5; now++) {
      if (now >= k.pollTimeout()) k.handleTimeout(now);
      for (const d of drain(k)) if (segments(d)[0]!.cmd === IKCP_CMD_PUSH) sends.push(now);
    }
    assert.deepEqual(sends.slice(1).map((t, i) => t - sends[i]!), gaps, `nodelay=${nodelay}`);
    assert.equal(k.lostSegs, 4);
    assert.equal(k.retransSegs, 4);
    assert.equal(k.state, 0);
    for (; k.state === 0 && now < 1e7; now++) if (now >= k.pollTimeout()) k.handleTimeout(now);
    assert.equal(k.state, KCP_STATE_DEAD);
  }
});

/** Sends n one-byte segments from a fresh engine at time 0 and returns it with their PUSH headers. */
function inFlight(n: number, o: Partial<KcpOptions>): { k: Kcp; pushes: SegmentHeader[] } {
  const k = engine({ nc: 1, interval: 100, ...o });
  k.handleTimeout(0);
  const pushes: SegmentHeader[] = [];
  for (let i = 0; i < n; i++) {
    k.send(Uint8Array.of(i));
    k.flush(i); // the segment leaves snd_queue, so the next write starts a new one with ts i
    for (const d of drain(k)) pushes.push(...segments(d));
  }
  assert.deepEqual(pushes.map((h) => [h.sn, h.ts]), pushes.map((_, i) => [i, i]));
  return { k, pushes };
}

const ack = (sn: number, ts: number, una: number, wnd = 32): Uint8Array =>
  encodeSegment({ conv: CONV, cmd: IKCP_CMD_ACK, frg: 0, wnd, ts, sn, una });

test('fast resend after `resend` duplicate ACKs; counted once as FastRetransSegs', () => {
  const { k } = inFlight(4, { resend: 2 });
  // sn 0 is lost; ACKs for sn 1 and 2 (ts ≥ sn 0's ts) each add one to its fastack.
  assert.equal(k.input(Buffer.concat([ack(1, 1, 0), ack(2, 2, 0)]), 10), 0);
  k.flush(11);
  const resent = drain(k).flatMap(segments).filter((h) => h.cmd === IKCP_CMD_PUSH);
  assert.deepEqual(resent.map((h) => h.sn), [0]);
  assert.equal(resent[0]!.ts, 11);
  assert.equal(k.fastRetransSegs, 1);
  assert.equal(k.earlyRetransSegs, 0);
  assert.equal(k.retransSegs, 1);
});

test('an ACK read with a una that frees segments: kcp-go\'s duplicate counts on the rest, each segment delivered once', () => {
  const { k } = inFlight(5, { resend: 2 });
  // sn 0 arrived (una 1), sn 1 and 2 are lost: the ACKs for sn 3 and 4 each count once against sn 1
  // and 2, and sn 0, acked by the una, is counted delivered once though the first ACK also passed it.
  assert.equal(k.input(Buffer.concat([ack(3, 3, 1), ack(4, 4, 1)]), 10), 0);
  assert.equal(k.deliveredSegs, 3);
  k.flush(11);
  const resent = drain(k).flatMap(segments).filter((h) => h.cmd === IKCP_CMD_PUSH);
  assert.deepEqual(resent.map((h) => h.sn), [1, 2]);
  assert.equal(k.fastRetransSegs, 2);
});

test('early retransmit: one duplicate ACK resends when no new segment went out', () => {
  const { k } = inFlight(3, { resend: 0 });
  assert.equal(k.input(ack(2, 2, 0), 10), 0);
  k.flush(11);
  const resent = drain(k).flatMap(segments).filter((h) => h.cmd === IKCP_CMD_PUSH);
  assert.deepEqual(resent.map((h) => h.sn), [0, 1]);
  assert.equal(k.earlyRetransSegs, 2);
  assert.equal(k.fastRetransSegs, 0);
});

test('an ACK older than a segment does not count against it (fast-ack ts check)', () => {
  const { k } = inFlight(3, { resend: 1 });
  // ACK for sn 2 echoing ts 0: segments sent at ts 0 qualify, sn 1 (ts 1) does not.
  k.input(ack(2, 0, 0), 10);
  k.flush(11);
  const resent = drain(k).flatMap(segments).filter((h) => h.cmd === IKCP_CMD_PUSH);
  assert.deepEqual(resent.map((h) => h.sn), [0]);
});

test('RTT from the last ACK of a regular datagram only; FEC-rebuilt input changes neither RTT nor rmt_wnd', () => {
  const { k } = inFlight(3, { resend: 0 });
  k.input(Buffer.concat([ack(0, 0, 0, 77), ack(1, 1, 0, 77)]), 300, false);
  assert.equal(k.srtt, 0);
  assert.equal(k.remoteWindow, 32);
  k.input(Buffer.concat([ack(1, 1, 0, 50), ack(2, 200, 0, 50)]), 300);
  assert.equal(k.srtt, 100, 'last ACK: 300 - 200');
  assert.equal(k.rttvar, 50);
  assert.equal(k.rto, 300, 'srtt + max(interval, 4·rttvar)');
  assert.equal(k.remoteWindow, 50);
});

test('ACK filter: ACKs below rcv_nxt are skipped except the last', () => {
  const b = engine({ nc: 1 });
  const push = (sn: number): Uint8Array =>
    encodeSegment({ conv: CONV, cmd: IKCP_CMD_PUSH, frg: 0, wnd: 32, ts: 100 + sn, sn, una: 0 }, Uint8Array.of(sn));
  b.input(Buffer.concat([push(0), push(1), push(0), push(2), push(1)]), 5);
  b.flush(6);
  const acks = drain(b).flatMap(segments);
  assert.deepEqual(acks.map((h) => [h.cmd, h.sn, h.ts, h.una]), [[IKCP_CMD_ACK, 1, 101, 3]]);
  assert.equal(b.repeatSegs, 2);
});

test('zero window: ACKs say wnd 0, the sender probes after probeInit with growing waits, the reader recovers it', () => {
  const probeInitMs = 1000;
  const a = engine({ nc: 1, interval: 10, sndWnd: 32, rcvWnd: 32, probeInitMs });
  const b = engine({ nc: 1, interval: 10, sndWnd: 32, rcvWnd: 4, probeInitMs });
  const payload = new Rng(5).bytes(20 * a.mss);
  let now = 0;
  const step = (): { ab: SegmentHeader[]; ba: SegmentHeader[] } => {
    if (now >= a.pollTimeout()) a.handleTimeout(now);
    if (now >= b.pollTimeout()) b.handleTimeout(now);
    const ab = deliver(a, b, now);
    const ba = deliver(b, a, now);
    now++;
    return { ab, ba };
  };
  a.send(payload);
  a.flush(now);
  while (a.remoteWindow !== 0 && now < 1000) step();
  assert.equal(a.remoteWindow, 0, 'b never reads: its window closes');
  const zeroAt = now;
  const wasks: number[] = [];
  while (wasks.length < 3 && now < 20_000) {
    const { ab, ba } = step();
    if (ab.some((h) => h.cmd === IKCP_CMD_WASK)) wasks.push(now - 1);
    assert.ok(ba.every((h) => h.wnd === 0), 'b keeps telling 0');
  }
  assert.ok(wasks[0]! - zeroAt <= probeInitMs + 10 && wasks[0]! - zeroAt >= probeInitMs - 10, `first probe ${wasks[0]! - zeroAt}`);
  // The wait grows by half each time (a probe goes out at the first flush after its deadline).
  assert.ok(wasks[1]! - wasks[0]! >= 1500 && wasks[1]! - wasks[0]! <= 1510, `second probe after ${wasks[1]! - wasks[0]!}`);
  assert.ok(wasks[2]! - wasks[1]! >= 2250 && wasks[2]! - wasks[1]! <= 2260, `third probe after ${wasks[2]! - wasks[1]!}`);
  // Reading from the full queue makes b tell its window at once ("fast recover" WINS).
  const got = new Uint8Array(payload.length);
  let n = b.read(got);
  let told = false;
  for (let guard = 0; !told && guard < 20; guard++) told = step().ba.some((h) => h.cmd === IKCP_CMD_WINS && h.wnd > 0);
  assert.ok(told, 'b sent a WINS with an open window');
  for (let guard = 0; n < payload.length && guard < 60_000; guard++) {
    step();
    n += b.read(got, n);
  }
  assert.deepEqual(got, payload);
});

test('2021 back-pressure: canWrite while waitsnd < min(snd_wnd, rmt_wnd)', () => {
  const k = engine({ sndWnd: 3, nc: 1, mtu: 100 });
  assert.ok(k.canWrite());
  k.send(new Uint8Array(76 * 3));
  assert.equal(k.waitSnd, 3);
  assert.ok(!k.canWrite());
  const r = engine({ sndWnd: 10, nc: 1, mtu: 100 });
  r.input(ack(0, 0, 0, 1), 0); // the peer advertises a window of 1
  r.send(Uint8Array.of(1));
  assert.ok(!r.canWrite());
});

test('congestion control (nc=0): kcp-go starts with cwnd 0, sends one segment on the second flush, grows on acks', () => {
  const a = engine({ nc: 0, interval: 10, sndWnd: 64, rcvWnd: 64 });
  const b = engine({ nc: 0, interval: 10, sndWnd: 64, rcvWnd: 64 });
  a.send(new Uint8Array(10 * a.mss));
  a.flush(0);
  assert.equal(drain(a).length, 0, 'cwnd 0 on the first flush');
  assert.equal(a.congestionWindow, 1);
  a.flush(1);
  assert.equal(deliver(a, b, 1).length, 1);
  b.flush(2);
  deliver(b, a, 3);
  assert.equal(a.congestionWindow, 2, 'slow start');
});

test('u32 clock wrap: RTT, timers and delivery work across 2^32', () => {
  // Across the u32 wrap, and across the i32 sign flip that `(a - b) | 0` comparisons hinge on.
  for (const boundary of [2 ** 32, 2 ** 31]) {
    const start = boundary - 50;
    const a = engine({ nc: 1, interval: 10, resend: 2 });
    const b = engine({ nc: 1, interval: 10, resend: 2 });
    const payload = new Rng(6).bytes(200_000);
    const got = new Uint8Array(payload.length);
    let sent = 0;
    let n = 0;
    const inflight: { at: number; d: Uint8Array; to: Kcp }[] = [];
    let now = start;
    for (; n < payload.length && now < start + 60_000; now++) {
      while (sent < payload.length && a.canWrite()) {
        const chunk = Math.min(3000, payload.length - sent);
        a.send(payload.subarray(sent, sent + chunk));
        sent += chunk;
        a.flush(now);
      }
      if (now >= a.pollTimeout()) a.handleTimeout(now);
      if (now >= b.pollTimeout()) b.handleTimeout(now);
      for (const d of drain(a)) inflight.push({ at: now + 20, d, to: b });
      for (const d of drain(b)) inflight.push({ at: now + 20, d, to: a });
      while (inflight.length > 0 && inflight[0]!.at <= now) {
        const { d, to } = inflight.shift()!;
        to.input(d, now);
      }
      n += b.read(got, n);
    }
    assert.deepEqual(got, payload, `start ${start}`);
    assert.ok(now > boundary + 50, 'the run went well past the boundary');
    assert.ok(a.srtt >= 40 && a.srtt <= 60, `srtt ${a.srtt}`);
    assert.equal(a.lostSegs, 0, 'no spurious RTO at the wrap');
  }
});

test('interval is clamped to [10, 5000] and paces the timer', () => {
  for (const [interval, expected] of [[1, 10], [40, 40], [9000, 5000]] as const) {
    const k = engine({ interval });
    k.handleTimeout(100);
    assert.equal(k.pollTimeout() - 100, expected);
  }
});

test('read() hands out a stream in any slice sizes, keeping the rest of a segment for the next call', () => {
  const a = engine({ nc: 1, mtu: 200 });
  const b = engine({ nc: 1, mtu: 200 });
  const payload = new Rng(7).bytes(3000);
  a.send(payload);
  a.flush(0);
  deliver(a, b, 1);
  const got = new Uint8Array(payload.length);
  let n = 0;
  for (const size of [1, 175, 2, 500, 1000, 5000]) n += b.read(got, n, Math.min(n + size, got.length));
  assert.equal(n, payload.length);
  assert.deepEqual(got, payload);
  assert.equal(b.read(got), 0);
  assert.ok(!b.readable());
});

test('release() returns buffered segments to the shared pool without disturbing other engines', () => {
  const a = engine({ nc: 1, rcvWnd: 64 });
  const b = engine({ nc: 1, rcvWnd: 64 });
  const rng = new Rng(8);
  a.send(rng.bytes(20 * a.mss));
  a.flush(0);
  const d = drain(a);
  for (const x of d.slice(1)) b.input(x, 1); // sn 0 missing: the rest waits in rcv_buf
  assert.ok(b.rcvBufCount > 0);
  a.release();
  b.release();
  assert.equal(a.waitSnd, 0);
  assert.equal(b.rcvBufCount, 0);
  // Fresh engines now draw those pooled buffers; their data must come through intact.
  const c = engine({ nc: 1, rcvWnd: 64 });
  const e = engine({ nc: 1, rcvWnd: 64 });
  const payload = rng.bytes(30 * c.mss);
  c.send(payload);
  c.flush(0);
  deliver(c, e, 1);
  const got = new Uint8Array(payload.length);
  assert.equal(e.read(got), payload.length);
  assert.deepEqual(got, payload);
});
