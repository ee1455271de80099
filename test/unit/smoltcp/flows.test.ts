import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { InputOutcome, SmoltcpStack } from '../../../daemon/intercept/smoltcp/stack.js';
import { TCP_ACK, TCP_RST, TCP_SYN } from '../../../daemon/packet/tcp.js';
import { Harness, TestClient } from './harness.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function harness(): Promise<Harness> {
  return new Harness(await SmoltcpStack.create());
}

test('SYN to an arbitrary IPv4 destination is held and reported as a new flow', async () => {
  const h = await harness();
  h.app.onNew = () => {}; // decide later
  const c = h.add(new TestClient('10.0.0.2', 40000, '93.184.216.34', 443));
  assert.equal(h.stack.input(c.syn(), h.now), InputOutcome.newFlow);
  const opened = h.stack.inputFlow();
  h.exchange();
  const [flow] = h.app.ofType('new');
  assert.ok(flow);
  assert.equal(flow.id, opened, 'the input call itself tells which flow the SYN opened');
  assert.equal(flow.family, 4);
  assert.deepEqual(flow.src, socketAddrOf('10.0.0.2', 40000));
  assert.deepEqual(flow.dst, socketAddrOf('93.184.216.34', 443));
  assert.equal(h.stack.state(flow.id), 'pending');
  assert.equal(h.emitted.length, 0, 'nothing answers the SYN before accept');

  // A retransmitted SYN refreshes the held one without a second event.
  h.stack.input(c.syn(), h.now + 1000);
  h.exchange();
  assert.equal(h.app.ofType('new').length, 1);

  h.stack.accept(flow.id);
  h.exchange();
  const synAck = h.emitted[0]!;
  assert.equal(synAck.flags & (TCP_SYN | TCP_ACK), TCP_SYN | TCP_ACK);
  assert.equal(synAck.ack, c.isn + 1);
  assert.deepEqual([...synAck.src], [93, 184, 216, 34], 'SYN-ACK comes from the original destination');
  assert.equal(synAck.srcPort, 443);
  assert.ok(synAck.mss !== undefined && synAck.mss <= 1280 - 40, `MSS ${synAck.mss} fits the MTU`);
  h.runUntil(() => h.app.ofType('writable').length === 1);
  assert.equal(h.stack.state(flow.id), 'established');
});

test('reject answers the held SYN with RST and forgets the flow', async () => {
  const h = await harness();
  h.app.onNew = (e) => h.stack.reject(e.id);
  const c = h.add(new TestClient('10.0.0.2', 40001, '198.51.100.7', 22));
  h.stack.input(c.syn(), h.now);
  h.runUntil(() => c.reset);
  const rst = h.emitted[0]!;
  assert.equal(rst.flags & TCP_RST, TCP_RST);
  assert.equal(rst.ack, c.isn + 1, 'RST acknowledges the SYN');
  const id = h.app.ofType('new')[0]!.id;
  assert.equal(h.stack.state(id), null);
  assert.throws(() => h.stack.accept(id), { code: 'TSTIER_E_CLOSED' });
  assert.equal(h.stack.stats().pendingFlows, 0);
});

test('a segment of no known flow is answered with RST, never a new flow', async () => {
  const h = await harness();
  const c = h.add(new TestClient('10.0.0.2', 40002, '198.51.100.8', 80));
  c.rcvNxt = 1234;
  h.stack.input(c.packet(TCP_ACK), h.now);
  h.exchange();
  assert.equal(h.app.ofType('new').length, 0);
  assert.equal(h.emitted[0]!.flags & TCP_RST, TCP_RST);
  assert.equal(h.stack.stats().noFlow, 1);
});

test('data both ways is byte-exact (IPv4, several flows at once)', async () => {
  const h = await harness();
  const clients = [0, 1, 2].map((i) => h.add(new TestClient(`10.0.0.${2 + i}`, 41000 + i, `203.0.113.${9 + i}`, 8080)));
  const up = clients.map(() => randomBytes(150_000));
  const down = clients.map(() => randomBytes(120_000));
  clients.forEach((c, i) => {
    h.stack.input(c.syn(), h.now);
    c.write(up[i]!);
  });
  h.runUntil(() => h.app.ofType('writable').length === 3);
  const ids = h.app.ofType('new').map((e) => e.id);
  ids.forEach((id, i) => h.app.send(id, down[i]!));
  h.runUntil(() => clients.every((c, i) => c.receivedBytes().length === down[i]!.length && h.app.receivedBytes(ids[i]!).length === up[i]!.length));
  clients.forEach((c, i) => {
    assert.equal(sha256(h.app.receivedBytes(ids[i]!)), sha256(up[i]!));
    assert.equal(sha256(c.receivedBytes()), sha256(down[i]!));
  });
});

