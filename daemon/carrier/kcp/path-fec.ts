/**
 * Adaptive forward error correction on one peer path of the KCP carrier, between tstier nodes that
 * both announce the KcpFec route feature. Every datagram to the peer (all flows together, so groups
 * fill even when each flow is thin) becomes a data shard; after GROUP_DATA of them, or GROUP_MS after
 * a group's first, the encoder sends `parity` Reed-Solomon parity shards, and the peer rebuilds up to
 * that many lost datagrams of the group without a round trip. The code is the kcptun-compatible one
 * (transport/fec/reedsolomon.ts); the framing is the carrier's own, since groups vary in size.
 *
 * Parity follows the loss the peer measures: the decoder counts the shards it receives against the
 * per-path sequence numbers and reports both every REPORT_MS; the encoder smooths that loss rate and
 * sends PARITY_PER_LOSS parity shards per expected lost one (a group of GROUP_DATA: round(16 × loss × 2),
 * at most MAX_PARITY), none below MIN_LOSS. The report counts
 * raw losses (FEC-repaired ones included), so parity does not fall as it starts to work. Two parity
 * shards per expected loss repair about two thirds of the holes at 5-20 % (a group fails when its
 * losses outnumber its parity); more would buy little: on a rate-capped path every parity byte
 * displaces a data byte. Holes a group cannot rebuild fall back to RACK's retransmission.
 *
 * Wire (after the carrier's kind byte):
 *   data:   KIND_FEC_DATA   | seq u32 | group u32 | index u8 | shard = (type u8 | len u16 | payload)
 *           (index | NO_PARITY: the group gets no parity, so the peer need not keep a copy of the shard;
 *           an older decoder takes the index as out of range, which means the same)
 *   parity: KIND_FEC_PARITY | seq u32 | group u32 | index u8 | data count u8 | shard bytes
 *   report: KIND_FEC_REPORT | highest seq u32 | shards received u32 [| host drops u32]   (all cumulative)
 * `host drops` counts the datagrams the reporter's own sockets dropped unread since it began reporting
 * to this peer: its host, not the path, overflowed, and the sender backs off (PathController.onHostDrops).
 * An older peer sends the report without it and reads only the first two fields of ours.
 * `payload` is the carrier datagram as it would go without FEC (kind 0 first); `type` says which of
 * the two packet types carried it (0: from the initiator), so a rebuilt one reaches the right table.
 * Shards shorter than the group's longest count as zero-padded; a group that closed early has zero
 * data shards past its count, which parity need not carry.
 */
import { writeU32Le, readU32Le } from '../../packet/bytes.js';
import { mulAddInto } from '../../transport/fec/galois.js';
import { ReedSolomon, type ShardRef } from '../../transport/fec/reedsolomon.js';

export const KIND_FEC_DATA = 3;
export const KIND_FEC_PARITY = 4;
export const KIND_FEC_REPORT = 5;
/** Bytes a data shard's datagram carries before the plain payload: kind, seq, group, index, type, len. */
export const FEC_DATA_PREFIX = 13;
const SHARD_AT = 10;
const PARITY_SHARD_AT = 11;
/** A parity datagram is this much longer than the longest data datagram of its group. */
export const PARITY_EXTRA = PARITY_SHARD_AT - SHARD_AT;
export const FEC_REPORT_LEN = 13;
/** A report without the host-drops field (an older peer's). */
const FEC_REPORT_MIN = 9;

/** Data shards per group at most: small enough that a repair waits little, large enough to be cheap. */
const GROUP_DATA = 16;
/**
 * A group is closed (its parity sent) at most groupMs after its first shard: a quarter of the path's
 * base RTT within these bounds, so a thin flow's groups still gather a few shards, and a repair still
 * comes well before a retransmission would (the engine's RACK allows for it, see rackExtraMs).
 */
const MIN_GROUP_MS = 5;
const MAX_GROUP_MS = 40;
const MAX_PARITY = 8;
/** Below this loss rate the path gets no parity. */
const MIN_LOSS = 0.005;
const PARITY_PER_LOSS = 2;
/**
 * Parity shards per full group while the path is backlogged (its flows always have data waiting, see
 * FecEncoder.backlogged), whatever the loss. Losses there are mostly before the bottleneck (random
 * loss, as the bench's relay and the simulator place it), so a retransmission crosses the bottleneck
 * only for a datagram that did not, while every parity shard does: on a capped link at 10 % loss,
 * two shards per loss took 16 % of the link from the data. One still repairs the commonest hole.
 */
