/**
 * Deterministic network simulator: seeded randomness, a virtual clock, an event queue and lossy
 * datagram links between sans-IO endpoints. Same seed, same run, bit for bit.
 *
 * API
 *   new Rng(seed)                       sfc32 PRNG: next() u32, float() [0,1), int(n) [0,n), range(lo,hi),
 *                                       chance(p), bytes(n), pick(array), fork() (an independent stream)
 *   new World({ seed, start? })         world.now (virtual ms, integer; starts at `start`, default 0), world.rng
 *   world.addNode(endpoint): number     returns the node id (0, 1, ...)
 *   world.link(from, to, params)        a one-way link; world.linkBoth(a, b, params) makes two
 *   world.schedule(at, fn)              runs fn(now) at virtual time `at` (test actions: app writes, faults)
 *   world.run({ until, maxTime, maxSteps? }) → { done, now, steps }
 *                                       advances until `until()` holds (done=true) or the virtual clock would
 *                                       pass maxTime / steps pass maxSteps (done=false: a hang, report the seed)
 *   world.stats(from, to)               LinkStats of a link
 *
 * Endpoints implement SimEndpoint, the five sans-IO verbs minus events:
 *   input(datagram, now, from)          a datagram arrived (a fresh copy the endpoint may keep)
 *   pollTransmit(now)                   next datagram to send, or null. Return a Uint8Array to send on the
 *                                       node's only link, or { data, to } to pick the link. The world copies
 *                                       the bytes at once: the endpoint may reuse the buffer afterwards.
 *   pollTimeout()                       absolute virtual time of the next wanted handleTimeout (Infinity: none)
 *   handleTimeout(now)                  called once the clock reaches pollTimeout()
 * After every input, timeout and scheduled action the world drains pollTransmit() of every node, so an
 * endpoint that produced data in reaction to anything gets it on the wire at that same instant.
 *
 * Links (LinkParams, all optional): loss (0..1 drop probability), delayMs + jitterMs (uniform extra
 * delay per datagram; jitter reorders), duplicate (probability of a second copy with its own delay),
 * corrupt (probability of flipping 1..3 random bits), rateBytesPerMs + queueBytes (serialisation at a
 * fixed rate behind a drop-tail queue), mtu (larger datagrams are dropped).
 */

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 expands the seed so neighbouring seeds give unrelated streams.
    let s = seed >>> 0;
    const mix = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.next();
  }

  /** sfc32: a uniform u32. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  float(): number {
    return this.next() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let i = 0;
    if (LITTLE_ENDIAN) {
      // Whole words at once (payload generation was a tenth of a KCP sim's time); same bytes as below.
      const words = new Uint32Array(out.buffer, 0, n >>> 2);
      for (let w = 0; w < words.length; w++) words[w] = this.next();
      i = words.length * 4;
    }
    for (; i + 4 <= n; i += 4) {
      const v = this.next();
      out[i] = v;
      out[i + 1] = v >>> 8;
      out[i + 2] = v >>> 16;
      out[i + 3] = v >>> 24;
    }
    for (; i < n; i++) out[i] = this.next();
    return out;
  }

  /** A new generator seeded from this one: lets parts of a test draw without disturbing each other. */
  fork(): Rng {
    return new Rng(this.next());
  }
}

export interface SimDatagram {
  data: Uint8Array;
  to: number;
}

export interface SimEndpoint {
  input(datagram: Uint8Array, now: number, from: number): void;
  pollTransmit(now: number): Uint8Array | SimDatagram | null;
  pollTimeout(): number;
  handleTimeout(now: number): void;
}

export interface LinkParams {
  loss?: number;
  delayMs?: number;
  jitterMs?: number;
  duplicate?: number;
  corrupt?: number;
  rateBytesPerMs?: number;
  queueBytes?: number;
  mtu?: number;
}

export interface LinkStats {
  sent: number;
  delivered: number;
  lost: number;
  queueDrops: number;
  oversize: number;
  duplicated: number;
  corrupted: number;
  bytes: number;
  /** The most bytes ever waiting in a rate-limited link's queue. */
  peakQueueBytes: number;
}

interface Link {
  params: Required<LinkParams>;
  stats: LinkStats;
  /** When the serialiser is free again (rate-limited links). */
  freeAt: number;
}

interface SimEvent {
  at: number;
  seq: number;
  /** A delivery: destination and source node; or an action when fn is set. */
  to: number;
  from: number;
  data: Uint8Array | null;
  fn: ((now: number) => void) | null;
}

