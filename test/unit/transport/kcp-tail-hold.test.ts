/**
 * holdPartialTail (Nagle's rule in stream mode, for the proxy carrier): a partial last segment waits
 * while anything is in flight, so writes of a few KB each do not each end in a short datagram; a held
 * tail still goes once the flight empties, or at once when the owner turns the rule off (its FIN).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kcp } from '../../../daemon/transport/kcp/kcp.js';
import { IKCP_OVERHEAD, readU32 } from '../../../daemon/transport/kcp/segment.js';
import { Rng } from '../../sim/world.js';
import { drivePair } from './kcp-wire-loop.js';

const IKCP_CMD_PUSH = 81;
const OPTS = { conv: 7, mtu: 1200, sndWnd: 256, rcvWnd: 256, nodelay: 1, interval: 10, resend: 2, nc: 1, streamMode: true,
  rack: true, inputFlushes: false };

/** Payload lengths of the PUSH segments in one datagram. */
function pushLengths(d: Uint8Array): number[] {
  const out: number[] = [];
  for (let at = 0; at + IKCP_OVERHEAD <= d.length;) {
    const len = readU32(d, at + 20);
    if (d[at + 4] === IKCP_CMD_PUSH) out.push(len);
    at += IKCP_OVERHEAD + len;
  }
  return out;
}

/** 400 KB written in 2,800-byte pieces every ms over a clean 10 ms link; every byte is checked. */
function transfer(hold: boolean): { pushes: number; short: number; doneAt: number } {
  const a = new Kcp(OPTS);
  const b = new Kcp(OPTS);
  a.holdPartialTail = hold;
  const total = 400_000;
  const data = new Rng(5).bytes(total);
  let [off, pushes, short] = [0, 0, 0];
  const feed = (now: number): void => {
    if (off < total && a.canWrite()) {
      const n = Math.min(2800, total - off);
      a.send(data.subarray(off, off + n));
      off += n;
      a.flush(now);
    }
  };
  const { got, doneAt } = drivePair(a, b, data, 20_000, feed, (from, body) => {
    if (from === a) {
      for (const len of pushLengths(body)) {
        pushes++;
        if (len < a.mss) short++;
      }
    }
    return 5;
  });
  assert.equal(got, total, 'every byte arrives, the last partial tail included');
  return { pushes, short, doneAt };
}

test('a partial tail waits while data is in flight: few short segments, every byte arrives', () => {
  const off = transfer(false);
  const on = transfer(true);
  // Without the rule nearly every 2,800-byte write ends in a short segment of its own.
  assert.ok(off.short > off.pushes / 4, `without: ${off.short} short of ${off.pushes}`);
  assert.ok(on.short * 10 < off.short, `with: ${on.short} short of ${on.pushes} (without: ${off.short})`);
  assert.ok(on.pushes < off.pushes, `fewer datagrams: ${on.pushes} against ${off.pushes}`);
  // The held tail costs at most about a round trip at the end, not a stall.
  assert.ok(on.doneAt <= off.doneAt + 30, `done at ${on.doneAt} ms against ${off.doneAt} ms`);
});

test('a held tail goes when the flight empties, and at once when the rule is turned off', () => {
  const a = new Kcp(OPTS);
  a.holdPartialTail = true;
  const sent = (): number[] => {
    const lens: number[] = [];
    for (let d = a.pollTransmit(); d !== null; d = a.pollTransmit()) {
      lens.push(...pushLengths(d));
      a.recycleTransmit(d);
    }
    return lens;
  };
  a.send(new Uint8Array(100));
  a.flush(0);
  assert.deepEqual(sent(), [100], 'nothing in flight: a short write goes at once');
  a.send(new Uint8Array(a.mss + 50));
  a.flush(1);
  assert.equal(a.canSlide(), false, 'a held tail does not ask its pacer for a grant');
  assert.deepEqual(sent(), [a.mss], 'the full segment goes, the 50-byte tail waits');
  a.holdPartialTail = false;
  assert.equal(a.canSlide(), true);
  a.flush(2);
  assert.deepEqual(sent(), [50], 'turned off (the FIN): the tail goes');
});
