/**
 * Two smux sessions over an in-memory byte pipe that splits the stream at random points (seeded), many
 * concurrent streams both ways, every byte checked by sha256. Optionally with snappy framing in the
 * pipe, as kcptun runs it. The pipe honours wantsInput(), like an adapter reading KCP would. Besides
 * the heavy cases, a sweep of small seeded runs draws the version, frame size, buffers, stream counts
 * and snappy per seed (SIM_SMUX_SEEDS=n sets the count, default 1500; SIM_SEED=n replays one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import { TstierError } from '../../daemon/errors.js';
import type { SmuxConfig } from '../../daemon/transport/smux/config.js';
import { SmuxSession } from '../../daemon/transport/smux/session.js';
import { SnappyFrameReader, SnappyFrameWriter } from '../../daemon/transport/snappy/framing.js';
import { seedsFor, sweep } from './seeds.js';
import { Rng } from './world.js';

/** One direction of the underlying byte stream. */
class Pipe {
  private readonly queue: Uint8Array[] = [];
  private readonly writer: SnappyFrameWriter | null;
  private readonly reader: SnappyFrameReader | null;
  bytesOnWire = 0;
  /** Times delivery stopped because the receiver's bucket was full (back-pressure seen). */
  pauses = 0;

  constructor(private readonly rng: Rng, snappy: boolean) {
    this.writer = snappy ? new SnappyFrameWriter() : null;
    this.reader = snappy ? new SnappyFrameReader() : null;
  }

  /** Takes what the sender's pollTransmit produced (a fresh buffer each time). */
  send(bytes: Uint8Array): void {
    const wire = this.writer ? this.writer.write(bytes) : bytes;
    this.bytesOnWire += wire.length;
    this.queue.push(wire);
  }

  /** Delivers randomly sized pieces while the receiver wants input. Returns whether anything moved. */
  deliver(to: SmuxSession, budget: number): boolean {
    let moved = false;
    while (this.queue.length > 0 && budget > 0 && to.wantsInput()) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, this.rng.range(1, this.rng.chance(0.3) ? 16 : 20000));
      const piece = head.subarray(0, n);
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      budget -= n;
      moved = true;
      if (!this.reader) {
        to.input(piece, 0);
        continue;
      }
      const chunks = this.reader.push(piece);
      assert.ok(!(chunks instanceof TstierError), String(chunks));
      for (const c of chunks) to.input(c, 0);
    }
    if (this.queue.length > 0 && !to.wantsInput()) this.pauses++;
    return moved;
  }
}

interface StreamApp {
  sid: number;
  out: Uint8Array;
  sent: number;
  finQueued: boolean;
  inHash: Hash;
  received: number;
  ended: boolean;
  closed: boolean;
}

/** One side's application: sends its payload on every stream, hashes what arrives, closes when both ways are done. */
class Side {
  readonly streams = new Map<number, StreamApp>();
  /** sha256 and length of what this side sent, by sid, for the other side to compare. */
  readonly sentDigest = new Map<number, { sha: string; length: number }>();
  readonly done = new Map<number, { sha: string; length: number }>();
  /** write() calls that took less than offered (send buffer or v2 window full). */
  shortWrites = 0;

  constructor(readonly s: SmuxSession, private readonly rng: Rng, private readonly maxPayload: number) {}

  addStream(sid: number): void {
    const out = this.rng.chance(0.5) ? this.rng.bytes(this.rng.int(this.maxPayload)) : compressible(this.rng, this.rng.int(this.maxPayload));
    this.sentDigest.set(sid, { sha: sha256(out), length: out.length });
    this.streams.set(sid, { sid, out, sent: 0, finQueued: false, inHash: createHash('sha256'), received: 0, ended: false, closed: false });
  }

  open(): void {
    const sid = this.s.open();
    assert.ok(typeof sid === 'number');
    this.addStream(sid);
  }

  /** Handles events, writes and reads a random amount. Returns whether anything happened. */
  step(): boolean {
    let progress = false;
    for (let e = this.s.pollEvent(); e; e = this.s.pollEvent()) {
      progress = true;
      if (e.type === 'closed') assert.fail(`session closed: ${e.error?.message}`);
      if (e.type === 'accept') this.addStream(e.sid);
    }
    for (const st of this.streams.values()) {
      if (st.closed) continue;
      if (st.sent < st.out.length) {
        const want = Math.min(st.out.length - st.sent, this.rng.range(1, 30000));
        // Fresh copy: the session keeps a view of what it accepts.
        const n = this.s.write(st.sid, st.out.slice(st.sent, st.sent + want));
        st.sent += n;
        if (n < want) this.shortWrites++;
        if (n > 0) progress = true;
      } else if (!st.finQueued) {
        this.s.closeWrite(st.sid);
        st.finQueued = true;
        progress = true;
      }
      // Read a random number of pieces, so some streams lag and the bucket fills up.
      for (let k = this.rng.chance(0.2) ? this.rng.int(4) : 0; k > 0; k--) {
        const b = this.s.read(st.sid, this.rng.range(1, 40000));
        if (!b) break;
        st.inHash.update(b);
        st.received += b.length;
        progress = true;
      }
      if (!st.ended && this.s.readEnded(st.sid)) {
        st.ended = true;
        this.done.set(st.sid, { sha: st.inHash.digest('hex'), length: st.received });
        progress = true;
      }
      if (st.ended && st.finQueued) {
        this.s.close(st.sid);
        st.closed = true;
      }
    }
    return progress;
  }

