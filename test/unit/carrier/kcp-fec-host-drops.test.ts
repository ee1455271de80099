/**
 * Adaptive FEC and the host's own drops: datagrams this node's socket dropped unread crossed the path
 * fine, so the loss the decoder reports leaves them out, and a clean path whose receiver overflows its
 * socket gets no parity; the same holes with no socket drops to explain them are path loss and get
 * parity. The drops come as they do on a busy host: its event loop stalls, the socket keeps what fits
 * and drops the rest, and the report after the stall is taken before the holes show. Virtual clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FEC_DATA_PREFIX, FecDecoder, FecEncoder, KIND_FEC_PARITY, parityFor } from '../../../daemon/carrier/kcp/path-fec.js';
import { Rng } from '../../sim/world.js';

/** Datagrams a ms sent, and read when the receiver runs; its socket's room, in datagrams. */
const PER_MS = 2;
const READ_PER_MS = 3;
const SOCKET_ROOM = 400;

/**
 * 20 s of traffic; the receiver stalls 250-400 ms about every 2 s, its socket keeps SOCKET_ROOM and
 * drops the rest, and the backlog then takes a few hundred ms (several reports) to read, so a drop's
 * hole shows reports after the drop was counted. `told`: the decoder is given the socket's drop count.
 */
function run(told: boolean, seed: number, legacy = false): { loss: number; parity: number; dropped: number; sent: number; reported: number } {
  const enc = new FecEncoder();
  const dec = new FecDecoder();
  const rng = new Rng(seed);
  let socketDrops = 0;
  let reported = 0;
  const hostDrops = told ? (): number => socketDrops : undefined;
  const rebuilt = (): void => {};
  const socket: Uint8Array[] = [];
  let stallUntil = -1;
  let now = 0;
  const arrive = (d: Uint8Array): void => {
    if (socket.length < SOCKET_ROOM) socket.push(d.slice());
    else socketDrops++;
  };
  for (; now < 20_000; now++) {
    for (let i = 0; i < PER_MS; i++) {
      const d = new Uint8Array(FEC_DATA_PREFIX + 200);
      d[FEC_DATA_PREFIX] = 0;
      arrive(enc.data(d, 200, 0, now, arrive));
    }
    if (enc.deadline() <= now) enc.handleTimeout(now, arrive);
    if (now < stallUntil) continue;
    if (rng.chance(1 / 2000)) stallUntil = now + 250 + rng.int(151);
    for (const d of socket.splice(0, READ_PER_MS)) {
      if (d[0] === KIND_FEC_PARITY) dec.parity(d.subarray(1), rebuilt);
      else dec.data(d.subarray(1), rebuilt);
      const report = dec.takeReport(now, hostDrops); // after each datagram, as the carrier does
      // `legacy`: the report an older peer sends, without the host-drops field.
      if (!report) continue;
      const body = report.subarray(1, legacy ? 9 : undefined);
      enc.lossReport(body);
      reported += enc.hostDropsIn(body);
    }
  }
  return { loss: enc.loss, parity: enc.stats.parity, dropped: socketDrops, sent: enc.stats.data + enc.stats.parity, reported };
}

test('socket drops the host counted are not path loss: no parity for them; the same holes unexplained get parity', () => {
  for (const seed of [1, 2, 3, 4]) {
    const host = run(true, seed);
    const path = run(false, seed);
    const share = host.dropped / host.sent;
    assert.ok(share > 0.01, `seed ${seed}: the stalls dropped ${host.dropped} of ${host.sent}`);
    assert.equal(parityFor(host.loss), 0, `seed ${seed}: host drops read as loss ${host.loss}`);
    assert.ok(host.parity < host.sent / 200, `seed ${seed}: ${host.parity} parity shards for host drops`);
    assert.ok(path.parity > path.sent / 50, `seed ${seed}: ${path.parity} parity shards for ${share} loss`);
  }
});

test('the report carries the host drops to the sender (its congestion signal); an older peer\'s report without them still sets the loss', () => {
  for (const seed of [1, 2]) {
    const r = run(true, seed);
    // Drops after the last report wait for the next one; none is told twice.
    assert.ok(r.reported > 0.9 * r.dropped && r.reported <= r.dropped, `${r.reported} of ${r.dropped} host drops reached the sender`);
    assert.equal(run(false, seed).reported, 0, 'drops the decoder was not given were reported');
    const old = run(true, seed, true);
    assert.equal(old.reported, 0);
    assert.equal(old.loss, r.loss);
  }
});

/** A report's body (after the kind byte): seq, received, host drops, each u32 LE. */
function body(seq: number, received: number, drops: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, seq, true);
  v.setUint32(4, received, true);
  v.setUint32(8, drops, true);
  return b;
}

test('a report that a newer one overtook (reordered on the path) does not make the next count its drops again', () => {
  const enc = new FecEncoder();
  assert.equal(enc.hostDropsIn(body(100, 90, 10)), 0, 'the first count is a baseline');
  assert.equal(enc.hostDropsIn(body(300, 280, 40)), 30);
  assert.equal(enc.hostDropsIn(body(200, 185, 25)), 0, 'the overtaken report');
  // Had the overtaken count (25) been kept as the last, this would be 30: 15 drops counted twice.
  assert.equal(enc.hostDropsIn(body(400, 370, 55)), 15);
});

test('a peer whose decoder is new (it forgot the path while this side kept its own) counts from zero: its drops still reach the sender', () => {
  const enc = new FecEncoder();
  enc.hostDropsIn(body(100, 90, 10));
  assert.equal(enc.hostDropsIn(body(300, 280, 40)), 30);
  // The seq goes on (it is this encoder's), the peer's counts restart.
  assert.equal(enc.hostDropsIn(body(400, 60, 7)), 7, 'the new decoder\'s first drops');
  assert.equal(enc.hostDropsIn(body(500, 150, 12)), 5);
});
