/**
 * Proxied flows are tied to their peer, not to a session, proven with real daemons in namespaces:
 * A (--enable-kcp-proxy, dials) carries TCP flows over KCP to B (listens), whose servers run in B;
 * C (--enable-quic-proxy, dials over its own link to B) carries them over QUIC.
 *  - a 10 s underlay outage mid-transfer (link down; address removed; QUIC: link down) kills the peer
 *    session, yet the daemons stay up and the transfer resumes and completes byte-exact (sha256 at
 *    both ends);
 *  - kill -9 of either node: the application on the other side sees a reset (ECONNRESET, not a FIN)
 *    within 2 × keepalive (2 s): A learns from its connected socket's ECONNREFUSED, B from its
 *    listener's error queue; the restarted node carries new flows within 2 s of being ready;
 *  - a node stopped with SIGTERM: its goodbye resets the flows at the other end, and its own
 *    applications get a reset too (never the FIN a process's exit would send);
 *  - an outage past the default flow timeout (30 s; the link returns once both ends have reset, ~32 s
 *    in): both applications get a reset, none before the timeout, neither node keeps a half-open row,
 *    and new flows connect within 2 s of the link's return.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Netns, unavailableReason, type Namespace, type NsProcess } from './lib/netns.js';
import { startCore, waitPeers, waitRows, type CoreNode } from './lib/core.js';

const FAULTS = new URL('./fixtures/fault-flows.js', import.meta.url);
const SKIP = unavailableReason();
/** Two keepalives (daemon/peer/session.ts: 1 s). */
const KILL_DETECT_MS = 2_000;
const NEW_FLOW_MS = 2_000;

const A_ADDR = '10.247.3.1/24';
const B_IP = '10.247.3.2';
const VIP_B = '10.144.173.2';

const common = (n: number): string[] =>
  ['--network-name', 'tf3net', '--network-secret', 'fault-secret', '-i', `10.144.173.${n}`, '--hostname', `node-${n}`,
    '--dev-name', 'tf3tun', '--log-level', 'info'];
const argsA = [...common(1), '--no-listener', '--enable-kcp-proxy', '-p', `udp://${B_IP}:11010`];
const argsB = [...common(2), '-l', 'udp://0.0.0.0:11010'];
/** C carries its flows to B over QUIC, through its own link to B. */
const C_ADDR = '10.247.4.1/24';
const argsC = [...common(3), '--no-listener', '--enable-quic-proxy', '-p', 'udp://10.247.4.2:11010'];

interface PeerEnd { result: string }
/** The part of a test context the cases use: measured figures go into the TAP output. */
interface Diagnose { diagnostic(message: string): void }
interface Done { bytes: number; sha256: string }

/** A server of the fault fixture in `ns`, listening. */
async function server(ns: Namespace, port: number, bytes: number, rate: number): Promise<NsProcess> {
  const p = ns.node(FAULTS, ['serve', '0.0.0.0', String(port), String(bytes), String(rate)]);
  await p.waitForEvent('listening');
  return p;
}

/** A connection from `src` to B's hold server on `port`, open. */
async function holdFrom(src: Namespace, port: number): Promise<NsProcess> {
  const p = src.node(FAULTS, ['hold', VIP_B, String(port)]);
  await p.waitForEvent('open', 10_000);
  return p;
}

/** Ms until `p` reports how its connection ended. */
async function endAfter(p: NsProcess, since: number, timeoutMs: number): Promise<{ result: string; ms: number }> {
  const e = await p.waitForEvent<PeerEnd>('peer', timeoutMs);
  return { result: e.result, ms: Date.now() - since };
}

/** Half-open rows never outlive their flow: every row of `ns` for port `port` of B is Closed. */
async function rowsClosed(ns: Namespace, port: number): Promise<void> {
  const dst = `${VIP_B}:${port}`;
  await waitRows(ns, `${ns.name} closes every row of its flows to ${dst}`,
    (rows) => rows.some((r) => r.dst === dst) && rows.every((r) => r.dst !== dst || r.state === 'Closed'));
}

/** A new flow from `src` to B's hold server connects within NEW_FLOW_MS; returns the ms it took from `since`. */
async function newFlowWithin(src: Namespace, port: number, since: number): Promise<number> {
  const p = src.node(FAULTS, ['retry', VIP_B, String(port), String(NEW_FLOW_MS)]);
  const r = await Promise.race([p.waitForEvent<{ ms: number }>('connected', 10_000),
    p.waitForEvent('gaveup', 10_000).then((e) => assert.fail(`no new flow within ${NEW_FLOW_MS} ms: ${JSON.stringify(e)}`))]);
  // r.ms counts from the fixture's first attempt; `since` also covers starting the fixture's process.
  assert.ok(r.ms <= NEW_FLOW_MS, `new flow after ${r.ms} ms`);
  return Date.now() - since;
}

