/**
 * The KCP carrier for EasyTier nodes: the proxy's CarrierDriver over kcp-sys connections
 * (kcp-endpoint.ts), carried in EasyTier's own KcpSrc/KcpDst packets through the EasyTier peer
 * layer's hook. A flow we open is a connection of our src endpoint; a flow an EasyTier (or tstier)
 * node opens to us arrives on our dst endpoint, which exists only while we take KCP input.
 *
 * What kcp-sys cannot say, and how the proxy's contract is met anyway:
 * - There is no OPEN frame: the connect message (KcpConnData) names the flow, IPv4 only.
 * - There is no STATUS: the acceptor answers nothing about its dial. Our initiator reports
 *   Connected once the acceptor has taken the connection (kcp-endpoint's confirmation); a failed
 *   dial over there shows up as the flow ending (FIN or RST) with no byte. Our acceptor answers a
 *   failed dial with RST, which an EasyTier source turns into closing its client's connection.
 *   So toward an EasyTier node the held SYN cannot learn "refused" or "unreachable": the client's
 *   connection is accepted, then closed (docs/easytier-wire.md).
 * Driven like the other carriers (io/drive.ts): packets and socket activity kick one pass, which
 * hands events to the sinks, sends what the endpoints queued, and re-arms the one timer.
 */
import { nowMs } from '../../io/clock.js';
import { drive, type Drive, type DrivenCore } from '../../io/drive.js';
import type { Logger } from '../../log.js';
import { FlowEvent, type CarrierDriver, type CarrierFlow, type FlowSink } from '../../carrier/carrier.js';
import { DialStatus, type OpenRequest } from '../../carrier/flow-frames.js';
import type { PipeStream } from '../../carrier/socket-pipe.js';
import { readU32, writeU32 } from '../../packet/bytes.js';
import { EtKcpEndpoint, type KcpConnId, type KcpEndpointEvent, type KcpOut } from './kcp-endpoint.js';
import type { KcpConnData } from './kcp-envelope.js';
import { EtPacketType } from './pm.js';

/** What this carrier needs of the EasyTier peer layer (EtPeerManager's kcp-sys hook). */
export interface EtKcpPeerSeam {
  onEasyTierPacket(type: number, handler: (from: number, payload: Buffer) => void): void;
  sendEasyTier(peerId: number, type: number, payload: Uint8Array): boolean;
}

/** The EasyTier peer layer as the proxy registers this carrier on it. */
export interface EtKcpHost extends EtKcpPeerSeam {
  readonly peerId: number;
  /** Sets kcp_input / quic_input in the flags we advertise to every node. */
  advertiseEasyTierInput(input: { kcpInput: boolean; quicInput: boolean }): void;
  readonly routes: {
    record(peerId: number): { features: number } | undefined;
    /** A node's EasyTier flags as Feature bits. */
    advertised(peerId: number): number | undefined;
  };
}

/** The peer layer, if it speaks EasyTier's wire (it has the kcp-sys hook); null for tstier's own. */
export function etKcpHost(peer: object): EtKcpHost | null {
  return 'onEasyTierPacket' in peer && 'advertiseEasyTierInput' in peer ? (peer as EtKcpHost) : null;
}

const READ_CHUNK = 64 * 1024;

export class EtKcpFlow implements CarrierFlow {
  status: DialStatus | null = null;
  answered = false;
  ended = false;
  txBytes = 0;
  rxBytes = 0;
  readonly rttMs = 0;
  readonly retransmits = 0;
  readonly duplicates = 0;
  /** FlowEvent bits not yet handed to the sink. */
  events = 0;
  peerFin = false;

  constructor(
    readonly id: KcpConnId,
    readonly endpoint: EtKcpEndpoint,
    readonly peerId: number,
    readonly request: OpenRequest | null,
    /** Peers whose kcp-sys endpoint has answered us: a flow queued behind its siblings' opens waits on us, not on them. */
    private readonly answering: ReadonlySet<number>,
  ) {}

  /** `heard` already covers the whole peer (its endpoint answered us). */
  readonly peerHeardAt = -Infinity;

  get heard(): boolean {
    return this.status !== null || this.answering.has(this.peerId);
  }
}

/**
 * Both kcp-sys endpoints and their flows as one sans-IO core for drive(): the endpoints' events
 * become flows marked with FlowEvent bits, and pollEvent() hands out each marked flow once.
 */