const BACKLOGGED_PARITY = 1;
const REPORT_MS = 100;
/** How many reports a socket drop may wait for its hole to show (the queue read before it can take that long). */
const DROP_MATCH_REPORTS = 10;
/** Datagrams a loss sample must span. */
const MIN_REPORT_SAMPLE = 32;
/** A group closed early (thin traffic) gets parity until it fails (more losses than parity) at most this often. */
const THIN_FAIL = 0.005;
/** Groups the decoder keeps open; older ones are dropped (their holes are KCP's to repair). */
const KEEP_GROUPS = 8;
const MAX_SHARD = 1500;
/**
 * Set in a data shard's index when its group gets no parity (a clean path): the decoder then keeps no
 * copy of it (one 1.2 KB copy per datagram, 2-3 % of the receiving node's CPU on the clean veth).
 */
const NO_PARITY = 0x80;

const codecs = new Map<number, ReedSolomon>();
function codec(data: number, parity: number): ReedSolomon {
  const key = data * 256 + parity;
  let c = codecs.get(key);
  if (!c) codecs.set(key, (c = new ReedSolomon(data, parity)));
  return c;
}

/**
 * Parity shards per full group for a measured loss rate (what a group accumulates; a short one sends
 * thinParity()), on a path whose flows are `backlogged` or not.
 */
export function parityFor(loss: number, backlogged = false): number {
  if (loss < MIN_LOSS) return 0;
  if (backlogged) return BACKLOGGED_PARITY;
  return Math.min(MAX_PARITY, Math.max(1, Math.round(GROUP_DATA * loss * PARITY_PER_LOSS)));
}

/** Least parity (1..max) for `count` data shards such that more than that many of the group are lost with probability ≤ THIN_FAIL. */
function thinParity(count: number, loss: number, max: number): number {
  for (let r = 1; r < max; r++) if (tailAbove(count + r, r, loss) <= THIN_FAIL) return r;
  return max;
}

/** P(more than k of n independent shards are lost), each with probability p. */
function tailAbove(n: number, k: number, p: number): number {
  let term = (1 - p) ** n; // P(0 lost)
  let atMost = term;
  for (let i = 1; i <= k; i++) {
    term *= ((n - i + 1) / i) * (p / (1 - p));
    atMost += term;
  }
  return Math.max(0, 1 - atMost);
}

export class FecEncoder {
  /** Smoothed loss rate the peer reports. */
  loss = 0;
  /** The path's flows always have data waiting (the controller's last round): parity then displaces data. */
  backlogged = false;
  /** How long a group may stay open (ms); see setBaseRtt(). */
  groupMs = MIN_GROUP_MS;
  /** Parity shards sent, and data shards. */
  readonly stats = { data: 0, parity: 0 };
  private seq = 0;
  private group = 0;
  private count = 0;
  private parity = 0;
  private maxLen = 0;
  private openedAt = 0;
  private readonly acc: Uint8Array[] = [];
  private lastReport: { seq: number; received: number } | null = null;
  /** The peer's last host-drops count and the seq of its report; the count is -1 before one. */
  private lastHostDrops = -1;
  private lastHostDropsSeq = 0;

  /**
   * Frames the datagram `d` in place as a data shard: its plain payload (kind byte first) starts at
   * d[FEC_DATA_PREFIX], the bytes before are free; `type` 0 or 1. Returns the view to send. Parity of
   * the group this one completed goes to `out` with the next data shard or at once by deadline(): the
   * caller sends the returned shard after what `out` took, and parity ahead of its group's last shard
   * rebuilt that shard at the peer just before it arrived (a segment received twice on a clean link).
   */
  data(d: Uint8Array, payloadLen: number, type: number, now: number, out: (parity: Uint8Array) => void): Uint8Array {
    if (this.count === GROUP_DATA) this.close(out);
    if (this.count === 0) this.open(now);
    d[0] = KIND_FEC_DATA;
    writeU32Le(d, 1, this.seq);
    this.seq = (this.seq + 1) >>> 0;
    writeU32Le(d, 5, this.group);
    d[9] = this.parity > 0 ? this.count : this.count | NO_PARITY;
    d[10] = type;
    d[11] = payloadLen & 0xff;
    d[12] = payloadLen >>> 8;
    const shardLen = payloadLen + 3;
    if (this.parity > 0) {
      const rs = codec(GROUP_DATA, this.parity);
      for (let p = 0; p < this.parity; p++) mulAddInto(rs.parityCoefficient(p, this.count), d, SHARD_AT, this.acc[p]!, 0, shardLen);
    }
    if (shardLen > this.maxLen) this.maxLen = shardLen;
    this.stats.data++;
    this.count++;
    return d.subarray(0, SHARD_AT + shardLen);
  }

