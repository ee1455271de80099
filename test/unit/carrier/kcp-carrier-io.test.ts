/**
 * How the KCP carrier hands ACKs to its driver: the ACKs owed for a burst of input leave on
 * flushAcks() (the driver's end of pass), not only on the interval tick.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KcpCarrier } from '../../../daemon/carrier/kcp/endpoint.js';
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
