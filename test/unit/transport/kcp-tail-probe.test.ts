/**
 * The engine's `tailProbe` option (with RACK, tstier-kcptun's link): a segment of the latest flush
 * that sent anything has nothing sent after it whose delivery would show its loss, so without a probe
 * it waits for the RTO. With one, it is sent again RACK's wait after its send, once per progress.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kcp } from '../../../daemon/transport/kcp/kcp.js';
import { IKCP_CMD_PUSH, IKCP_OVERHEAD, readU32 } from '../../../daemon/transport/kcp/segment.js';
import { Rng } from '../../sim/world.js';
import { drivePair } from './kcp-wire-loop.js';

const SEGS = 10;
const ONE_WAY_MS = 20;

function engine(tailProbe: boolean): Kcp {
  return new Kcp({ conv: 3, mtu: 1200, sndWnd: 64, rcvWnd: 64, nodelay: 0, interval: 30, resend: 2, nc: 1, streamMode: true, rack: true, tailProbe });
}

/** SEGS segments from a to b after a first one; the transmissions of the last one listed in `lose` (1: the first) are dropped. */
function tail(tailProbe: boolean, lose: number[]): { a: Kcp; doneAt: number; sends: number[] } {
  const a = engine(tailProbe);
  const b = engine(false);
  const data = new Rng(7).bytes(100 + SEGS * a.mss);
  const sends: number[] = [];
  a.send(data.subarray(0, 100));
  const r = drivePair(a, b, data, 10_000, (now) => {
    if (now === 100) a.send(data.subarray(100));
  }, (from, body, now) => {
    if (from !== a) return ONE_WAY_MS;
    let drop = false;
    for (let off = 0; off + IKCP_OVERHEAD <= body.length; off += IKCP_OVERHEAD + readU32(body, off + 20)) {
      if (body[off + 4] !== IKCP_CMD_PUSH || readU32(body, off + 12) !== SEGS) continue;
      sends.push(now);
      if (lose.includes(sends.length)) drop = true;
    }
    return drop ? -1 : ONE_WAY_MS;
  });
  assert.equal(r.got, data.length);
  return { a, doneAt: r.doneAt, sends };
}

test('tailProbe: a lost last segment is probed after RACK\'s wait, not found by the RTO', (t) => {
  const off = tail(false, [1]);
  const on = tail(true, [1]);
  assert.equal(off.a.lostSegs, 1, 'without the probe the RTO finds it');
  assert.equal(on.a.lostSegs, 0, 'with it no timeout fires');
  assert.equal(on.a.retransSegs, 1);
  const wait = (r: { sends: number[] }): number => r.sends[1]! - r.sends[0]!;
  t.diagnostic(`resent ${wait(on)} ms after the send with the probe, ${wait(off)} ms without; done at ${on.doneAt} against ${off.doneAt} ms`);
  assert.ok(wait(on) < wait(off), `probe after ${wait(on)} ms, RTO after ${wait(off)} ms`);
  assert.ok(wait(on) < 2 * (2 * ONE_WAY_MS), `probed within two round trips of the send: ${wait(on)} ms`);
  assert.ok(on.doneAt < off.doneAt, `done at ${on.doneAt} against ${off.doneAt} ms`);
});

test('tailProbe: one probe per progress: a lost probe is left to the RTO', () => {
  const on = tail(true, [1, 2]);
  assert.equal(on.sends.length, 3);
  assert.equal(on.a.lostSegs, 1, 'the third transmission is the timeout\'s');
  assert.ok(on.sends[2]! - on.sends[1]! > on.sends[1]! - on.sends[0]!, 'the RTO waits longer than the probe did');
});
