/**
 * How the KCP carrier hands ACKs to its driver: the ACKs owed for a burst of input leave on
 * flushAcks() (the driver's end of pass), not only on the interval tick; a lone datagram's ACK
 * waits briefly for the application's answer to carry it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KcpCarrier } from '../../../daemon/carrier/kcp/endpoint.js';
import { ACK_DELAY_MS } from '../../../daemon/carrier/kcp/flow.js';
import { DialStatus } from '../../../daemon/carrier/flow-frames.js';
import { KIND_BUNDLE, KIND_SEGMENTS } from '../../../daemon/carrier/kcp/wire.js';
import { IKCP_CMD_ACK, IKCP_CMD_PUSH, IKCP_OVERHEAD } from '../../../daemon/transport/kcp/segment.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

const TYPES = { fromInitiator: 11, fromAcceptor: 12 };
const A = 1;
const B = 2;
const REQ = { src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false };

/** Moves everything `from` queued into `to` (no loss); returns how many datagrams moved. */
function deliver(from: KcpCarrier, fromId: number, to: KcpCarrier, now: number): number {
  let n = 0;
  for (let t = from.pollTransmit(); t; t = from.pollTransmit()) {
    to.input(fromId, t.type, t.data.slice(), now);
    from.recycle(t);
    n++;
  }
  return n;
}

/** The KCP commands in one carrier datagram (kind byte first). */
function commands(data: Uint8Array): number[] {
  const cmds: number[] = [];
  for (let off = 1; off + IKCP_OVERHEAD <= data.length; ) {
    cmds.push(data[off + 4]!);
    off += IKCP_OVERHEAD + new DataView(data.buffer, data.byteOffset + off + 20, 4).getUint32(0, true);
  }
  return cmds;
}

test('flushAcks sends the ACKs for what input() took at once, without the interval tick', () => {
  const a = new KcpCarrier({ types: TYPES, convSeed: 1 });
  const b = new KcpCarrier({ types: TYPES, convSeed: 2 });
  const flow = a.open(B, REQ, 0);
  const open = a.pollTransmit()!;
  // Two datagrams in one pass (the OPEN and a resend of it): no reason to wait for an answer.
  b.input(A, open.type, open.data.slice(), 0);
  b.input(A, open.type, open.data.slice(), 0);
  assert.equal(b.pollTransmit(), null, 'input alone queues no ACK');
  b.flushAcks(0);
  const ack = b.pollTransmit();
  assert.ok(ack, 'flushAcks queued a datagram');
  assert.deepEqual(commands(ack.data), [IKCP_CMD_ACK], 'one ACK for both copies');
  a.input(B, ack.type, ack.data, 0);
  assert.equal(flow.kcp.waitSnd, 0, 'the OPEN is acknowledged at the same instant');
  b.flushAcks(0);
  assert.equal(b.pollTransmit(), null, 'nothing owed twice');
});

/** A opens a flow to B; B took the OPEN (a lone segment) in a pass that ended with flushAcks(0). */
function openToB(): { a: KcpCarrier; b: KcpCarrier; flow: ReturnType<KcpCarrier['open']> } {
  const a = new KcpCarrier({ types: TYPES, convSeed: 1 });
  const b = new KcpCarrier({ types: TYPES, convSeed: 2 });
  const flow = a.open(B, REQ, 0);
  assert.equal(deliver(a, A, b, 0), 1);
  b.flushAcks(0);
  return { a, b, flow };
}

test('a lone datagram\'s ACK waits ACK_DELAY_MS for an answer to carry it, then goes alone', () => {
  const { a, b, flow } = openToB();
  assert.equal(b.pollTransmit(), null, 'held: the answer may carry it');
  assert.equal(b.pollTimeout(), ACK_DELAY_MS, 'the carrier wakes when it is due');
  b.handleTimeout(ACK_DELAY_MS - 1);
  assert.equal(b.pollTransmit(), null, 'not before');
  b.handleTimeout(ACK_DELAY_MS);
  const ack = b.pollTransmit();
  assert.ok(ack, 'sent once due');
  assert.deepEqual(commands(ack.data), [IKCP_CMD_ACK]);
  a.input(B, ack.type, ack.data, ACK_DELAY_MS);
  assert.equal(flow.kcp.waitSnd, 0);
});

test('an answer within ACK_DELAY_MS takes the held ACK along: one wake-up of the peer, not two', () => {
  const { a, b, flow } = openToB();
  const accepted = b.pollEvent()!;
  assert.ok(accepted.request, 'the OPEN arrived');
  b.answer(accepted, DialStatus.Connected, 1);
  // The ACK leaves with the STATUS, in the same pass (one wake-up of A), though in its own datagram:
  // the engine sends ACKs at once and data as the path's pacer grants it.
  const sent: number[] = [];
  for (let t = b.pollTransmit(); t; t = b.pollTransmit()) {
    sent.push(...commands(t.data));
    a.input(B, t.type, t.data.slice(), 1);
  }
  assert.deepEqual(sent, [IKCP_CMD_ACK, IKCP_CMD_PUSH], 'the held ACK leaves with the STATUS');
  assert.equal(flow.kcp.waitSnd, 0);
  b.handleTimeout(ACK_DELAY_MS);
  assert.equal(b.pollTransmit(), null, 'nothing left to send at the old due time');
});

