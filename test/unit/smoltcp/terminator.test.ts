/**
 * SmoltcpTerminator behind the proxy's Terminator seam, on the real clock with TestClients as the
 * applications: claimed SYNs are held until release (SYN-ACK), refuse (RST) or drop (silence);
 * unclaimed ones pass; a trap in the wasm stack abandons held flows and errors accepted streams,
 * and a SocketPipe over such a stream resets its carrier side.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SocketPipe, type AppStream, type PipeStream } from '../../../daemon/carrier/socket-pipe.js';
import type { SocketAddr } from '../../../daemon/packet/flow-key.js';
import { SmoltcpStack } from '../../../daemon/intercept/smoltcp/stack.js';
import { SmoltcpTerminator } from '../../../daemon/intercept/smoltcp/terminator.js';
import type { TerminatorClient } from '../../../daemon/intercept/terminator.js';
import { createLogger } from '../../../daemon/log.js';
import { Conditions, TestClient, parseSegment } from './harness.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

interface Owner {
  term: unknown;
  readonly dst: SocketAddr;
  held: boolean;
  stream: AppStream | null;
  abandoned: string | null;
}

async function setup(claimPort: number) {
  const clients = new Map<number, TestClient>();
  const conditions = new Conditions();
  const check = conditions.check;
  const owners: Owner[] = [];
  const client: TerminatorClient<Owner> = {
    claim: (_src, dst) => {
      if (dst.port !== claimPort) return null;
      const o: Owner = { term: null, dst, held: false, stream: null, abandoned: null };
      owners.push(o);
      return o;
    },
    held: (o) => { o.held = true; setImmediate(check); },
    accepted: (o, s) => { o.stream = s; setImmediate(check); },
    abandoned: (o, why) => { o.abandoned = why; setImmediate(check); },
  };
  const pump = (): void => {
    for (const c of clients.values()) for (const p of c.drain()) term.intercept(Buffer.from(p));
    check();
  };
  const term: SmoltcpTerminator<Owner> = new SmoltcpTerminator(await SmoltcpStack.create(), client, (p) => {
    const seg = parseSegment(p.slice());
    clients.get(seg.dstPort)?.receive(seg);
    setImmediate(pump);
  }, () => undefined, () => performance.now(), createLogger('test'));
  const until = (done: () => boolean): Promise<void> => conditions.until(done);
  const open = (srcPort: number, dstPort: number): { c: TestClient; taken: boolean } => {
    const c = new TestClient('10.0.0.2', srcPort, '198.51.100.7', dstPort);
    clients.set(srcPort, c);
    return { c, taken: term.intercept(Buffer.from(c.syn())) };
  };
  return { term, owners, until, open };
}

test('terminator: claimed SYNs are held, then released, refused or dropped; others pass', async (t) => {
  const { term, owners, until, open } = await setup(443);
  t.after(() => term.close());

  assert.equal(open(40000, 80).taken, false, 'an unclaimed SYN passes');
  assert.equal(term.size, 0);

  const a = open(40001, 443);
  const b = open(40002, 443);
  const c = open(40003, 443);
  assert.deepEqual([a.taken, b.taken, c.taken], [true, true, true]);
  await until(() => owners.length === 3 && owners.every((o) => o.held));
  assert.deepEqual(owners[0]!.dst, socketAddrOf('198.51.100.7', 443));
  assert.equal(a.c.established || b.c.established || c.c.established, false, 'no SYN-ACK before the dial outcome');

  term.release(owners[0]!);
  term.refuse(owners[1]!);
  term.drop(owners[2]!);
  await until(() => owners[0]!.stream !== null && a.c.established && b.c.reset);
  assert.equal(c.c.established || c.c.reset, false, 'a dropped SYN is never answered');
  assert.equal(term.size, 1, 'refused and dropped flows are forgotten');

  // A retransmitted SYN of the dropped flow is a new claim (a new dial), as on the kernel path.
  assert.equal(term.intercept(Buffer.from(c.c.syn())), true);
  await until(() => owners.length === 4 && owners[3]!.held);
});

test('terminator: a wasm trap abandons held flows and resets the carrier of piped ones', async (t) => {
  const { term, owners, until, open } = await setup(443);
  t.after(() => term.close());
  const piped = open(41001, 443);
  open(41002, 443);
  await until(() => owners.length === 2 && owners.every((o) => o.held));
  term.release(owners[0]!);
  await until(() => owners[0]!.stream !== null && piped.c.established);

  let aborted = false;
  const carrier: PipeStream = {
    write: (d) => d.length, read: () => null, readEnded: () => false, shutdown: () => undefined,
    abort: () => { aborted = true; }, release: () => undefined,
  };
  let ended: string | null = null;
  new SocketPipe(owners[0]!.stream!, carrier, () => undefined, (how) => { ended = how; });

  assert.throws(() => term.driver.stack.debugPanic(), { code: 'TSTIER_E_CLOSED' });
  term.driver.kick();
  await until(() => owners[1]!.abandoned !== null && ended !== null);
  assert.match(owners[1]!.abandoned!, /crashed/);
  assert.equal(ended, 'reset-by-app');
  assert.equal(aborted, true, 'the carrier side was reset');
  assert.equal(term.driver.stack.stats().crashes, 1);

  // The fresh instance keeps working.
  open(41003, 443);
  await until(() => owners.length === 3 && owners[2]!.held);
});
