import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newDatagramCrypt } from '../../../daemon/transport/crypt/datagram.js';
import { FecDecoder } from '../../../daemon/transport/fec/decoder.js';
import { FecEncoder } from '../../../daemon/transport/fec/encoder.js';
import { galMul, mulAddInto } from '../../../daemon/transport/fec/galois.js';
import { paws } from '../../../daemon/transport/fec/header.js';
import { invertMatrix, ReedSolomon } from '../../../daemon/transport/fec/reedsolomon.js';
import { Rng } from '../../sim/world.js';

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const H = 20; // crypto header room, as for aes

/** A KCP-like datagram: H bytes of room, 8 FEC bytes, `kcpLen` random bytes. */
function kcpDatagram(kcpLen: number, rng: Rng): { buf: Uint8Array; kcp: Uint8Array } {
  const buf = new Uint8Array(H + 8 + kcpLen);
  buf.set(rng.bytes(kcpLen), H + 8);
  return { buf, kcp: buf.slice(H + 8) };
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

describe('Reed-Solomon coding matrix (docs/kcptun-wire.md §3 parity rows)', () => {
  const cases: [number, number, string[]][] = [
    [10, 3, ['8196afb8d2c4fee80302', '9681b8afc4d2e8fe0203', 'bfd6620a066fdfb70504']],
    [3, 2, ['010101', '0f0806']],
    [2, 1, ['0302']],
    [1, 1, ['01']],
  ];
  for (const [ds, ps, rows] of cases) {
    it(`(${ds},${ps})`, () => {
      const rs = new ReedSolomon(ds, ps);
      for (let r = 0; r < ds; r++) assert.deepEqual([...rs.matrix[r]], [...Array(ds).keys()].map((c) => (c === r ? 1 : 0)));
      assert.deepEqual(rs.matrix.slice(ds).map(toHex), rows);
    });
  }
  it('(10,3): every loss of up to 3 shards is rebuilt, and every decode matrix stays cached (none recomputed)', () => {
    const rs = new ReedSolomon(10, 3);
    const len = 24;
    const data = Array.from({ length: 10 }, (_, i) => Uint8Array.from({ length: len }, (_, j) => (i * 37 + j * 11) & 0xff));
    const parity = Array.from({ length: 3 }, (_, k) => {
      const p = new Uint8Array(len);
      for (let i = 0; i < 10; i++) mulAddInto(rs.parityCoefficient(k, i), data[i]!, 0, p, 0, len);
      return p;
    });
    const all = [...data, ...parity];
    const patterns = new Set<string>();
    for (let lost = 1; lost < 1 << 13; lost++) {
      let n = 0;
      for (let b = lost; b; b &= b - 1) n++;
      if (n > 3) continue;
      const shards = all.map((buf, i) => (lost & (1 << i) ? null : { buf, off: 0, len }));
      const rebuilt = new Map<number, Uint8Array>();
      assert.ok(rs.reconstructData(shards, (m) => rebuilt.set(m, new Uint8Array(len)).get(m)!));
      for (const [m, got] of rebuilt) assert.deepEqual(got, data[m], `lost ${lost.toString(2)}: shard ${m}`);
      const present = shards.flatMap((sh, i) => (sh ? [i] : [])).slice(0, 10);
      if (rebuilt.size > 0) patterns.add(present.join(','));
    }
    assert.ok(patterns.size > 256, `${patterns.size} patterns`);
    assert.equal(rs.cachedInverses, patterns.size, 'the cache never restarted');
  });

  it('invertMatrix: A·A⁻¹ = I for seeded random matrices (pivots that need row swaps included); null when singular', () => {
    const rng = new Rng(15);
    let inverted = 0;
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + (trial % 12);
      const a = Array.from({ length: n }, () => rng.bytes(n));
      if (trial % 3 === 0) a[0]![0] = 0; // the first pivot must come from another row
      const inv = invertMatrix(a);
      if (inv === null) continue;
      inverted++;
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < n; c++) {
          let dot = 0;
          for (let k = 0; k < n; k++) dot ^= galMul(a[r]![k]!, inv[k]![c]!);
          assert.equal(dot, r === c ? 1 : 0, `trial ${trial}, n ${n}: (A·A⁻¹)[${r}][${c}]`);
        }
      }
    }
    assert.ok(inverted > 150, `${inverted} of 200 random matrices were invertible`);
    assert.equal(invertMatrix([Uint8Array.of(1, 2), Uint8Array.of(2, 4)]), null, 'row 2 = 2·row 1');
    assert.equal(invertMatrix([Uint8Array.of(0, 0), Uint8Array.of(5, 7)]), null, 'a zero row');
  });

  it('rejects impossible shapes', () => {
    assert.throws(() => new ReedSolomon(0, 3), RangeError);
    assert.throws(() => new ReedSolomon(200, 57), RangeError);
  });
});

