import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { peerAddon } from '../../../daemon/peer/native.js';
import type { UnderlayLink } from '../../../daemon/peer/underlay/link.js';
import { dialUdp, UDP_HEADER_LEN, UdpListener } from '../../../daemon/peer/underlay/udp.js';
import { DatagramBatcher, GsoSocket } from '../../../daemon/peer/underlay/udp-gso.js';

/**
 * A GsoSocket stand-in that records each run it is offered and takes those `accept` allows, and
 * each sendmmsg (`many`), which it takes whole.
 */
function recordingGso(accept: (count: number, segment: number) => boolean): { gso: GsoSocket; runs: Buffer[][]; many: Buffer[][] } {
  const runs: Buffer[][] = [];
  const many: Buffer[][] = [];
  const gso = {
    maxSegment: 0xffff,
    trySend(q: Buffer[], first: number, count: number, segment: number): boolean {
      const run = q.slice(first, first + count);
      assert.ok(run.every((b, i) => (i === count - 1 ? b.length <= segment : b.length === segment)), 'equal segments, last may be short');
      if (!accept(count, segment)) return false;
      runs.push(run);
      return true;
    },
    trySendMany(q: Buffer[], first: number, count: number): number {
      many.push(q.slice(first, first + count));
      return count;
    },
  } as unknown as GsoSocket;
  return { gso, runs, many };
}

const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

test('a tick of datagrams is cut into equal-size runs, in order; refused runs go out one by one', async () => {
  const sizes = [100, 100, 100, 40, 100, 100, 300, 200, 7, 7, 7, 7, ...Array<number>(70).fill(1000), 1000, 999, 3];
  const sent = sizes.map((n) => randomBytes(n));
  const plain: Buffer[] = [];
  const taken: Buffer[] = [];
  const { gso, runs, many } = recordingGso((count, segment) => !(segment === 100 && count === 2) && count !== 8);
  const b = new DatagramBatcher(gso, null, 0, (buf) => plain.push(buf), undefined, (buf) => taken.push(buf));
  for (const d of sent) b.push(d);
  assert.equal(runs.length + plain.length + many.length, 0, 'nothing leaves before the tick ends');
  await tick();
  assert.deepEqual(runs.map((r) => r.map((d) => d.length)), [
    [100, 100, 100, 40], // a short one ends a run
    [300, 200], // a longer one starts the next
    [7, 7, 7, 7],
    Array<number>(64).fill(1000), // at most 64 segments a send
  ]);
  const lengths = plain.map((d) => d.length);
  assert.deepEqual(lengths, [100, 100, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 999]);
  // The lone tail goes by sendmmsg, since the owner wants its buffers back.
  assert.deepEqual(many.map((m) => m.map((d) => d.length)), [[3]]);
  // Every datagram left exactly once; within the GSO runs and the plain sends order is kept.
  assert.deepEqual([...runs.flat(), ...plain, ...many.flat()].sort(Buffer.compare), [...sent].sort(Buffer.compare));
  // Only what the runs and sendmmsg took is handed back for reuse (a plain send may still hold its buffer).
  const took = [...runs.flat(), ...many.flat()];
  assert.ok(taken.length === took.length && taken.every((d, i) => d === took[i]), 'sent hook: the runs and the lone tail, in order');
});

test('without a sent hook a lone datagram goes by the owner\'s own send', async () => {
  const plain: Buffer[] = [];
  const { gso, runs, many } = recordingGso(() => true);
  const b = new DatagramBatcher(gso, null, 0, (buf) => plain.push(buf));
  const lone = randomBytes(50);
  b.push(lone);
  await tick();
  assert.deepEqual([runs.length, many.length], [0, 0]);
  assert.deepEqual(plain, [lone]);
});

test('a cleared batch sends nothing', async () => {
  const plain: Buffer[] = [];
  const { gso, runs } = recordingGso(() => true);
  const b = new DatagramBatcher(gso, null, 0, (buf) => plain.push(buf));
  b.push(randomBytes(10));
  b.push(randomBytes(10));
  b.clear();
  await tick();
  assert.equal(runs.length + plain.length, 0);
});

