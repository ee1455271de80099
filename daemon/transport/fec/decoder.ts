/**
 * Sans-IO FEC decoder (kcp-go's fecDecoder, receive side). For each datagram
 * (after the crypto layer) input() says what it is:
 *   'data'    FEC data shard: feed its KCP bytes, [off + 8, end), to KCP as regular input now;
 *   'parity'  parity shard: nothing for KCP;
 *   'bare'    no FEC header (u16 at 4 is not a FEC flag): all of [off, end) is KCP;
 *   'oob'     [cur] kcp-go out-of-band datagram, which kcptun never sends: drop;
 *   'malformed' FEC flag but shorter than a FEC header: drop (kcp-go counts InErrs).
 * Shards are kept per group; once a group has ds of its ds+ps shards, the missing data
 * shards are rebuilt and their KCP bytes queued for pollRecovered(), to be fed to KCP as
 * NON-regular input (no window or RTT update). The peer's (ds, ps) are learnt from the
 * flag pattern (autotune), so a decoder built without a shape, (1,1), still decodes.
 */
import { readU32Le } from '../../packet/bytes.js';
import { AutoTune } from './autotune.js';
import { FEC_HEADER_SIZE, FEC_SHARD_OFFSET, FLAG_DATA, FLAG_OOB, FLAG_PARITY, paws, readU16 } from './header.js';
import { ReedSolomon, type ShardRef } from './reedsolomon.js';

export type FecInputKind = 'data' | 'parity' | 'bare' | 'oob' | 'malformed';

/** kcp-go's SNMP names: FECParityShards, FECErrs, FECRecovered, FECShortShards. */
export interface FecDecoderCounters {
  /** Parity shards received. */
  parityShards: number;
  /** Rebuilt shards whose size field was impossible (dropped). */
  errs: number;
  /** Rebuilt data shards handed out. */
  recovered: number;
  /** Data shards that sat in a group evicted before it could be decoded. */
  shortShards: number;
}

/** kcp-go's receive buffer: no datagram (so no shard) is longer. */
const MAX_SHARD = 1500;
/** Groups whose first seqid is more than this many groups behind the newest seqid are dropped. */
const WINDOW_GROUPS = 3;

interface Group {
  firstSeq: number;
  /** Stored shards by index within the group; null = not received. */
  shards: (ShardRef | null)[];
  count: number;
  dataCount: number;
  /** Decoded (or complete): later shards of it are ignored. */
  done: boolean;
}

export class FecDecoder {
  readonly counters: FecDecoderCounters = { parityShards: 0, errs: 0, recovered: 0, shortShards: 0 };
  private codec: ReedSolomon;
  private shardsPerGroup: number;
  private wrap: number;
  private readonly tune = new AutoTune();
  private readonly groups = new Map<number, Group>();
  private newest = -1;
  private readonly pool: Uint8Array[] = [];
  private readonly recovered: Uint8Array[] = [];
  private readonly recoveredBuffers: Uint8Array[] = [];
  private recoveredRead = 0;

  /** Without a shape the decoder starts at (1,1) and learns the peer's from its traffic. */
  constructor(shape?: { dataShards: number; parityShards: number }) {
    this.codec = new ReedSolomon(shape?.dataShards ?? 1, shape?.parityShards ?? 1);
    this.shardsPerGroup = this.codec.dataShards + this.codec.parityShards;
    this.wrap = paws(this.shardsPerGroup);
  }

  get dataShards(): number {
    return this.codec.dataShards;
  }

  get parityShards(): number {
    return this.codec.parityShards;
  }

  /** Classifies and stores the datagram payload buf[off, end); see the file comment. Never throws. */
  input(buf: Uint8Array, off: number, end: number): FecInputKind {
    this.releaseRecovered();
    const n = end - off;
    if (n < FEC_SHARD_OFFSET) return 'bare';
    const flag = readU16(buf, off + 4);
    if (flag !== FLAG_DATA && flag !== FLAG_PARITY) return flag === FLAG_OOB ? 'oob' : 'bare';
    if (n < FEC_HEADER_SIZE) return 'malformed';
    const isData = flag === FLAG_DATA;
    const kind = isData ? 'data' : 'parity';
    if (!isData) this.counters.parityShards++;

    const seqid = readU32Le(buf, off);
    this.tune.sample(isData, seqid);
    if ((seqid % this.shardsPerGroup < this.codec.dataShards) !== isData) {
      // Out of step with our (ds, ps): learn the peer's, and keep this shard out of FEC meanwhile.
      this.retune();
      return kind;
    }
    if (seqid >= this.wrap || n - FEC_SHARD_OFFSET > MAX_SHARD) return kind;
    this.store(buf, off + FEC_SHARD_OFFSET, end, seqid, isData);
    return kind;
  }

