/**
 * One kcp-go UDPSession's datagram pipeline, sans-IO: crypt + CRC framing ↔ FEC ↔ KCP (one conv).
 * It turns datagrams into a reliable byte stream and back (docs/kcptun-wire.md §1):
 *
 *   in:  open (decrypt + CRC) → FEC? (flag at offset 4) → KCP input (regular / rebuilt)
 *   out: KCP datagram (headroom left for FEC + crypto) → FEC data header (+ parity) → seal
 *
 * Datagrams from pollTransmit() are ready for the socket. Counters go to the shared SNMP block.
 */
import { Kcp, type KcpTuning, KCP_INPUT_OK } from '../kcp/kcp.js';
import { IKCP_CMD_PUSH, IKCP_OVERHEAD, IKCP_SN_OFFSET, KCP_MTU_LIMIT } from '../kcp/segment.js';
import { readU32Le } from '../../packet/bytes.js';
import { OPEN_TOO_SHORT, type DatagramCrypt } from '../crypt/datagram.js';
import { FecDecoder, type FecDecoderCounters } from '../fec/decoder.js';
import { FecEncoder } from '../fec/encoder.js';
import { FEC_HEADER_SIZE } from '../fec/header.js';
import type { KcptunSnmp } from './snmp.js';
import { Fifo } from '../smux/queue.js';

export interface KcpLinkConfig extends KcpTuning {
  conv: number;
  crypt: DatagramCrypt;
  /** Both > 0 turn FEC on for sending; received FEC packets are decoded whatever these say. */
  dataShards: number;
  parityShards: number;
  /** Whole UDP payload budget (kcptun --mtu), crypto and FEC headers included. */
  mtu: number;
  ackNoDelay: boolean;
}

/** The KCP engine's counters that feed SNMP fields of the same names (kcp-go's). */
interface KcpCounters {
  inSegs: number;
  outSegs: number;
  repeatSegs: number;
  fastRetransSegs: number;
  earlyRetransSegs: number;
  lostSegs: number;
  retransSegs: number;
}

const zeroKcpCounters = (): KcpCounters => ({
  inSegs: 0, outSegs: 0, repeatSegs: 0, fastRetransSegs: 0, earlyRetransSegs: 0, lostSegs: 0, retransSegs: 0,
});
const zeroFecCounters = (): FecDecoderCounters => ({ parityShards: 0, errs: 0, recovered: 0, shortShards: 0 });

/*
 * The two functions below add what a layer's own counters gained since `seen` to their SNMP fields,
 * then remember the current values: the layers count per instance, SNMP counts per process. They run
 * for every datagram, so each field is spelled out: a loop over field names was a megamorphic keyed
 * load and store per field per datagram.
 */
function addKcpGains(snmp: KcptunSnmp, c: KcpCounters, seen: KcpCounters): void {
  snmp.InSegs += c.inSegs - seen.inSegs;
  snmp.OutSegs += c.outSegs - seen.outSegs;
  snmp.RepeatSegs += c.repeatSegs - seen.repeatSegs;
  snmp.FastRetransSegs += c.fastRetransSegs - seen.fastRetransSegs;
  snmp.EarlyRetransSegs += c.earlyRetransSegs - seen.earlyRetransSegs;
  snmp.LostSegs += c.lostSegs - seen.lostSegs;
  snmp.RetransSegs += c.retransSegs - seen.retransSegs;
  seen.inSegs = c.inSegs;
  seen.outSegs = c.outSegs;
  seen.repeatSegs = c.repeatSegs;
  seen.fastRetransSegs = c.fastRetransSegs;
  seen.earlyRetransSegs = c.earlyRetransSegs;
  seen.lostSegs = c.lostSegs;
  seen.retransSegs = c.retransSegs;
}

function addFecGains(snmp: KcptunSnmp, c: FecDecoderCounters, seen: FecDecoderCounters): void {
  snmp.FECParityShards += c.parityShards - seen.parityShards;
  snmp.FECErrs += c.errs - seen.errs;
  snmp.FECRecovered += c.recovered - seen.recovered;
  snmp.FECShortShards += c.shortShards - seen.shortShards;
  seen.parityShards = c.parityShards;
  seen.errs = c.errs;
  seen.recovered = c.recovered;
  seen.shortShards = c.shortShards;
}

/** RACK's widest reordering allowance toward an FEC peer, in srtt/8 (see the constructor). */
const FEC_MAX_REORDER = 3;

