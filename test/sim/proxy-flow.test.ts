/**
 * The proxy's flow core (daemon/proxy/flow-core.ts) on a virtual clock: a source node opens flows to
 * a destination node whose carriers accept, deny (--disable-kcp-input / --disable-quic-input, or an
 * announcement the node does not honour) or never answer; whose dials connect, are refused, are
 * unreachable or are denied by policy; with slow opens, carrier resets, applications that close, reset or stay
 * idle, connections that never reach the proxy after release, a peer gone, and outages shorter and
 * longer than the flow timeout. Invariants:
 *   - every held SYN gets exactly one verdict (release, refuse, drop or plain packets), from the core;
 *   - with nothing interfering, the transport follows KCP > QUIC > plain and what the far side really
 *     accepts, and the verdict follows the far dial (fidelity), the row saying why;
 *   - at a quiet checkpoint, open rows come in pairs, Connected on both nodes (issue 14: no row
 *     ConnectingDst on one side and Connected on the other);
 *   - after the applications close, both tables drain to empty: no row outlives its flow;
 *   - flows that start at a socket (SOCKS5, port forwards) get exactly one answer, follow the same
 *     transport order and fallback on the core's no-answer deadline, and never see that deadline
 *     after their answer.
 * A failing seed prints itself; replay with SIM_SEED=n (SIM_PROXY_SEEDS=n sets the count, default 10,000).
 */
import { test } from 'node:test';
import { DialStatus } from '../../daemon/carrier/flow-frames.js';
import { ACCEPT_TIMEOUT_MS } from '../../daemon/proxy/flow-core.js';
import { seedsFor, sweep } from './seeds.js';
import { ANNOUNCE, ProxyNode, SOCKET_KEYS, type FlowPlan, type NodeSetup } from './proxy-node.js';
import { Rng, World } from './world.js';

/** All faults happen before this; the checkpoint is past every deadline they start. */
const CHECKPOINT = 30_000 + ACCEPT_TIMEOUT_MS + 20_000;

type Input = NodeSetup['kcpInput'];
type Fault = { kind: 'none' } | { kind: 'peer-gone'; at: number } | { kind: 'outage'; at: number; back: number | null };

function input(rng: Rng, announced: boolean): Input {
  if (!announced) return 'deny';
  return rng.pick(['accept', 'accept', 'accept', 'accept', 'accept', 'accept', 'deny', 'deny', 'silent'] as const);
}

function planFlow(rng: Rng): FlowPlan {
  const dial = rng.pick([DialStatus.Connected, DialStatus.Connected, DialStatus.Connected, DialStatus.Connected, DialStatus.Connected,
    DialStatus.Connected, DialStatus.Connected, DialStatus.Refused, DialStatus.Unreachable, 'protected'] as const);
  return {
    dial,
    dialMs: rng.range(1, dial === DialStatus.Unreachable ? 10_000 : 1_500),
    acceptLost: rng.chance(0.05),
    end: rng.pick(['idle', 'idle', 'idle', 'src-close', 'src-close', 'src-reset', 'dst-reset'] as const),
    endMs: rng.range(0, 5_000),
    carrierResetMs: rng.chance(0.08) ? rng.range(0, 4_000) : -1,
    slowOpenMs: rng.chance(0.05) ? rng.range(2_000, 7_000) : 0,
  };
}

/** What the flow should end up on with nothing interfering, and the SYN's verdict. */
function expected(src: NodeSetup, dst: NodeSetup, plan: FlowPlan): { transport: string; verdict: string; why: RegExp[] } {
  const why: RegExp[] = [];
  const dialVerdict = plan.dial === DialStatus.Connected ? 'release' : plan.dial === DialStatus.Refused ? 'refuse' : 'drop';
  for (const [t, enabled, announced, inp] of [
    ['Kcp', src.enableKcp, (dst.announces & ANNOUNCE.kcp) !== 0, dst.kcpInput],
    ['Quic', src.enableQuic, (dst.announces & ANNOUNCE.quic) !== 0, dst.quicInput],
  ] as const) {
    if (!enabled || !announced) continue;
    if (src.optimistic) return { transport: t, verdict: 'release', why };
    if (inp === 'accept') return { transport: t, verdict: dialVerdict, why };
    why.push(new RegExp(`${t.toLowerCase()}: ${inp === 'deny' ? 'denied by peer' : 'no answer in 3 s'}`));
  }
  return { transport: 'Tcp', verdict: 'pass', why };
}

