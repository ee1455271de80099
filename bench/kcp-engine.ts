/**
 * Micro benchmark of the KCP engine alone: two engines in memory, one streaming to the other with
 * kcptun's settings (MTU 1350, 28 bytes headroom, fast3, windows 1024), datagrams handed over at once
 * on a virtual clock that advances 1 ms per round. Reports wall-clock MB/s of payload, optionally with
 * seeded random loss. Not a test: numbers depend on the machine.
 *
 *   node dist/bench/kcp-engine.js [megabytes=200] [loss=0]
 */
import { Kcp, type KcpOptions } from '../daemon/transport/kcp/kcp.js';
import { kcpModeParams } from '../daemon/transport/kcp/modes.js';
import { Rng } from '../test/sim/world.js';

function run(megabytes: number, loss: number): void {
  const opts: KcpOptions = {
    conv: 1, mtu: 1350, headroom: 28, sndWnd: 1024, rcvWnd: 1024, streamMode: true, ...kcpModeParams('fast3'),
  };
  const a = new Kcp(opts);
  const b = new Kcp(opts);
  const rng = new Rng(42);
  const total = megabytes * 1_000_000;
  const chunk = new Uint8Array(32 * 1024).map((_, i) => i * 31);
  const sink = new Uint8Array(64 * 1024);
  let sent = 0;
  let received = 0;
  let now = 0;
  let datagrams = 0;
  const hand = (from: Kcp, to: Kcp): void => {
    for (let d = from.pollTransmit(); d !== null; d = from.pollTransmit()) {
      datagrams++;
      if (loss === 0 || !rng.chance(loss)) to.input(d.subarray(28), now);
      from.recycleTransmit(d);
    }
  };
  const t0 = performance.now();
  while (received < total && now < 10_000_000) {
    while (sent < total && a.canWrite()) {
      const n = Math.min(chunk.length, total - sent);
      a.send(n === chunk.length ? chunk : chunk.subarray(0, n));
      sent += n;
      a.flush(now);
    }
    hand(a, b);
    for (let n = b.read(sink); n > 0; n = b.read(sink)) received += n;
    hand(b, a);
    now++;
    if (now >= a.pollTimeout()) a.handleTimeout(now);
    if (now >= b.pollTimeout()) b.handleTimeout(now);
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `kcp-engine loss=${(loss * 100).toFixed(1)}%: ${(received / 1e6).toFixed(0)} MB in ${seconds.toFixed(2)} s = ` +
    `${(received / 1e6 / seconds).toFixed(1)} MB/s, ${datagrams} datagrams, ${a.retransSegs} retransmitted segments, ` +
    `${now} virtual ms`,
  );
}

run(Number(process.argv[2] ?? 200), Number(process.argv[3] ?? 0));
