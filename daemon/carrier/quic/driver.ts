/**
 * Binds the sans-IO QuicCarrier (carrier.ts) to the peer layer, through drive() as KcpCarrierDriver
 * does for KCP: peer packets and socket activity only kick it; one pass then runs its timers, hands
 * flow events to their sinks, sends what QUIC queued, and re-arms the timer for its next deadline.
 * QUIC datagrams travel as peer packets QuicSrc (on connections the sender initiated) / QuicDst
 * (replies).
 */
import type { Logger } from '../../log.js';
import type { PeerLayer } from '../../peer/peer-layer.js';
import { PacketType } from '../../peer/wire.js';
import { FlowEvent, type CarrierDriver, type FlowSink } from '../carrier.js';
import type { DialStatus, OpenRequest } from '../flow-frames.js';
import { drive, type Drive } from '../../io/drive.js';
import type { PipeStream } from '../socket-pipe.js';
import { nowMs } from '../../io/clock.js';
import { QuicCarrier, type QuicCarrierTransmit } from './carrier.js';
import type { QuicEndpoint } from './endpoint.js';
import type { QuicFlow } from './flow.js';
import type { FlowHeads } from './heads.js';

export type QuicPeerSeam = Pick<PeerLayer, 'onPacket' | 'sendTo'>;

export interface QuicDriverOptions {
  /** Whether this node carries flows peers open to it (false: `--disable-quic-input`, answered Denied). */
  acceptInput: boolean;
  /** An open with no STATUS after this long is reported Unreachable. Default 10 s. */
  openTimeoutMs?: number;
  /** Where every flow reset and connection loss is logged with its cause. */
  log?: Logger;
  /** A connection we opened that has carried no flow for this long is closed. Default 60 s. */
  idleCloseMs?: number;
  /** Peer packet types of its datagrams. Default tstier's QuicSrc / QuicDst. */
  types?: { fromInitiator: number; fromAcceptor: number };
  /** How a flow's stream starts. Default tstier's OPEN/STATUS (heads.ts). */
  heads?: FlowHeads;
}

export class QuicCarrierDriver implements CarrierDriver<QuicFlow> {
  readonly kind = 'Quic';
  readonly carrier: QuicCarrier;
  private readonly sinks = new Map<QuicFlow, FlowSink<QuicFlow>>();
  /** Every flow the proxy got from this driver (a node may run two QUIC carriers: owns() tells them apart). */
  private readonly mine = new WeakSet<QuicFlow>();
  private readonly drive: Drive<QuicCarrierTransmit, QuicFlow>;

  constructor(
    peer: QuicPeerSeam,
    readonly ep: QuicEndpoint,
    opts: QuicDriverOptions,
    /** A peer asked us to carry a flow: dial `flow.request`, then answer(). */
    private readonly onOpenRequest: (flow: QuicFlow) => void,
  ) {
    const types = opts.types ?? { fromInitiator: PacketType.QuicSrc, fromAcceptor: PacketType.QuicDst };
    this.carrier = new QuicCarrier(ep, { ...opts, types });
    this.drive = drive(this.carrier, {
      event: (flow) => this.dispatch(flow),
      transmit: (t) => peer.sendTo(t.peerId, t.type, t.data),
    });
    const input = (type: number) => (from: number, payload: Buffer): void => {
      this.carrier.input(from, type, payload, nowMs());
      this.kick();
    };
    peer.onPacket(types.fromInitiator, input(types.fromInitiator));
    peer.onPacket(types.fromAcceptor, input(types.fromAcceptor));
  }

  /** Counters for the node's stats (malformed heads, opens refused). */
  get stats(): QuicCarrier['stats'] {
    return this.carrier.stats;
  }

  open(peerId: number, req: OpenRequest, sink: FlowSink<QuicFlow>): QuicFlow {
    const flow = this.carrier.open(peerId, req, nowMs());
    this.mine.add(flow);
    this.sinks.set(flow, sink);
    this.kick();
    return flow;
  }

  owns(flow: QuicFlow): boolean {
    return this.mine.has(flow);
  }

  attach(flow: QuicFlow, sink: FlowSink<QuicFlow>): void {
    this.sinks.set(flow, sink);
    this.carrier.hold(flow);
  }

  detach(flow: QuicFlow): void {
    this.sinks.delete(flow);
    this.carrier.release(flow);
  }

  answer(flow: QuicFlow, status: DialStatus): void {
    this.carrier.answer(flow, status);
    this.kick();
  }

  abort(flow: QuicFlow): void {
    this.carrier.abort(flow);
    this.kick();
  }

  abortPeer(peerId: number): number {
    const n = this.carrier.abortPeer(peerId, nowMs());
    this.kick();
    return n;
  }

  pipeStream(flow: QuicFlow): PipeStream {
    const carrier = this.carrier;
    return {
      write: (d) => carrier.write(flow, d),
      read: () => carrier.read(flow),
      readEnded: () => flow.readEnded,
      shutdown: () => carrier.shutdown(flow),
      abort: () => this.abort(flow),
      release: () => this.detach(flow),
    };
  }

  kick(): void {
    this.drive.kick();
  }

  close(): void {
    this.drive.stop();
  }

  /** Open flows (for stats and tests). */
  get flowCount(): number {
    return this.carrier.flowCount;
  }

  private dispatch(flow: QuicFlow): void {
    const events = flow.takeEvents();
    if (events & FlowEvent.OpenRequest && !this.sinks.has(flow) && !flow.answered) {
      this.mine.add(flow);
      this.onOpenRequest(flow);
    }
    this.sinks.get(flow)?.onFlowEvents(flow, events);
  }
}