test('without GSO a tick of datagrams of any sizes leaves in sendmmsg batches, whole and in order',
  { skip: !peerAddon() && 'peer addon not built', timeout: 10_000 }, async () => {
  // Room for the whole burst: a default receive buffer drops some of 150 datagrams sent at once.
  const rx = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  const tx = createSocket('udp4');
  await Promise.all([new Promise<void>((r) => rx.bind(0, '127.0.0.1', r)), new Promise<void>((r) => tx.bind(0, '127.0.0.1', r))]);
  try {
    const gso = GsoSocket.for(tx)!;
    gso.maxSegment = 0; // GSO off: what the batcher does with TSTIER_UDP_GSO=off or a kernel without it
    const sent = Array.from({ length: 100 }, (_, i) => randomBytes(1 + ((i * 37) % 1400)));
    const got: Buffer[] = [];
    const all = new Promise<void>((resolve) => rx.on('message', (m) => got.push(m) === sent.length && resolve()));
    const plain: Buffer[] = [];
    const taken: Buffer[] = [];
    const b = new DatagramBatcher(gso, '127.0.0.1', rx.address().port, (buf) => plain.push(buf), undefined, (buf) => taken.push(buf));
    for (const d of sent) b.push(d);
    await tick();
    assert.equal(plain.length, 0, 'no datagram fell back to dgram');
    assert.ok(taken.length === sent.length && taken.every((d, i) => d === sent[i]), 'each datagram sendmmsg took is handed back, in order');
    await all;
    assert.deepEqual(got, sent);
  } finally {
    rx.close();
    tx.close();
  }
});

type Accepted = [link: UnderlayLink, first: Buffer, later: string[]];

/**
 * A loopback listener whose accepted links are awaited one by one, each with its first packet and
 * (until a test sets its own onPacket) the packets that followed, as text.
 */
async function listen(): Promise<{ listener: UdpListener; port: number; accepted: () => Promise<Accepted> }> {
  const ready: Accepted[] = [];
  const waiting: Array<(v: Accepted) => void> = [];
  const listener = await UdpListener.open('udp://127.0.0.1:0', { scheme: 'udp', host: '127.0.0.1', port: 0 }, (link, first) => {
    const later: string[] = [];
    link.onPacket = (p) => later.push(p.toString());
    const v: Accepted = [link, Buffer.from(first), later];
    const w = waiting.shift();
    if (w) w(v);
    else ready.push(v);
  });
  const accepted = (): Promise<Accepted> =>
    ready.length ? Promise.resolve(ready.shift()!) : new Promise((resolve) => waiting.push(resolve));
  return { listener, port: Number(listener.boundUri.split(':').pop()), accepted };
}

const datagram = (text: string): Buffer => Buffer.concat([Buffer.alloc(UDP_HEADER_LEN), Buffer.from(text)]);

/** A dialled link and the listener's end of it, over loopback. */
async function linkPair(): Promise<{ dialled: UnderlayLink; accepted: UnderlayLink; first: Buffer; listener: UdpListener }> {
  const { listener, port, accepted } = await listen();
  const dialled = await dialUdp(listener.boundUri, { scheme: 'udp', host: '127.0.0.1', port });
  dialled.send(datagram('hello'));
  const [link, first] = await accepted();
  return { dialled, accepted: link, first, listener };
}

/** Sends bursts (one tick each) of full-size, odd and short datagrams; the receiver must see all, in order. */
async function burstAcross(from: UnderlayLink, to: UnderlayLink): Promise<void> {
  const sent: Buffer[] = [];
  const got: Buffer[] = [];
  const all = new Promise<void>((resolve) => {
    to.onPacket = (pkt) => {
      got.push(Buffer.from(pkt));
      if (got.length === sent.length) resolve();
    };
  });
  for (let burst = 0; burst < 20; burst++) {
    const sizes = [...Array<number>(100).fill(1400), 1399, 1400, 64, 64, 64, 1];
    for (const n of sizes) {
      const payload = randomBytes(n);
      sent.push(payload);
      const buf = Buffer.alloc(UDP_HEADER_LEN + n);
      payload.copy(buf, UDP_HEADER_LEN);
      from.send(buf);
    }
    await tick();
  }
  await all;
  assert.equal(got.length, sent.length);
  got.forEach((g, i) => assert.ok(g.equals(sent[i]!), `datagram ${i} intact and in order`));
}

