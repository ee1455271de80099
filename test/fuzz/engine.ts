/**
 * The fuzzing engine every parser harness shares: a seeded stream of inputs (random bytes, and valid
 * inputs mutated a few times over) fed to one target, with each escaped exception judged against
 * what the parser documents.
 *
 * A target's run() returns normally for any input the parser handled: a value, an error result, or
 * a rejection the target itself caught because the module documents it (e.g. TstierError from a
 * config parser). Anything else that escapes run() is a crash: a TypeError or RangeError from an
 * out-of-bounds read, a failed invariant the target checks, an unexpected throw. Inputs come from
 * Rng(seed ^ hash(target name)) in order, so (seed, target, index) names one input; the crash report
 * carries the input's hex too, which is what replays it where the corpus itself holds random bytes
 * (sealed packets: session keys and nonces are fresh per process).
 */
import { Rng } from '../sim/world.js';

export interface FuzzTarget {
  /** Short, unique; names the target on the command line (bench/fuzz.ts --target). */
  name: string;
  /** Valid inputs, built with the module's own encoders, for the mutator to start from. */
  corpus(rng: Rng): Uint8Array[];
  /** Largest random (non-mutated) input to try. */
  maxLength: number;
  /** Parses one input; throws only when the parser misbehaved (see the file comment). */
  run(input: Uint8Array): void;
}

export interface FuzzCrash {
  target: string;
  seed: number;
  index: number;
  error: string;
  hex: string;
}

export interface FuzzResult {
  target: string;
  inputs: number;
  crashes: FuzzCrash[];
  ms: number;
}

/** A u32 from a name, so every target draws its own stream from one seed. */
function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Values that sit on the edges of length and count fields. */
const EDGE_U8 = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff];
const EDGE_U32 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/** Produces the target's inputs in order: ~20 % random bytes, the rest mutated corpus entries. */
export class InputSource {
  private readonly rng: Rng;
  private readonly corpus: Uint8Array[];
  private readonly scratch: Uint8Array;

  constructor(private readonly target: FuzzTarget, seed: number) {
    this.rng = new Rng((seed ^ hashName(target.name)) >>> 0);
    this.corpus = target.corpus(this.rng.fork());
    if (this.corpus.length === 0) throw new Error(`fuzz target ${target.name}: empty corpus`);
    const longest = Math.max(target.maxLength, ...this.corpus.map((c) => c.length));
    this.scratch = new Uint8Array(longest * 2 + 64);
  }

  /** The next input: a fresh buffer the target may keep or modify. */
  next(): Uint8Array {
    const r = this.rng;
    if (r.chance(0.2)) return r.bytes(r.chance(0.5) ? r.int(48) : r.int(this.target.maxLength + 1));
    const base = r.pick(this.corpus);
    let buf = this.scratch;
    buf.set(base);
    let len = base.length;
    for (let n = 1 + r.int(r.chance(0.5) ? 2 : 8); n > 0; n--) len = this.mutate(buf, len);
    buf = buf.slice(0, len);
    return buf;
  }

  /** One mutation of buf[0, len) in place; returns the new length (never above scratch). */
  private mutate(b: Uint8Array, len: number): number {
    const r = this.rng;
    const cap = b.length;
    const at = len > 0 ? r.int(len) : 0;
    switch (r.int(9)) {
      case 0: // flip a bit
        if (len > 0) b[at] = b[at]! ^ (1 << r.int(8));
        return len;
      case 1: // a random byte
        if (len > 0) b[at] = r.int(256);
        return len;
      case 2: // an edge byte
        if (len > 0) b[at] = r.pick(EDGE_U8);
        return len;
      case 3: { // an edge u16/u32 in either byte order, or a nearby length
        const v = r.chance(0.3) ? (len + r.range(-4, 4)) >>> 0 : r.pick(EDGE_U32);
        const width = r.chance(0.5) ? 2 : 4;
        const le = r.chance(0.5);
        for (let i = 0; i < width && at + i < len; i++) b[at + i] = (le ? v >>> (8 * i) : v >>> (8 * (width - 1 - i))) & 0xff;
        return len;
      }
      case 4: // truncate
        return r.int(len + 1);
      case 5: { // append random bytes
        const n = Math.min(r.range(1, 64), cap - len);
        b.set(r.bytes(n), len);
        return len + n;
      }
      case 6: { // delete a slice
        const n = Math.min(r.range(1, 16), len - at);
        b.copyWithin(at, at + n, len);
        return len - n;
      }
      case 7: { // duplicate a slice in place of what follows it
        const n = Math.min(r.range(1, 32), len - at, cap - len);
        if (n <= 0) return len;
        b.copyWithin(at + n, at, len);
        return len + n;
      }
      default: { // splice in part of another corpus entry
        const other = r.pick(this.corpus);
        if (other.length === 0) return len;
        const from = r.int(other.length);
        const n = Math.min(r.range(1, 64), other.length - from, cap - at);
        b.set(other.subarray(from, from + n), at);
        return Math.max(len, at + n);
      }
    }
  }
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export interface FuzzHooks {
  /** Called ahead of each run (the worker records the input there, so a hang can be reported). */
  before?: (input: Uint8Array, index: number) => void;
  /** Called at once for each crash, so a long run shows it before it ends. */
  onCrash?: (c: FuzzCrash) => void;
}

/** Runs `count` inputs through one target. Stops after `maxCrashes` crashes. */
export function fuzzTarget(target: FuzzTarget, count: number, seed: number, hooks: FuzzHooks = {}, maxCrashes = 5): FuzzResult {
  const before = hooks.before ?? ((): void => {});
  const source = new InputSource(target, seed);
  const crashes: FuzzCrash[] = [];
  const started = performance.now();
  let i = 0;
  for (; i < count && crashes.length < maxCrashes; i++) {
    const input = source.next();
    const copy = input.slice(); // the target may modify its input
    before(input, i);
    try {
      target.run(input);
    } catch (e) {
      const error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack?.split('\n').slice(1, 4).join('\n')}` : String(e);
      const crash = { target: target.name, seed, index: i, error, hex: toHex(copy) };
      crashes.push(crash);
      hooks.onCrash?.(crash);
    }
  }
  return { target: target.name, inputs: i, crashes, ms: performance.now() - started };
}

/** One line that says how to replay a crash, then the error and the input. */
export function formatCrash(c: FuzzCrash): string {
  return `FUZZ_SEED=${c.seed} target=${c.target} input #${c.index}: ${c.error}\n  input hex: ${c.hex}`;
}
