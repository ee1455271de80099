/**
 * How the KCP carrier hands bytes to its driver: ACKs owed for a burst of input leave on
 * flushAcks() (the driver's end of pass), not only on the interval tick; received data comes out in
 * multi-segment chunks that stay intact while later chunks are read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { KcpCarrier, type KcpFlow } from '../../../daemon/carrier/kcp/endpoint.js';
import { DialStatus } from '../../../daemon/carrier/flow-frames.js';
import { IKCP_CMD_ACK, IKCP_OVERHEAD } from '../../../daemon/transport/kcp/segment.js';

const TYPES = { fromInitiator: 11, fromAcceptor: 12 };
const A = 1;
const B = 2;
const REQ = { src: { ip: '10.0.0.1', port: 1000 }, dst: { ip: '10.0.0.2', port: 80 }, optimistic: false };

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

test('received data comes out in multi-segment chunks that later reads do not overwrite', () => {
  const a = new KcpCarrier({ types: TYPES, convSeed: 3 });
  const b = new KcpCarrier({ types: TYPES, convSeed: 4 });
  const sent = new Uint8Array(600_000);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 2654435761) >>> 24;
  const flow = a.open(B, REQ, 0);
  let accepted: KcpFlow | null = null;
  let off = 0;
  const chunks: Uint8Array[] = [];
  let now = 0;
  for (let round = 0; round < 2000 && (off < sent.length || received(chunks) < sent.length); round++) {
    now += 5;
    if (a.pollTimeout() <= now) a.handleTimeout(now);
    if (b.pollTimeout() <= now) b.handleTimeout(now);
    if (flow.status === DialStatus.Connected && off < sent.length && flow.writable) {
      const piece = sent.subarray(off, Math.min(off + 100_000, sent.length));
      assert.ok(flow.write(piece, now));
      a.touch(flow);
      off += piece.length;
    }
    deliver(a, A, b, now);
    for (let f = b.pollEvent(); f; f = b.pollEvent()) {
      f.takeEvents();
      if (!accepted && f.request) {
        accepted = f;
        f.answer(DialStatus.Connected, now);
      }
      for (let d = f.read(); d; d = f.read()) chunks.push(d);
      b.touch(f);
    }
    b.flushAcks(now);
    deliver(b, B, a, now);
    for (let f = a.pollEvent(); f; f = a.pollEvent()) f.takeEvents();
    a.flushAcks(now);
  }
  const got = Buffer.concat(chunks);
  assert.equal(got.length, sent.length);
  assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(sent).digest('hex'));
  const segments = Math.ceil(sent.length / (1200 - 1 - IKCP_OVERHEAD));
  assert.ok(chunks.length * 4 < segments, `${chunks.length} chunks for ${segments} segments`);
});

function received(chunks: Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}