test('bursts over loopback arrive whole and in order, both directions', async (t) => {
  if (!peerAddon()) t.diagnostic('peer addon not built (or TSTIER_PEER_ADDON=off): plain dgram sends checked');
  const { dialled, accepted, first, listener } = await linkPair();
  try {
    assert.equal(first.toString(), 'hello');
    await burstAcross(dialled, accepted);
    await burstAcross(accepted, dialled);
    // Data queued in the tick of a close still leaves before the goodbye.
    const got = new Promise<string>((resolve) => { accepted.onPacket = (pkt) => resolve(pkt.toString()); });
    const closed = new Promise<string>((resolve) => { accepted.onClose = resolve; });
    dialled.send(datagram('end'));
    dialled.close();
    assert.equal(await got, 'end');
    assert.equal(await closed, 'remote said goodbye');
  } finally {
    dialled.close();
    await listener.close();
  }
});

test('two links from one address to one listener keep their datagrams apart, interleaved', async () => {
  const { listener, port, accepted } = await listen();
  const one = await dialUdp(listener.boundUri, { scheme: 'udp', host: '127.0.0.1', port });
  const two = await dialUdp(listener.boundUri, { scheme: 'udp', host: '127.0.0.1', port });
  try {
    one.send(datagram('hi'));
    const [oneEnd] = await accepted();
    two.send(datagram('hi'));
    const [twoEnd] = await accepted();
    const got: string[] = [];
    let onAll!: () => void;
    const all = new Promise<void>((resolve) => { onAll = resolve; });
    const collect = (who: string) => (pkt: Buffer): void => {
      got.push(`${who}:${pkt.toString()}`);
      if (got.length === 40) onAll();
    };
    oneEnd.onPacket = collect('one');
    twoEnd.onPacket = collect('two');
    for (let i = 0; i < 20; i++) {
      one.send(datagram(`a${i}`));
      two.send(datagram(`b${i}`));
      await tick(); // each pair its own tick: the listener sees the two links alternate
    }
    await all;
    assert.deepEqual(got.filter((g) => g.startsWith('one:')), Array.from({ length: 20 }, (_, i) => `one:a${i}`));
    assert.deepEqual(got.filter((g) => g.startsWith('two:')), Array.from({ length: 20 }, (_, i) => `two:b${i}`));
  } finally {
    one.close();
    two.close();
    await listener.close();
  }
});

test('a message of datagrams back to back (what UDP GRO delivers) splits by their headers; a bad tail is counted', async () => {
  const { listener, port, accepted } = await listen();
  const raw = createSocket('udp4');
  try {
    const header = (connId: number, len: number): Buffer => {
      const h = Buffer.alloc(UDP_HEADER_LEN);
      h.writeUInt32LE(connId, 0);
      h[4] = 3; // data
      h.writeUInt16LE(len, 6);
      return h;
    };
    const two = Buffer.concat([header(7, 3), Buffer.from('one'), header(7, 3), Buffer.from('two'), Buffer.from([1, 2, 3])]);
    await new Promise<void>((resolve) => raw.send(two, port, '127.0.0.1', () => resolve()));
    // A well-formed datagram after it, so there is an event to wait for either way.
    await new Promise<void>((resolve) => raw.send(Buffer.concat([header(8, 4), Buffer.from('last')]), port, '127.0.0.1', () => resolve()));
    const [, firstBody, later] = await accepted();
    if (listener.gro) {
      // On a GRO socket the run splits: "one" opens the link, "two" follows on it, the tail is malformed.
      assert.equal(firstBody.toString(), 'one');
      assert.deepEqual(later, ['two']);
      const [, lastBody] = await accepted();
      assert.equal(lastBody.toString(), 'last');
    } else {
      assert.equal(firstBody.toString(), 'last', 'without GRO the whole message is one malformed datagram');
    }
    assert.equal(listener.malformed, 1);
  } finally {
    raw.close();
    await listener.close();
  }
});