test('toward a peer that takes bundles, the ACKs many flows owe leave in one datagram', () => {
  for (const bundles of [true, false]) {
    const a = new KcpCarrier({ types: TYPES, convSeed: 1, peerTakesBundles: () => bundles });
    const b = new KcpCarrier({ types: TYPES, convSeed: 2, peerTakesBundles: () => bundles });
    const flows = Array.from({ length: 60 }, () => a.open(B, REQ, 0));
    assert.equal(deliver(a, A, b, 0), 60);
    b.flushAcks(0);
    b.handleTimeout(ACK_DELAY_MS); // each flow took a lone segment: its ACK was held for an answer
    const answers = [];
    for (let t = b.pollTransmit(); t; t = b.pollTransmit()) answers.push(t.data.slice());
    // 60 ACK segments of 24 bytes: two bundles of at most one MTU each, or a datagram per flow.
    assert.equal(answers.length, bundles ? 2 : 60);
    assert.ok(answers.every((d) => d[0] === (bundles ? KIND_BUNDLE : KIND_SEGMENTS) && d.length <= 1200));
    for (const d of answers) a.input(B, TYPES.fromAcceptor, d, 0);
    assert.deepEqual(flows.map((f) => f.kcp.waitSnd), flows.map(() => 0), 'every OPEN is acknowledged');
    assert.equal(a.stats.malformed + a.stats.unknownConv, 0);
  }
});

test('a bundle whose segment overruns the datagram is counted malformed, and its earlier runs still count', () => {
  const a = new KcpCarrier({ types: TYPES, convSeed: 1, peerTakesBundles: () => true });
  const b = new KcpCarrier({ types: TYPES, convSeed: 2, peerTakesBundles: () => true });
  const flows = [a.open(B, REQ, 0), a.open(B, REQ, 0)];
  deliver(a, A, b, 0);
  b.flushAcks(0);
  b.handleTimeout(ACK_DELAY_MS);
  const bundle = b.pollTransmit()!.data.slice();
  assert.equal(bundle[0], KIND_BUNDLE);
  const cut = bundle.subarray(0, bundle.length - 3);
  a.input(B, TYPES.fromAcceptor, cut, 0);
  assert.equal(a.stats.malformed, 1);
  // The bundle's first run (whichever flow's ACK fell due first) counts; the cut one does not.
  assert.deepEqual(flows.map((f) => f.kcp.waitSnd).sort(), [0, 1]);
});

test('a lone segment above a hole, or one filling it, is acknowledged at once: held, the sender resends what B has', () => {
  // B's ACK of a repair (a resend, or a datagram its FEC rebuilt) held back for an answer that a bulk
  // receiver never sends reached the sender after RACK had counted the repair lost (kcp-path-control).
  const { a, b } = openToB();
  const accepted = b.pollEvent()!;
  b.answer(accepted, DialStatus.Connected, 1);
  deliver(b, B, a, 1);
  a.flushAcks(1);
  a.handleTimeout(1 + ACK_DELAY_MS); // A's lone ACK of the STATUS was held
  assert.equal(deliver(a, A, b, 1 + ACK_DELAY_MS), 1, 'the STATUS acknowledged: B has nothing in flight');
  b.flushAcks(1 + ACK_DELAY_MS);
  const flow = a.pollEvent()!;
  assert.equal(flow.status, DialStatus.Connected);
  const t0 = 2 + ACK_DELAY_MS;
  assert.ok(a.write(flow, new Uint8Array(4000), t0));
  const data: Uint8Array[] = [];
  for (let t = a.pollTransmit(); t; t = a.pollTransmit()) data.push(t.data.slice());
  assert.equal(data.length, 3, 'three full segments, one a datagram (the partial tail waits)');
  const ackAt = (d: Uint8Array, now: number): number[] => {
    b.input(A, TYPES.fromInitiator, d, now);
    b.flushAcks(now);
    const out: number[] = [];
    for (let t = b.pollTransmit(); t; t = b.pollTransmit()) out.push(...commands(t.data));
    return out;
  };
  assert.deepEqual(ackAt(data[1]!, t0 + 1), [IKCP_CMD_ACK], 'above the hole');
  assert.deepEqual(ackAt(data[0]!, t0 + 2), [IKCP_CMD_ACK], 'into it');
  assert.deepEqual(ackAt(data[2]!, t0 + 3), [], 'in order again: held for an answer');
});