  /** The path's base RTT (ms, Infinity while unknown) sets how long a group may gather shards. */
  setBaseRtt(rtt: number): void {
    this.groupMs = rtt === Infinity ? MIN_GROUP_MS : Math.min(MAX_GROUP_MS, Math.max(MIN_GROUP_MS, Math.round(rtt / 4)));
  }

  /** How much later than a retransmission's ACK a repair may come: the group time, while parity is sent. */
  get repairDelay(): number {
    return parityFor(this.loss, this.backlogged) > 0 ? this.groupMs : 0;
  }

  /** When the open group must be closed (a full one: now), or Infinity. */
  deadline(): number {
    if (this.count === 0) return Infinity;
    return this.count === GROUP_DATA ? this.openedAt : this.openedAt + this.groupMs;
  }

  /** Closes a group that is full or waited groupMs for more data. */
  handleTimeout(now: number, out: (parity: Uint8Array) => void): void {
    if (this.count > 0 && now >= this.deadline()) this.close(out);
  }

  /** A report from the peer (bytes after the kind byte): the share of our datagrams it received sets the loss. */
  lossReport(body: Uint8Array): void {
    if (body.length < FEC_REPORT_MIN - 1) return;
    const seq = readU32Le(body, 0);
    const received = readU32Le(body, 4);
    const last = this.lastReport;
    if (last !== null && ((seq - last.seq) | 0) < 0) return; // overtaken by a newer one
    if (last === null || ((received - last.received) | 0) < 0) {
      this.lastReport = { seq, received };
      return;
    }
    const sent = (seq - last.seq) >>> 0;
    const got = (received - last.received) >>> 0;
    // Too few to judge: keep counting from the same report, so thin traffic (a request/response
    // flow alone on the path) still gets its loss measured, over a longer time.
    if (sent < MIN_REPORT_SAMPLE) return;
    this.lastReport = { seq, received };
    // Unclamped: a sample that counts datagrams which overtook the previous report (reordering) reads
    // below zero and evens out the one before it, which counted them as lost.
    this.loss = Math.max(0, this.loss + (1 - got / sent - this.loss) / 4);
  }

  /**
   * The same report's count of our datagrams the peer's host dropped unread: how many are new since
   * the last report read (0 from a peer that does not count them, and from a report a newer one overtook).
   */
  hostDropsIn(body: Uint8Array): number {
    if (body.length < FEC_REPORT_LEN - 1) return 0;
    const seq = readU32Le(body, 0);
    const total = readU32Le(body, 8);
    const last = this.lastHostDrops;
    if (last >= 0 && ((seq - this.lastHostDropsSeq) | 0) < 0) return 0; // an older report, overtaken
    this.lastHostDrops = total;
    this.lastHostDropsSeq = seq;
    // The first one is a baseline: this encoder may be newer than the peer's decoder.
    if (last < 0) return 0;
    const fresh = (total - last) | 0;
    // A newer report with a lower count: the peer's decoder is new (it forgot this path when its last
    // flow to us ended, while this side kept its own) and counts from zero, so all of it is new.
    return fresh >= 0 ? fresh : total;
  }

  private open(now: number): void {
    this.openedAt = now;
    this.maxLen = 0;
    this.parity = parityFor(this.loss, this.backlogged);
    for (let p = 0; p < this.parity; p++) {
      if (this.acc.length <= p) this.acc.push(new Uint8Array(MAX_SHARD + PARITY_SHARD_AT));
      this.acc[p]!.fill(0);
    }
  }

