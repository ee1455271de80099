/**
 * What the proxy sees of a carrier, whichever it is (a KCP conversation or a QUIC stream per flow):
 * open a flow to a peer with an OPEN request, learn the remote dial's outcome (STATUS), move bytes
 * through a PipeStream, half-close, reset. The proxy's flow logic is written once against this.
 */
import type { DialStatus, OpenRequest } from './flow-frames.js';
import type { PipeStream } from './socket-pipe.js';

/** Bits a flow reports to its sink. */
export const FlowEvent = {
  /** Acceptor: the OPEN arrived; `request` says where to dial; answer it. */
  OpenRequest: 1,
  /** Initiator: `status` is known (the remote dial's outcome, or Unreachable on timeout). */
  Status: 2,
  Readable: 4,
  /** A write was refused earlier and now has room again. */
  Writable: 8,
  /** The peer half-closed: no more data after what read() still returns. */
  Fin: 16,
  /** The flow was aborted (peer reset, or the carrier gave up on the peer). */
  Reset: 32,
} as const;

export type CarrierKind = 'Kcp' | 'Quic';

/** One proxied flow as a carrier holds it. Counter fields are read by the proxy table when listed. */
export interface CarrierFlow {
  readonly request: OpenRequest | null;
  /** Initiator: the STATUS received (or Unreachable after the open timeout); null while opening. */
  readonly status: DialStatus | null;
  /** Acceptor: the open was answered. */
  readonly answered: boolean;
  /**
   * Initiator: the peer's carrier has shown it is there for this flow (acknowledged or answered
   * something), so a missing STATUS means a slow remote dial, not a carrier that cannot reach it.
   */
  readonly heard: boolean;
  /**
   * Initiator: when this carrier last heard from the flow's peer over any of its flows (the clock the
   * carrier is driven by; -Infinity: never). While recent, an unanswered OPEN is queued behind other
   * flows' data on a busy node, not lost: the proxy waits on (flow-core.ts). Carriers whose `heard`
   * already stands for the whole peer (a QUIC connection that is up) leave it at -Infinity.
   */
  readonly peerHeardAt: number;
  readonly ended: boolean;
  readonly txBytes: number;
  readonly rxBytes: number;
  readonly rttMs: number;
  readonly retransmits: number;
  /** Data this end received more than once: the peer's resends that were not needed (KCP segments; 0 for QUIC). */
  readonly duplicates: number;
}

/** Whoever owns a flow: told the FlowEvent bits whenever something happened to it. */
export interface FlowSink<F extends CarrierFlow = CarrierFlow> {
  onFlowEvents(flow: F, events: number): void;
}

/** A carrier bound to the peer layer and a timer. */
export interface CarrierDriver<F extends CarrierFlow = CarrierFlow> {
  readonly kind: CarrierKind;
  /** Opens a flow to `peerId`; the OPEN goes out as soon as the carrier can send it. */
  open(peerId: number, req: OpenRequest, sink: FlowSink<F>): F;
  attach(flow: F, sink: FlowSink<F>): void;
  detach(flow: F): void;
  /** Acceptor: reports the remote dial's outcome. Anything but Connected ends the flow. */
  answer(flow: F, status: DialStatus): void;
  /** Aborts the flow; the peer sees a reset. */
  abort(flow: F): void;
  /** Resets every flow with `peerId` toward its sink (FlowEvent.Reset): the peer is gone or timed out. How many. */
  abortPeer(peerId: number): number;
  pipeStream(flow: F): PipeStream;
  /** Something changed: send what is queued soon. */
  kick(): void;
  close(): void;
}