  /** Sends what the session has, in randomly sized transmit buffers. */
  transmit(pipe: Pipe): boolean {
    let moved = false;
    for (let i = 0; i < 8 && this.s.wantsTransmit(); i++) {
      const buf = new Uint8Array(this.rng.range(16, 70000));
      const n = this.s.pollTransmit(buf);
      if (n === 0) break;
      pipe.send(buf.subarray(0, n));
      moved = true;
    }
    return moved;
  }
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function compressible(rng: Rng, n: number): Uint8Array {
  const words = ['GET /', 'HTTP/1.1', '\r\n', 'Host: ', 'example', '.com', ' 200 OK', 'aaaaaaaa'];
  const out = new Uint8Array(n);
  for (let i = 0; i < n;) {
    const w = rng.pick(words);
    for (let k = 0; k < w.length && i < n; k++) out[i++] = w.charCodeAt(k);
  }
  return out;
}

interface RunOptions {
  seed: number;
  config: Partial<SmuxConfig>;
  clientStreams: number;
  serverStreams: number;
  maxPayload: number;
  snappy: boolean;
}

interface RunResult {
  bytesOnWire: number;
  payload: number;
  pauses: number;
  shortWrites: number;
}

function run(o: RunOptions): RunResult {
  const rng = new Rng(o.seed);
  const a = new Side(new SmuxSession('client', o.config, 0), rng.fork(), o.maxPayload);
  const b = new Side(new SmuxSession('server', o.config, 0), rng.fork(), o.maxPayload);
  const ab = new Pipe(rng.fork(), o.snappy);
  const ba = new Pipe(rng.fork(), o.snappy);
  const pipeRng = rng.fork();
  for (let i = 0; i < o.clientStreams; i++) a.open();
  for (let i = 0; i < o.serverStreams; i++) b.open();
  const total = o.clientStreams + o.serverStreams;
  let steps = 0;
  let idle = 0;
  for (; steps < 200000; steps++) {
    let progress = a.step();
    progress = b.step() || progress;
    progress = a.transmit(ab) || progress;
    progress = b.transmit(ba) || progress;
    progress = ab.deliver(b.s, pipeRng.range(1, 60000)) || progress;
    progress = ba.deliver(a.s, pipeRng.range(1, 60000)) || progress;
    if (a.done.size === total && b.done.size === total && a.s.streamCount === 0 && b.s.streamCount === 0) break;
    // A step may legitimately do nothing (every reader drew zero reads); many in a row is a deadlock.
    idle = progress ? 0 : idle + 1;
    assert.ok(idle < 100, `seed ${o.seed}: stalled at step ${steps} (a done ${a.done.size}, b done ${b.done.size})`);
  }
  assert.ok(steps < 200000, `seed ${o.seed}: did not finish`);
  let payload = 0;
  for (const [from, to] of [[a, b], [b, a]] as const) {
    assert.equal(to.done.size, total);
    for (const [sid, got] of to.done) {
      assert.deepEqual(got, from.sentDigest.get(sid), `seed ${o.seed}: stream ${sid}`);
      payload += got.length;
    }
  }
  return {
    bytesOnWire: ab.bytesOnWire + ba.bytesOnWire,
    payload,
    pauses: ab.pauses + ba.pauses,
    shortWrites: a.shortWrites + b.shortWrites,
  };
}

test('smux v1: 60 concurrent streams both ways over a randomly split pipe, sha256 per stream', () => {
  for (const seed of [1, 2]) {
    const r = run({
      seed, clientStreams: 45, serverStreams: 15, maxPayload: 120000, snappy: false,
      // A small bucket and send buffer, so back-pressure kicks in constantly.
      config: { version: 1, maxReceiveBuffer: 200000, maxStreamBuffer: 65536, streamSendBuffer: 20000, maxFrameSize: 4096 },
    });
    assert.ok(r.pauses > 0, 'the receive bucket filled up at least once');
    assert.ok(r.shortWrites > 0, 'send buffers filled up at least once');
  }
});

test('smux v2: 52 concurrent streams, small windows, sha256 per stream', () => {
  for (const seed of [3, 4]) {
    const r = run({
      // Payloads up to 400 KB, beyond the 256 KiB initial window.
      seed, clientStreams: 40, serverStreams: 12, maxPayload: 400000, snappy: false,
      config: { version: 2, maxReceiveBuffer: 400000, maxStreamBuffer: 16384, streamSendBuffer: 300000, maxFrameSize: 32768 },
    });
    // The send buffer exceeds the initial window, so short writes here come from the v2 windows.
    assert.ok(r.shortWrites > 0, 'windows stalled writers at least once');
  }
});

test('smux v1 and v2 over snappy framing, as kcptun composes them', () => {
  for (const version of [1, 2] as const) {
    const r = run({
      seed: 10 + version, clientStreams: 50, serverStreams: 0, maxPayload: 80000, snappy: true,
      config: { version, maxFrameSize: 8192 },
    });
    // Half the payloads are text-like, so the wire must be noticeably smaller than the payload.
    assert.ok(r.bytesOnWire < r.payload, `wire ${r.bytesOnWire} vs payload ${r.payload}`);
  }
});

test('smux: a seeded sweep of versions, frame sizes, buffers and stream counts, sha256 per stream', (t) => {
  sweep(t, 'smux', seedsFor('SIM_SMUX_SEEDS', 1500), (seed) => {
    const r = new Rng(seed ^ 0x5a5a);
    const maxReceiveBuffer = r.range(16_384, 300_000);
    run({
      seed, clientStreams: r.range(1, 6), serverStreams: r.int(4), maxPayload: r.range(1, 40_000), snappy: r.chance(0.3),
      config: {
        version: r.chance(0.5) ? 1 : 2, maxFrameSize: r.pick([512, 4096, 8192, 32768, 65535]), maxReceiveBuffer,
        maxStreamBuffer: r.range(1024, maxReceiveBuffer), streamSendBuffer: r.range(1000, 100_000),
      },
    });
    return null;
  });
});
