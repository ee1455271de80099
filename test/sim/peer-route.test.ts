/**
 * Route sync on a virtual network, on the peer protocol (EasyTier's OSPF-like sync,
 * daemon/peer/easytier/node-core.ts): EasyTier member nodes joined by virtual links (et-sim-node.ts)
 * on a virtual clock, links cut and mended, a seeded loss rate. Converged means: every node routes to
 * exactly the nodes reachable over live links, and its next hops walk, without loops, along shortest
 * paths. A failing seed prints itself as SIM_SEED=n (SIM_ROUTE_SEEDS=n sets the count of random
 * topologies, default 20).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, World, type LinkParams } from './world.js';
import { EtSimNode, peerIdOf } from './et-sim-node.js';
import { seedsFor, sweep } from './seeds.js';

const T0 = 1_000_000;
/** Long enough for a cut link to miss its pings (about 7 s) and for route sync to spread the news. */
const SETTLE_MS = 120_000;

class Net {
  readonly world: World;
  readonly nodes: EtSimNode[];
  readonly #live = new Set<string>();

  constructor(seed: number, n: number, readonly edges: [number, number][], readonly params: LinkParams = {}) {
    this.world = new World({ seed, start: T0 });
    this.nodes = Array.from({ length: n }, (_, id) => new EtSimNode(id, edges.filter(([a]) => a === id).map(([, b]) => b), T0));
    for (const node of this.nodes) this.world.addNode(node);
    for (const [a, b] of edges) this.mend(a, b);
  }

  #key(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`;
  }

  cut(a: number, b: number): void {
    this.world.linkBoth(a, b, { loss: 1 });
    this.#live.delete(this.#key(a, b));
  }

  mend(a: number, b: number): void {
    this.world.linkBoth(a, b, this.params);
    this.#live.add(this.#key(a, b));
  }

  linked(a: number, b: number): boolean {
    return this.#live.has(this.#key(a, b));
  }

  /** True hop distances from `from` over the live links. */
  bfs(from: number): Map<number, number> {
    const d = new Map([[from, 0]]);
    const q = [from];
    for (let i = 0; i < q.length; i++) {
      const u = q[i]!;
      for (let v = 0; v < this.nodes.length; v++) if (!d.has(v) && this.linked(u, v)) (d.set(v, d.get(u)! + 1), q.push(v));
    }
    return d;
  }

  /** Why the network is not converged, or null when it is. */
  problem(): string | null {
    for (let s = 0; s < this.nodes.length; s++) {
      const truth = this.bfs(s);
      for (let d = 0; d < this.nodes.length; d++) {
        if (d === s) continue;
        const route = this.nodes[s]!.core.routes.route(peerIdOf(d));
        if ((route !== undefined) !== truth.has(d)) return `node ${s} ${route ? 'routes' : 'has no route'} to ${d}`;
        if (!truth.has(d)) continue;
        let at = s;
        let hops = 0;
        while (at !== d && hops <= this.nodes.length) {
          const nh = this.nodes[at]!.core.routes.route(peerIdOf(d))?.nextHop;
          const next = nh === undefined ? -1 : nh - peerIdOf(0);
          if (!this.linked(at, next)) return `${at} has no usable next hop to ${d}`;
          at = next;
          hops++;
        }
        if (hops !== truth.get(d)) return `path ${s}->${d} takes ${hops} hops, not ${truth.get(d)} (or loops)`;
      }
    }
    return null;
  }

  /** Runs until converged (bounded); the problem left if it never was. */
  settle(): string | null {
    this.world.run({ until: () => this.problem() === null, maxTime: this.world.now + SETTLE_MS });
    return this.problem();
  }
}

const line = (n: number): [number, number][] => Array.from({ length: n - 1 }, (_, i) => [i, i + 1]);

test('a line of eight: routes across seven hops; a cut in the middle splits it cleanly; mended, it joins again', () => {
  const net = new Net(1, 8, line(8));
  assert.equal(net.settle(), null, 'line of 8');
  assert.equal(net.nodes[0]!.core.routes.route(peerIdOf(7))?.cost, 7);
  net.cut(3, 4);
  assert.equal(net.settle(), null, 'cut line');
  assert.equal(net.nodes[0]!.core.routes.route(peerIdOf(7)), undefined, 'the far half is gone');
  assert.equal(net.nodes[0]!.core.routes.route(peerIdOf(3))?.cost, 3, 'the near half stays');
  net.mend(3, 4);
  assert.equal(net.settle(), null, 'mended line');
});

test('B leaves: A and C lose each other and B; B returns and all is back', () => {
  const net = new Net(2, 3, line(3));
  assert.equal(net.settle(), null);
  net.cut(0, 1);
  net.cut(1, 2);
  assert.equal(net.settle(), null, 'B gone');
  assert.equal(net.nodes[0]!.core.routes.routes().length, 0, 'A routes to nobody');
  net.mend(0, 1);
  net.mend(1, 2);
  assert.equal(net.settle(), null, 'B back');
  assert.equal(net.nodes[0]!.core.routes.route(peerIdOf(2))?.nextHop, peerIdOf(1));
});

test('random topologies with flapping links and 20% datagram loss converge without loops (seeded)', (t) => {
  sweep(t, 'peer routes', seedsFor('SIM_ROUTE_SEEDS', 20), (seed) => {
    const rng = new Rng(seed);
    const n = 3 + rng.int(6);
    const edges: [number, number][] = [];
    for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) if (rng.chance(0.4)) edges.push([a, b]);
    const net = new Net(seed, n, edges, { loss: 0.2, delayMs: 5, jitterMs: 10 });
    for (let step = 0; step < 10 && edges.length > 0; step++) {
      const [a, b] = edges[rng.int(edges.length)]!;
      if (net.linked(a, b)) net.cut(a, b);
      else net.mend(a, b);
      net.world.run({ until: () => false, maxTime: net.world.now + rng.int(3000) });
    }
    const left = net.settle();
    return left && `${n} nodes, edges ${JSON.stringify(edges)}: ${left}`;
  });
});
