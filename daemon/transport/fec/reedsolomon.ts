/**
 * klauspost/reedsolomon's default systematic code (what kcp-go uses): the
 * (ds+ps)×ds Vandermonde matrix V[r][c] = r^c, multiplied by the inverse of its
 * top square so the first ds rows are the identity. Parity row i is row ds+i.
 * The result is unique, so any correct field arithmetic gives kcp-go's bytes.
 */
import { galExp, galInverse, galMul, mulAddInto, mulRow } from './galois.js';

type Matrix = Uint8Array[];

/**
 * Gauss-Jordan inverse of a square matrix; null when singular. It works on one flat n×2n array
 * [A | I] with a multiplication-table row per pivot: the array-of-rows version (destructuring row
 * swaps, two galMul calls per cell) was deoptimised by V8 about four times per process, each time a
 * new loss pattern needed a decode matrix.
 */
export function invertMatrix(m: Matrix): Matrix | null {
  const n = m.length;
  const w2 = 2 * n;
  const w = new Uint8Array(n * w2);
  for (let r = 0; r < n; r++) {
    w.set(m[r]!.subarray(0, n), r * w2);
    w[r * w2 + n + r] = 1;
  }
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && w[pivot * w2 + col] === 0) pivot++;
    if (pivot === n) return null;
    const p = col * w2;
    if (pivot !== col) {
      const q = pivot * w2;
      for (let j = 0; j < w2; j++) {
        const t = w[p + j]!;
        w[p + j] = w[q + j]!;
        w[q + j] = t;
      }
    }
    const scale = mulRow(galInverse(w[p + col]!));
    for (let j = 0; j < w2; j++) w[p + j] = scale[w[p + j]!]!;
    for (let r = 0; r < n; r++) {
      const o = r * w2;
      const f = w[o + col]!;
      if (r === col || f === 0) continue;
      const times = mulRow(f);
      for (let j = 0; j < w2; j++) w[o + j]! ^= times[w[p + j]!]!;
    }
  }
  return Array.from({ length: n }, (_, r) => w.slice(r * w2 + n, r * w2 + w2));
}

function multiply(a: Matrix, b: Matrix): Matrix {
  const cols = b[0].length;
  return a.map((row) => {
    const out = new Uint8Array(cols);
    for (let k = 0; k < row.length; k++) {
      if (row[k] === 0) continue;
      for (let j = 0; j < cols; j++) out[j] ^= galMul(row[k], b[k][j]);
    }
    return out;
  });
}

/** A shard: bytes [off, off + len) of buf; bytes past len count as zeros (kcp-go's padding). */
export interface ShardRef {
  buf: Uint8Array;
  off: number;
  len: number;
}

/**
 * Decode matrices kept per codec (one per pattern of present shards); beyond this the cache restarts.
 * At least 256, and as many as fit in 1 MiB: 10/3 has ~290 patterns with at most 3 data shards lost,
 * and a 256-entry cache cleared itself again and again at 20 % loss, so the inversion (and its
 * recompilation by V8) ran on for the whole transfer.
 */
const MIN_CACHED_INVERSES = 256;
const CACHED_INVERSE_BYTES = 1 << 20;

export class ReedSolomon {
  /** The full (ds+ps)×ds coding matrix; rows ds.. are the parity rows. */
  readonly matrix: Matrix;
  /**
   * Inverses by the indices of the shards used ("0,1,2,4,..."): under steady loss the same few patterns
   * recur, and inverting a ds×ds matrix per rebuilt group showed in the profile.
   */
  private readonly inverses = new Map<string, Matrix>();
  private readonly maxInverses: number;

  constructor(
    readonly dataShards: number,
    readonly parityShards: number,
  ) {
    if (!Number.isInteger(dataShards) || !Number.isInteger(parityShards) || dataShards <= 0 || parityShards <= 0 || dataShards + parityShards > 256) {
      throw new RangeError(`invalid Reed-Solomon shape (${dataShards}, ${parityShards})`);
    }
    const total = dataShards + parityShards;
    const vandermonde = Array.from({ length: total }, (_, r) => Uint8Array.from({ length: dataShards }, (_, c) => galExp(r, c)));
    const topInverse = invertMatrix(vandermonde.slice(0, dataShards));
    if (topInverse === null) throw new RangeError('singular Vandermonde top'); // cannot happen: rows are distinct
    this.matrix = multiply(vandermonde, topInverse);
    this.maxInverses = Math.max(MIN_CACHED_INVERSES, Math.floor(CACHED_INVERSE_BYTES / (dataShards * dataShards)));
  }

  /** Decode matrices cached now (for tests). */
  get cachedInverses(): number {
    return this.inverses.size;
  }

  /** Coefficient of data shard `dataIndex` in parity shard `parityIndex`. */
  parityCoefficient(parityIndex: number, dataIndex: number): number {
    return this.matrix[this.dataShards + parityIndex][dataIndex];
  }

  /**
   * Rebuilds the missing data shards of a group. `shards[i]` is shard i (data then parity)
   * or null when lost; at least dataShards must be present. `out` receives the rebuilt data
   * shards at the missing indices, each written over [0, len) (len = the longest present
   * shard). Returns false when too few shards are present.
   */
  reconstructData(shards: readonly (ShardRef | null)[], out: (missingIndex: number) => Uint8Array): boolean {
    const ds = this.dataShards;
    const present: number[] = [];
    for (let i = 0; i < shards.length && present.length < ds; i++) if (shards[i] !== null) present.push(i);
    if (present.length < ds) return false;
    const missing: number[] = [];
    for (let i = 0; i < ds; i++) if (shards[i] === null) missing.push(i);
    if (missing.length === 0) return true;
    let len = 0;
    for (const s of shards) if (s !== null && s.len > len) len = s.len;
    const decode = this.decodeMatrix(present);
    if (decode === null) return false; // cannot happen: any ds rows of this matrix are independent
    for (const m of missing) {
      const dst = out(m);
      dst.fill(0, 0, len);
      const coefficients = decode[m];
      present.forEach((p, j) => {
        const s = shards[p] as ShardRef;
        mulAddInto(coefficients[j], s.buf, s.off, dst, 0, s.len);
      });
    }
    return true;
  }

  private decodeMatrix(present: number[]): Matrix | null {
    const key = present.join(',');
    let m = this.inverses.get(key);
    if (m === undefined) {
      const inverse = invertMatrix(present.map((i) => this.matrix[i]));
      if (inverse === null) return null;
      if (this.inverses.size >= this.maxInverses) this.inverses.clear();
      this.inverses.set(key, (m = inverse));
    }
    return m;
  }
}