/** Parity copy buffers kept for reuse per link: a few groups' worth at 10/3. */
const PARITY_POOL_SIZE = 64;

/** Where a received datagram went. */
export const LINK_INPUT_OK = 0;
export const LINK_INPUT_BAD_CRYPT = -1;
export const LINK_INPUT_BAD_KCP = -2;
export const LINK_INPUT_BAD_FEC = -3;

export class KcpLink {
  readonly kcp: Kcp;
  readonly crypt: DatagramCrypt;
  private readonly cryptHeader: number;
  private readonly fecEnc: FecEncoder | null;
  /** Always there: it tells FEC from bare KCP, and learns the peer's shape even when we send none. */
  private readonly fecDec: FecDecoder;
  /** The decoder's counters as last added to the shared SNMP block. */
  private readonly seenFec = zeroFecCounters();
  /** The engine's counters as last added to the shared SNMP block. */
  private readonly seen = zeroKcpCounters();
  /** A collect()'s datagrams, for a crypt with sealMany (sealQueued). */
  private readonly unsealed: Uint8Array[] = [];
  /** Sealed datagrams waiting for the socket (parity shards make more than KCP emitted). */
  private readonly out = new Fifo<Uint8Array>();
  /** Buffers for copies of parity shards, each big enough for any shard plus the cipher's tail. */
  private readonly parityPool: Uint8Array[] = [];
  private readonly parityBufferSize: number;
  /** Where withoutStalePushes() assembles what is left of a rebuilt datagram. */
  private readonly recoveredScratch = new Uint8Array(KCP_MTU_LIMIT);
  /** Something happened since KCP's last timer flush (see pollTimeout). */
  private busy = true;
  /** Datagrams arrived since the last flush: flushAcks() answers them. */
  private inputSinceFlush = false;

  constructor(
    cfg: KcpLinkConfig,
    private readonly snmp: KcptunSnmp,
  ) {
    this.crypt = cfg.crypt;
    this.cryptHeader = cfg.crypt.headerSize;
    const fec = cfg.dataShards > 0 && cfg.parityShards > 0;
    this.kcp = new Kcp({
      conv: cfg.conv,
      // An AEAD's tag is appended after the datagram, so KCP gets the budget less the tag (kcp-go:
      // mtu − 12 − 16 − FEC − 24 bytes of payload per segment with aes-128-gcm).
      mtu: cfg.mtu - cfg.crypt.tailroom,
      headroom: this.cryptHeader + (fec ? FEC_HEADER_SIZE : 0),
      sndWnd: cfg.sndWnd,
      rcvWnd: cfg.rcvWnd,
      nodelay: cfg.nodelay,
      interval: cfg.interval,
      resend: cfg.resend,
      nc: cfg.nc,
      streamMode: true,
      ackNoDelay: cfg.ackNoDelay,
      // kcp-go runs a full flush (a scan of the whole window) for every datagram that advances una;
      // the driver's pass calls flushAcks() once for all the datagrams it took instead.
      inputFlushes: false,
      // Time-based loss detection (RACK): a lost retransmission is found in about a round trip, not
      // by the RTO. Only when this end resends changes; a kcp-go peer sees ordinary retransmissions.
      rack: true,
      // Our FEC toward the peer rebuilds originals late (a group completes only as its shards arrive),
      // which RACK reads as reordering: at 20 % loss its allowance sat near srtt and every loss waited
      // for it. 3/8 srtt still absorbs real reordering (jitter ±15 ms on a 40 ms path: as few resends
      // as with srtt, bench/kcptun-sim.ts).
      rackMaxReorder: fec ? FEC_MAX_REORDER : undefined,
      // Under heavy loss the window waits on its oldest holes: their resends leave twice.
      resendTwice: true,
      // A lost resend with nothing sent after it is probed after RACK's wait, not the RTO.
      tailProbe: true,
    });
    this.fecEnc = fec
      ? new FecEncoder({
          dataShards: cfg.dataShards,
          parityShards: cfg.parityShards,
          headerOffset: this.cryptHeader,
          maxDatagram: cfg.mtu,
          tailroom: cfg.crypt.tailroom,
        })
      : null;
    this.parityBufferSize = cfg.mtu + cfg.crypt.tailroom;
    this.fecDec = new FecDecoder(fec ? { dataShards: cfg.dataShards, parityShards: cfg.parityShards } : undefined);
  }

