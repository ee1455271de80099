/**
 * Binds the sans-IO KcpCarrier to the peer layer, through drive(): peer packets and socket activity
 * only kick it; one pass then dispatches flow events to their sinks, flushes the ACKs, sends what
 * the carrier queued, and re-arms the timer for its next deadline.
 */
import type { Logger } from '../../log.js';
import type { PeerLayer } from '../../peer/peer-layer.js';
import type { CarrierDriver, FlowSink } from '../carrier.js';
import type { DialStatus, OpenRequest } from '../flow-frames.js';
import { nowMs } from '../../io/clock.js';
import { drive, type Drive } from '../../io/drive.js';
import type { PipeStream } from '../socket-pipe.js';
import { FlowEvent, type KcpCarrier, type KcpFlow } from './endpoint.js';
import type { CarrierTransmit } from './wire.js';

type PeerSeam = Pick<PeerLayer, 'onPacket' | 'sendTo'>;

export class KcpCarrierDriver implements CarrierDriver<KcpFlow> {
  readonly kind = 'Kcp';
  private readonly sinks = new Map<KcpFlow, FlowSink<KcpFlow>>();
  private readonly drive: Drive<CarrierTransmit, KcpFlow>;
  private faultsLogged = 0;

  constructor(
    peer: PeerSeam,
    readonly carrier: KcpCarrier,
    /** A peer asked us to carry a flow (the carrier already decoded where to). */
    private readonly onOpenRequest: (flow: KcpFlow) => void,
    private readonly log?: Logger,
  ) {
    this.drive = drive(carrier, {
      begin: () => this.reportFaults(),
      event: (flow) => this.dispatch(flow),
      // After the sinks read: the ACKs then advertise the window their reads opened.
      afterEvents: (now) => carrier.flushAcks(now),
      transmit: (t) => {
        peer.sendTo(t.peerId, t.type, t.data);
        carrier.recycle(t);
      },
    });
    const { fromInitiator, fromAcceptor } = carrier.types;
    const input = (type: number) => (from: number, payload: Buffer): void => {
      carrier.input(from, type, payload, nowMs());
      this.kick();
    };
    peer.onPacket(fromInitiator, input(fromInitiator));
    peer.onPacket(fromAcceptor, input(fromAcceptor));
  }

  open(peerId: number, req: OpenRequest, sink: FlowSink<KcpFlow>): KcpFlow {
    const flow = this.carrier.open(peerId, req, nowMs());
    this.sinks.set(flow, sink);
    this.kick();
    return flow;
  }

  attach(flow: KcpFlow, sink: FlowSink<KcpFlow>): void {
    this.sinks.set(flow, sink);
  }

  detach(flow: KcpFlow): void {
    this.sinks.delete(flow);
  }

  answer(flow: KcpFlow, status: DialStatus): void {
    this.carrier.answer(flow, status, nowMs());
    this.kick();
  }

  abort(flow: KcpFlow): void {
    this.carrier.reset(flow, nowMs());
    this.kick();
  }

  abortPeer(peerId: number): number {
    const n = this.carrier.abortPeer(peerId, nowMs());
    this.kick();
    return n;
  }

  /** A PipeStream over a flow, for SocketPipe; the pipe's kick() then sends what each action queued. */
  pipeStream(flow: KcpFlow): PipeStream {
    const carrier = this.carrier;
    return {
      write: (d) => (carrier.write(flow, d, nowMs()) ? d.length : 0),
      read: () => carrier.read(flow),
      readEnded: () => flow.readEnded,
      shutdown: () => carrier.closeWrite(flow, nowMs()),
      abort: () => carrier.reset(flow, nowMs()),
      release: () => this.detach(flow),
    };
  }

  /** Something changed (a packet, a write, a read): run one pass soon. */
  kick(): void {
    this.drive.kick();
  }

  close(): void {
    this.drive.stop();
  }

  private dispatch(flow: KcpFlow): void {
    const events = flow.takeEvents();
    if (events & FlowEvent.OpenRequest && !this.sinks.has(flow) && !flow.answered) this.onOpenRequest(flow);
    this.sinks.get(flow)?.onFlowEvents(flow, events);
  }

  /** Logs, once per pass, that flows met exceptions (each was reset; see KcpCarrier.guard). */
  private reportFaults(): void {
    const n = this.carrier.stats.faults;
    if (n === this.faultsLogged) return;
    this.log?.error('KCP-carried flows failed and were reset', { flows: n - this.faultsLogged, err: this.carrier.lastFault });
    this.faultsLogged = n;
  }
}