/** Binary min-heap on (at, seq): equal times keep scheduling order, so runs are reproducible. */
class EventQueue {
  private heap: SimEvent[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  push(e: SimEvent): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): SimEvent {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(x: SimEvent, y: SimEvent): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

const NO_LIMIT: Required<LinkParams> = {
  loss: 0, delayMs: 0, jitterMs: 0, duplicate: 0, corrupt: 0, rateBytesPerMs: 0, queueBytes: Infinity, mtu: Infinity,
};

export class World {
  now: number;
  readonly rng: Rng;
  private readonly nodes: SimEndpoint[] = [];
  private readonly links = new Map<number, Link>(); // key: from * 65536 + to
  /** Per node: its only link's destination, once looked up; cleared when links change. */
  private readonly defaultRoute = new Map<number, number>();
  private readonly events = new EventQueue();
  private seq = 0;

  constructor(opts: { seed: number; start?: number }) {
    this.rng = new Rng(opts.seed);
    this.now = opts.start ?? 0;
  }

  addNode(endpoint: SimEndpoint): number {
    this.nodes.push(endpoint);
    return this.nodes.length - 1;
  }

  link(from: number, to: number, params: LinkParams = {}): void {
    this.defaultRoute.clear();
    this.links.set(from * 65536 + to, {
      params: { ...NO_LIMIT, ...params },
      stats: { sent: 0, delivered: 0, lost: 0, queueDrops: 0, oversize: 0, duplicated: 0, corrupted: 0, bytes: 0, peakQueueBytes: 0 },
      freeAt: this.now,
    });
  }

  linkBoth(a: number, b: number, params: LinkParams = {}): void {
    this.link(a, b, params);
    this.link(b, a, params);
  }

  stats(from: number, to: number): LinkStats {
    const l = this.links.get(from * 65536 + to);
    if (l === undefined) throw new Error(`no link ${from} -> ${to}`);
    return l.stats;
  }

  schedule(at: number, fn: (now: number) => void): void {
    this.events.push({ at: Math.max(at, this.now), seq: this.seq++, to: -1, from: -1, data: null, fn });
  }

  run(opts: { until: () => boolean; maxTime: number; maxSteps?: number }): { done: boolean; now: number; steps: number } {
    const maxSteps = opts.maxSteps ?? 10_000_000;
    let steps = 0;
    this.drainAll();
    for (;;) {
      if (opts.until()) return { done: true, now: this.now, steps };
      if (++steps > maxSteps) return { done: false, now: this.now, steps };
      let next = this.events.size > 0 ? this.events.peek()!.at : Infinity;
      for (const n of this.nodes) next = Math.min(next, n.pollTimeout());
      if (next > opts.maxTime) return { done: false, now: this.now, steps };
      if (next > this.now) this.now = next;
      const now = this.now;
      while (this.events.size > 0 && this.events.peek()!.at <= now) {
        const e = this.events.pop();
        if (e.fn !== null) e.fn(now);
        else this.nodes[e.to]!.input(e.data!, now, e.from);
        this.drainAll();
      }
      for (const n of this.nodes) {
        if (n.pollTimeout() <= now) {
          n.handleTimeout(now);
          this.drainAll();
        }
      }
    }
  }

  private drainAll(): void {
    for (let id = 0; id < this.nodes.length; id++) {
      const node = this.nodes[id]!;
      for (;;) {
        const out = node.pollTransmit(this.now);
        if (out === null) break;
        if (out instanceof Uint8Array) this.send(id, this.onlyLinkFrom(id), out);
        else this.send(id, out.to, out.data);
      }
    }
  }

  private onlyLinkFrom(from: number): number {
    const cached = this.defaultRoute.get(from);
    if (cached !== undefined) return cached;
    let to = -1;
    for (const key of this.links.keys()) {
      if (Math.floor(key / 65536) !== from) continue;
      if (to !== -1) throw new Error(`node ${from} has several links: return { data, to } from pollTransmit`);
      to = key % 65536;
    }
    if (to === -1) throw new Error(`node ${from} has no link`);
    this.defaultRoute.set(from, to);
    return to;
  }

  private send(from: number, to: number, data: Uint8Array): void {
    const link = this.links.get(from * 65536 + to);
    if (link === undefined) throw new Error(`no link ${from} -> ${to}`);
    const p = link.params;
    const st = link.stats;
    st.sent++;
    st.bytes += data.length;
    if (data.length > p.mtu) {
      st.oversize++;
      return;
    }
    if (this.rng.chance(p.loss)) {
      st.lost++;
      return;
    }
    let departAt = this.now;
    if (p.rateBytesPerMs > 0) {
      const start = Math.max(this.now, link.freeAt);
      if ((start - this.now) * p.rateBytesPerMs > p.queueBytes) {
        st.queueDrops++;
        return;
      }
      const queued = (start - this.now) * p.rateBytesPerMs + data.length;
      if (queued > st.peakQueueBytes) st.peakQueueBytes = queued;
      link.freeAt = start + data.length / p.rateBytesPerMs;
      departAt = link.freeAt;
    }
    const copies = this.rng.chance(p.duplicate) ? 2 : 1;
    if (copies === 2) st.duplicated++;
    for (let c = 0; c < copies; c++) {
      const bytes = data.slice();
      if (this.rng.chance(p.corrupt) && bytes.length > 0) {
        st.corrupted++;
        const flips = this.rng.range(1, 3);
        for (let f = 0; f < flips; f++) {
          const i = this.rng.int(bytes.length);
          bytes[i] = bytes[i]! ^ (1 << this.rng.int(8));
        }
      }
      const at = Math.ceil(departAt + p.delayMs + this.rng.float() * p.jitterMs);
      st.delivered++;
      this.events.push({ at, seq: this.seq++, to, from, data: bytes, fn: null });
    }
  }
}
