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
 * MTU and headroom. `mtu` is the whole datagram budget (kcp-go's SetMtu); the first `headroom` bytes
 * of each datagram are left for the FEC and crypto headers later layers write in place (kcp-go's
 * ReserveBytes). MSS = mtu − headroom − 24: kcptun's defaults (1350, 16 + 4 + 8 = 28) give 1298.
 *
 * Clock. The wire ts is `now >>> 0`; all comparisons of u32 quantities use `(a - b) | 0`, so the
 * u32 clock may wrap. Deadlines returned by pollTimeout() are in the caller's own domain (now + delay).
 *
 * Buffers. Datagrams from pollTransmit() belong to the caller; recycleTransmit() once sent lets the
 * engine reuse one (no allocation per datagram). input() copies what it keeps.
 */
import { AckList } from './ack-list.js';
import { CongestionWindow } from './congestion-window.js';
import { DatagramOut } from './datagram-out.js';
import { intInRange, KCP_INPUT_BAD_CMD, KCP_INPUT_BAD_CONV, KCP_INPUT_BAD_LEN, KCP_INPUT_OK, KCP_STATE_DEAD, type KcpOptions } from './options.js';
import { ReceiveBuffer } from './receive-buffer.js';
import { Ring } from './ring.js';
import { FlushScan, NO_DEADLINE } from './flush-scan.js';
import { Rack } from './rack.js';
import { RttEstimator } from './rtt-estimator.js';
import {
  IKCP_CMD_ACK, IKCP_CMD_PUSH, IKCP_CMD_WASK, IKCP_CMD_WINS, IKCP_DEADLINK, IKCP_INTERVAL, IKCP_MTU_DEF,
  IKCP_OVERHEAD, IKCP_PROBE_INIT, IKCP_PROBE_LIMIT, IKCP_RTO_MIN, IKCP_RTO_NDL, IKCP_WND_RCV, IKCP_WND_SND,
  KCP_MTU_LIMIT, isKnownCmd, readU32,
} from './segment.js';
import { type Segment, SegmentStore } from './segment-store.js';
import { queueData, tailWaits } from './send-queue.js';
import { ASK_SEND, ASK_TELL, WindowProbe } from './window-probe.js';

export { KCP_INPUT_BAD_CMD, KCP_INPUT_BAD_CONV, KCP_INPUT_BAD_LEN, KCP_INPUT_OK, KCP_STATE_DEAD } from './options.js';
export type { KcpOptions, KcpTuning } from './options.js';

/** With RACK: segments one flush resends on timeout (see the flush). */
const RACK_RTO_PROBES = 2;

export class Kcp {
  readonly conv: number;
  readonly mtu: number;
  readonly headroom: number;
  /** Payload bytes per segment: mtu − headroom − 24. */
  readonly mss: number;

  // Counters (kcp-go SNMP names: InSegs, OutSegs, RetransSegs, FastRetransSegs, EarlyRetransSegs,
  // LostSegs, RepeatSegs), per engine; a session table sums them.
  inSegs = 0; retransSegs = 0; fastRetransSegs = 0; earlyRetransSegs = 0; lostSegs = 0; repeatSegs = 0;

  /**
   * New segments a flush may still move into flight. Infinity (the default, kcp-go's behaviour): as many
   * as the windows allow. An outer pacer (the proxy carrier's path controller) keeps it at 0 and grants a
   * few at a time; retransmissions and ACKs are never held back by it.
   */
  newSegmentQuota = Infinity;
  /** Lower bound (ms) on every segment's RTO, set by an outer pacer (0: kcp-go's RTO alone). */
  rtoFloor = 0;
  holdPartialTail = false; // Nagle's rule (send-queue.ts tailWaits; off in kcp-go)
  /** With `rack`: ms more to wait before a hole counts as lost (an outer FEC's repair may still come). */
  rackExtraMs = 0;
  /** What the last full scan of snd_buf found: a flush with nothing new skips it (flush-scan.ts). */
  private readonly scan = new FlushScan();
  /** Segment bytes (with header) acknowledged for the first time, selectively or by una, and how many segments; cumulative. */
  deliveredBytes = 0;
  deliveredSegs = 0;
  /** Segment bytes (header included) sent and not yet acknowledged. */
  flightBytes = 0;
  /** Segments moved into flight (first transmissions), cumulative. */
  newSegsSent = 0;

  /** 0, or KCP_STATE_DEAD once a segment was sent `deadLink` times. kcp-go itself never acts on it. */
  state = 0;
  ackNoDelay: boolean;
  streamMode: boolean;
  private readonly ackRepeat: boolean;
  private readonly resendTwice: boolean;
  private readonly tailProbe: boolean;
  /** A flush's resends that leave a second time, after its other segments (the resendTwice option). */
  private readonly copies: Segment[] = [];
  private readonly inputFlushes: boolean;
  /** Time-based loss detection (the `rack` option), or null for kcp-go's duplicate ACKs. */
  private readonly rack: Rack | null;

  private sndUna = 0; private sndNxt = 0;
  private readonly rtt = new RttEstimator(IKCP_RTO_MIN);
  private sndWnd = IKCP_WND_SND;
  private rmtWnd = IKCP_WND_RCV;
  private readonly cc: CongestionWindow;
  private readonly probe: WindowProbe;
  private interval = IKCP_INTERVAL;
  private nodelay = 0;
  private readonly deadLink: number;
  private fastresend = 0;
  private nocwnd = 0;

  private current = 0; // u32 clock of the call in progress
  private lastNow = 0; // the same, in the caller's domain
  private nextFlushAt = 0; // caller's domain
  private timerArmed = false;
  private hostLate = false; // this timer run is late (see handleTimeout)
  private deferredRto = false; // the last run deferred its timeouts

  private readonly store: SegmentStore;
  private readonly sndQueue = new Ring<Segment>(64);
  private readonly sndBuf = new Ring<Segment>(64);
  private readonly rx: ReceiveBuffer;
  private readonly acks = new AckList();

  private readonly tx: DatagramOut;

  constructor(opts: KcpOptions) {
    this.conv = intInRange('conv', opts.conv, 0, 0xffffffff);
    this.mtu = intInRange('mtu', opts.mtu ?? IKCP_MTU_DEF, 50, KCP_MTU_LIMIT);
    this.headroom = intInRange('headroom', opts.headroom ?? 0, 0, this.mtu - IKCP_OVERHEAD - 1);
    this.mss = this.mtu - IKCP_OVERHEAD - this.headroom;
    this.probe = new WindowProbe(intInRange('probeInitMs', opts.probeInitMs ?? IKCP_PROBE_INIT, 1, IKCP_PROBE_LIMIT));
    this.deadLink = intInRange('deadLink', opts.deadLink ?? IKCP_DEADLINK, 1, 0xffffffff);
    this.streamMode = opts.streamMode ?? false;
    this.ackNoDelay = opts.ackNoDelay ?? false;
    this.ackRepeat = opts.ackRepeat ?? false;
    this.resendTwice = opts.resendTwice ?? false;
    this.tailProbe = opts.tailProbe ?? false;
    this.inputFlushes = opts.inputFlushes ?? true;
    this.rack = opts.rack ? new Rack(intInRange('rackMaxReorder', opts.rackMaxReorder ?? 8, 1, 8)) : null;
    this.store = new SegmentStore(this.mtu);
    this.cc = new CongestionWindow(this.mss);
    this.rx = new ReceiveBuffer(this.store, IKCP_WND_RCV);
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
    this.tx = new DatagramOut(this.store, this.conv, this.mtu, this.headroom);
  }

  get outSegs(): number {
    return this.tx.segs;
  }

  // ---- configuration (kcp-go NoDelay / WndSize) ----

  /** As kcp-go's NoDelay: a negative argument keeps the current value; interval is clamped to [10, 5000]. */
  setNoDelay(nodelay: number, interval: number, resend: number, nc: number): void {
    if (nodelay >= 0) {
      this.nodelay = nodelay;
      this.rtt.minRto = nodelay !== 0 ? IKCP_RTO_NDL : IKCP_RTO_MIN;
    }
    if (interval >= 0) this.interval = Math.min(5000, Math.max(10, interval));
    if (resend >= 0) this.fastresend = resend;
    if (nc >= 0) this.nocwnd = nc;
  }

  /** As kcp-go's WndSize: a value ≤ 0 keeps the current one. */
  setWindows(sndWnd: number, rcvWnd: number): void {
    if (sndWnd > 0) this.sndWnd = sndWnd;
    if (rcvWnd > 0) this.rx.wnd = rcvWnd;
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
    if (this.sndQueue.length === 0 || (this.holdPartialTail && tailWaits(this.sndQueue, this.sndBuf.length, this.mss))) return false;
    let wnd = Math.min(this.sndWnd, this.rmtWnd);
    if (this.nocwnd === 0) wnd = Math.min(this.cc.cwnd, wnd);
    return ((this.sndNxt - (this.sndUna + wnd)) | 0) < 0;
  }

  /** kcptun 2021's write back-pressure: a Write may proceed while waitsnd < min(snd_wnd, rmt_wnd). */
  canWrite(): boolean {
    const w = this.waitSnd;
    return w < this.sndWnd && w < this.rmtWnd;
  }

  get srtt(): number { return this.rtt.srtt; }
  get rttvar(): number { return this.rtt.rttvar; }
  get rto(): number { return this.rtt.rto; }
  /** RTT samples taken, and the last one (ms). */
  get rttSamples(): number { return this.rtt.samples; }
  get lastRtt(): number { return this.rtt.last; }
  /** The peer's advertised free receive window, from the last regular datagram. */
  get remoteWindow(): number { return this.rmtWnd; }
  get sendWindow(): number { return this.sndWnd; }
  get receiveWindow(): number { return this.rx.wnd; }
  /** Congestion window (meaningful with nc=0). */
  get congestionWindow(): number { return this.cc.cwnd; }
  /** Segments waiting out of order in rcv_buf. */
  get rcvBufCount(): number { return this.rx.held; }
  get acksOwed(): number { return this.acks.count; } // segments whose ACKs the next flush sends
  get deadLinkReached(): boolean { return this.state === KCP_STATE_DEAD; }

  /** Asks the peer for its free receive window: a WASK goes out with the next flush, answered by a WINS. */
  askWindow(): void { this.probe.due |= ASK_SEND; }
  /** rcv_nxt: every sn below it has been received. */
  get receiveNext(): number { return this.rx.next; }

  // ---- sending ----

  /**
   * Queues data; returns data.length, or -1 for empty data, or -2 in message mode when the message
   * needs more than 255 segments (kcp-go refuses it). Stream mode splits any length into MSS pieces
   * after topping up the last still-unsent segment, as kcp-go's Write + Send do. The data is copied.
   * Nothing is sent until flush(now) or the next timer flush.
   */
  send(data: Uint8Array): number {
    return queueData(this.sndQueue, this.store, data, this.mss, this.streamMode);
  }

  // ---- receiving ----

  /** Size of the next complete message in rcv_queue (stream mode: the next segment), or -1. */
  peekSize(): number { return this.rx.peekSize(); }

  /**
   * kcp-go's Recv: copies the next whole message into dst at offset; returns its length, -1 when
   * none is ready, -2 when it does not fit. Do not mix with read() on one engine.
   */
  recvInto(dst: Uint8Array, offset = 0): number {
    const n = this.rx.recvInto(dst, offset);
    this.afterRead();
    return n;
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
    const n = this.rx.read(dst, offset, end);
    this.afterRead();
    return n;
  }

  /** True when read() would return data. */
  readable(): boolean { return this.rx.readable(); }

  /** The peer saw a zero window and waits for a probe answer: tell it at once ("fast recover"). */
  private afterRead(): void {
    if (this.rx.reopened) this.probe.due |= ASK_TELL;
    this.rx.reopened = false;
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
    this.scan.stale = true;
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
      // An ACK is read before its una, which covers the segment it names once that was rcv_nxt: only its
      // ts echo tells RACK which transmission arrived (read after, a window lost whole was repaired two RTO
      // probes per RTO: 80 s for 1,000 segments). kcp-go reads the una first; its duplicate-ACK counts
      // come out the same, as the segments this order also counts are the ones the una frees.
      if (cmd === IKCP_CMD_ACK) this.parseAck(sn, ts);
      if (this.parseUna(una) > 0) windowSlides = true;
      this.shrinkBuf();

      if (cmd === IKCP_CMD_ACK) {
        sawAck = true;
        latestTs = ts;
      } else if (cmd === IKCP_CMD_PUSH) {
        let repeat = true;
        if (this.rx.inWindow(sn)) {
          this.acks.push(sn, ts);
          if (((sn - this.rx.next) | 0) >= 0) repeat = this.rx.insert(sn, frg, data, off, len);
        }
        if (regular && repeat) this.repeatSegs++;
      } else if (cmd === IKCP_CMD_WASK) {
        this.probe.due |= ASK_TELL;
      } // WINS: only the common header handling above
      segs++;
      off += len;
    }
    this.inSegs += segs;

    // RTT from the last ACK of the datagram only, and never from FEC-rebuilt data.
    if (sawAck && regular) {
      const rtt = (this.current - latestTs) | 0;
      if (rtt >= 0) this.rtt.update(rtt, this.interval);
    }
    if (this.nocwnd === 0 && ((this.sndUna - prevUna) | 0) > 0) this.cc.grow(this.rmtWnd);

    if (windowSlides && this.inputFlushes) this.flushSegments(false);
    else if (this.ackNoDelay && this.acks.count > 0) this.flushSegments(true);
    return KCP_INPUT_OK;
  }

  private parseUna(una: number): number {
    const buf = this.sndBuf;
    let count = 0;
    while (buf.length > 0 && ((una - buf.get(0).sn) | 0) > 0) {
      const seg = buf.shift();
      if (!seg.acked) {
        this.delivered(seg.len);
        this.rack?.covered(seg, this.current);
      }
      this.store.give(seg);
      count++;
    }
    return count;
  }

  private shrinkBuf(): void {
    this.sndUna = this.sndBuf.length > 0 ? this.sndBuf.get(0).sn : this.sndNxt;
  }

  /**
   * Marks the acked segment (kcp-go leaves it in snd_buf until una passes it, which keeps snd_buf
   * contiguous in sn: entry i has sn = snd_una + i), then, without RACK, counts a duplicate ACK for
   * every earlier segment sent no later than the acked one (kcp-go's per-ACK fast-ack scan).
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
      this.rack?.acked(acked, ts, this.current); // ts echoes the very transmission that arrived
    }
    if (this.rack !== null) return; // RACK reads send times, not duplicate counts: no O(window) scan per ACK
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

  // ---- output ----

  /** A full flush now (what kcp-go does on every Write with write-delay off). */
  flush(now: number): void {
    this.setNow(now);
    this.flushSegments(false, false);
  }

  /**
   * Sends pending ACKs and moves new segments into flight (up to the quota) without checking the
   * segments already in flight for resends: O(new segments), where flush() is O(window). For an outer
   * pacer's grants, between the full flushes its driver makes once per pass.
   */
  flushNew(now: number): void {
    this.setNow(now);
    this.flushSegments(false, true);
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
    // A run this late means our own host stalled: the ACKs that cancel a timeout may still wait in our
    // socket. With RACK a timeout then waits one ms more (once: on a host always late, it must still fire).
    this.hostLate = this.rack !== null && !this.deferredRto && this.timerArmed && now - this.nextFlushAt > this.interval;
    const wait = this.flushSegments(false);
    this.deferredRto = this.hostLate; this.hostLate = false;
    this.nextFlushAt = now + wait;
    this.timerArmed = true;
  }

  /** The next datagram to send (owned by the caller from now on), or null. */
  pollTransmit(): Uint8Array | null {
    return this.tx.poll();
  }

  /** Returns a datagram from pollTransmit() once sent, so its memory is reused. Optional. */
  recycleTransmit(buf: Uint8Array): void {
    this.store.giveDatagram(buf);
  }

  private setNow(now: number): void {
    this.lastNow = now;
    this.current = now >>> 0;
  }

  /**
   * kcp-go v5.6.1 flush: ACKs, then WASK/WINS, then new and retransmitted PUSH segments in sn order.
   * Returns the delay until the next timer run: min(interval, earliest positive RTO deadline).
   */
  private flushSegments(ackOnly: boolean, newOnly = false): number {
    const current = this.current;
    const wnd = this.rx.unused();
    const una = this.rx.next;

    this.acks.write(this.tx, wnd, una, this.ackRepeat);

    if (ackOnly) {
      this.tx.finish();
      return this.interval;
    }

    const probe = this.probe;
    probe.check(this.rmtWnd, current);
    // WASK/WINS carry the sn/ts of the last ACK written, as C ikcp.
    const acks = this.acks;
    if (probe.due & ASK_SEND) this.tx.header(IKCP_CMD_WASK, 0, wnd, acks.lastTs, acks.lastSn, una, 0);
    if (probe.due & ASK_TELL) this.tx.header(IKCP_CMD_WINS, 0, wnd, acks.lastTs, acks.lastSn, una, 0);
    probe.due = 0;

    let cwnd = Math.min(this.sndWnd, this.rmtWnd);
    if (this.nocwnd === 0) cwnd = Math.min(this.cc.cwnd, cwnd);

    // Slide new segments into flight.
    let newSegs = 0;
    const sndBuf = this.sndBuf;
    while (this.sndQueue.length > 0 && ((this.sndNxt - (this.sndUna + cwnd)) | 0) < 0 && this.newSegmentQuota > 0 && !(this.holdPartialTail && tailWaits(this.sndQueue, sndBuf.length, this.mss))) {
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
    const tail = this.rack === null && newSegs === 0 && (this.newSegmentQuota === Infinity || this.sndQueue.length === 0);

    // RACK replaces the duplicate-ACK count: both at once would resend on the first reordering again.
    const resent = this.fastresend > 0 && this.rack === null ? this.fastresend : 0xffffffff;
    // An outer pacer knows how long its own queue holds a segment; the RTT samples may not show it yet.
    const rxRto = Math.max(this.rtt.rto, this.rtoFloor);
    const rack = this.rack;
    const rackWait = rack === null ? -1 : rack.wait(this.rtt.srtt, this.rackExtraMs);
    const probeWait = this.tailProbe ? rackWait : -1;
    let probes = 0;
    let change = 0;
    let lost = 0;
    let fast = 0;
    let early = 0;
    // The segments already in flight only when something could have changed for them (flush-scan.ts).
    const skipOld = newOnly || this.scan.canSkip(current, rackWait, tail);
    let earliest = NO_DEADLINE;
    let fastackSeen = false;
    for (let k = skipOld ? sndBuf.length - newSegs : 0; k < sndBuf.length; k++) {
      const seg = sndBuf.get(k);
      if (seg.acked) continue;
      let needsend = true;
      if (seg.xmit === 0) {
        seg.rto = rxRto;
        seg.resendts = (current + seg.rto) >>> 0;
      } else if (seg.fastack >= resent || (rackWait >= 0 && rack!.candidate(seg) && rack!.untilLost(seg, current, rackWait) <= 0)) {
        seg.fastack = 0; // (counted only without RACK)
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
      } else if (rack !== null && rack.defers(seg, current)) {
        needsend = false; // ACKs still bring news: a hole would show to RACK, so no timeout yet
      } else if (((current - seg.resendts) | 0) >= 0 && (rack === null || (lost < RACK_RTO_PROBES && !this.hostLate))) {
        seg.rto += this.nodelay === 0 ? rxRto : rxRto >>> 1;
        seg.fastack = 0;
        seg.resendts = (current + seg.rto) >>> 0;
        lost++;
      } else if (((current - seg.resendts) | 0) >= 0) {
        // RACK: a timeout resends only the oldest segments, as probes. A stalled host or path (the
        // usual cause on a busy machine) then costs two segments, not the window; if the rest are
        // really lost, the probes' ACKs let RACK find them within a round trip.
        if (this.hostLate) earliest = 1;
        else seg.resendts = (current + seg.rto) >>> 0;
        needsend = false;
      } else if (probeWait >= 0 && probes === 0 && rack!.untilProbe(seg, current, probeWait) <= 0) {
        seg.resendts = (current + seg.rto) >>> 0; // a tail-loss probe (rack.ts)
        probes++;
      } else {
        needsend = false;
      }
      if (needsend) {
        if (seg.xmit > 0 && this.resendTwice && k < cwnd >>> 1) this.copies.push(seg);
        seg.xmit++;
        seg.ts = current;
        this.tx.push(seg, wnd, una);
        if (seg.xmit >= this.deadLink) this.state = KCP_STATE_DEAD;
      }
      const untilResend = (seg.resendts - current) | 0;
      if (untilResend > 0 && untilResend < earliest) earliest = untilResend;
      if (rackWait >= 0 && !needsend) {
        const until = rack!.candidate(seg) ? rack!.untilLost(seg, current, rackWait)
          : probeWait >= 0 ? rack!.untilProbe(seg, current, probeWait) : 0;
        if (until > 0 && until < earliest) earliest = until;
      }
      if (seg.fastack > 0) fastackSeen = true;
    }
    this.tx.finish();
    if (newSegs + change + lost + probes > 0) rack?.sent(current, probes > 0);
    if (this.copies.length > 0) this.sendCopies(wnd, una);
    earliest = this.scan.record(!skipOld, current, earliest, rackWait, fastackSeen);

    this.lostSegs += lost;
    this.fastRetransSegs += fast;
    this.earlyRetransSegs += early;
    this.retransSegs += lost + fast + early + probes;

    if (this.nocwnd === 0) this.cc.afterFlush(change, lost, (this.sndNxt - this.sndUna) >>> 0, cwnd, resent);
    return Math.min(this.interval, earliest);
  }

  /** The second transmissions of this flush's resends (resendTwice), each in another datagram than its first. */
  private sendCopies(wnd: number, una: number): void {
    for (const seg of this.copies) this.tx.push(seg, wnd, una);
    this.retransSegs += this.copies.length;
    this.copies.length = 0;
    this.tx.finish();
  }

  // ---- segment memory ----

  /**
   * Gives every buffered segment back to the shared pool (kcp-go's ReleaseTX, extended to the receive
   * side). Call once when discarding the engine; it must not be used afterwards.
   */
  release(): void {
    for (const ring of [this.sndQueue, this.sndBuf]) while (ring.length > 0) this.store.give(ring.shift());
    this.rx.release();
  }
}