  private close(out: (parity: Uint8Array) => void): void {
    // A group closed early carries thin traffic (a request, an answer, a flow's last bytes): a hole
    // there costs a whole round trip or an RTO, and the path is idle, so parity is cheap. It gets
    // enough that the group fails rarely (a lone request at 20 % loss: three copies' worth).
    const send = this.parity === 0 ? 0 : this.count === GROUP_DATA ? this.parity : thinParity(this.count, this.loss, this.parity);
    for (let p = 0; p < send; p++) {
      const shard = this.acc[p]!;
      const d = new Uint8Array(PARITY_SHARD_AT + this.maxLen);
      d[0] = KIND_FEC_PARITY;
      writeU32Le(d, 1, this.seq);
      this.seq = (this.seq + 1) >>> 0;
      writeU32Le(d, 5, this.group);
      d[9] = GROUP_DATA + p;
      d[10] = this.count;
      d.set(shard.subarray(0, this.maxLen), PARITY_SHARD_AT);
      this.stats.parity++;
      out(d);
    }
    this.group = (this.group + 1) >>> 0;
    this.count = 0;
  }
}

interface Group {
  id: number;
  shards: (ShardRef | null)[];
  /** Data shards in the group (known from a parity shard; GROUP_DATA until then). */
  dataCount: number;
  present: number;
  parityCount: number;
  done: boolean;
}

/** A rebuilt datagram: the packet type flag and the plain payload (kind 0 first). */
export interface Rebuilt {
  type: number;
  payload: Uint8Array;
}

export class FecDecoder {
  /** Datagrams rebuilt, and shards kept (copied) for a rebuild. */
  readonly stats = { recovered: 0, kept: 0 };
  private readonly groups: Group[] = [];
  private readonly pool: Uint8Array[] = [];
  private highest = -1;
  private received = 0;
  private reportedAt = -Infinity;
  /** Missing datagrams put down to this host's own socket drops, not the path (see takeReport). */
  private credited = 0;
  private hostDropsSeen = -1;
  /** Host drops since the first report, the report's last field. */
  private hostDropsReported = 0;
  /** Socket drops not yet matched to missing datagrams, at most those of the last DROP_MATCH_REPORTS reports. */
  private dropsPending = 0;
  private readonly recentDrops = new Uint32Array(DROP_MATCH_REPORTS);
  private recentAt = 0;
  /** The seq and received counts of the last report, for what went missing since. */
  private lastExpected = 0;
  private lastReceived = 0;

  /**
   * A data shard arrived (body = bytes after the kind byte); returns the plain payload inside it (a
   * view of `body`) to deliver now, or null if malformed. Rebuilt datagrams go to `rebuilt`.
   */
  data(body: Uint8Array, rebuilt: (r: Rebuilt) => void): Rebuilt | null {
    if (body.length < FEC_DATA_PREFIX - 1) return null;
    const len = body[10]! | (body[11]! << 8);
    if (len + 12 > body.length || len < 1) return null;
    this.store(body, rebuilt, false);
    return { type: body[9]!, payload: body.subarray(12, 12 + len) };
  }

  parity(body: Uint8Array, rebuilt: (r: Rebuilt) => void): void {
    if (body.length < PARITY_SHARD_AT) return;
    this.store(body, rebuilt, true);
  }

  /**
   * The report to send now (kind byte first), or null while the last one is recent. `hostDrops`, read
   * only when a report is due, is this host's cumulative count of datagrams its sockets dropped unread
   * (udp-drops.ts): up to that many of the datagrams missing since the last report are reported as
   * received, since they crossed the path and parity cannot help a host that does not keep up.
   */
  takeReport(now: number, hostDrops?: () => number): Uint8Array | null {
    if (now - this.reportedAt < REPORT_MS || this.highest < 0) return null;
    this.reportedAt = now;
    const expected = (this.highest + 1) >>> 0;
    if (hostDrops) this.creditHostDrops(hostDrops(), ((expected - this.lastExpected) | 0) - ((this.received - this.lastReceived) | 0));
    this.lastExpected = expected;
    this.lastReceived = this.received;
    const r = new Uint8Array(FEC_REPORT_LEN);
    r[0] = KIND_FEC_REPORT;
    writeU32Le(r, 1, expected);
    writeU32Le(r, 5, (this.received + this.credited) >>> 0);
    writeU32Le(r, 9, this.hostDropsReported);
    return r;
  }