  /**
   * A raw datagram from the socket (decrypted in place). Returns LINK_INPUT_OK or why it was dropped;
   * every drop is counted.
   */
  input(buf: Uint8Array, now: number): number {
    const off = this.crypt.open(buf, buf.length);
    if (off < 0) {
      if (off === OPEN_TOO_SHORT) this.snmp.InErrs++;
      else this.snmp.InCsumErrors++;
      return LINK_INPUT_BAD_CRYPT;
    }
    return this.inputOpened(buf, off, now);
  }

  /** A datagram already opened by the caller (the server opens once to route by conv). */
  inputOpened(buf: Uint8Array, off: number, now: number): number {
    this.busy = true;
    this.inputSinceFlush = true;
    const end = buf.length - this.crypt.tailroom;
    this.snmp.InPkts++;
    this.snmp.InBytes += end - off;
    const kcp = this.kcp;
    let result = LINK_INPUT_OK;
    switch (this.fecDec.input(buf, off, end)) {
      case 'bare':
        result = this.kcpInput(buf.subarray(off, end), now, true);
        break;
      case 'data':
        result = this.kcpInput(buf.subarray(off + FEC_HEADER_SIZE, end), now, true);
        break;
      case 'parity':
        break;
      default: // 'oob' (never sent by kcptun) or 'malformed'
        this.snmp.InErrs++;
        return LINK_INPUT_BAD_FEC;
    }
    for (let r = this.fecDec.pollRecovered(); r !== undefined; r = this.fecDec.pollRecovered()) {
      // Rebuilt data updates neither the peer window nor the RTT (kcp-go's non-regular input).
      const fresh = this.withoutStalePushes(r);
      if (fresh.length > 0 && kcp.input(fresh, now, false) !== KCP_INPUT_OK) this.snmp.KCPInErrors++;
    }
    addFecGains(this.snmp, this.fecDec.counters, this.seenFec);
    this.collect(now);
    return result;
  }

  /**
   * A rebuilt datagram minus its PUSH segments below rcv_nxt. FEC often completes a group only after
   * KCP got those segments by retransmission; fed again they would only queue ACKs echoing their
   * stale send time, and the peer takes its RTT sample from such an ACK (kcp-go's ACK filter keeps
   * the last one), so its RTO swells and tail latency with it. Other segments pass unchanged.
   */
  private withoutStalePushes(d: Uint8Array): Uint8Array {
    const rcvNxt = this.kcp.receiveNext;
    let stale = 0;
    for (let o = 0; d.length - o >= IKCP_OVERHEAD; ) {
      const len = readU32Le(d, o + 20);
      if (len > d.length - o - IKCP_OVERHEAD) return d; // malformed: let KCP count it
      if (d[o + 4] === IKCP_CMD_PUSH && ((readU32Le(d, o + IKCP_SN_OFFSET) - rcvNxt) | 0) < 0) stale++;
      o += IKCP_OVERHEAD + len;
    }
    if (stale === 0) return d;
    const out = this.recoveredScratch;
    let w = 0;
    for (let o = 0; d.length - o >= IKCP_OVERHEAD; ) {
      const end = o + IKCP_OVERHEAD + readU32Le(d, o + 20);
      if (!(d[o + 4] === IKCP_CMD_PUSH && ((readU32Le(d, o + IKCP_SN_OFFSET) - rcvNxt) | 0) < 0)) {
        out.set(d.subarray(o, end), w);
        w += end - o;
      }
      o = end;
    }
    return out.subarray(0, w);
  }

  private kcpInput(data: Uint8Array, now: number, regular: boolean): number {
    if (this.kcp.input(data, now, regular) === KCP_INPUT_OK) return LINK_INPUT_OK;
    this.snmp.KCPInErrors++;
    return LINK_INPUT_BAD_KCP;
  }


  /** Queues stream bytes and flushes at once (kcptun turns write-delay off). */
  write(data: Uint8Array): void {
    this.busy = true;
    this.snmp.BytesSent += data.length;
    this.kcp.send(data);
  }

  /** kcptun 2021's back-pressure: more may be written while waitsnd < min(snd_wnd, rmt_wnd). */
  canWrite(): boolean {
    return this.kcp.canWrite();
  }

  read(dst: Uint8Array, offset: number, end: number): number {
    const n = this.kcp.read(dst, offset, end);
    // Reading may reopen a full window, which KCP announces at its next flush.
    if (n > 0) this.busy = true;
    this.snmp.BytesReceived += n;
    return n;
  }