interface Sent {
  buf: Uint8Array;
  len: number;
}

/** Runs `datagrams` KCP datagrams of random sizes through an encoder; returns everything sent and the payloads. */
function encodeStream(enc: FecEncoder, count: number, rng: Rng, now = 0): { sent: Sent[]; payloads: Uint8Array[] } {
  const sent: Sent[] = [];
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const { buf, kcp } = kcpDatagram(rng.range(24, 1323), rng);
    payloads.push(kcp);
    const parity = enc.encode(buf, buf.length, now);
    sent.push({ buf, len: buf.length });
    for (const p of parity) sent.push({ buf: p.slice(), len: p.length });
  }
  return { sent, payloads };
}

/** Feeds datagrams to a decoder; returns the KCP payloads it yields (regular and recovered). */
function decodeAll(dec: FecDecoder, datagrams: Sent[]): { regular: string[]; recovered: string[] } {
  const regular: string[] = [];
  const recovered: string[] = [];
  for (const d of datagrams) {
    const kind = dec.input(d.buf, H, d.len);
    if (kind === 'data') regular.push(toHex(d.buf.subarray(H + 8, d.len)));
    for (let r = dec.pollRecovered(); r !== undefined; r = dec.pollRecovered()) recovered.push(toHex(r));
  }
  return { regular, recovered };
}

/** Every payload was delivered, and nothing delivered that was not sent (short messages on failure). */
function assertSameSet(got: string[], sent: Uint8Array[], what = ''): void {
  const want = new Set(sent.map(toHex));
  const have = new Set(got);
  const invented = [...have].filter((x) => !want.has(x)).length;
  const missing = [...want].filter((x) => !have.has(x)).length;
  assert.deepEqual({ invented, missing }, { invented: 0, missing: 0 }, what);
}

describe('FecEncoder', () => {
  it('writes headers in place and emits (3,2) parity of length maxSize matching the spec rows', () => {
    const enc = new FecEncoder({ dataShards: 3, parityShards: 2, headerOffset: H, maxDatagram: 1500 });
    const rng = new Rng(1);
    const shards: Uint8Array[] = [];
    let parity: readonly Uint8Array[] = [];
    const lens = [100, 300, 57];
    for (let i = 0; i < 3; i++) {
      const { buf } = kcpDatagram(lens[i], rng);
      parity = enc.encode(buf, buf.length, 0);
      assert.equal(u32(buf, H), i);
      assert.equal(u16(buf, H + 4), 0xf1);
      assert.equal(u16(buf, H + 6), lens[i] + 2);
      assert.equal(parity.length, i < 2 ? 0 : 2);
      shards.push(buf);
    }
    const maxSize = H + 8 + 300;
    const coef = [[1, 1, 1], [0x0f, 0x08, 0x06]];
    parity.forEach((p, k) => {
      assert.equal(p.length, maxSize);
      assert.equal(u32(p, H), 3 + k);
      assert.equal(u16(p, H + 4), 0xf2);
      for (let j = H + 6; j < maxSize; j++) {
        let expect = 0;
        for (let i = 0; i < 3; i++) expect ^= galMul(coef[k][i], j < shards[i].length ? shards[i][j] : 0);
        assert.equal(p[j], expect, `parity ${k} byte ${j}`);
      }
    });
    // The next group starts at seqid 5 with clean parity buffers even though the caller sealed (scribbled on) them.
    for (const p of parity) p.fill(0xee);
    const { buf } = kcpDatagram(40, rng);
    enc.encode(buf, buf.length, 0);
    assert.equal(u32(buf, H), 5);
    const { buf: b2 } = kcpDatagram(40, rng);
    enc.encode(b2, b2.length, 0);
    const { buf: b3 } = kcpDatagram(40, rng);
    const p2 = enc.encode(b3, b3.length, 0);
    for (let j = H + 6; j < p2[0].length; j++) assert.equal(p2[0][j], buf[j] ^ b2[j] ^ b3[j]);
  });

  it('parity datagrams have the tailroom an AEAD seals into, in place (aes-128-gcm + FEC)', () => {
    const tx = newDatagramCrypt('aes-128-gcm', new Uint8Array(32).fill(1));
    const rx = newDatagramCrypt('aes-128-gcm', new Uint8Array(32).fill(1));
    const h = tx.headerSize;
    const enc = new FecEncoder({ dataShards: 2, parityShards: 1, headerOffset: h, maxDatagram: 1350, tailroom: tx.tailroom });
    const rng = new Rng(4);
    const shard = (n: number): Uint8Array => {
      const b = new Uint8Array(h + 8 + n + tx.tailroom);
      b.set(rng.bytes(n), h + 8);
      return b;
    };
    const a = shard(100);
    const b = shard(1350 - h - 8);
    enc.encode(a, a.length - tx.tailroom, 0);
    const [p] = enc.encode(b, b.length - tx.tailroom, 0);
    const plain = p.slice();
    const wire = tx.seal(new Uint8Array(p.buffer, p.byteOffset, p.length + tx.tailroom), p.length);
    assert.equal(wire, 1350 + 16);
    const received = new Uint8Array(p.buffer, p.byteOffset, wire).slice();
    assert.equal(rx.open(received, wire), h);
    assert.deepEqual(received.subarray(h, wire - 16), plain.subarray(h));
  });

  it('wraps seqids to 0 at paws, keeping groups aligned', () => {
    const enc = new FecEncoder({ dataShards: 10, parityShards: 3, headerOffset: H, maxDatagram: 1500 });
    assert.equal(paws(13), 4294967287);
    enc.setNextSeqid(paws(13) - 13);
    const { sent } = encodeStream(enc, 20, new Rng(2));
    const seqids = sent.map((d) => u32(d.buf, H));
    assert.deepEqual(seqids.slice(0, 13), [...Array(13).keys()].map((i) => paws(13) - 13 + i));
    assert.deepEqual(seqids.slice(13), [...Array(13).keys()]);
  });

  it('[cur] parity skip after a gap consumes the seqids but sends no parity (option)', () => {
    const enc = new FecEncoder({ dataShards: 2, parityShards: 1, headerOffset: H, maxDatagram: 1500, skipParityAfterGapMs: 500 });
    const rng = new Rng(3);
    const a = kcpDatagram(30, rng).buf;
    const b = kcpDatagram(30, rng).buf;
    assert.equal(enc.encode(a, a.length, 1000).length, 0);
    assert.equal(enc.encode(b, b.length, 1600).length, 0, 'gap of 600 ms: no parity');
    const c = kcpDatagram(30, rng).buf;
    enc.encode(c, c.length, 1610);
    assert.equal(u32(c, H), 3, 'the skipped parity seqid is consumed');
    const d = kcpDatagram(30, rng).buf;
    assert.equal(enc.encode(d, d.length, 1620).length, 1);
  });
});