class EtKcpCore implements DrivenCore<KcpOut, EtKcpFlow> {
  readonly endpoints: EtKcpEndpoint[];
  readonly flows = new Map<EtKcpEndpoint, Map<KcpConnId, EtKcpFlow>>();
  /** Peers whose kcp-sys endpoint has answered us. */
  readonly answering = new Set<number>();
  readonly #dirty = new Set<EtKcpFlow>();

  constructor(readonly src: EtKcpEndpoint, readonly dst: EtKcpEndpoint | null) {
    this.endpoints = dst ? [src, dst] : [src];
    for (const ep of this.endpoints) this.flows.set(ep, new Map());
  }

  pollTimeout(): number {
    let at = Infinity;
    for (const ep of this.endpoints) at = Math.min(at, ep.pollTimeout());
    return at;
  }

  handleTimeout(now: number): void {
    for (const ep of this.endpoints) if (ep.pollTimeout() <= now) ep.handleTimeout(now);
  }

  pollTransmit(): KcpOut | null {
    return this.src.pollTransmit() ?? this.dst?.pollTransmit() ?? null;
  }

  /** The next flow with events, after taking in what the endpoints reported since the last call. */
  pollEvent(): EtKcpFlow | null {
    for (const ep of this.endpoints) for (let e = ep.pollEvent(); e; e = ep.pollEvent()) this.#onEvent(ep, e);
    for (const flow of this.#dirty) {
      this.#dirty.delete(flow);
      return flow;
    }
    return null;
  }

  /** The flow is over without a clean close: a failed open (Status) or a reset. */
  end(flow: EtKcpFlow, event: number, status: DialStatus | null): void {
    flow.ended = true;
    if (status !== null && flow.status === null) flow.status = status;
    this.#mark(flow, event);
  }

  #onEvent(ep: EtKcpEndpoint, e: KcpEndpointEvent): void {
    const flows = this.flows.get(ep)!;
    if (e.type === 'accepted') {
      const flow = new EtKcpFlow(e.id, ep, e.peer, fromConnData(e.connData), this.answering);
      this.answering.add(e.peer); // its kcp-sys endpoint is alive: our opens to it wait on its accept loop, not on a dead carrier
      flows.set(e.id, flow);
      this.#mark(flow, FlowEvent.OpenRequest);
      return;
    }
    const flow = flows.get(e.id);
    if (!flow) return;
    if (e.type === 'connected') {
      this.answering.add(flow.peerId);
      flow.status = DialStatus.Connected;
      this.#mark(flow, FlowEvent.Status);
    } else if (e.type === 'readable') {
      this.#mark(flow, FlowEvent.Readable);
    } else if (e.type === 'writable') {
      this.#mark(flow, FlowEvent.Writable);
    } else if (e.type === 'eof') {
      flow.peerFin = true;
      this.#mark(flow, FlowEvent.Fin);
    } else {
      flows.delete(e.id);
      if (e.reason === 'done') flow.ended = true;
      else if (e.reason === 'connect-timeout') this.end(flow, FlowEvent.Status, DialStatus.Unreachable);
      else this.end(flow, FlowEvent.Reset, null);
    }
  }

  #mark(flow: EtKcpFlow, event: number): void {
    flow.events |= event;
    this.#dirty.add(flow);
  }
}

export class EtKcpCarrierDriver implements CarrierDriver<EtKcpFlow> {
  readonly kind = 'Kcp';
  readonly src: EtKcpEndpoint;
  /** Null while we take no KCP input (--disable-kcp-input): KcpSrc packets then meet RST from nobody, as kcp-sys without a dst endpoint. */
  readonly dst: EtKcpEndpoint | null;
  readonly #core: EtKcpCore;
  readonly #sinks = new Map<EtKcpFlow, FlowSink<EtKcpFlow>>();
  readonly #drive: Drive<KcpOut, EtKcpFlow>;
  readonly #readBuf = new Uint8Array(READ_CHUNK);