  readable(): boolean {
    return this.kcp.readable();
  }

  /**
   * KCP's next flush, or Infinity while the link is idle: nothing in flight or queued, and nothing
   * received or read since the last flush. kcp-go ticks every interval regardless; an idle session
   * here costs no wake-ups until a datagram or a write arrives.
   */
  pollTimeout(): number {
    return this.busy || this.kcp.waitSnd > 0 ? this.kcp.pollTimeout() : Infinity;
  }

  handleTimeout(now: number): void {
    const due = now >= this.kcp.pollTimeout();
    this.kcp.handleTimeout(now);
    // The flush that just ran sent every pending ACK and window update.
    if (due) this.busy = this.inputSinceFlush = false;
    this.collect(now);
  }

  /** A full flush: after write()s (kcptun flushes on every Write; batching them is equivalent). */
  flush(now: number): void {
    this.inputSinceFlush = false;
    this.kcp.flush(now);
    this.collect(now);
  }

  /**
   * One full flush for every datagram input() took since the last flush: their ACKs, and the window
   * they opened. Called once per pass, so a burst of datagrams is answered by one flush (kcp-go: one
   * per datagram that advanced una, and the ACKs wait for the interval tick), and the sender's RTT
   * samples are not inflated by up to an interval.
   */
  flushAcks(now: number): void {
    if (this.inputSinceFlush) this.flush(now);
  }

  /** Gives KCP's buffers back to the shared pool; the link must not be used afterwards. */
  release(): void {
    this.kcp.release();
  }

  /** The next sealed datagram for the socket (the caller owns it), or null. */
  pollTransmit(): Uint8Array | null {
    return this.out.shift() ?? null;
  }

  /**
   * A datagram from pollTransmit() once sent: its buffer is reused, parity-sized ones for parity
   * copies first (KCP's own are that size too when the cipher appends nothing), the rest by KCP.
   */
  recycleTransmit(datagram: Uint8Array): void {
    if (datagram.buffer.byteLength === this.parityBufferSize && this.parityPool.length < PARITY_POOL_SIZE) {
      this.parityPool.push(new Uint8Array(datagram.buffer));
    } else {
      this.kcp.recycleTransmit(datagram);
    }
  }

  /** Moves KCP's datagrams through FEC and the crypto layer into the out queue. */
  private collect(now: number): void {
    const kcp = this.kcp;
    const enc = this.fecEnc;
    let d: Uint8Array | null;
    while ((d = kcp.pollTransmit()) !== null) {
      if (enc === null) {
        this.seal(d);
        continue;
      }
      const parity = enc.encode(d, d.length, now);
      this.seal(d);
      // Parity views are the encoder's own buffers, reused at the next group: send copies.
      for (let i = 0; i < parity.length; i++) {
        const p = parity[i]!;
        const copy = this.parityPool.pop() ?? new Uint8Array(this.parityBufferSize);
        copy.set(p);
        this.seal(copy.subarray(0, p.length), copy);
      }
    }
    this.sealQueued();
    addKcpGains(this.snmp, this.kcp, this.seen);
  }

  /** Seals what seal() queued for a crypt that seals many at once, and queues it for the socket. */
  private sealQueued(): void {
    const q = this.unsealed;
    if (q.length === 0) return;
    this.crypt.sealMany!(q, q.length);
    for (let i = 0; i < q.length; i++) {
      const d = q[i]!;
      this.snmp.OutPkts++;
      this.snmp.OutBytes += d.length;
      this.out.push(d);
    }
    q.length = 0;
  }


  /**
   * Seals d in place; `whole` is d's backing view when the crypto layer appends a tag past d. A
   * datagram without that room (KCP's, under an AEAD) is copied into one that has it. A crypt with
   * sealMany gets the collect()'s datagrams together at its end instead (sealQueued).
   */
  private seal(d: Uint8Array, whole: Uint8Array = d): void {
    if (this.crypt.sealMany) {
      this.unsealed.push(d); // no tailroom: d is the whole datagram
      return;
    }
    const tailroom = this.crypt.tailroom;
    if (whole.length < d.length + tailroom) {
      whole = new Uint8Array(d.length + tailroom);
      whole.set(d);
    }
    const len = this.crypt.seal(whole, d.length);
    this.snmp.OutPkts++;
    this.snmp.OutBytes += len;
    this.out.push(len === whole.length ? whole : whole.subarray(0, len));
  }
}