function runSeed(seed: number): string | null {
  const rng = new Rng(seed);
  const announces = (rng.chance(0.75) ? ANNOUNCE.kcp : 0) | (rng.chance(0.75) ? ANNOUNCE.quic : 0);
  const flowTimeoutMs = rng.range(5_000, 30_000);
  const srcSetup: NodeSetup = {
    enableKcp: rng.chance(0.8), enableQuic: rng.chance(0.7), announces: 0, kcpInput: 'accept', quicInput: 'accept',
    optimistic: rng.chance(0.15), flowTimeoutMs,
  };
  const dstSetup: NodeSetup = {
    enableKcp: false, enableQuic: false, announces, kcpInput: input(rng, (announces & ANNOUNCE.kcp) !== 0),
    quicInput: input(rng, (announces & ANNOUNCE.quic) !== 0), optimistic: false, flowTimeoutMs,
  };
  const fault: Fault = rng.pick(['none', 'none', 'none', 'peer-gone', 'outage'] as const) === 'none' ? { kind: 'none' }
    : rng.chance(0.4) ? { kind: 'peer-gone', at: rng.range(0, 15_000) }
      : { kind: 'outage', at: rng.range(0, 10_000), back: rng.chance(0.3) ? null : rng.range(1_000, 40_000) };
  const plans = new Map<number, FlowPlan>();
  const count = rng.range(1, 12);
  for (let k = 0; k < count; k++) plans.set(k, planFlow(rng));
  const socketCount = rng.range(0, 4);
  for (let k = 0; k < socketCount; k++) plans.set(SOCKET_KEYS + k, planFlow(rng));
  const label = `src=${JSON.stringify(srcSetup)} dst=${JSON.stringify(dstSetup)} fault=${JSON.stringify(fault)}`;

  const world = new World({ seed });
  const s = new ProxyNode(1, srcSetup, world, rng.fork(), plans);
  const d = new ProxyNode(2, dstSetup, world, rng.fork(), plans);
  s.other = d;
  d.other = s;
  world.addNode(s);
  world.addNode(d);
  for (const [n, o] of [[s, d], [d, s]] as const) n.core.routes(new Map([[o.id, 0]]), 0);
  for (let k = 0; k < count; k++) world.schedule(rng.range(0, 15_000), (now) => s.syn(k, now));
  for (let k = 0; k < socketCount; k++) world.schedule(rng.range(0, 15_000), (now) => s.socketConnect(SOCKET_KEYS + k, now));
  if (fault.kind === 'peer-gone') {
    world.schedule(fault.at, (now) => {
      for (const [n, o] of [[s, d], [d, s]] as const) {
        n.core.peerGone(o.id);
        n.drain(now);
      }
    });
  } else if (fault.kind === 'outage') {
    const reach = (up: boolean) => (now: number): void => {
      for (const [n, o] of [[s, d], [d, s]] as const) {
        n.reachable = up;
        n.core.routes(up ? new Map([[o.id, 0]]) : new Map(), now);
        n.drain(now);
      }
    };
    world.schedule(fault.at, reach(false));
    if (fault.back !== null) world.schedule(fault.at + fault.back, reach(true));
  }

  const problems: string[] = [];
  world.schedule(CHECKPOINT, (now) => {
    problems.push(...checkpoint(s, d));
    s.closeAll(now);
  });
  const r = world.run({ until: () => s.closed && s.table.size === 0 && d.table.size === 0, maxTime: CHECKPOINT + 120_000 });
  if (!r.done) problems.push(`tables never drained: src ${s.table.openCount}/${s.table.size} open, dst ${d.table.openCount}/${d.table.size}`
    + ` ${JSON.stringify([...s.table.list(), ...d.table.list()].filter((x) => x.state !== 'Closed').slice(0, 2))}`);
  problems.push(...s.problems, ...d.problems);

  for (const [src, rec] of s.syns) {
    const key = src.req.src.port - 1024;
    if (rec.abandoned) problems.push(`flow ${key}: the held SYN expired without a verdict from the core`);
    else if (rec.verdicts.length !== 1) problems.push(`flow ${key}: verdicts ${JSON.stringify(rec.verdicts)}, want exactly one`);
    const plan = plans.get(key)!;
    // A slow open falls back or waits depending on what its carrier answered meanwhile: not checked.
    if (fault.kind !== 'none' || plan.carrierResetMs >= 0 || plan.slowOpenMs > 0 || plan.dial === 'protected') continue;
    const want = expected(srcSetup, dstSetup, plan);
    const row = src.row;
    if (row.transport !== want.transport || rec.verdicts[0] !== want.verdict || !want.why.every((w) => w.test(row.reason))) {
      problems.push(`flow ${key}: ${row.transport}/${rec.verdicts.join(',')} "${row.reason}", want ${want.transport}/${want.verdict} ${want.why.join(' ')}`);
    }
  }
  for (const [key, f] of s.sockets) {
    if (f.outcomes.length !== 1) problems.push(`socket flow ${key}: answers ${JSON.stringify(f.outcomes)}, want exactly one`);
    const plan = plans.get(key)!;
    if (fault.kind !== 'none' || plan.carrierResetMs >= 0 || plan.slowOpenMs > 0 || plan.dial === 'protected') continue;
    const want = expected({ ...srcSetup, optimistic: false }, dstSetup, plan);
    const answer = { release: 'connected', refuse: `failed ${DialStatus.Refused}`, drop: `failed ${DialStatus.Unreachable}`, pass: 'plain' }[want.verdict];
    if (f.transport !== want.transport || f.outcomes[0] !== answer || !want.why.every((w) => w.test(f.reason))) {
      problems.push(`socket flow ${key}: ${f.transport}/${f.outcomes.join(',')} "${f.reason}", want ${want.transport}/${answer} ${want.why.join(' ')}`);
    }
  }
  return problems.length === 0 ? null : `${problems.slice(0, 4).join('\n  ')}\n  ${label}`;
}

/** Open rows at a quiet moment: Connected on both nodes, in pairs; nothing half-open or still connecting. */
function checkpoint(s: ProxyNode, d: ProxyNode): string[] {
  const out: string[] = [];
  for (const row of [...s.table.open(), ...d.table.open()]) {
    if (row.state !== 'Connected') out.push(`checkpoint: a ${row.role} row is ${row.state} (${row.reason})`);
  }
  for (const [key, src] of s.srcByKey) {
    const dst = d.dstByKey.get(key);
    const srcOpen = src.row.closedAt === 0;
    const dstOpen = dst !== undefined && dst.row.closedAt === 0 && dst.carrier === src.carrier?.peerFlow;
    if (srcOpen !== dstOpen && src.row.transport !== 'Tcp') {
      out.push(`checkpoint: flow ${key} open on one side only (src ${src.row.state} "${src.row.reason}", dst ${dst?.row.state} "${dst?.row.reason}")`);
    }
  }
  return out;
}

test('proxy flow core: verdicts, transport choice, fallback and rows under refusals, denials, silence, resets and outages; socket flows too', (t) => {
  sweep(t, 'proxy flow core', seedsFor('SIM_PROXY_SEEDS', 10_000), runSeed);
});
