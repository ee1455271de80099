/**
 * The KCP carrier's path controller alone, on a virtual clock, against a fluid model of one path: a
 * rate-capped bottleneck with a deep FIFO and a fixed base RTT. First a thin flow (a segment every
 * 50 ms: the bench's request/response probe) teaches it the base RTT; then bulk data, always waiting,
 * whose first round trips carry tens of ms of delay that no queue of ours caused (a busy host: the
 * peer's event loop busy elsewhere). STARTUP must not take that for a full path: it ended there after
 * one round, at a hundredth of the path, and PROBE_BW's 1.25× per cycle of eight rounds then took
 * seconds to find the rest (the bench's 5 % cell spent half its 6 s there). Properties, not timings:
 * the model reaches the link's rate within a second of bulk, and the queue stays bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PathController } from '../../daemon/carrier/kcp/path-controller.js';

const MSS = 1175;

interface Path {
  /** Bottleneck rate at `t`, bytes/ms. */
  rate: (t: number) => number;
  baseRtt: number;
  /** Delay (ms) a segment sent at `t` meets at the hosts, on top of the path's. */
  hostDelay: (t: number) => number;
}

/** Thin traffic until `bulkAt`, then bulk until `ms`; returns the bandwidth model at `probeAt` and the largest queue. */
function run(path: Path, bulkAt: number, ms: number, probeAt: number): { bwAtProbe: number; peakQueueMs: number } {
  const ctl = new PathController({ mss: MSS });
  // ACKs in flight: [arrival time, bytes, send time], in arrival order (the FIFO keeps them so but for
  // the host delay, which only grows a segment's own round trip: sort on insert).
  const acks: [number, number, number][] = [];
  let linkFreeAt = 0;
  let bwAtProbe = 0;
  let peakQueueMs = 0;
  for (let t = 0; t < ms; t++) {
    while (acks.length > 0 && acks[0]![0] <= t) {
      const [, bytes, sentAt] = acks.shift()!;
      ctl.inflight -= bytes;
      ctl.onRtt(t - sentAt, t);
      ctl.onDelivered(bytes, t, bytes / MSS);
    }
    const thin = t < bulkAt;
    if (thin && t % 50 === 0) ctl.onAppLimited();
    for (let budget = ctl.budget(t); budget > 0 && (!thin || t % 50 === 0); budget = thin ? 0 : ctl.budget(t)) {
      ctl.onSent(MSS, t);
      ctl.onSegments(1, 0);
      ctl.inflight += MSS;
      linkFreeAt = Math.max(t, linkFreeAt) + MSS / path.rate(t);
      peakQueueMs = Math.max(peakQueueMs, linkFreeAt - t);
      const at = Math.ceil(linkFreeAt + path.baseRtt + path.hostDelay(t));
      let i = acks.length;
      while (i > 0 && acks[i - 1]![0] > at) i--;
      acks.splice(i, 0, [at, MSS, t]);
    }
    if (t === probeAt) bwAtProbe = ctl.bandwidth;
  }
  return { bwAtProbe, peakQueueMs };
}

test('path control: a busy host at a flow\'s start does not end STARTUP early; the model reaches the link within a second', () => {
  const bulkAt = 2_000;
  for (const [rate, baseRtt, busyMs, delay] of [[30_000, 40, 300, 60], [12_000, 40, 200, 40], [50_000, 20, 150, 50]] as const) {
    const label = `${rate} B/ms, base RTT ${baseRtt} ms, +${delay} ms for bulk's first ${busyMs} ms`;
    const o = run({ rate: () => rate, baseRtt, hostDelay: (t) => (t >= bulkAt && t < bulkAt + busyMs ? delay : 0) }, bulkAt, bulkAt + 2_000, bulkAt + 1_000);
    if (process.env.SIM_VERBOSE) console.log(label, o);
    assert.ok(o.bwAtProbe >= 0.8 * rate, `model ${Math.round(o.bwAtProbe)} B/ms 1 s into bulk: ${label}`);
    // The in-flight cap bounds the queue (2 × BDP grown by the standing delay it counts, and more while STARTUP's overshoot drains).
    assert.ok(o.peakQueueMs <= 6 * (baseRtt + 10), `queue of ${o.peakQueueMs.toFixed(0)} ms: ${label}`);
  }
});

test('path control: when the path frees up (another user leaves), the model follows within a second', () => {
  // PROBE_BW probes on while each round finds more: 1.25× a round, where one probe round per cycle of
  // eight took three cycles (1 s at 40 ms) for each doubling.
  for (const [from, to, baseRtt] of [[10_000, 30_000, 40], [5_000, 20_000, 30]] as const) {
    const label = `${from} -> ${to} B/ms at 3 s, base RTT ${baseRtt} ms`;
    const o = run({ rate: (t) => (t < 3_000 ? from : to), baseRtt, hostDelay: () => 0 }, 0, 4_500, 4_000);
    if (process.env.SIM_VERBOSE) console.log(label, o);
    assert.ok(o.bwAtProbe >= 0.8 * to, `model ${Math.round(o.bwAtProbe)} B/ms 1 s after: ${label}`);
    assert.ok(o.peakQueueMs <= 6 * (baseRtt + 10), `queue of ${o.peakQueueMs.toFixed(0)} ms: ${label}`);
  }
});
