/**
 * Sans-IO FEC encoder (kcp-go's fecEncoder, wire-identical). Each outgoing KCP
 * datagram gets its FEC header written in place; after every ds-th data shard
 * the ps parity datagrams of that group are ready.
 *
 * Parity is accumulated as data shards pass (parity_k ^= coef·shard), so no data
 * shard is copied or kept: the caller may seal (encrypt) and send each data datagram
 * right away. Shorter shards count as zero-padded, as in kcp-go.
 */
import { writeU32Le } from '../../packet/bytes.js';
import { mulAddInto } from './galois.js';
import { FEC_HEADER_SIZE, FEC_SHARD_OFFSET, FLAG_DATA, FLAG_PARITY, paws, writeU16 } from './header.js';
import { ReedSolomon } from './reedsolomon.js';
import { transportAddon, type TransportAddon } from '../native.js';

export interface FecEncoderOptions {
  dataShards: number;
  parityShards: number;
  /** Bytes reserved in front of the FEC header for the crypto layer (DatagramCrypt.headerSize). */
  headerOffset: number;
  /** Longest datagram the caller will pass (the MTU, at most 1500). */
  maxDatagram: number;
  /** Spare bytes after each parity datagram for the crypto layer (DatagramCrypt.tailroom). */
  tailroom?: number;
  /**
   * [cur] kcp-go ≥ 5.6.10 skips a group's parity when its last data shard came this many
   * ms or more after the one before (it uses 500); the seqids are still consumed.
   * Off (undefined) by default: the 2021 kcptun always sends parity, and a parity burst
   * after an idle gap costs little.
   */
  skipParityAfterGapMs?: number;
}

export class FecEncoder {
  readonly dataShards: number;
  readonly parityShards: number;
  private readonly codec: ReedSolomon;
  private readonly headerOffset: number;
  private readonly skipAfterGap: number | undefined;
  private readonly maxDatagram: number;
  private readonly tailroom: number;
  private readonly wrap: number;
  /**
   * Full parity datagrams: crypto header room, FEC header, accumulated parity bytes, tailroom. They
   * are rows of one arena, `stride` bytes apart, so the addon accumulates them all in one call.
   */
  private readonly parity: Uint8Array[];
  private readonly arena: Uint8Array;
  private readonly stride: number;
  /** columns[i][k]: data shard i's coefficient in parity shard k. */
  private readonly columns: Uint8Array[];
  private readonly addon: TransportAddon | null = transportAddon();
  private readonly parityViews: Uint8Array[];
  private next = 0;
  /** Data shards seen in the current group. */
  private count = 0;
  /** Longest data datagram (total length, crypto header room included) in the current group. */
  private maxLen = 0;
  /** Parity buffer bytes [0, dirty) need zeroing before the next group accumulates. */
  private dirty = 0;
  private lastDataAt = 0;

  constructor(opts: FecEncoderOptions) {
    this.codec = new ReedSolomon(opts.dataShards, opts.parityShards);
    this.dataShards = opts.dataShards;
    this.parityShards = opts.parityShards;
    this.headerOffset = opts.headerOffset;
    this.skipAfterGap = opts.skipParityAfterGapMs;
    this.wrap = paws(opts.dataShards + opts.parityShards);
    this.maxDatagram = opts.maxDatagram;
    this.tailroom = opts.tailroom ?? 0;
    this.stride = opts.maxDatagram + this.tailroom;
    this.arena = new Uint8Array(this.stride * opts.parityShards);
    this.parity = Array.from({ length: opts.parityShards }, (_, k) => this.arena.subarray(k * this.stride, (k + 1) * this.stride));
    this.columns = Array.from({ length: opts.dataShards }, (_, i) =>
      Uint8Array.from({ length: opts.parityShards }, (_, k) => this.codec.parityCoefficient(k, i)));
    this.parityViews = [];
  }

  /**
   * Writes the FEC header of the KCP datagram buf[0, len): the crypto header room is
   * buf[0, headerOffset), the FEC header the next 8 bytes, KCP bytes the rest.
   * Returns the parity datagrams this shard completed: empty, or ps views (each of
   * length maxLen, crypto header room in front) to seal and send. Each view's buffer has
   * `tailroom` spare bytes right after it, so an AEAD seals in place with
   * `crypt.seal(new Uint8Array(v.buffer, v.byteOffset, v.length + tailroom), v.length)`.
   * They stay valid until the next encode().
   */
  encode(buf: Uint8Array, len: number, now: number): readonly Uint8Array[] {
    const h = this.headerOffset;
    if (len < h + FEC_HEADER_SIZE || len > this.maxDatagram) throw new RangeError(`FEC encode: bad datagram length ${len}`);
    this.parityViews.length = 0;
    if (this.count === 0) this.startGroup();
    writeU32Le(buf, h, this.next);
    writeU16(buf, h + 4, FLAG_DATA);
    writeU16(buf, h + 6, len - h - FEC_SHARD_OFFSET);
    this.next++;

    const shardStart = h + FEC_SHARD_OFFSET;
    if (this.addon !== null) {
      this.addon.gfMulAddRows(this.columns[this.count], buf, shardStart, len - shardStart, this.arena, shardStart, this.stride);
    } else {
      const column = this.columns[this.count];
      for (let k = 0; k < this.parityShards; k++) mulAddInto(column[k], buf, shardStart, this.parity[k], shardStart, len - shardStart);
    }
    if (len > this.maxLen) this.maxLen = len;
    const gap = now - this.lastDataAt;
    this.lastDataAt = now;
    if (++this.count < this.dataShards) return this.parityViews;

    this.count = 0;
    this.dirty = this.maxLen + this.tailroom; // what accumulating and sealing may have touched
    const skip = this.skipAfterGap !== undefined && gap >= this.skipAfterGap;
    for (let k = 0; k < this.parityShards; k++) {
      if (!skip) {
        const p = this.parity[k];
        writeU32Le(p, h, this.next);
        writeU16(p, h + 4, FLAG_PARITY);
        this.parityViews.push(p.subarray(0, this.maxLen));
      }
      this.next++;
    }
    if (this.next >= this.wrap) this.next = 0;
    return this.parityViews;
  }

  /** The seqid the next data shard will carry. */
  get nextSeqid(): number {
    return this.next;
  }

  /** For tests: start numbering at `seqid` (must be a group boundary), e.g. just before the wrap. */
  setNextSeqid(seqid: number): void {
    if (seqid % (this.dataShards + this.parityShards) !== 0 || seqid >= this.wrap || this.count !== 0) {
      throw new RangeError('seqid must be a group boundary below paws, between groups');
    }
    this.next = seqid;
  }

  private startGroup(): void {
    // The previous group's parity datagrams were sealed in place: clear everything they used.
    for (const p of this.parity) p.fill(0, 0, this.dirty);
    this.maxLen = 0;
  }
}
