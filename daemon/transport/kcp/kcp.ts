/**
 * Sans-IO KCP engine, wire- and behaviour-compatible with kcp-go v5.6.1 as kcptun v20210922 drives it
 * (docs/kcptun-wire.md §4). No sockets, timers or clocks: the caller supplies `now` (milliseconds,
 * any monotonic integer clock) and moves datagrams.
 *
 * Driving it (what kcp-go's UDPSession does):
 *   - every received datagram:   kcp.input(bytes, now, regular)   (regular=false for FEC-rebuilt data)
 *   - timer:                     when now reaches kcp.pollTimeout(), call kcp.handleTimeout(now)
 *   - application write:         if kcp.canWrite(): kcp.send(data); kcp.flush(now)   (write-delay off)
 *   - application read:          kcp.read(dst) (stream) or kcp.recv() (one message)
 *   - after each of the above:   drain kcp.pollTransmit() until null and send each datagram.
 *   - when the session ends:      kcp.release() (buffers back to the shared pool)
 *
 * MTU and headroom. `mtu` is the whole datagram budget, as kcp-go's SetMtu: every datagram from
 * pollTransmit() is at most `mtu` bytes and its first `headroom` bytes are reserved, left for the FEC
 * and crypto headers that later layers write in place (kcp-go's ReserveBytes). Segments are packed
 * after them. So MSS = mtu − headroom − 24; kcptun's defaults (1350, 16 nonce + 4 crc + 8 fec = 28)
 * give 1298.
 *
 * Clock. The wire ts is `now >>> 0`; all comparisons of u32 quantities use `(a - b) | 0`, so the
 * u32 clock may wrap. Deadlines returned by pollTimeout() are in the caller's own domain (now + delay).
 *
 * Buffers. Datagrams returned by pollTransmit() belong to the caller. Handing one back with
 * recycleTransmit() once it has been sent lets the engine reuse it (no allocation per datagram).
 * input() copies what it keeps, so the caller may reuse its receive buffer at once.
 */
import { badConfig } from '../../errors.js';
import { FreeList } from './free-list.js';
import { Ring } from './ring.js';
import {
  IKCP_CMD_ACK, IKCP_CMD_PUSH, IKCP_CMD_WASK, IKCP_CMD_WINS, IKCP_DEADLINK, IKCP_INTERVAL, IKCP_MTU_DEF,
  IKCP_OVERHEAD, IKCP_PROBE_INIT, IKCP_PROBE_LIMIT, IKCP_RTO_DEF, IKCP_RTO_MAX, IKCP_RTO_MIN, IKCP_RTO_NDL,
  IKCP_THRESH_INIT, IKCP_THRESH_MIN, IKCP_WND_RCV, IKCP_WND_SND, KCP_MTU_LIMIT, isKnownCmd, readU32,
  writeSegmentHeader,
} from './segment.js';

export interface KcpOptions {
  /** Conversation id (u32), equal on both ends. */
  conv: number;
  /** Whole datagram budget including `headroom` (kcp-go SetMtu). Default 1400, at most 1500. */
  mtu?: number;
  /** Bytes reserved at the start of each emitted datagram for outer headers. Default 0. */
  headroom?: number;
  /** Send window in segments. Default 32. */
  sndWnd?: number;
  /** Receive window in segments. Default 32 (kcp-go does not raise it to C's 128). */
  rcvWnd?: number;
  /** 0: min RTO 100 ms and linear backoff by rx_rto; ≠0: min RTO 30 ms and backoff by rx_rto/2. */
  nodelay?: number;
  /** Flush interval, clamped to [10, 5000] ms. Default 100. */
  interval?: number;
  /** Fast-resend threshold in duplicate ACKs; 0 disables. Default 0. */
  resend?: number;
  /** 1 disables congestion control. Default 0. */
  nc?: number;
  /** Stream mode (kcptun: on): frg always 0 and writes top up the last queued segment. Default false. */
  streamMode?: boolean;
  /** Flush ACKs at the end of every input(). Default false. */
  ackNoDelay?: boolean;
  /**
   * Repeat each flush's out-of-order ACKs in the next flush that carries ACKs (default false, kcp-go
   * never does). KCP has no SACK: an ACK lost above a hole is only healed by a spurious fast
   * retransmission, which at 30 % loss wastes a third of the path. The peer must count a repeated
   * ACK once (this engine does; kcp-go would count it as a second duplicate ACK), so only for
   * tstier-to-tstier links.
   */
  ackRepeat?: boolean;
  /** First window-probe wait when the peer's window is 0: 7000 in kcp-go ≤ v5.6.42, 500 later. */
  probeInitMs?: number;
  /** Transmissions of one segment after which `state` becomes 0xFFFFFFFF. Default 20. */
  deadLink?: number;
}

/** The knobs a mode or a user sets (kcptun's --mode/--sndwnd..., kcptube's kcp=... presets), all given. */
export type KcpTuning = Required<Pick<KcpOptions, 'sndWnd' | 'rcvWnd' | 'nodelay' | 'interval' | 'resend' | 'nc'>>;

