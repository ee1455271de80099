/**
 * How the KCP carrier hands ACKs to its driver: the ACKs owed for a burst of input leave on
 * flushAcks() (the driver's end of pass), not only on the interval tick.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KcpCarrier } from '../../../daemon/carrier/kcp/endpoint.js';
import { KIND_BUNDLE, KIND_SEGMENTS } from '../../../daemon/carrier/kcp/wire.js';
import { IKCP_CMD_ACK, IKCP_OVERHEAD } from '../../../daemon/transport/kcp/segment.js';
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
  assert.equal(deliver(a, A, b, 0), 1);
  assert.equal(b.pollTransmit(), null, 'input alone queues no ACK');
  b.flushAcks(0);
  const ack = b.pollTransmit();
  assert.ok(ack, 'flushAcks queued a datagram');
  assert.deepEqual(commands(ack.data), [IKCP_CMD_ACK]);
  a.input(B, ack.type, ack.data, 0);
  assert.equal(flow.kcp.waitSnd, 0, 'the OPEN is acknowledged at the same instant');
  b.flushAcks(0);
  assert.equal(b.pollTransmit(), null, 'nothing owed twice');
});

test('toward a peer that takes bundles, one pass answers many flows with one datagram', () => {
  for (const bundles of [true, false]) {
    const a = new KcpCarrier({ types: TYPES, convSeed: 1, peerTakesBundles: () => bundles });
    const b = new KcpCarrier({ types: TYPES, convSeed: 2, peerTakesBundles: () => bundles });
    const flows = Array.from({ length: 60 }, () => a.open(B, REQ, 0));
    assert.equal(deliver(a, A, b, 0), 60);
    b.flushAcks(0);
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
  const bundle = b.pollTransmit()!.data.slice();
  assert.equal(bundle[0], KIND_BUNDLE);
  const cut = bundle.subarray(0, bundle.length - 3);
  a.input(B, TYPES.fromAcceptor, cut, 0);
  assert.equal(a.stats.malformed, 1);
  assert.deepEqual(flows.map((f) => f.kcp.waitSnd), [0, 1]);
});
