import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';

import { type FlowRequest, SmoltcpDriver, type SmoltcpAppEnd } from '../../../daemon/intercept/smoltcp/driver.js';
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

/** An accepted flow's application end with its events recorded, as the pipe would bind it. */
function bound(end: SmoltcpAppEnd, onDrain: () => void = () => undefined) {
  const r = { received: [] as Uint8Array[], ended: false, closed: null as boolean | null };
  end.bind({
    data: (chunk) => void r.received.push(chunk),
    end: () => void (r.ended = true),
    drain: onDrain,
    close: (hadError) => void (r.closed = hadError),
  });
  end.resume();
  return r;
}

test('driver: an accepted flow is the pipe\'s application end; data both ways and half-close are byte-exact', async (t) => {
  const up = randomBytes(200_000);
  const down = randomBytes(150_000);
  let end!: SmoltcpAppEnd;
  let events!: ReturnType<typeof bound>;
  let request!: FlowRequest;
  let off = 0;
  /** Writes `down` as the pipe does (stop at false, go on at drain), then our FIN. */
  const send = (): void => {
    while (off < down.length) {
      const chunk = down.subarray(off, off + 16_384);
      off += chunk.length;
      if (!end.write(chunk)) return;
    }
    if (!end.writableEnded) end.end();
  };
  const { driver, pump, until, connect } = await setup((d, req) => {
    request = req;
    // The "remote dial" completes on a later turn, as a real connect would.
    setImmediate(() => {
      end = d.accept(req.id);
      events = bound(end, send);
      send();
    });
  });
  t.after(() => driver.close());
  const client = connect(new TestClient('10.0.0.2', 49000, '198.51.100.60', 443));
  client.write(up);
  client.close();
  await until(() => end !== undefined);
  pump();
  await until(() => events.ended);
  await until(() => client.finReceived && client.receivedBytes().length === down.length);
  assert.equal(end.writableFinished, true);
  end.closeSoon();
  assert.deepEqual(request.dst, socketAddrOf('198.51.100.60', 443));
  assert.equal(sha256(Buffer.concat(events.received)), sha256(up));
  assert.equal(sha256(client.receivedBytes()), sha256(down));
  assert.equal(end.destroyed, true);
});

test('driver: a paused end leaves the client\'s bytes in the stack until its window closes; resume delivers them all, then the FIN', async (t) => {
  const up = randomBytes(100_000);
  let end!: SmoltcpAppEnd;
  let events!: ReturnType<typeof bound>;
  const { driver, pump, until, connect } = await setup((d, req) => {
    end = d.accept(req.id);
    events = bound(end);
    end.pause(); // as the pipe does while its carrier has no room
  });
  t.after(() => driver.close());
  const client = connect(new TestClient('10.0.0.2', 49000, '198.51.100.60', 443));
  await until(() => client.established);
  client.write(up);
  client.close();
  pump();
  await until(() => client.peerWindow === 0);
  assert.equal(events.received.length, 0, 'nothing read while paused');
  assert.equal(events.ended, false);
  end.resume();
  pump();
  await until(() => events.ended);
  assert.equal(sha256(Buffer.concat(events.received)), sha256(up));
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

test('driver: destroying the end resets the client; a client reset closes the end with an error', async (t) => {
  const ends: SmoltcpAppEnd[] = [];
  const { driver, until, connect } = await setup((d, req) => ends.push(d.accept(req.id)));
  t.after(() => driver.close());
  const client = connect(new TestClient('10.0.0.2', 49000, '198.51.100.60', 443));
  await until(() => client.established);
  ends[0]!.destroy();
  await until(() => client.reset);
  assert.equal(driver.stack.stats().openFlows, 0);

  const c2 = connect(new TestClient('10.0.0.3', 49001, '198.51.100.61', 80));
  await until(() => ends.length === 2);
  const events = bound(ends[1]!);
  driver.input(c2.packet(TCP_RST | TCP_ACK, undefined, c2.isn + 1));
  await until(() => events.closed !== null);
  assert.equal(events.closed, true);
  assert.equal(ends[1]!.destroyed, true);
});