/** input() results, as kcp-go's Input. */
export const KCP_INPUT_OK = 0;
/** Datagram shorter than 24 bytes, or a segment with another conv (earlier segments stay applied). */
export const KCP_INPUT_BAD_CONV = -1;
/** A segment's len runs past the end of the datagram. */
export const KCP_INPUT_BAD_LEN = -2;
/** A segment's cmd is not 81..84. */
export const KCP_INPUT_BAD_CMD = -3;

export const KCP_STATE_DEAD = 0xffffffff;

const ASK_SEND = 1; // a WASK is due
const ASK_TELL = 2; // a WINS is due

/** One segment in snd_queue/snd_buf/rcv_buf/rcv_queue. `data` is a buffer of which `len` bytes are used. */
class Segment {
  sn = 0;
  frg = 0;
  ts = 0;
  resendts = 0;
  rto = 0;
  fastack = 0;
  xmit = 0;
  acked = false;
  len = 0;
  constructor(public data: Uint8Array) {}
}

/** Idle segments (with their mtu-sized buffers) and datagram buffers, keyed by mtu. */
const segmentPool = new FreeList<Segment>(4096);
const datagramPool = new FreeList<Uint8Array>(1024);

function intInRange(key: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw badConfig(key, `must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

export class Kcp {
  readonly conv: number;
  readonly mtu: number;
  readonly headroom: number;
  /** Payload bytes per segment: mtu − headroom − 24. */
  readonly mss: number;

  // Counters (kcp-go SNMP names: InSegs, OutSegs, RetransSegs, FastRetransSegs, EarlyRetransSegs,
  // LostSegs, RepeatSegs), per engine; a session table sums them.
  inSegs = 0;
  outSegs = 0;
  retransSegs = 0;
  fastRetransSegs = 0;
  earlyRetransSegs = 0;
  lostSegs = 0;
  repeatSegs = 0;

  /**
   * New segments a flush may still move into flight. Infinity (the default, kcp-go's behaviour): as many
   * as the windows allow. An outer pacer (the proxy carrier's path controller) keeps it at 0 and grants a
   * few at a time; retransmissions and ACKs are never held back by it.
   */
  newSegmentQuota = Infinity;
  /** Lower bound (ms) on every segment's RTO, set by an outer pacer (0: kcp-go's RTO alone). */
  rtoFloor = 0;
  /**
   * Segment bytes (header included: a small segment still costs one) acknowledged for the first time,
   * selectively or by una, and how many segments that was; cumulative.
   */
  deliveredBytes = 0;
  deliveredSegs = 0;
  /** Segment bytes (header included) sent and not yet acknowledged. */
  flightBytes = 0;
  /** Segments moved into flight (first transmissions), cumulative. */
  newSegsSent = 0;
  /** RTT samples taken, and the last one (ms). */
  rttSamples = 0;
  lastRtt = 0;

  /** 0, or KCP_STATE_DEAD once a segment was sent `deadLink` times. kcp-go itself never acts on it. */
  state = 0;
  ackNoDelay: boolean;
  streamMode: boolean;
  private readonly ackRepeat: boolean;

  private sndUna = 0;
  private sndNxt = 0;
  private rcvNxt = 0;
  private ssthresh = IKCP_THRESH_INIT;
  private rxRttvar = 0; // int32, as kcp-go
  private rxSrtt = 0; // int32, as kcp-go
  private rxRto = IKCP_RTO_DEF;
  private rxMinrto = IKCP_RTO_MIN;
  private sndWnd = IKCP_WND_SND;
  private rcvWnd = IKCP_WND_RCV;
  private rmtWnd = IKCP_WND_RCV;
  private cwnd = 0; // kcp-go starts at 0: with nc=0 the first flush sends nothing
  private incr = 0;
  private probe = 0;
  private interval = IKCP_INTERVAL;
  private nodelay = 0;
  private tsProbe = 0;
  private probeWait = 0;
  private readonly probeInit: number;
  private readonly deadLink: number;
  private fastresend = 0;
  private nocwnd = 0;

  private current = 0; // u32 clock of the call in progress
  private lastNow = 0; // the same, in the caller's domain
  private nextFlushAt = 0; // caller's domain
  private timerArmed = false;

  private readonly sndQueue = new Ring<Segment>(64);
  private readonly sndBuf = new Ring<Segment>(64);
  private readonly rcvQueue = new Ring<Segment>(64);
  /** rcv_buf: out-of-order segments, indexed by sn & rcvMask; capacity ≥ every rcv_wnd ever set. */
  private rcvSlots: (Segment | undefined)[] = [];
  private rcvMask = 0;
  private rcvBufSegs = 0;
  /** Segments taken off rcv_queue by read() and not yet fully copied out (kcp-go session's bufptr). */
  private readonly reading = new Ring<Segment>(4);
  private readOff = 0;

  private ackList = new Uint32Array(256); // sn, ts pairs
  private ackCount = 0;
  /** With ackRepeat: the last flush's ACKs, sent once more with the next ones. */
  private ackPrev = new Uint32Array(256);
  private ackPrevCount = 0;

  private readonly txQueue = new Ring<Uint8Array>(16);
  private out: Uint8Array;
  private outPos: number;

  constructor(opts: KcpOptions) {
    this.conv = intInRange('conv', opts.conv, 0, 0xffffffff);
    this.mtu = intInRange('mtu', opts.mtu ?? IKCP_MTU_DEF, 50, KCP_MTU_LIMIT);
    this.headroom = intInRange('headroom', opts.headroom ?? 0, 0, this.mtu - IKCP_OVERHEAD - 1);
    this.mss = this.mtu - IKCP_OVERHEAD - this.headroom;
    this.probeInit = intInRange('probeInitMs', opts.probeInitMs ?? IKCP_PROBE_INIT, 1, IKCP_PROBE_LIMIT);
    this.deadLink = intInRange('deadLink', opts.deadLink ?? IKCP_DEADLINK, 1, 0xffffffff);
    this.streamMode = opts.streamMode ?? false;
    this.ackNoDelay = opts.ackNoDelay ?? false;
    this.ackRepeat = opts.ackRepeat ?? false;
    this.setWindows(
      intInRange('sndWnd', opts.sndWnd ?? IKCP_WND_SND, 1, 0xffff),
      intInRange('rcvWnd', opts.rcvWnd ?? IKCP_WND_RCV, 1, 0xffff),
    );
    this.setNoDelay(
      intInRange('nodelay', opts.nodelay ?? 0, 0, 2),
      intInRange('interval', opts.interval ?? IKCP_INTERVAL, 0, 0x7fffffff),
      intInRange('resend', opts.resend ?? 0, 0, 0x7fffffff),
      intInRange('nc', opts.nc ?? 0, 0, 1),
    );
    this.out = datagramPool.take(this.mtu) ?? new Uint8Array(this.mtu);
    this.outPos = this.headroom;
  }

  // ---- configuration (kcp-go NoDelay / WndSize) ----

  /** As kcp-go's NoDelay: a negative argument keeps the current value; interval is clamped to [10, 5000]. */
  setNoDelay(nodelay: number, interval: number, resend: number, nc: number): void {
    if (nodelay >= 0) {
      this.nodelay = nodelay;
      this.rxMinrto = nodelay !== 0 ? IKCP_RTO_NDL : IKCP_RTO_MIN;
    }
    if (interval >= 0) this.interval = Math.min(5000, Math.max(10, interval));
    if (resend >= 0) this.fastresend = resend;
    if (nc >= 0) this.nocwnd = nc;
  }

  /** As kcp-go's WndSize: a value ≤ 0 keeps the current one. */
  setWindows(sndWnd: number, rcvWnd: number): void {
    if (sndWnd > 0) this.sndWnd = sndWnd;
    if (rcvWnd > 0) {
      this.rcvWnd = rcvWnd;
      if (rcvWnd > this.rcvSlots.length) this.growRcvSlots(rcvWnd);
    }
  }

  // ---- observers ----

  /** Segments queued or in flight (kcp-go WaitSnd). */
  get waitSnd(): number {
    return this.sndBuf.length + this.sndQueue.length;
  }

  /** Segments queued and not yet sent once. */
  get unsentCount(): number {
    return this.sndQueue.length;
  }

  /** Whether a flush with quota would move a new segment into flight (data queued, windows open). */
  canSlide(): boolean {
    if (this.sndQueue.length === 0) return false;
    let wnd = Math.min(this.sndWnd, this.rmtWnd);
    if (this.nocwnd === 0) wnd = Math.min(this.cwnd, wnd);
    return ((this.sndNxt - (this.sndUna + wnd)) | 0) < 0;
  }

  /** kcptun 2021's write back-pressure: a Write may proceed while waitsnd < min(snd_wnd, rmt_wnd). */
  canWrite(): boolean {
    const w = this.waitSnd;
    return w < this.sndWnd && w < this.rmtWnd;
  }

  get srtt(): number { return this.rxSrtt; }
  get rttvar(): number { return this.rxRttvar; }
  get rto(): number { return this.rxRto; }
  /** The peer's advertised free receive window, from the last regular datagram. */
  get remoteWindow(): number { return this.rmtWnd; }
  get sendWindow(): number { return this.sndWnd; }
  get receiveWindow(): number { return this.rcvWnd; }
  /** Congestion window (meaningful with nc=0). */
  get congestionWindow(): number { return this.cwnd; }
  /** Segments waiting out of order in rcv_buf. */
  get rcvBufCount(): number { return this.rcvBufSegs; }
  get deadLinkReached(): boolean { return this.state === KCP_STATE_DEAD; }

  /** Asks the peer for its free receive window: a WASK goes out with the next flush, answered by a WINS. */
  askWindow(): void {
    this.probe |= ASK_SEND;
  }
  /** rcv_nxt: every sn below it has been received. */
  get receiveNext(): number { return this.rcvNxt; }

  // ---- sending ----

  /**
   * Queues data; returns data.length, or -1 for empty data, or -2 in message mode when the message
   * needs more than 255 segments (kcp-go refuses it). Stream mode splits any length into MSS pieces
   * after topping up the last still-unsent segment, as kcp-go's Write + Send do. The data is copied.
   * Nothing is sent until flush(now) or the next timer flush.
   */
  send(data: Uint8Array): number {
    const total = data.length;
    if (total === 0) return -1;
    const mss = this.mss;
    let p = 0;
    if (this.streamMode) {
      const q = this.sndQueue;
      if (q.length > 0) {
        const last = q.get(q.length - 1);
        const room = mss - last.len;
        if (room > 0) {
          const n = Math.min(room, total);
          last.data.set(n === total ? data : data.subarray(0, n), last.len);
          last.len += n;
          p = n;
        }
      }
      while (p < total) {
        const n = Math.min(mss, total - p);
        this.queueSegment(data, p, n, 0);
        p += n;
      }
      return total;
    }
    const count = total <= mss ? 1 : Math.ceil(total / mss);
    if (count > 255) return -2;
    for (let i = 0; i < count; i++) {
      const n = Math.min(mss, total - p);
      this.queueSegment(data, p, n, count - i - 1);
      p += n;
    }
    return total;
  }

  private queueSegment(data: Uint8Array, start: number, n: number, frg: number): void {
    const seg = this.newSegment(n);
    seg.data.set(data.subarray(start, start + n));
    seg.len = n;
    seg.frg = frg;
    this.sndQueue.push(seg);
  }

  // ---- receiving ----

  /** Size of the next complete message in rcv_queue (stream mode: the next segment), or -1. */
  peekSize(): number {
    const q = this.rcvQueue;
    if (q.length === 0) return -1;
    const first = q.get(0);
    if (first.frg === 0) return first.len;
    if (q.length < first.frg + 1) return -1;
    let size = 0;
    for (let i = 0; i < q.length; i++) {
      const seg = q.get(i);
      size += seg.len;
      if (seg.frg === 0) return size;
    }
    // Fragment numbers that never reach 0 within the queue (only a broken or hostile peer sends
    // them) make no complete message, so popMessage must not take any: it would run past the queue.
    return -1;
  }

  /**
   * kcp-go's Recv: copies the next whole message into dst at offset; returns its length, -1 when
   * none is ready, -2 when it does not fit. Do not mix with read() on one engine.
   */
  recvInto(dst: Uint8Array, offset = 0): number {
    const size = this.peekSize();
    if (size < 0) return -1;
    if (size > dst.length - offset) return -2;
    this.popMessage();
    let pos = offset;
    while (this.reading.length > 0) {
      const seg = this.reading.shift();
      dst.set(seg.len === seg.data.length ? seg.data : seg.data.subarray(0, seg.len), pos);
      pos += seg.len;
      this.recycleSegment(seg);
    }
    return size;
  }

  /** The next whole message as a new buffer, or null. Do not mix with read(). */
  recv(): Uint8Array | null {
    const size = this.peekSize();
    if (size < 0) return null;
    const buf = new Uint8Array(size);
    this.recvInto(buf);
    return buf;
  }

  /**
   * Stream read: copies up to dst.length − offset bytes, across segments, keeping the remainder of a
   * partly read segment for the next call (kcp-go session's Read). Returns bytes copied (0: none ready).
   */
  read(dst: Uint8Array, offset = 0, end = dst.length): number {
    let pos = offset;
    while (pos < end) {
      if (this.reading.length === 0 && !this.popMessage()) break;
      const seg = this.reading.get(0);
      const n = Math.min(seg.len - this.readOff, end - pos);
      dst.set(seg.data.subarray(this.readOff, this.readOff + n), pos);
      pos += n;
      this.readOff += n;
      if (this.readOff === seg.len) {
        this.reading.shift();
        this.recycleSegment(seg);
        this.readOff = 0;
      }
    }
    return pos - offset;
  }

  /** True when read() would return data. */
  readable(): boolean {
    return this.reading.length > 0 || this.peekSize() >= 0;
  }

  /** Moves the next complete message from rcv_queue to `reading`, then refills rcv_queue (kcp-go Recv). */
  private popMessage(): boolean {
    if (this.peekSize() < 0) return false;
    const q = this.rcvQueue;
    const fastRecover = q.length >= this.rcvWnd;
    for (;;) {
      const seg = q.shift();
      this.reading.push(seg);
      if (seg.frg === 0) break;
    }
    this.moveInOrder();
    // The peer saw a zero window and waits for a probe answer: tell it at once ("fast recover").
    if (fastRecover && q.length < this.rcvWnd) this.probe |= ASK_TELL;
    return true;
  }

  // ---- input ----

  /**
   * Feeds one datagram (KCP segments only: outer headers already stripped). `regular` = false for
   * data rebuilt by FEC: it then updates neither the peer's window nor the RTT. Returns 0 or a
   * negative KCP_INPUT_* code; never throws. May queue datagrams (ACKs, and a full flush when the
   * peer's una advanced), so drain pollTransmit() afterwards.
   */
  input(data: Uint8Array, now: number, regular = true): number {
    this.setNow(now);
    const prevUna = this.sndUna;
    const end = data.length;
    if (end < IKCP_OVERHEAD) return KCP_INPUT_BAD_CONV;

    let latestTs = 0;
    let sawAck = false;
    let windowSlides = false;
    let segs = 0;
    let off = 0;
    while (end - off >= IKCP_OVERHEAD) {
      if (readU32(data, off) !== this.conv) return KCP_INPUT_BAD_CONV;
      const cmd = data[off + 4]!;
      const frg = data[off + 5]!;
      const wnd = data[off + 6]! | (data[off + 7]! << 8);
      const ts = readU32(data, off + 8);
      const sn = readU32(data, off + 12);
      const una = readU32(data, off + 16);
      const len = readU32(data, off + 20);
      off += IKCP_OVERHEAD;
      if (end - off < len) return KCP_INPUT_BAD_LEN;
      if (!isKnownCmd(cmd)) return KCP_INPUT_BAD_CMD;

      if (regular) this.rmtWnd = wnd;
      if (this.parseUna(una) > 0) windowSlides = true;
      this.shrinkBuf();

      if (cmd === IKCP_CMD_ACK) {
        this.parseAck(sn, ts);
        sawAck = true;
        latestTs = ts;
      } else if (cmd === IKCP_CMD_PUSH) {
        let repeat = true;
        if (((sn - (this.rcvNxt + this.rcvWnd)) | 0) < 0) {
          this.ackPush(sn, ts);
          if (((sn - this.rcvNxt) | 0) >= 0) repeat = this.parseData(sn, frg, data, off, len);
        }
        if (regular && repeat) this.repeatSegs++;
      } else if (cmd === IKCP_CMD_WASK) {
        this.probe |= ASK_TELL;
      } // WINS: only the common header handling above
      segs++;
      off += len;
    }
    this.inSegs += segs;

    // RTT from the last ACK of the datagram only, and never from FEC-rebuilt data.
    if (sawAck && regular) {
      const rtt = (this.current - latestTs) | 0;
      if (rtt >= 0) this.updateRtt(rtt);
    }
    if (this.nocwnd === 0 && ((this.sndUna - prevUna) | 0) > 0) this.growCwnd();

    if (windowSlides) this.flushSegments(false);
    else if (this.ackNoDelay && this.ackCount > 0) this.flushSegments(true);
    return KCP_INPUT_OK;
  }

  private parseUna(una: number): number {
    const buf = this.sndBuf;
    let count = 0;
    while (buf.length > 0 && ((una - buf.get(0).sn) | 0) > 0) {
      const seg = buf.shift();
      if (!seg.acked) this.delivered(seg.len);
      this.recycleSegment(seg);
      count++;
    }
    return count;
  }

  private shrinkBuf(): void {
    this.sndUna = this.sndBuf.length > 0 ? this.sndBuf.get(0).sn : this.sndNxt;
  }

  /**
   * Marks the acked segment (kcp-go leaves it in snd_buf until una passes it, which keeps snd_buf
   * contiguous in sn: entry i has sn = snd_una + i), then counts a duplicate ACK for every earlier
   * segment sent no later than the acked one (kcp-go's per-ACK fast-ack scan).
   */
  private parseAck(sn: number, ts: number): void {
    const idx = (sn - this.sndUna) | 0;
    if (idx < 0 || ((sn - this.sndNxt) | 0) >= 0) return;
    const buf = this.sndBuf;
    const acked = buf.get(idx);
    if (acked.acked) {
      if (this.ackRepeat) return; // a repeated ACK is no new evidence of a hole
    } else {
      acked.acked = true;
      this.delivered(acked.len);
    }
    for (let i = 0; i < idx; i++) {
      const seg = buf.get(i);
      if (((seg.ts - ts) | 0) <= 0) seg.fastack++;
    }
  }

  private delivered(len: number): void {
    this.deliveredBytes += len + IKCP_OVERHEAD;
    this.deliveredSegs++;
    this.flightBytes -= len + IKCP_OVERHEAD;
  }

  private ackPush(sn: number, ts: number): void {
    const i = this.ackCount * 2;
    if (i === this.ackList.length) {
      const bigger = new Uint32Array(this.ackList.length * 2);
      bigger.set(this.ackList);
      this.ackList = bigger;
    }
    this.ackList[i] = sn;
    this.ackList[i + 1] = ts;
    this.ackCount++;
  }

  /** Stores a PUSH in rcv_buf unless it is a duplicate (returns true then); moves in-order data on. */
  private parseData(sn: number, frg: number, data: Uint8Array, off: number, len: number): boolean {
    const slot = sn & this.rcvMask;
    const repeat = this.rcvSlots[slot] !== undefined;
    if (!repeat) {
      const seg = this.newSegment(len);
      seg.sn = sn;
      seg.frg = frg;
      seg.len = len;
      seg.data.set(data.subarray(off, off + len));
      this.rcvSlots[slot] = seg;
      this.rcvBufSegs++;
    }
    this.moveInOrder();
    return repeat;
  }

  /** rcv_buf → rcv_queue while the next expected sn is there and rcv_queue has room. */
  private moveInOrder(): void {
    const slots = this.rcvSlots;
    const q = this.rcvQueue;
    while (this.rcvBufSegs > 0 && q.length < this.rcvWnd) {
      const slot = this.rcvNxt & this.rcvMask;
      const seg = slots[slot];
      if (seg === undefined) break;
      slots[slot] = undefined;
      this.rcvBufSegs--;
      q.push(seg);
      this.rcvNxt = (this.rcvNxt + 1) >>> 0;
    }
  }

  private growRcvSlots(rcvWnd: number): void {
    let cap = 1;
    while (cap < rcvWnd) cap <<= 1;
    if (cap <= this.rcvSlots.length) return;
    const next = new Array<Segment | undefined>(cap);
    for (const seg of this.rcvSlots) if (seg !== undefined) next[seg.sn & (cap - 1)] = seg;
    this.rcvSlots = next;
    this.rcvMask = cap - 1;
  }

  /** kcp-go's update_ack (RFC 6298 with an 8× lighter weight for samples below srtt − rttvar). */
  private updateRtt(rtt: number): void {
    this.rttSamples++;
    this.lastRtt = rtt;
    if (this.rxSrtt === 0) {
      this.rxSrtt = rtt;
      this.rxRttvar = rtt >> 1;
    } else {
      let delta = (rtt - this.rxSrtt) | 0;
      this.rxSrtt = (this.rxSrtt + (delta >> 3)) | 0;
      if (delta < 0) delta = -delta;
      if (rtt < this.rxSrtt - this.rxRttvar) this.rxRttvar = (this.rxRttvar + ((delta - this.rxRttvar) >> 5)) | 0;
      else this.rxRttvar = (this.rxRttvar + ((delta - this.rxRttvar) >> 2)) | 0;
    }
    const rto = (this.rxSrtt >>> 0) + Math.max(this.interval, (this.rxRttvar << 2) >>> 0);
    this.rxRto = Math.min(Math.max(this.rxMinrto, rto), IKCP_RTO_MAX);
  }

  /** Congestion window growth when una advanced (nc=0 only): slow start, then additive increase. */
  private growCwnd(): void {
    if (this.cwnd >= this.rmtWnd) return;
    const mss = this.mss;
    if (this.cwnd < this.ssthresh) {
      this.cwnd++;
      this.incr += mss;
    } else {
      if (this.incr < mss) this.incr = mss;
      this.incr += Math.floor((mss * mss) / this.incr) + (mss >>> 4);
      if ((this.cwnd + 1) * mss <= this.incr) this.cwnd = Math.floor((this.incr + mss - 1) / mss);
    }
    if (this.cwnd > this.rmtWnd) {
      this.cwnd = this.rmtWnd;
      this.incr = this.rmtWnd * mss;
    }
  }

  // ---- output ----

  /** A full flush now (what kcp-go does on every Write with write-delay off). */
  flush(now: number): void {
    this.setNow(now);
    this.flushSegments(false);
  }

  /** Absolute time (caller's domain) at which handleTimeout must run; before the first call: at once. */
  pollTimeout(): number {
    return this.timerArmed ? this.nextFlushAt : this.lastNow;
  }

  /**
   * The session timer (kcp-go's update): when due, a full flush, and the next run is
   * min(interval, time to the earliest pending RTO) later. Calling it early is harmless.
   */
  handleTimeout(now: number): void {
    this.setNow(now);
    if (this.timerArmed && ((now - this.nextFlushAt) | 0) < 0) return;
    const wait = this.flushSegments(false);
    this.nextFlushAt = now + wait;
    this.timerArmed = true;
  }

  /** The next datagram to send (owned by the caller from now on), or null. */
  pollTransmit(): Uint8Array | null {
    return this.txQueue.length > 0 ? this.txQueue.shift() : null;
  }

  /** Returns a datagram from pollTransmit() once sent, so its memory is reused. Optional. */
  recycleTransmit(buf: Uint8Array): void {
    if (buf.byteOffset === 0 && buf.buffer.byteLength === this.mtu) {
      datagramPool.give(this.mtu, new Uint8Array(buf.buffer, 0, this.mtu));
    }
  }

  private setNow(now: number): void {
    this.lastNow = now;
    this.current = now >>> 0;
  }

  private wndUnused(): number {
    return this.rcvQueue.length < this.rcvWnd ? this.rcvWnd - this.rcvQueue.length : 0;
  }

  /** Writes last flush's ACKs still above rcv_nxt again, then keeps this flush's for the next one. */
  private repeatAcks(wnd: number, una: number): void {
    const prev = this.ackPrev;
    for (let i = 0; i < this.ackPrevCount; i++) {
      const sn = prev[2 * i]!;
      if (((sn - this.rcvNxt) | 0) < 0) continue; // una covers it now
      this.makeSpace(IKCP_OVERHEAD);
      this.writeHeader(IKCP_CMD_ACK, 0, wnd, prev[2 * i + 1]!, sn, una, 0);
    }
    if (prev.length < this.ackList.length) this.ackPrev = new Uint32Array(this.ackList.length);
    this.ackPrev.set(this.ackList.subarray(0, 2 * this.ackCount));
    this.ackPrevCount = this.ackCount;
  }

  /** Starts a new datagram when `space` more bytes would overflow the MTU. */
  private makeSpace(space: number): void {
    if (this.outPos + space > this.mtu) this.emit();
  }

  private emit(): void {
    this.txQueue.push(this.out.subarray(0, this.outPos));
    this.out = datagramPool.take(this.mtu) ?? new Uint8Array(this.mtu);
    this.outPos = this.headroom;
  }

  private writeHeader(cmd: number, frg: number, wnd: number, ts: number, sn: number, una: number, len: number): void {
    this.outPos = writeSegmentHeader(this.out, this.outPos, this.conv, cmd, frg, wnd, ts, sn, una, len);
    this.outSegs++;
  }

  /**
   * kcp-go v5.6.1 flush: ACKs, then WASK/WINS, then new and retransmitted PUSH segments in sn order.
   * Returns the delay until the next timer run: min(interval, earliest positive RTO deadline).
   */
  private flushSegments(ackOnly: boolean): number {
    const current = this.current;
    const wnd = this.wndUnused();
    const una = this.rcvNxt;

    // ACK/WASK/WINS share one template; WASK/WINS carry the sn/ts of the last ACK written, as C ikcp.
    let tplSn = 0;
    let tplTs = 0;
    const acks = this.ackList;
    const n = this.ackCount;
    // Repeats first: the RTT sample is taken from a datagram's last ACK, which must be a fresh one.
    if (this.ackRepeat && n > 0) this.repeatAcks(wnd, una);
    for (let i = 0; i < n; i++) {
      this.makeSpace(IKCP_OVERHEAD);
      const sn = acks[2 * i]!;
      // kcp-go's filter against bufferbloat jitter: skip ACKs below rcv_nxt except the last one.
      if (((sn - this.rcvNxt) | 0) >= 0 || i === n - 1) {
        tplSn = sn;
        tplTs = acks[2 * i + 1]!;
        this.writeHeader(IKCP_CMD_ACK, 0, wnd, tplTs, tplSn, una, 0);
      }
    }
    this.ackCount = 0;

    if (ackOnly) {
      if (this.outPos > this.headroom) this.emit();
      return this.interval;
    }

    if (this.rmtWnd === 0) {
      if (this.probeWait === 0) {
        this.probeWait = this.probeInit;
        this.tsProbe = (current + this.probeWait) >>> 0;
      } else if (((current - this.tsProbe) | 0) >= 0) {
        if (this.probeWait < this.probeInit) this.probeWait = this.probeInit;
        this.probeWait = Math.min(this.probeWait + (this.probeWait >>> 1), IKCP_PROBE_LIMIT);
        this.tsProbe = (current + this.probeWait) >>> 0;
        this.probe |= ASK_SEND;
      }
    } else {
      this.tsProbe = 0;
      this.probeWait = 0;
    }
    if (this.probe & ASK_SEND) {
      this.makeSpace(IKCP_OVERHEAD);
      this.writeHeader(IKCP_CMD_WASK, 0, wnd, tplTs, tplSn, una, 0);
    }
    if (this.probe & ASK_TELL) {
      this.makeSpace(IKCP_OVERHEAD);
      this.writeHeader(IKCP_CMD_WINS, 0, wnd, tplTs, tplSn, una, 0);
    }
    this.probe = 0;

    let cwnd = Math.min(this.sndWnd, this.rmtWnd);
    if (this.nocwnd === 0) cwnd = Math.min(this.cwnd, cwnd);

    // Slide new segments into flight.
    let newSegs = 0;
    const sndBuf = this.sndBuf;
    while (this.sndQueue.length > 0 && ((this.sndNxt - (this.sndUna + cwnd)) | 0) < 0 && this.newSegmentQuota > 0) {
      const seg = this.sndQueue.shift();
      seg.sn = this.sndNxt;
      sndBuf.push(seg);
      this.sndNxt = (this.sndNxt + 1) >>> 0;
      this.flightBytes += seg.len + IKCP_OVERHEAD;
      this.newSegmentQuota--;
      newSegs++;
    }
    this.newSegsSent += newSegs;
    // kcp-go's early retransmit is for a tail: nothing new could go out. A paced engine with data still
    // queued is merely waiting its turn, so one out-of-order ACK must not resend there.
    const tail = newSegs === 0 && (this.newSegmentQuota === Infinity || this.sndQueue.length === 0);

    const resent = this.fastresend > 0 ? this.fastresend : 0xffffffff;
    // An outer pacer knows how long its own queue holds a segment; the RTT samples may not show it yet.
    const rxRto = Math.max(this.rxRto, this.rtoFloor);
    let minrto = this.interval;
    let change = 0;
    let lost = 0;
    let fast = 0;
    let early = 0;
    for (let k = 0; k < sndBuf.length; k++) {
      const seg = sndBuf.get(k);
      if (seg.acked) continue;
      let needsend = true;
      if (seg.xmit === 0) {
        seg.rto = rxRto;
        seg.resendts = (current + seg.rto) >>> 0;
      } else if (seg.fastack >= resent) {
        seg.fastack = 0;
        seg.rto = rxRto;
        seg.resendts = (current + seg.rto) >>> 0;
        change++;
        fast++;
      } else if (seg.fastack > 0 && tail) {
        // kcp-go's early retransmit: any duplicate ACK resends when nothing new could go out.
        seg.fastack = 0;
        seg.rto = rxRto;
        seg.resendts = (current + seg.rto) >>> 0;
        change++;
        early++;
      } else if (((current - seg.resendts) | 0) >= 0) {
        seg.rto += this.nodelay === 0 ? rxRto : rxRto >>> 1;
        seg.fastack = 0;
        seg.resendts = (current + seg.rto) >>> 0;
        lost++;
      } else {
        needsend = false;
      }
      if (needsend) {
        seg.xmit++;
        seg.ts = current;
        this.makeSpace(IKCP_OVERHEAD + seg.len);
        this.writeHeader(IKCP_CMD_PUSH, seg.frg, wnd, current, seg.sn, una, seg.len);
        this.out.set(seg.len === seg.data.length ? seg.data : seg.data.subarray(0, seg.len), this.outPos);
        this.outPos += seg.len;
        if (seg.xmit >= this.deadLink) this.state = KCP_STATE_DEAD;
      }
      const untilResend = (seg.resendts - current) | 0;
      if (untilResend > 0 && untilResend < minrto) minrto = untilResend;
    }
    if (this.outPos > this.headroom) this.emit();

    this.lostSegs += lost;
    this.fastRetransSegs += fast;
    this.earlyRetransSegs += early;
    this.retransSegs += lost + fast + early;

    if (this.nocwnd === 0) {
      if (change > 0) {
        // Rate halving. With resend=0, `resent` is 0xFFFFFFFF and kcp-go's u32 sum wraps to ssthresh−1.
        this.ssthresh = Math.max(((this.sndNxt - this.sndUna) >>> 0) >>> 1, IKCP_THRESH_MIN);
        this.cwnd = (this.ssthresh + resent) >>> 0;
        this.incr = (this.cwnd * this.mss) >>> 0;
      }
      if (lost > 0) {
        this.ssthresh = Math.max(cwnd >>> 1, IKCP_THRESH_MIN);
        this.cwnd = 1;
        this.incr = this.mss;
      }
      if (this.cwnd < 1) {
        this.cwnd = 1;
        this.incr = this.mss;
      }
    }
    return minrto;
  }

  // ---- segment memory ----

  /**
   * Gives every buffered segment back to the shared pool (kcp-go's ReleaseTX, extended to the receive
   * side). Call once when discarding the engine; it must not be used afterwards.
   */
  release(): void {
    for (const ring of [this.sndQueue, this.sndBuf, this.rcvQueue, this.reading]) {
      while (ring.length > 0) this.recycleSegment(ring.shift());
    }
    for (let i = 0; i < this.rcvSlots.length; i++) {
      const seg = this.rcvSlots[i];
      if (seg !== undefined) this.recycleSegment(seg);
      this.rcvSlots[i] = undefined;
    }
    this.rcvBufSegs = 0;
  }

  private newSegment(len: number): Segment {
    const seg = len <= this.mtu ? segmentPool.take(this.mtu) : undefined;
    if (seg !== undefined) return seg;
    return new Segment(new Uint8Array(Math.max(len, this.mtu)));
  }

  private recycleSegment(seg: Segment): void {
    if (seg.data.length !== this.mtu) return;
    seg.sn = seg.frg = seg.ts = seg.resendts = seg.rto = seg.fastack = seg.xmit = seg.len = 0;
    seg.acked = false;
    segmentPool.give(this.mtu, seg);
  }
}