test('client half-closes first: fin after its data, the stack keeps sending, then closes', async () => {
  const h = await harness();
  const c = h.add(new TestClient('10.0.0.2', 42000, '192.0.2.1', 25));
  const up = randomBytes(40_000);
  const down = randomBytes(50_000);
  h.stack.input(c.syn(), h.now);
  c.write(up);
  c.close();
  h.runUntil(() => h.app.ofType('fin').length === 1);
  const id = h.app.ofType('new')[0]!.id;
  assert.equal(sha256(h.app.receivedBytes(id)), sha256(up), 'all data before the fin');
  assert.equal(h.stack.state(id), 'close-wait');
  h.app.send(id, down); // the other direction is still open
  h.runUntil(() => c.receivedBytes().length === down.length);
  assert.equal(sha256(c.receivedBytes()), sha256(down));
  assert.equal(c.finReceived, false);
  h.stack.shutdownWrite(id);
  h.runUntil(() => h.app.ofType('closed').length === 1);
  assert.ok(c.finReceived);
  assert.equal(h.app.ofType('reset').length, 0);
  assert.equal(h.stack.state(id), null, 'LAST-ACK done: the flow is gone');
});

test('stack half-closes first: the client keeps sending; TIME-WAIT holds the socket, then frees it', async () => {
  const h = await harness();
  const c = new TestClient('10.0.0.2', 42001, '192.0.2.2', 993);
  const down = randomBytes(30_000);
  const up = randomBytes(60_000);
  const id = h.open(c);
  h.app.send(id, down);
  assert.ok(h.app.unsent(id) > 0, 'more than the send buffer: the rest waits for writable');
  h.runUntil(() => h.app.unsent(id) === 0);
  h.stack.shutdownWrite(id);
  h.runUntil(() => c.finReceived);
  assert.equal(sha256(c.receivedBytes()), sha256(down), 'queued data goes out before the FIN');
  c.write(up);
  h.runUntil(() => h.app.receivedBytes(id).length === up.length);
  assert.equal(sha256(h.app.receivedBytes(id)), sha256(up), 'data after our FIN still arrives');
  c.close();
  h.runUntil(() => h.app.ofType('closed').length === 1);
  assert.deepEqual(
    h.app.events.filter((e) => e.id === id && (e.type === 'fin' || e.type === 'closed')).map((e) => e.type),
    ['fin', 'closed'],
  );
  assert.equal(h.stack.state(id), 'time-wait');
  assert.equal(h.stack.stats().openFlows, 1, 'TIME-WAIT keeps the socket');
  // A new SYN on the same 4-tuple during TIME-WAIT does not start a second flow.
  h.stack.input(c.syn(), h.now);
  h.settle(0);
  assert.equal(h.app.ofType('new').length, 1);
  h.settle(11_000);
  assert.equal(h.stack.state(id), null);
  assert.equal(h.stack.stats().openFlows, 0);
});

test('client reset ends the flow with a reset event', async () => {
  const h = await harness();
  const c = new TestClient('10.0.0.2', 42002, '192.0.2.3', 80);
  const id = h.open(c);
  h.stack.input(c.packet(TCP_RST | TCP_ACK), h.now);
  h.runUntil(() => h.app.ofType('reset').length === 1);
  assert.equal(h.stack.state(id), null);
  assert.throws(() => h.stack.send(id, new Uint8Array(1)), { code: 'TSTIER_E_CLOSED' });
});

test('abort sends RST and forgets the flow without events', async () => {
  const h = await harness();
  const c = new TestClient('10.0.0.2', 42003, '192.0.2.4', 80);
  const id = h.open(c);
  h.stack.abort(id);
  h.runUntil(() => c.reset);
  h.settle();
  assert.equal(h.stack.state(id), null);
  assert.equal(h.app.ofType('reset').length + h.app.ofType('closed').length, 0);
  assert.equal(h.stack.stats().openFlows, 0);
});

/** Inserts IPv6 extension headers (8 bytes each, PadN-filled) after the fixed header. */
function withExtensionHeaders(packet: Uint8Array, types: number[]): Uint8Array {
  const out = new Uint8Array(packet.length + 8 * types.length);
  out.set(packet.subarray(0, 40));
  let next = packet[6]!;
  for (let i = types.length - 1; i >= 0; i--) {
    const at = 40 + 8 * i;
    out.set([next, 0, 1, 4, 0, 0, 0, 0], at); // next header, length 0, PadN of 4
    next = types[i]!;
  }
  out[6] = next;
  const payloadLength = packet.length - 40 + 8 * types.length;
  out[4] = payloadLength >> 8;
  out[5] = payloadLength & 0xff;
  out.set(packet.subarray(40), 40 + 8 * types.length);
  return out;
}

