/**
 * Route sync on a virtual network: RouteTable cores joined by virtual links, a virtual clock, and a
 * seeded loss rate. A failing seed prints itself as SIM_SEED=n (SIM_ROUTE_SEEDS=n sets the count of
 * random topologies, default 2000).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ROUTE_OPTIONS, RouteTable } from '../../daemon/peer/route-table.js';
import { Feature } from '../../daemon/peer/route-record.js';
import { seedsFor, sweep } from './seeds.js';

const T0 = 1_000_000;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

class World {
  now = T0;
  readonly nodes = new Map<number, RouteTable>();
  private readonly links = new Set<string>();
  constructor(private readonly lossRate = 0, private readonly rand = rng(1)) {}

  add(id: number, proxyCidrs: string[] = []): RouteTable {
    const t = new RouteTable({ peerId: id, hostname: `h${id}`, ipv4: (10 << 24) + id, prefix: 24, proxyCidrs,
      features: Feature.KcpInput }, this.now);
    this.nodes.set(id, t);
    return t;
  }

  private key(a: number, b: number): string { return a < b ? `${a}-${b}` : `${b}-${a}`; }
  up(a: number, b: number): void {
    this.links.add(this.key(a, b));
    this.nodes.get(a)!.linkUp(b, this.now);
    this.nodes.get(b)!.linkUp(a, this.now);
  }
  down(a: number, b: number): void {
    this.links.delete(this.key(a, b));
    this.nodes.get(a)?.linkDown(b, this.now);
    this.nodes.get(b)?.linkDown(a, this.now);
  }
  remove(id: number): void {
    for (const other of this.nodes.keys()) if (this.links.has(this.key(id, other))) this.down(id, other);
    this.nodes.delete(id);
  }
  linked(a: number, b: number): boolean { return this.links.has(this.key(a, b)); }

  /** Delivers queued messages until the network is quiet. */
  flush(): void {
    for (let round = 0; round < 10_000; round++) {
      let moved = false;
      for (const [id, t] of this.nodes) {
        for (let m = t.pollTransmit(); m; m = t.pollTransmit()) {
          moved = true;
          if (!this.linked(id, m.to) || this.rand() < this.lossRate) continue;
          this.nodes.get(m.to)?.input(id, m.payload, this.now);
        }
      }
      if (!moved) return;
    }
    assert.fail('route messages never quieted down');
  }

  /** Advances the clock to `until`, firing every timer on the way. */
  run(ms: number): void {
    const until = this.now + ms;
    this.flush();
    for (let guard = 0; guard < 100_000; guard++) {
      const next = Math.min(...[...this.nodes.values()].map((t) => t.pollTimeout()));
      if (next > until) break;
      this.now = Math.max(this.now, next);
      for (const t of this.nodes.values()) if (t.pollTimeout() <= this.now) t.handleTimeout(this.now);
      this.flush();
    }
    this.now = until;
  }

  /** True hop distances by BFS over the live links. */
  bfs(from: number): Map<number, number> {
    const d = new Map([[from, 0]]);
    const q = [from];
    while (q.length) {
      const u = q.shift()!;
      for (const v of this.nodes.keys()) if (!d.has(v) && this.linked(u, v)) { d.set(v, d.get(u)! + 1); q.push(v); }
    }
    return d;
  }

  /** Asserts every node's next hops walk, without loops, along shortest paths to exactly the reachable nodes. */
  assertConverged(note: string): void {
    for (const [s, table] of this.nodes) {
      const truth = this.bfs(s);
      const routed = new Set(table.routes().map((r) => r.record.peerId));
      for (const d of this.nodes.keys()) {
        if (d === s) continue;
        assert.equal(routed.has(d), truth.has(d), `${note}: node ${s} route to ${d}`);
        if (!truth.has(d)) continue;
        let at = s;
        let hops = 0;
        while (at !== d && hops <= this.nodes.size) {
          const nh = this.nodes.get(at)!.nextHop(d);
          assert.ok(nh !== undefined && this.linked(at, nh), `${note}: ${at} has no usable next hop to ${d}`);
          at = nh;
          hops++;
        }
        assert.equal(hops, truth.get(d), `${note}: path ${s}->${d} is not shortest (or loops)`);
      }
    }
  }
}

