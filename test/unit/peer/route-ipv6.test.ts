/** The optional IPv6 tail of route records, and routing by virtual IPv6 address. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpv6Address } from '../../../daemon/packet/address.js';
import { decodeRecord, decodeSync, encodeRecord, encodeSync, Feature,
  type RouteRecord } from '../../../daemon/peer/route-record.js';
import { RouteTable } from '../../../daemon/peer/route-table.js';

const v6 = (text: string): Uint8Array => parseIpv6Address(text)!;

const base = (peerId: number): RouteRecord => ({
  peerId, version: 3, timestamp: 1.7e12, hostname: 'h', ipv4: 0x0a000001, prefix: 24, proxyCidrs: [],
  features: Feature.KcpInput, neighbours: [{ peerId: 9, cost: 1 }],
});

test('a record with an IPv6 address survives encode/decode; one without is byte-identical to the old format', () => {
  const with6: RouteRecord = { ...base(1), ipv6: { address: v6('fd00:1::5'), prefix: 48 } };
  const enc = encodeRecord(with6);
  const without = encodeRecord(base(1));
  assert.equal(enc.length, without.length + 17);
  assert.deepEqual(enc.subarray(0, without.length), without, 'the IPv6 tail is appended, nothing before it moves');
  const back = decodeRecord(enc)!;
  assert.deepEqual(back.ipv6, { address: v6('fd00:1::5'), prefix: 48 });
  assert.deepEqual(back, with6);
  const old = decodeRecord(without)!;
  assert.equal(old.ipv6, undefined);
  assert.deepEqual(old, base(1));
});

test('IPv6 tails: a bad prefix, a cut tail and an extra byte are refused, not thrown', () => {
  const enc = encodeRecord({ ...base(2), ipv6: { address: v6('fd00::2'), prefix: 64 } });
  const badPrefix = Buffer.from(enc);
  badPrefix[badPrefix.length - 1] = 129;
  assert.equal(decodeRecord(badPrefix), null);
  for (let cut = 1; cut < 17; cut++) assert.equal(decodeRecord(enc.subarray(0, enc.length - cut)), null, `cut ${cut}`);
  assert.equal(decodeRecord(enc.subarray(0, enc.length - 17))!.ipv6, undefined, 'without the whole tail: an old-format record');
  assert.equal(decodeRecord(Buffer.concat([enc, Buffer.from([0])])), null);
  const [m] = encodeSync([enc, encodeRecord(base(3))]);
  assert.deepEqual(decodeSync(m!)!.map((r) => r.ipv6?.prefix), [64, undefined]);
});

test('lookupIpv6: exact addresses of reachable nodes, our own included; gone with the route', () => {
  const t0 = 1_000_000;
  const mk = (id: number, addr?: string): RouteTable => new RouteTable({ peerId: id, hostname: `h${id}`, ipv4: (10 << 24) + id,
    prefix: 24, proxyCidrs: [], features: 0, ...(addr ? { ipv6: { address: v6(addr), prefix: 64 } } : {}) }, t0);
  const a = mk(1, 'fd00::1');
  const b = mk(2, 'fd00::2');
  const c = mk(3);
  const pump = (): void => {
    for (let moved = true; moved;) {
      moved = false;
      for (const [from, t] of [[1, a], [2, b], [3, c]] as const) {
        for (let m = t.pollTransmit(); m; m = t.pollTransmit()) {
          moved = true;
          ({ 1: a, 2: b, 3: c } as Record<number, RouteTable>)[m.to]!.input(from, m.payload, t0);
        }
      }
    }
  };
  a.linkUp(2, t0); b.linkUp(1, t0); b.linkUp(3, t0); c.linkUp(2, t0);
  pump();
  // The address sits inside a larger packet, as in an IPv6 header (destination at byte 24).
  const pkt = new Uint8Array(40);
  pkt.set(v6('fd00::2'), 24);
  assert.equal(c.lookupIpv6(pkt, 24), 2, 'a relayed node learns the address');
  assert.equal(a.lookupIpv6(pkt, 24), 2);
  assert.equal(a.lookupIpv6(v6('fd00::1')), 1, 'own address maps to self');
  assert.equal(c.lookupIpv6(v6('fd00::1')), 1, 'two hops away');
  assert.equal(a.lookupIpv6(v6('fd00::3')), undefined, 'a node without IPv6 owns no IPv6 address');
  assert.equal(a.lookupIpv6(v6('fd00::2').subarray(0, 15)), undefined, 'a short buffer is no address');
  a.linkDown(2, t0); b.linkDown(1, t0);
  pump();
  assert.equal(a.lookupIpv6(v6('fd00::2')), undefined, 'unreachable: no longer routed');
  assert.equal(c.lookupIpv6(v6('fd00::2')), 2);
});