test('IPv6 SYN behind Hop-by-Hop and Destination Options headers is detected and served', async () => {
  const h = await harness();
  const c = h.add(new TestClient('fd00::2', 43000, '2001:db8::80', 8443));
  const syn = withExtensionHeaders(c.syn(), [0, 60]);
  assert.equal(syn[6], 0, 'first extension header is Hop-by-Hop');
  h.stack.input(syn, h.now);
  h.runUntil(() => h.app.ofType('writable').length === 1);
  const [flow] = h.app.ofType('new');
  assert.equal(flow!.family, 6);
  assert.deepEqual(flow!.dst, socketAddrOf('2001:db8::80', 8443));
  assert.deepEqual(flow!.src, socketAddrOf('fd00::2', 43000));
  const up = randomBytes(20_000);
  c.write(up);
  h.runUntil(() => h.app.receivedBytes(flow!.id).length === up.length);
  assert.equal(sha256(h.app.receivedBytes(flow!.id)), sha256(up));
  assert.equal(h.emitted[0]!.src.length, 16);
});

test('non-TCP packets are counted drops, not flows', async () => {
  const h = await harness();
  const udpLike = new TestClient('fd00::2', 43001, '2001:db8::81', 80).syn();
  udpLike[6] = 17;
  h.stack.input(udpLike, h.now);
  h.exchange();
  assert.equal(h.stack.stats().notTcp, 1);
  assert.equal(h.app.ofType('new').length, 0);
});

test('a corrupted SYN (bad TCP checksum) creates no flow', async () => {
  const h = await harness();
  const syn = new TestClient('10.0.0.2', 44000, '192.0.2.9', 80).syn();
  syn[syn.length - 1]! ^= 0xff;
  h.stack.input(syn, h.now);
  h.exchange();
  assert.equal(h.app.ofType('new').length, 0);
  assert.equal(h.stack.stats().malformed, 1);
});

test('SYNs beyond maxPending are answered with RST', async () => {
  const h = new Harness(await SmoltcpStack.create({ maxPending: 2 }));
  h.app.onNew = () => {};
  const clients = [0, 1, 2].map((i) => h.add(new TestClient('10.0.0.2', 45000 + i, '192.0.2.10', 80)));
  for (const c of clients) h.stack.input(c.syn(), h.now);
  h.exchange();
  assert.equal(h.app.ofType('new').length, 2);
  assert.ok(clients[2]!.reset);
  assert.equal(h.stack.stats().overLimit, 1);
});

test('idle flows cost a poll nothing: only flows with work or a due timer are serviced', async () => {
  const h = new Harness(await SmoltcpStack.create({ keepAliveMs: 60_000, timeoutMs: 180_000 }));
  const clients = Array.from({ length: 200 }, (_, i) => h.add(new TestClient('10.1.0.2', 30000 + i, '192.0.2.30', 443)));
  for (const c of clients) h.stack.input(c.syn(), h.now);
  h.runUntil(() => clients.every((c) => c.established));
  h.settle(1_000);
  assert.equal(h.stack.stats().openFlows, 200);
  assert.equal(h.stack.poll(h.now + 1), 0, 'no flow is touched by a poll with nothing due');
  const id = h.app.ofType('new')[0]!.id;
  h.stack.send(id, new Uint8Array(100));
  assert.equal(h.stack.poll(h.now + 2), 1, 'exactly the flow that was written to');
});

test('keep-alives keep a silent but live client; a vanished client is reset after the timeout', async () => {
  const h = new Harness(await SmoltcpStack.create({ keepAliveMs: 1_000, timeoutMs: 3_500 }));
  const c = new TestClient('10.0.0.2', 48000, '192.0.2.40', 22);
  const id = h.open(c);
  const start = h.now;
  h.runUntil(() => h.now > start + 20_000);
  assert.equal(h.stack.state(id), 'established', 'answered probes keep the flow');
  assert.ok(h.emitted.filter((s) => s.payload.length <= 1 && !(s.flags & TCP_SYN)).length >= 10, 'probes were sent');
  h.clients.delete(c.key); // the client vanishes: probes go unanswered
  h.runUntil(() => h.app.ofType('reset').length === 1);
  assert.ok(h.now - start > 20_000 + 3_000);
  assert.equal(h.stack.state(id), null);
});

test('bad options are config errors naming the key', async () => {
  await assert.rejects(SmoltcpStack.create({ ipv4: '300.1.1.1' }), { code: 'TSTIER_E_BAD_CONFIG', message: /smoltcp\.ipv4/ });
  await assert.rejects(SmoltcpStack.create({ ipv6: 'fd00::zz' }), { code: 'TSTIER_E_BAD_CONFIG', message: /smoltcp\.ipv6/ });
  await assert.rejects(SmoltcpStack.create({ rxBuffer: -1 }), { code: 'TSTIER_E_BAD_CONFIG', message: /smoltcp\.rxBuffer/ });
  await assert.rejects(SmoltcpStack.create({ mtu: 1.5 }), { code: 'TSTIER_E_BAD_CONFIG', message: /smoltcp\.mtu/ });
});