test('a line A-B-C converges: A reaches C through B, by address and by proxied CIDR', () => {
  const w = new World();
  const [a, , c] = [w.add(1), w.add(2), w.add(3, ['192.168.7.0/24', '172.16.0.0/16->10.99.0.0/16'])];
  w.up(1, 2);
  w.up(2, 3);
  w.flush();
  assert.equal(a.nextHop(3), 2);
  assert.equal(a.routes().find((r) => r.record.peerId === 3)?.cost, 2);
  assert.equal(a.lookupIpv4((10 << 24) + 3), 3);
  assert.equal(a.lookupIpv4((10 << 24) + 1), 1, 'own address maps to self');
  assert.equal(a.lookupProxy(0xc0a80742), 3); // 192.168.7.66
  assert.equal(a.lookupProxy(0x0a630001), 3, 'mapped range is what others route'); // 10.99.0.1
  assert.equal(a.lookupProxy(0xac100001), undefined, 'the real side of a mapping is not advertised');
  assert.equal(c.lookupProxy(0xc0a80701), 3, 'own CIDR maps to self');
  assert.equal(a.record(3)!.features & Feature.KcpInput, Feature.KcpInput);
  w.assertConverged('line');
});

test('B leaves: A and C lose each other at once and forget B and C after the expiry; B returns and all is back', () => {
  const w = new World();
  const a = w.add(1);
  w.add(2);
  const c = w.add(3);
  w.up(1, 2);
  w.up(2, 3);
  w.flush();
  w.remove(2);
  w.flush();
  assert.equal(a.nextHop(3), undefined);
  assert.equal(c.nextHop(1), undefined);
  assert.ok(a.record(3), 'kept while within the expiry');
  w.run(DEFAULT_ROUTE_OPTIONS.expireMs + 1);
  assert.equal(a.record(3), undefined);
  assert.equal(a.record(2), undefined);
  assert.equal(c.record(1), undefined);
  w.add(4); // B restarted: a new process has a new peer id
  w.up(1, 4);
  w.up(4, 3);
  w.flush();
  assert.equal(a.nextHop(3), 4);
  assert.equal(c.nextHop(1), 4);
  w.assertConverged('after return');
});

test('a line of eight: routes across seven hops; a cut in the middle splits it cleanly', () => {
  const w = new World();
  for (let i = 1; i <= 8; i++) w.add(i);
  for (let i = 1; i < 8; i++) w.up(i, i + 1);
  w.flush();
  assert.equal(w.nodes.get(1)!.routes().find((r) => r.record.peerId === 8)?.cost, 7);
  w.assertConverged('line of 8');
  w.down(4, 5);
  w.flush();
  w.assertConverged('cut line');
});

test('random topologies with flapping links and 20% message loss converge without loops (seeded)', (t) => {
  sweep(t, 'peer routes', seedsFor('SIM_ROUTE_SEEDS', 2000), (seed) => {
    const rand = rng(seed);
    const w = new World(0.2, rng(seed * 7919));
    const n = 3 + Math.floor(rand() * 8);
    for (let i = 1; i <= n; i++) w.add(i * 101);
    const ids = [...w.nodes.keys()];
    for (let step = 0; step < 30; step++) {
      const a = ids[Math.floor(rand() * n)]!;
      const b = ids[Math.floor(rand() * n)]!;
      if (a === b) continue;
      if (w.linked(a, b)) w.down(a, b); else w.up(a, b);
      if (rand() < 0.3) w.run(Math.floor(rand() * 3000));
    }
    // Loss can hide news until the next anti-entropy round; a few rounds repair everything.
    w.run(DEFAULT_ROUTE_OPTIONS.syncMs * 4);
    w.assertConverged('random topology');
    return null;
  });
});

test('garbage RouteSync payloads never throw and are counted', () => {
  const w = new World();
  const a = w.add(1);
  w.add(2);
  w.up(1, 2);
  w.flush();
  const rand = rng(99);
  let malformed = 0;
  for (let i = 0; i < 3000; i++) {
    const g = Buffer.alloc(Math.floor(rand() * 80));
    for (let k = 0; k < g.length; k++) g[k] = Math.floor(rand() * 256);
    if (g.length > 3 && i % 2) { g[0] = 1; g[1] = 1; g[2] = 0; }
    if (!a.input(2, g, w.now)) malformed++;
  }
  assert.equal(a.malformed, malformed);
  assert.ok(malformed > 2900);
  assert.equal(a.nextHop(2), 2, 'still routes');
});