  constructor(
    peer: EtKcpPeerSeam,
    myPeerId: number,
    opts: { acceptInput: boolean },
    /** A node asked us to carry a flow: dial `flow.request.dst`, then answer(). */
    private readonly onOpenRequest: (flow: EtKcpFlow) => void,
    log?: Logger,
  ) {
    this.src = new EtKcpEndpoint('src', myPeerId);
    this.dst = opts.acceptInput ? new EtKcpEndpoint('dst', myPeerId) : null;
    this.#core = new EtKcpCore(this.src, this.dst);
    this.#drive = drive(this.#core, {
      event: (flow) => this.#dispatch(flow),
      transmit: (o) => {
        if (!peer.sendEasyTier(o.to, o.type, o.payload)) log?.debug('EasyTier KCP: no route for a packet', { peer: o.to });
      },
    });
    const feed = (ep: EtKcpEndpoint | null) => (from: number, payload: Buffer): void => {
      ep?.input(from, payload, nowMs());
      this.kick();
    };
    peer.onEasyTierPacket(EtPacketType.KcpSrc, feed(this.dst));
    peer.onEasyTierPacket(EtPacketType.KcpDst, feed(this.src));
  }

  open(peerId: number, req: OpenRequest, sink: FlowSink<EtKcpFlow>): EtKcpFlow {
    const connData = toConnData(req);
    const now = nowMs();
    const flow = new EtKcpFlow(connData ? this.src.connect(peerId, connData, now) : `v6-${now}`, this.src, peerId, req, this.#core.answering);
    this.#sinks.set(flow, sink);
    if (connData) this.#core.flows.get(this.src)!.set(flow.id, flow);
    else this.#core.end(flow, FlowEvent.Status, DialStatus.Unreachable); // kcp-sys carries IPv4 flows only
    this.kick();
    return flow;
  }

  attach(flow: EtKcpFlow, sink: FlowSink<EtKcpFlow>): void {
    this.#sinks.set(flow, sink);
  }

  detach(flow: EtKcpFlow): void {
    this.#sinks.delete(flow);
  }

  answer(flow: EtKcpFlow, status: DialStatus): void {
    flow.answered = true;
    if (status !== DialStatus.Connected) this.abort(flow);
    this.kick();
  }

  abort(flow: EtKcpFlow): void {
    flow.endpoint.abort(flow.id);
    this.kick();
  }

  abortPeer(peerId: number): number {
    this.#core.answering.delete(peerId);
    let n = 0;
    for (const flows of this.#core.flows.values()) {
      for (const flow of flows.values()) {
        if (flow.peerId !== peerId) continue;
        flow.endpoint.abort(flow.id);
        n++;
      }
    }
    this.kick();
    return n;
  }

  pipeStream(flow: EtKcpFlow): PipeStream {
    const ep = flow.endpoint;
    return {
      write: (d) => {
        const n = ep.write(flow.id, d, nowMs());
        flow.txBytes += n;
        return n;
      },
      read: () => {
        const n = ep.read(flow.id, this.#readBuf);
        if (n === 0) return null;
        flow.rxBytes += n;
        this.kick(); // the window the read opened goes out with the next pass
        return this.#readBuf.slice(0, n);
      },
      readEnded: () => flow.peerFin,
      shutdown: () => ep.closeWrite(flow.id),
      abort: () => ep.abort(flow.id),
      release: () => this.detach(flow),
    };
  }

  /** Something changed (a packet, a write, a read): run one pass soon. */
  kick(): void {
    this.#drive.kick();
  }

  close(): void {
    this.#drive.stop();
  }

  #dispatch(flow: EtKcpFlow): void {
    const events = flow.events;
    flow.events = 0;
    if (events & FlowEvent.OpenRequest && !this.#sinks.has(flow)) this.onOpenRequest(flow);
    this.#sinks.get(flow)?.onFlowEvents(flow, events);
  }
}

/** The connect message for an IPv4 flow; null for IPv6 (kcp-sys's connectors refuse those too). */
export function toConnData(req: OpenRequest): KcpConnData | null {
  if (req.src.ip.length !== 4 || req.dst.ip.length !== 4) return null;
  return { src: { addr: readU32(req.src.ip, 0), port: req.src.port }, dst: { addr: readU32(req.dst.ip, 0), port: req.dst.port } };
}

function ipv4Bytes(addr: number): Uint8Array {
  const b = new Uint8Array(4);
  writeU32(b, 0, addr);
  return b;
}

/** An accepted flow's request: the source has already accepted its client, so data may come at once. */
export const fromConnData = (c: KcpConnData): OpenRequest => ({
  src: { ip: ipv4Bytes(c.src.addr), port: c.src.port },
  dst: { ip: ipv4Bytes(c.dst.addr), port: c.dst.port },
  optimistic: true,
});
