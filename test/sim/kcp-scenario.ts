/**
 * Random KCP transfer scenarios for the simulator: one seed → one Scenario (printable, replayable)
 * → one run of two KcpPeers through a World. Used by kcp.sim.test.ts; also handy from a REPL to
 * look at one seed's counters.
 */
import { createHash } from 'node:crypto';
import { kcpModeParams, type KcpMode } from '../../daemon/transport/kcp/modes.js';
import type { KcpOptions } from '../../daemon/transport/kcp/kcp.js';
import { KcpPeer } from './kcp-peer.js';
import { Rng, World, type LinkParams } from './world.js';

export interface KcpScenario {
  seed: number;
  start: number;
  link: LinkParams;
  crc: boolean;
  kcpA: KcpOptions;
  kcpB: KcpOptions;
  bytesA: number;
  bytesB: number;
  maxWrite: number;
  /** Share of datagrams each side treats as FEC-rebuilt (regular=false). */
  rebuiltShare: number;
  slowReaderB?: { readEveryMs: number; readBudget: number };
}

/** Far above the slowest seed (about 12 virtual minutes): reaching it means a stall. */
const MAX_VIRTUAL_MS = 60 * 60_000;

export function kcpScenario(seed: number): KcpScenario {
  const r = new Rng(seed);
  const crc = r.chance(0.4);
  const headroom = crc ? r.pick([4, 28]) : r.pick([0, 0, 28]);
  const mtu = r.chance(0.3) ? r.range(headroom + 60, 1500) : 1350;
  const mode = r.pick<KcpMode>(['normal', 'fast', 'fast2', 'fast3', 'manual']);
  const np = kcpModeParams(mode, { nodelay: r.int(2), interval: r.range(10, 100), resend: r.int(4), nc: r.int(2) });
  const streamMode = r.chance(0.8);
  const common = {
    conv: r.next(), mtu, headroom, streamMode, ...np,
    ackNoDelay: r.chance(0.2),
    probeInitMs: r.pick([7000, 500, r.range(50, 3000)]),
  };
  const small = r.chance(0.15);
  const wnd = (): number => (small ? r.range(1, 8) : r.range(8, 1024));
  const link: LinkParams = {
    loss: r.chance(0.2) ? 0 : r.float() * 0.3,
    delayMs: r.range(0, 80),
    jitterMs: r.chance(0.3) ? 0 : r.range(0, 60),
    duplicate: r.chance(0.7) ? 0 : r.float() * 0.1,
    corrupt: crc && r.chance(0.6) ? r.float() * 0.05 : 0,
    ...(r.chance(0.4) ? { rateBytesPerMs: r.range(50, 5000), queueBytes: r.range(4_000, 200_000) } : {}),
  };
  const s: KcpScenario = {
    seed,
    // A quarter of the runs start just before the u32 clock wraps.
    start: r.chance(0.25) ? 2 ** 32 - r.range(1, 20_000) : r.range(0, 1_000_000),
    link,
    crc,
    kcpA: { ...common, sndWnd: wnd(), rcvWnd: wnd() },
    kcpB: { ...common, sndWnd: wnd(), rcvWnd: wnd() },
    // Windows of a few segments crawl (a lost WINS costs a probe wait): keep their payloads small.
    bytesA: small ? Math.min(payloadSize(r), 16_000) : payloadSize(r),
    bytesB: small ? Math.min(payloadSize(r), 16_000) : payloadSize(r),
    maxWrite: r.pick([100, 1500, 8000, 30_000]),
    rebuiltShare: r.chance(0.2) ? r.float() * 0.3 : 0,
  };
  if (!streamMode) {
    // A message must fit the receiver's window whole (and kcp-go's 255 fragments), or it can never be read.
    const mss = mtu - 24 - headroom;
    s.maxWrite = Math.min(s.maxWrite, mss * Math.min(255, s.kcpA.rcvWnd!, s.kcpB.rcvWnd!));
  }
  if (s.bytesA <= 30_000 && r.chance(0.3)) {
    // A slow reader: windows fill up (in segments, which may be small), so keep ticks short enough
    // to finish within minutes even at one segment per tick.
    const readEveryMs = r.range(10, 200);
    s.slowReaderB = { readEveryMs, readBudget: Math.max(r.range(1, 6000), Math.ceil((s.bytesA * readEveryMs) / 120_000)) };
  }
  return s;
}

/**
 * Mostly small transfers, some up to 100 kB (about 75 full segments: many windows' worth for the
 * small windows, loss recovery and the u32 wrap, at half the time per seed of 200 kB), a few empty.
 */
function payloadSize(r: Rng): number {
  if (r.chance(0.05)) return 0;
  return r.chance(0.6) ? r.range(1, 16_000) : r.range(16_000, 100_000);
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export interface KcpRun {
  /** null on success, else what went wrong. */
  problem: string | null;
  a: KcpPeer;
  b: KcpPeer;
  world: World;
  virtualMs: number;
}

/** Runs one scenario: both payloads must arrive byte for byte within the virtual-time bound. */
export function runKcpScenario(s: KcpScenario): KcpRun {
  const world = new World({ seed: s.seed, start: s.start });
  const payloadRng = world.rng.fork();
  const payloadA = payloadRng.bytes(s.bytesA);
  const payloadB = payloadRng.bytes(s.bytesB);
  const a = new KcpPeer(
    { kcp: s.kcpA, payload: payloadA, maxWrite: s.maxWrite, crc: s.crc, rebuiltShare: s.rebuiltShare, rng: world.rng.fork() }, s.bytesB, s.start);
  const b = new KcpPeer(
    { kcp: s.kcpB, payload: payloadB, maxWrite: s.maxWrite, crc: s.crc, rebuiltShare: s.rebuiltShare, rng: world.rng.fork(),
      ...(s.slowReaderB ? { slowReader: s.slowReaderB } : {}) }, s.bytesA, s.start);
  const ia = world.addNode(a);
  const ib = world.addNode(b);
  world.linkBoth(ia, ib, s.link);
  const res = world.run({ until: () => a.done && b.done, maxTime: s.start + MAX_VIRTUAL_MS, maxSteps: 3_000_000 });
  const problem = check();
  return { problem, a, b, world, virtualMs: res.now - s.start };

  function check(): string | null {
    if (!res.done) {
      return `no completion by virtual t+${res.now - s.start} ms (${res.steps} steps): A got ${a.receivedBytes}/${s.bytesB}, ` +
        `B got ${b.receivedBytes}/${s.bytesA}`;
    }
    if (a.overflow || b.overflow) return 'more bytes delivered than sent';
    if (sha(a.received) !== sha(payloadB)) return 'A received different bytes than B sent';
    if (sha(b.received) !== sha(payloadA)) return 'B received different bytes than A sent';
    if (!s.kcpA.streamMode) {
      if (a.receivedSizes.join() !== b.sentSizes.join()) return 'message boundaries B->A differ';
      if (b.receivedSizes.join() !== a.sentSizes.join()) return 'message boundaries A->B differ';
    }
    if (!s.crc && (a.inputErrors > 0 || b.inputErrors > 0)) return 'input() rejected an uncorrupted datagram';
    return null;
  }
}