describe('FecDecoder', () => {
  const shapes: [number, number][] = [[10, 3], [3, 2], [5, 1], [1, 1]];
  for (const [ds, ps] of shapes) {
    it(`(${ds},${ps}): every payload arrives, none invented, with up to ps losses per group, 200 seeds`, () => {
      let totalRecovered = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const rng = new Rng(seed * 7919 + ds);
        const enc = new FecEncoder({ dataShards: ds, parityShards: ps, headerOffset: H, maxDatagram: 1500 });
        const { sent, payloads } = encodeStream(enc, ds * 6, rng);
        // Lose up to ps random shards per group, then reorder mildly (swap disjoint neighbour pairs).
        const n = ds + ps;
        const kept: Sent[] = [];
        for (let g = 0; g < sent.length; g += n) {
          const group = sent.slice(g, g + n);
          const losses = rng.int(ps + 1);
          for (let l = 0; l < losses; l++) group.splice(rng.int(group.length), 1);
          kept.push(...group);
        }
        for (let i = 0; i + 1 < kept.length; i++) {
          if (rng.chance(0.2)) {
            [kept[i], kept[i + 1]] = [kept[i + 1], kept[i]];
            i++; // disjoint pairs: each datagram moves by one place at most
          }
        }
        const dec = new FecDecoder({ dataShards: ds, parityShards: ps });
        const { regular, recovered } = decodeAll(dec, kept);
        // A shard that arrives after its group was rebuilt is delivered twice (KCP drops the repeat), as in kcp-go.
        assertSameSet([...regular, ...recovered], payloads, `seed ${seed}`);
        assert.equal(dec.counters.recovered, recovered.length);
        assert.equal(dec.counters.errs, 0);
        totalRecovered += recovered.length;
      }
      assert.ok(totalRecovered > 200, `losses must have been repaired (${totalRecovered})`);
    });
  }

  it('more than ps losses: no recovery, nothing invented, short shards counted on eviction', () => {
    const enc = new FecEncoder({ dataShards: 4, parityShards: 1, headerOffset: H, maxDatagram: 1500 });
    const { sent } = encodeStream(enc, 40, new Rng(5));
    const kept = sent.filter((_, i) => i >= 5 || (i !== 0 && i !== 1)); // group 0 loses two data shards
    const dec = new FecDecoder({ dataShards: 4, parityShards: 1 });
    const { recovered } = decodeAll(dec, kept);
    assert.equal(recovered.length, 0);
    assert.equal(dec.counters.shortShards, 2, 'the two data shards of the undecodable group');
    assert.equal(dec.counters.parityShards, 10);
  });

  it('autotune: configured (10,3), the peer sends (3,2); learns it and recovers afterwards', () => {
    const enc = new FecEncoder({ dataShards: 3, parityShards: 2, headerOffset: H, maxDatagram: 1500 });
    const { sent, payloads } = encodeStream(enc, 60, new Rng(6));
    const dec = new FecDecoder({ dataShards: 10, parityShards: 3 });
    // Lossless for 10 groups so the pattern is learnt, then lose data shard 1 of every group.
    const kept = sent.filter((d, i) => i < 50 || u32(d.buf, H) % 5 !== 1);
    const { regular, recovered } = decodeAll(dec, kept);
    assert.equal(dec.dataShards, 3);
    assert.equal(dec.parityShards, 2);
    assert.equal(recovered.length, 10);
    assertSameSet([...regular, ...recovered], payloads);
  });

  it('a decoder without FEC configured starts at (1,1) and learns a (10,3) sender', () => {
    const enc = new FecEncoder({ dataShards: 10, parityShards: 3, headerOffset: H, maxDatagram: 1500 });
    const { sent, payloads } = encodeStream(enc, 100, new Rng(7));
    const dec = new FecDecoder();
    const kept = sent.filter((d, i) => i < 39 || u32(d.buf, H) % 13 !== 4);
    const { regular, recovered } = decodeAll(dec, kept);
    assert.equal(dec.dataShards, 10);
    assert.equal(dec.parityShards, 3);
    assert.ok(recovered.length >= 6);
    assertSameSet([...regular, ...recovered], payloads);
  });

  it('recovers across the seqid wrap at paws', () => {
    const enc = new FecEncoder({ dataShards: 10, parityShards: 3, headerOffset: H, maxDatagram: 1500 });
    enc.setNextSeqid(paws(13) - 26);
    const { sent, payloads } = encodeStream(enc, 40, new Rng(8));
    const kept = sent.filter((d) => u32(d.buf, H) % 13 !== 2); // lose one data shard in every group
    const dec = new FecDecoder({ dataShards: 10, parityShards: 3 });
    const { regular, recovered } = decodeAll(dec, kept);
    assert.equal(recovered.length, 4);
    assertSameSet([...regular, ...recovered], payloads);
  });

  it('classifies bare KCP, OOB and short FEC datagrams', () => {
    const dec = new FecDecoder({ dataShards: 10, parityShards: 3 });
    const kcp = new Uint8Array(H + 24);
    kcp[H + 4] = 81;
    assert.equal(dec.input(kcp, H, kcp.length), 'bare');
    assert.equal(dec.input(kcp, H, H + 3), 'bare');
    const oob = new Uint8Array(H + 30);
    oob[H + 4] = 0xf3;
    assert.equal(dec.input(oob, H, oob.length), 'oob');
    const short = new Uint8Array(H + 7);
    short[H + 4] = 0xf1;
    assert.equal(dec.input(short, H, short.length), 'malformed');
    short[H + 4] = 0xf2;
    assert.equal(dec.input(short, H, short.length), 'malformed');
  });

  it('garbage shards never throw; a rebuilt shard with an impossible size counts as an error', () => {
    const rng = new Rng(9);
    const dec = new FecDecoder({ dataShards: 3, parityShards: 2 });
    for (let i = 0; i < 5000; i++) {
      const n = rng.int(100);
      const b = rng.bytes(n);
      if (n >= 6 && rng.chance(0.8)) {
        b[4] = rng.chance(0.5) ? 0xf1 : 0xf2;
        b[5] = 0;
        b[3] = 0; // keep seqids in a narrow range so groups fill up
        b[2] = 0;
      }
      dec.input(b, 0, n);
      while (dec.pollRecovered() !== undefined);
    }
    // A group with data shard 0 lost and a forged parity: the rebuilt size field is 0xffff.
    const d2 = new FecDecoder({ dataShards: 2, parityShards: 1 });
    const data1 = Uint8Array.of(1 + 90, 0, 0, 0, 0xf1, 0, 4, 0, 0xaa, 0xbb);
    const parity = Uint8Array.of(2 + 90, 0, 0, 0, 0xf2, 0, 0xff, 0xff, 0, 0);
    d2.input(data1, 0, data1.length);
    d2.input(parity, 0, parity.length);
    assert.equal(d2.pollRecovered(), undefined);
    assert.equal(d2.counters.errs, 1);
  });
});
