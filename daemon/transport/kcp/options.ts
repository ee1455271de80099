/**
 * The KCP engine's options (kcp-go's knobs plus tstier's own, each marked) and its result codes.
 */
import { badConfig } from '../../errors.js';

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
  /**
   * Time-based loss detection (RACK, RFC 8985) instead of kcp-go's duplicate-ACK counting and early
   * retransmit (default false: kcp-go's behaviour). A segment is lost once a segment sent after it
   * was acknowledged and more than that segment's RTT plus a reordering allowance (srtt/8, at least
   * 2 ms) has passed since it was sent. Lost retransmissions are found the same way, so a hole is
   * repaired in about a round trip, never by the RTO, and a late ACK or reordering within the
   * allowance causes no resend. The RTO remains for a lost tail. Only for tstier-to-tstier links
   * (any peer can receive it, but it changes when this end resends).
   */
  rack?: boolean;
  /**
   * With `rack`: the widest reordering allowance, in steps of srtt/8, that evidence of spurious resends
   * widens it to (default 8: srtt, RFC 8985's bound; 1 keeps it at srtt/8). Toward a peer that decodes
   * FEC, an ACK echoing a segment's earlier transmission is often that peer's FEC rebuild of the
   * original, whose group completed after the resend left, not reordering; widened to srtt on it, every
   * loss waited up to a round trip longer.
   */
  rackMaxReorder?: number;
  /**
   * A resend of a segment in the front half of the send window leaves twice, in separate datagrams
   * (default false). Under heavy random loss a window-bound sender waits on its oldest holes; a second
   * copy makes losing the resend again p² instead of p. The later half of the window is repaired while
   * the front still waits, so its resends go once. The peer drops the copy as a repeat.
   */
  resendTwice?: boolean;
  /**
   * With `rack`: a segment sent in the latest flush, with nothing sent after it to show its loss, is
   * sent again after RACK's wait instead of waiting for the RTO, once per progress (rack.ts
   * untilProbe; default false). tstier-kcptun at 20 % loss: +4 % both ways (bench/kcptun-sim.ts).
   */
  tailProbe?: boolean;
  /**
   * Whether input() runs a full flush when the peer's una advanced, as kcp-go does (default true).
   * A full flush scans every segment in flight; with windows of thousands of segments, once per ACK
   * datagram is most of the CPU. false: the caller flushes once per batch of input instead (the
   * proxy carrier's per-pass flushAcks).
   */
  inputFlushes?: boolean;
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

export function intInRange(key: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw badConfig(key, `must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