  /**
   * Matches socket drops to the datagrams found missing since the last report. A drop is counted when
   * it happens, during a stall, but its hole shows only once the datagrams queued before it are read,
   * often several reports later: unmatched drops wait, but only those of the last DROP_MATCH_REPORTS
   * reports (so old drops never hide later path loss for long).
   */
  private creditHostDrops(total: number, missing: number): void {
    const dropped = this.hostDropsSeen < 0 ? 0 : Math.max(0, total - this.hostDropsSeen);
    this.hostDropsSeen = total;
    this.hostDropsReported = (this.hostDropsReported + dropped) >>> 0;
    this.recentAt = (this.recentAt + 1) % DROP_MATCH_REPORTS;
    this.recentDrops[this.recentAt] = dropped;
    let recent = 0;
    for (const n of this.recentDrops) recent += n;
    this.dropsPending = Math.min(this.dropsPending + dropped, recent);
    const credit = Math.max(0, Math.min(this.dropsPending, missing));
    this.dropsPending -= credit;
    this.credited = (this.credited + credit) >>> 0;
  }

  private store(body: Uint8Array, rebuilt: (r: Rebuilt) => void, isParity: boolean): void {
    const seq = readU32Le(body, 0);
    const id = readU32Le(body, 4);
    const index = body[8]!;
    this.received = (this.received + 1) >>> 0;
    if (this.highest < 0 || ((seq - this.highest) | 0) > 0) this.highest = seq;
    if (index >= GROUP_DATA + MAX_PARITY) return; // NO_PARITY too: nothing will need the copy
    const g = this.groupOf(id);
    if (g === null || g.done || g.shards[index] !== null) return;
    const at = isParity ? PARITY_SHARD_AT - 1 : SHARD_AT - 1;
    const n = body.length - at;
    if (n > MAX_SHARD) return;
    const copy = this.pool.pop() ?? new Uint8Array(MAX_SHARD);
    copy.set(body.subarray(at));
    this.stats.kept++;
    g.shards[index] = { buf: copy, off: 0, len: n };
    g.present++;
    if (isParity) {
      g.dataCount = body[9]!;
      g.parityCount++;
    }
    this.tryRebuild(g, rebuilt);
  }

  private groupOf(id: number): Group | null {
    for (const g of this.groups) if (g.id === id) return g;
    const newest = this.groups.length > 0 ? this.groups[this.groups.length - 1]!.id : id - 1;
    if (((id - newest) | 0) <= 0) return null; // older than every group kept: its time is over
    const g: Group = { id, shards: new Array<ShardRef | null>(GROUP_DATA + MAX_PARITY).fill(null), dataCount: GROUP_DATA, present: 0, parityCount: 0, done: false };
    this.groups.push(g);
    if (this.groups.length > KEEP_GROUPS) this.free(this.groups.shift()!);
    return g;
  }

  private tryRebuild(g: Group, rebuilt: (r: Rebuilt) => void): void {
    if (g.parityCount === 0) return;
    const k = g.dataCount;
    let dataPresent = 0;
    for (let i = 0; i < k; i++) if (g.shards[i] !== null) dataPresent++;
    if (dataPresent === k) {
      g.done = true;
      return;
    }
    if (dataPresent + g.parityCount < k) return;
    // Data shards past the count were never sent: zeros, present by definition.
    const zero: ShardRef = { buf: new Uint8Array(0), off: 0, len: 0 };
    let parityCap = 0;
    for (let p = 0; p < MAX_PARITY; p++) if (g.shards[GROUP_DATA + p] !== null) parityCap = p + 1;
    const rs = codec(GROUP_DATA, Math.max(parityCap, 1));
    const shards: (ShardRef | null)[] = [];
    for (let i = 0; i < GROUP_DATA; i++) shards.push(i < k ? g.shards[i]! : zero);
    for (let p = 0; p < rs.parityShards; p++) shards.push(g.shards[GROUP_DATA + p]!);
    const out: { index: number; buf: Uint8Array }[] = [];
    const ok = rs.reconstructData(shards, (i) => {
      const buf = this.pool.pop() ?? new Uint8Array(MAX_SHARD);
      out.push({ index: i, buf });
      return buf;
    });
    g.done = true;
    if (!ok) return;
    for (const { buf } of out) {
      const len = buf[1]! | (buf[2]! << 8);
      if (len >= 1 && len + 3 <= MAX_SHARD) {
        this.stats.recovered++;
        rebuilt({ type: buf[0]!, payload: buf.subarray(3, 3 + len) });
      }
      this.pool.push(buf);
    }
  }

  private free(g: Group): void {
    for (const s of g.shards) if (s !== null) this.pool.push(s.buf);
  }
}
