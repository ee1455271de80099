import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';

import { type FlowRequest, SmoltcpDriver, type SmoltcpSocket } from '../../../daemon/intercept/smoltcp/driver.js';
import { SmoltcpStack } from '../../../daemon/intercept/smoltcp/stack.js';
import { TCP_ACK, TCP_RST } from '../../../daemon/packet/tcp.js';
import { Conditions, TestClient, parseSegment } from './harness.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A driver on the real clock, wired to TestClients; `until` resolves when a condition holds. */
async function setup(onFlow: (driver: SmoltcpDriver, request: FlowRequest) => void) {
  const clients = new Map<number, TestClient>();
  const conditions = new Conditions();
  const check = conditions.check;
  const pump = (): void => {
    for (const c of clients.values()) for (const packet of c.drain()) driver.input(packet);
    check();
  };
  const driver: SmoltcpDriver = new SmoltcpDriver(
    await SmoltcpStack.create(),
    (packet) => {
      const seg = parseSegment(packet.slice());
      clients.get(seg.dstPort)?.receive(seg);
      setImmediate(pump);
    },
    (request) => {
      onFlow(driver, request);
      setImmediate(check);
    },
  );
  const until = (done: () => boolean): Promise<void> => conditions.until(done);
  const connect = (client: TestClient): TestClient => {
    clients.set(client.srcPort, client);
    driver.input(client.syn());
    return client;
  };
  return { driver, pump, until, connect };
}

test('driver: an accepted flow is a Duplex stream; data both ways and half-close are byte-exact', async (t) => {
  const up = randomBytes(200_000);
  const down = randomBytes(150_000);
  let socket!: SmoltcpSocket;
  const received: Buffer[] = [];
  let request!: FlowRequest;
  const { driver, pump, until, connect } = await setup((d, req) => {
    request = req;
    // The "remote dial" completes on a later turn, as a real connect would.
    setImmediate(() => {
      socket = d.accept(req.id);
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.end(down);
    });
  });
  t.after(() => driver.close());
  const client = connect(new TestClient('10.0.0.2', 49000, '198.51.100.60', 443));
  client.write(up);
  client.close();
  await until(() => socket !== undefined);
  const ended = once(socket, 'end');
  const closed = once(socket, 'close');
  pump();
  await ended;
  await until(() => client.finReceived && client.receivedBytes().length === down.length);
  await closed;
  assert.deepEqual(request.dst, socketAddrOf('198.51.100.60', 443));
  assert.equal(sha256(Buffer.concat(received)), sha256(up));
  assert.equal(sha256(client.receivedBytes()), sha256(down));
  assert.equal(socket.destroyed, true);
});

test('driver: a client reset before accept aborts the request signal', async (t) => {
  let request!: FlowRequest;
  const { driver, until, connect } = await setup((_d, req) => {
    request = req;
  });
  t.after(() => driver.close());
  const client = connect(new TestClient('10.0.0.2', 49000, '198.51.100.60', 443));
  await until(() => request !== undefined);
  assert.equal(request.signal.aborted, false);
  const aborted = once(request.signal, 'abort');
  driver.input(client.packet(TCP_RST, undefined, client.isn + 1));
  await aborted;
  assert.equal((request.signal.reason as { code?: string }).code, 'TSTIER_E_CLOSED');
});

test('driver: destroying the stream resets the client; a client reset errors the stream', async (t) => {
  const sockets: SmoltcpSocket[] = [];
  const { driver, until, connect } = await setup((d, req) => sockets.push(d.accept(req.id)));
  t.after(() => driver.close());
  const client = connect(new TestClient('10.0.0.2', 49000, '198.51.100.60', 443));
  await until(() => client.established);
  sockets[0]!.destroy();
  await until(() => client.reset);
  assert.equal(driver.stack.stats().openFlows, 0);

  const c2 = connect(new TestClient('10.0.0.3', 49001, '198.51.100.61', 80));
  await until(() => sockets.length === 2);
  const errored = once(sockets[1]!, 'error');
  driver.input(c2.packet(TCP_RST | TCP_ACK, undefined, c2.isn + 1));
  const [error] = (await errored) as [{ code?: string }];
  assert.equal(error.code, 'TSTIER_E_CLOSED');
});