test('proxied flows live with their peer, not with its session', { skip: SKIP ?? false, timeout: 240_000 }, async (t) => {
  const net = await Netns.create('tf3f', t);
  const [a, b, c] = [await net.ns('a'), await net.ns('b'), await net.ns('c')];
  const veth = await net.link(a, b, A_ADDR, `${B_IP}/24`);
  const vethC = await net.link(c, b, C_ADDR, '10.247.4.2/24');
  let nodeB: CoreNode = await startCore(b, argsB);
  let nodeA: CoreNode = await startCore(a, argsA);
  const nodeC: CoreNode = await startCore(c, argsC);
  await waitPeers(a, 2);
  await waitPeers(c, 2);
  const bulk = await server(b, 7000, 3 << 20, 512 << 10);

  /** Runs a case; a failure carries both daemons' recent log lines. */
  const withLogs = (fn: (st: Diagnose) => Promise<void>) => async (st: Diagnose): Promise<void> => {
    try {
      await fn(st);
    } catch (e) {
      const tail = (n: CoreNode): string => n.proc.lines.slice(-30).join('\n');
      throw new Error(`${(e as Error).message}\nnode A:\n${tail(nodeA)}\nnode B:\n${tail(nodeB)}\nnode C:\n${tail(nodeC)}`, { cause: e });
    }
  };

  /** Restarts the destination node B; new flows to `port` from A (KCP) and C (QUIC) connect within NEW_FLOW_MS. */
  async function restartDestination(st: Diagnose, port: number): Promise<void> {
    nodeB = await startCore(b, argsB);
    const ready = Date.now();
    const [kcp, quic] = await Promise.all([newFlowWithin(a, port, ready), newFlowWithin(c, port, ready)]);
    st.diagnostic(`new flows ${kcp} ms (KCP) and ${quic} ms (QUIC) after the destination node was ready again`);
  }

  /** A 10 s outage made by `cut` and undone by `mend`, starting once 1 MiB of a 3 MiB transfer arrived. */
  async function outageMidTransfer(st: Diagnose, src: Namespace, node: CoreNode, cut: string[], mend: string[]): Promise<void> {
    const fetch = src.node(FAULTS, ['fetch', VIP_B, '7000', String(1 << 20)]);
    await fetch.waitForEvent('progress', 30_000);
    const cutAt = Date.now();
    await src.exec(cut);
    // The outage outlasts the session's dead timer (6 s): this is a session re-establishment.
    await node.proc.waitForLine(/peer down/, 9_000);
    await sleep(10_000 - (Date.now() - cutAt));
    await src.exec(mend);
    const mendedAt = Date.now();
    const [got, sent] = await Promise.all([fetch.waitForEvent<Done>('done', 60_000), bulk.waitForEvent<Done>('served', 60_000)]);
    assert.deepEqual(got, { event: 'done', bytes: 3 << 20, sha256: sent.sha256 });
    st.diagnostic(`outage ${mendedAt - cutAt} ms; transfer complete ${Date.now() - mendedAt} ms after the underlay's return`);
    for (const n of [nodeA, nodeB, nodeC]) assert.equal(n.proc.child.exitCode, null, 'both daemons are still running');
  }

  await t.test('a 10 s link-down outage mid-transfer: the session is re-established and the KCP flow completes byte-exact', withLogs(async (st) => {
    await outageMidTransfer(st, a, nodeA, ['ip', 'link', 'set', veth, 'down'], ['ip', 'link', 'set', veth, 'up']);
  }));

  await t.test('a 10 s outage by address removal mid-transfer: the KCP flow completes byte-exact', withLogs(async (st) => {
    await outageMidTransfer(st, a, nodeA, ['ip', 'addr', 'del', A_ADDR, 'dev', veth], ['ip', 'addr', 'add', A_ADDR, 'dev', veth]);
  }));

  await t.test('a 10 s link-down outage mid-transfer: the QUIC flow completes byte-exact', withLogs(async (st) => {
    await outageMidTransfer(st, c, nodeC, ['ip', 'link', 'set', vethC, 'down'], ['ip', 'link', 'set', vethC, 'up']);
    const rows = await waitRows(c, 'C lists its flow', (rs) => rs.some((r) => r.dst === `${VIP_B}:7000`));
    assert.ok(rows.every((r) => r.transport_type === 'Quic'), JSON.stringify(rows));
  }));

  await t.test('kill -9 of the source node: the destination application sees ECONNRESET within 2 s; restarted, new flows work within 2 s', withLogs(async (st) => {
    const hold = await server(b, 7001, 0, 0);
    await holdFrom(a, 7001);
    const killedAt = Date.now();
    nodeA.proc.kill('SIGKILL');
    const end = await endAfter(hold, killedAt, 10_000);
    st.diagnostic(`destination app: ${end.result} ${end.ms} ms after kill -9 of the source node`);
    assert.equal(end.result, 'ECONNRESET', 'a reset, not a FIN');
    assert.ok(end.ms <= KILL_DETECT_MS, `reset after ${end.ms} ms`);
    await rowsClosed(b, 7001);
    nodeA = await startCore(a, argsA);
    st.diagnostic(`new flow ${await newFlowWithin(a, 7001, Date.now())} ms after the source node was ready again`);
  }));

  await t.test('kill -9 of the destination node: the source applications (KCP and QUIC) see ECONNRESET within 2 s; restarted, new flows work within 2 s', withLogs(async (st) => {
    await server(b, 7002, 0, 0);
    const clients = [await holdFrom(a, 7002), await holdFrom(c, 7002)];
    const killedAt = Date.now();
    nodeB.proc.kill('SIGKILL');
    const ends = await Promise.all(clients.map((client) => endAfter(client, killedAt, 10_000)));
    for (const [end, carrier] of [[ends[0]!, 'KCP'], [ends[1]!, 'QUIC']] as const) {
      st.diagnostic(`source app (${carrier}): ${end.result} ${end.ms} ms after kill -9 of the destination node`);
      assert.equal(end.result, 'ECONNRESET', `${carrier}: a reset, not a FIN`);
      assert.ok(end.ms <= KILL_DETECT_MS, `${carrier}: reset after ${end.ms} ms`);
    }
    await Promise.all([rowsClosed(a, 7002), rowsClosed(c, 7002)]);
    await restartDestination(st, 7002);
  }));

  await t.test('a stopping node (SIGTERM) says goodbye: the applications at both ends see ECONNRESET at once; restarted, new flows work within 2 s', withLogs(async (st) => {
    const hold = await server(b, 7004, 0, 0);
    const clients = [await holdFrom(a, 7004), await holdFrom(c, 7004)];
    const stoppedAt = Date.now();
    await nodeB.proc.stop();
    // The destination's two connections report one after the other on the server's output.
    const bothAtB = async (): Promise<{ result: string; ms: number }[]> =>
      [await endAfter(hold, stoppedAt, 10_000), await endAfter(hold, stoppedAt, 10_000)];
    const ends = (await Promise.all([...clients.map((p) => endAfter(p, stoppedAt, 10_000).then((e) => [e])), bothAtB()])).flat();
    st.diagnostic(`resets after ${ends.map((e) => e.ms).join(', ')} ms (KCP source, QUIC source, the two at the destination)`);
    for (const end of ends) {
      assert.equal(end.result, 'ECONNRESET', 'a reset, not a FIN');
      assert.ok(end.ms <= KILL_DETECT_MS, `reset after ${end.ms} ms`);
    }
    await restartDestination(st, 7004);
  }));

  await t.test('an outage past the default flow timeout (30 s): both applications get a reset, none earlier; new flows within 2 s of the link\'s return', withLogs(async (st) => {
    const hold = await server(b, 7003, 0, 0);
    const client = await holdFrom(a, 7003);
    const cutAt = Date.now();
    await a.exec(['ip', 'link', 'set', veth, 'down']);
    const [dstEnd, srcEnd] = await Promise.all([endAfter(hold, cutAt, 45_000), endAfter(client, cutAt, 45_000)]);
    st.diagnostic(`resets ${dstEnd.ms} ms (destination app) and ${srcEnd.ms} ms (source app) into the outage`);
    for (const end of [dstEnd, srcEnd]) {
      assert.equal(end.result, 'ECONNRESET');
      assert.ok(end.ms >= 30_000, `reset after only ${end.ms} ms`);
    }
    await Promise.all([rowsClosed(a, 7003), rowsClosed(b, 7003)]);
    const back = Date.now();
    await a.exec(['ip', 'link', 'set', veth, 'up']);
    st.diagnostic(`new flow ${await newFlowWithin(a, 7003, back)} ms after the link's return`);
  }));
});