  /** The next rebuilt KCP payload, or undefined. Views stay valid until the next input(). */
  pollRecovered(): Uint8Array | undefined {
    return this.recoveredRead < this.recovered.length ? this.recovered[this.recoveredRead++] : undefined;
  }

  private store(buf: Uint8Array, shardOff: number, end: number, seqid: number, isData: boolean): void {
    const n = this.shardsPerGroup;
    if (this.newest < 0 || this.ahead(seqid, this.newest)) {
      this.newest = seqid;
      this.evictOld();
    } else if (this.age(seqid) > WINDOW_GROUPS * n) {
      return;
    }
    const firstSeq = seqid - (seqid % n);
    let group = this.groups.get(firstSeq);
    if (group === undefined) {
      group = { firstSeq, shards: new Array<ShardRef | null>(n).fill(null), count: 0, dataCount: 0, done: false };
      this.groups.set(firstSeq, group);
    }
    const index = seqid - firstSeq;
    if (group.done || group.shards[index] !== null) return;
    const copy = this.pool.pop() ?? new Uint8Array(MAX_SHARD);
    const len = end - shardOff;
    copy.set(buf.subarray(shardOff, end));
    group.shards[index] = { buf: copy, off: 0, len };
    group.count++;
    if (isData) group.dataCount++;
    if (group.count >= this.codec.dataShards) this.decode(group);
  }

  private decode(group: Group): void {
    group.done = true;
    if (group.dataCount < this.codec.dataShards) {
      let len = 0;
      for (const s of group.shards) if (s !== null && s.len > len) len = s.len;
      const rebuilt: Uint8Array[] = [];
      this.codec.reconstructData(group.shards, () => {
        const out = this.pool.pop() ?? new Uint8Array(MAX_SHARD);
        rebuilt.push(out);
        return out;
      });
      for (const r of rebuilt) {
        this.recoveredBuffers.push(r);
        // kcp-go's check on a rebuilt shard: its size field must fit what was rebuilt.
        const sz = readU16(r, 0);
        if (sz >= 2 && sz <= len) {
          this.recovered.push(r.subarray(2, sz));
          this.counters.recovered++;
        } else {
          this.counters.errs++;
        }
      }
    }
    this.freeShards(group);
  }

  private evictOld(): void {
    const limit = WINDOW_GROUPS * this.shardsPerGroup;
    for (const [key, group] of this.groups) {
      if (this.age(group.firstSeq) <= limit) continue;
      if (!group.done) this.counters.shortShards += group.dataCount;
      this.freeShards(group);
      this.groups.delete(key);
    }
  }

  private retune(): void {
    const ds = this.tune.findPeriod(true);
    const ps = this.tune.findPeriod(false);
    if (ds <= 0 || ps <= 0 || ds + ps >= 256) return;
    if (ds === this.codec.dataShards && ps === this.codec.parityShards) return;
    this.codec = new ReedSolomon(ds, ps);
    this.shardsPerGroup = ds + ps;
    this.wrap = paws(this.shardsPerGroup);
    for (const group of this.groups.values()) this.freeShards(group);
    this.groups.clear();
    this.newest = -1;
  }

  private freeShards(group: Group): void {
    for (let i = 0; i < group.shards.length; i++) {
      const s = group.shards[i];
      if (s !== null) {
        this.pool.push(s.buf);
        group.shards[i] = null;
      }
    }
  }

  private releaseRecovered(): void {
    for (const b of this.recoveredBuffers) this.pool.push(b);
    this.recoveredBuffers.length = 0;
    this.recovered.length = 0;
    this.recoveredRead = 0;
  }

  /** How far seqid `s` is behind the newest, modulo the wrap. */
  private age(s: number): number {
    return (this.newest - s + this.wrap) % this.wrap;
  }

  /** Whether `a` is after `b` in the wrapping seqid space (less than half a wrap ahead). */
  private ahead(a: number, b: number): boolean {
    const d = (a - b + this.wrap) % this.wrap;
    return d !== 0 && d < this.wrap / 2;
  }
}
