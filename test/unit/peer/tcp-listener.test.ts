/**
 * The TCP listener's bounds on half-open streams over real loopback sockets: a deadline counted
 * from the accept (a trickler is cut however it trickles), silence for refused streams until that
 * deadline, a first frame no longer than a handshake, and the per-source and global caps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { UnderlayLink } from '../../../daemon/peer/underlay/link.js';
import { TcpListener } from '../../../daemon/peer/underlay/tcp.js';
import { quietLog } from './helpers.js';

const LIMITS = { deadlineMs: 400, perSource: 3, global: 5, quietMs: 1000 };
const MAX_FIRST = 112;

interface Harness {
  listener: TcpListener;
  port: number;
  /** Every link offered to the owner, with its first packet. */
  offered: Array<{ link: UnderlayLink; first: Buffer }>;
}

async function listen(t: { after(fn: () => unknown): void }, onOffer: (link: UnderlayLink, first: Buffer) => void = () => {}): Promise<Harness> {
  const offered: Harness['offered'] = [];
  const listener = await TcpListener.open('tcp://127.0.0.1:0', { scheme: 'tcp', host: '127.0.0.1', port: 0 }, (link, first) => {
    offered.push({ link, first: Buffer.from(first) });
    onOffer(link, first);
  }, { log: quietLog, maxFirstPacket: MAX_FIRST, halfOpen: LIMITS });
  t.after(() => listener.close());
  return { listener, port: Number(listener.boundUri.split(':').pop()), offered };
}

function dial(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the listener's end closed the socket (FIN or reset), with what the socket had received. */
function closedByListener(s: Socket): Promise<{ received: number }> {
  let received = 0;
  s.on('data', (d: Buffer) => { received += d.length; });
  s.on('error', () => {});
  return new Promise((resolve) => s.once('close', () => resolve({ received })));
}

const frame = (len: number): Buffer => {
  const b = Buffer.alloc(4 + len, 7);
  b.writeUInt32LE(len, 0);
  return b;
};

test('a trickler is cut at the deadline counted from its accept, though it never goes quiet', async (t) => {
  const h = await listen(t);
  // Taken before the dial: the listener may accept (and start its deadline) before our connect
  // callback runs, so a later reading could make the deadline look early.
  const started = performance.now();
  const s = await dial(h.port);
  const closed = closedByListener(s);
  // A byte every 50 ms: an inactivity timeout of any length over 50 ms would never fire.
  const bytes = frame(100);
  let sent = 0;
  const trickle = setInterval(() => { if (!s.destroyed && sent < bytes.length) s.write(bytes.subarray(sent, ++sent)); }, 50);
  t.after(() => clearInterval(trickle));
  await closed;
  clearInterval(trickle);
  assert.ok(performance.now() - started >= LIMITS.deadlineMs - 5, 'not before the deadline');
  assert.ok(sent < bytes.length, 'still trickling when cut');
  assert.equal(h.offered.length, 0);
  assert.deepEqual([h.listener.halfOpen.stats.expired, h.listener.halfOpen.size], [1, 0]);
});

test('a refused stream hears nothing until the deadline; an accepted one leaves the half-open set', async (t) => {
  const h = await listen(t, (link, first) => {
    if (first.length === MAX_FIRST) link.refuse();
  });
  const started = performance.now(); // before the dial, as above
  const refused = await dial(h.port);
  const refusedClosed = closedByListener(refused);
  refused.write(frame(MAX_FIRST));
  const accepted = await dial(h.port);
  const acceptedClosed = closedByListener(accepted);
  accepted.write(frame(10));
  const r = await refusedClosed;
  assert.equal(r.received, 0, 'no byte for the refused stream');
  assert.ok(performance.now() - started >= LIMITS.deadlineMs - 5, 'and no early FIN');
  assert.equal(h.offered.length, 2);
  assert.ok(!accepted.destroyed && !accepted.readableEnded, 'the accepted stream outlives the deadline');
  assert.equal(h.listener.halfOpen.size, 0);
  assert.deepEqual([h.listener.halfOpen.stats.settled, h.listener.halfOpen.stats.expired], [1, 1]);
  accepted.destroy();
  await acceptedClosed;
});

test('a first frame announced longer than a handshake is closed at once, unread', async (t) => {
  const h = await listen(t);
  const s = await dial(h.port);
  const closed = closedByListener(s);
  s.write(frame(MAX_FIRST + 1).subarray(0, 60));
  await closed;
  assert.equal(h.offered.length, 0);
});

test('per-source and global caps close the oldest half-open streams; the newest always get in', async (t) => {
  let offered!: () => void;
  const offer = new Promise<void>((resolve) => { offered = resolve; });
  const h = await listen(t, () => offered());
  const from1 = [];
  for (let i = 0; i < 5; i++) from1.push(await dial(h.port, '127.0.0.1'));
  const closes1 = from1.map(closedByListener);
  // Three may stay from 127.0.0.1: its two oldest were closed for its newer ones.
  await Promise.all(closes1.slice(0, 2));
  assert.deepEqual([h.listener.halfOpen.stats.evictedPerSource, h.listener.halfOpen.size], [2, 3]);
  const from2 = [await dial(h.port, '127.0.0.2'), await dial(h.port, '127.0.0.2')];
  const closes2 = from2.map(closedByListener);
  // Full (5): the next from a third address displaces the oldest of the heaviest source, 127.0.0.1.
  const from3 = await dial(h.port, '127.0.0.3');
  await closes1[2];
  assert.deepEqual([h.listener.halfOpen.stats.evictedGlobal, h.listener.halfOpen.size], [1, 5]);
  // The newcomer is half-open and can still complete its handshake.
  from3.write(frame(20));
  await offer;
  assert.equal(h.offered[0]!.first.length, 20);
  for (const s of [...from1, ...from2, from3]) s.destroy();
  await Promise.all([...closes1, ...closes2]);
});
