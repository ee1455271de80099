/**
 * Binds the sans-IO KcpCarrier to the peer layer and to one timer. Work is coalesced: peer packets
 * and socket activity only mark the carrier dirty; one setImmediate pass then dispatches flow events
 * to their sinks, sends what the carrier queued, and re-arms the timer for its next deadline.
 */
import type { Logger } from '../../log.js';
import type { PeerManager } from '../../peer/peer-manager.js';
import type { CarrierDriver, FlowSink } from '../carrier.js';
import type { DialStatus, OpenRequest } from '../flow-frames.js';
import { nowMs } from '../../io/clock.js';
import { PassScheduler } from '../../io/pass-scheduler.js';
import type { PipeStream } from '../socket-pipe.js';
import { FlowEvent, type KcpCarrier, type KcpFlow } from './endpoint.js';

type PeerSeam = Pick<PeerManager, 'onPacket' | 'sendTo'>;

export class KcpCarrierDriver implements CarrierDriver<KcpFlow> {
  readonly kind = 'Kcp';
  private readonly sinks = new Map<KcpFlow, FlowSink<KcpFlow>>();
  private readonly passes = new PassScheduler(() => this.pass(), nowMs);
  private faultsLogged = 0;

  constructor(
    private readonly peer: PeerSeam,
    readonly carrier: KcpCarrier,
    /** A peer asked us to carry a flow (the carrier already decoded where to). */
    private readonly onOpenRequest: (flow: KcpFlow) => void,
    private readonly log?: Logger,
  ) {
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
    flow.answer(status, nowMs());
    this.carrier.touch(flow);
    this.kick();
  }

  abort(flow: KcpFlow): void {
    flow.reset(nowMs());
    this.carrier.touch(flow);
    this.kick();
  }

  abortPeer(peerId: number): number {
    const n = this.carrier.abortPeer(peerId, nowMs());
    this.kick();
    return n;
  }

  /**
   * A PipeStream over a flow, for SocketPipe. Each action hands the flow back to the carrier
   * (touch) so its output is queued and its timer state kept; the pipe's kick() then sends it.
   */
  pipeStream(flow: KcpFlow): PipeStream {
    const carrier = this.carrier;
    return {
      write: (d) => {
        const now = nowMs();
        const ok = flow.write(d, now);
        carrier.touch(flow, now);
        return ok ? d.length : 0;
      },
      read: () => {
        const d = flow.read();
        if (d) carrier.touch(flow);
        return d;
      },
      readEnded: () => flow.readEnded,
      shutdown: () => {
        flow.closeWrite(nowMs());
        carrier.touch(flow);
      },
      abort: () => {
        flow.reset(nowMs());
        carrier.touch(flow);
      },
      release: () => this.detach(flow),
    };
  }

  /** Something changed (a packet, a write, a read): run one pass soon. */
  kick(): void {
    this.passes.kick();
  }

  close(): void {
    this.passes.close();
  }

  private pass(): void {
    const carrier = this.carrier;
    const now = nowMs();
    this.reportFaults();
    if (carrier.pollTimeout() <= now) carrier.handleTimeout(now);
    for (let flow = carrier.pollEvent(); flow; flow = carrier.pollEvent()) {
      const events = flow.takeEvents();
      if (events & FlowEvent.OpenRequest && !this.sinks.has(flow) && !flow.answered) this.onOpenRequest(flow);
      this.sinks.get(flow)?.onFlowEvents(flow, events);
      carrier.touch(flow);
    }
    // After the sinks read: the ACKs then advertise the window their reads opened.
    carrier.flushAcks(now);
    for (let t = carrier.pollTransmit(); t; t = carrier.pollTransmit()) {
      this.peer.sendTo(t.peerId, t.type, t.data);
      carrier.recycle(t);
    }
    // The pacer's grants may have made writable flows the loop above did not see.
    if (carrier.hasEvents()) this.kick();
    else this.passes.arm(carrier.pollTimeout());
  }

  /** Logs, once per pass, that flows met exceptions (each was reset; see KcpCarrier.guard). */
  private reportFaults(): void {
    const n = this.carrier.stats.faults;
    if (n === this.faultsLogged) return;
    this.log?.error('KCP-carried flows failed and were reset', { flows: n - this.faultsLogged, err: this.carrier.lastFault });
    this.faultsLogged = n;
  }
}
