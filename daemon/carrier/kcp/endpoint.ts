/**
 * The KCP carrier: each proxied TCP flow is one KCP conversation inside the authenticated peer
 * channel (one conversation per flow, so a lost segment stalls only its own flow). Sans-IO: the proxy
 * feeds it peer packets and the clock, and sends what pollTransmit() returns.
 *
 * Peer packet payload: kind u8 | body.
 *   kind 0: KCP segments (the conv is the KCP header's first field);
 *   kind 1: RESET, body = conv u32 LE: the sender has no such flow (any more) or aborted it.
 *   kind 2: CLOSED, body = conv u32 LE: the sender finished this flow cleanly and forgot it — it had
 *           received everything, FIN included, so a peer still retransmitting its last segments
 *           (their ACKs were lost) can finish cleanly too, instead of seeing a reset.
 * The initiator sends packet type KcpSrc, the acceptor KcpDst, so a conv number only has to be unique
 * per (initiator, acceptor) pair and each side knows which of its two tables to look in.
 *
 * Sending is paced per peer, not per flow: every flow to a peer shares that peer's PeerPath (one
 * congestion controller, round-robin send grants), so a thousand flows together send what the path
 * takes, not a thousand windows' worth (path-controller.ts, peer-path.ts).
 *
 * Inside the conversation the stream carries flow frames (flow-frames.ts). The OPEN frame is the first
 * stream bytes, so a lost open is retransmitted by KCP itself, and the acceptor starts its dial the
 * moment the first segment arrives.
 */
import { DeadlineHeap } from '../../io/deadline-heap.js';
import { Kcp } from '../../transport/kcp/kcp.js';
import { IKCP_OVERHEAD, readU32, writeU32 } from '../../transport/kcp/segment.js';
import { DialStatus, FrameType, type OpenRequest } from '../flow-frames.js';
import { AckBundler, controlOnly } from './ack-bundle.js';
import { KcpFlow } from './flow.js';
import { FlowTables } from './flow-tables.js';
import {
  FEC_DATA_PREFIX, FecDecoder, KIND_FEC_DATA, KIND_FEC_PARITY, KIND_FEC_REPORT, PARITY_EXTRA, type Rebuilt,
} from './path-fec.js';
import { MIN_FLOW_WINDOW, PeerPath } from './peer-path.js';
import type { DatagramFramer } from './flow.js';
import { KIND_BUNDLE, KIND_CLOSED, KIND_RESET, KIND_SEGMENTS, type CarrierPacketTypes, type CarrierTransmit } from './wire.js';

export interface KcpCarrierOptions {
  types: CarrierPacketTypes;
  /** Whole KCP datagram budget inside one peer packet, kind byte included. */
  mtu?: number;
  sndWnd?: number;
  rcvWnd?: number;
  interval?: number;
  /** KCP's NoDelay knobs; default 1, 2, 1 (with interval 10: kcptun's fast3). */
  nodelay?: number;
  resend?: number;
  nc?: number;
  /** An opening flow with no STATUS after this long is reported Unreachable. */
  openTimeoutMs?: number;
  /** How long a finished flow keeps answering its peer's late segments. */
  lingerMs?: number;
  /** A flow with unacknowledged data that heard nothing from its peer this long is reset (the flow timeout). */
  silentLimitMs?: number;
  /** Whether this node accepts flows (false: `--disable-kcp-input`; opens are answered Denied). */
  acceptInput?: boolean;
  /** Seed for conv numbers (tests pass one to be deterministic). */
  convSeed?: number;
  /**
   * Whether a peer announced that it decodes the carrier's adaptive FEC (route feature KcpFec).
   * Asked when a peer's path is made; without it, or when it says no, that peer gets no FEC.
   */
  peerDecodesFec?: (peerId: number) => boolean;
  /** Whether a peer announced that it takes ACKs of several flows in one datagram (route feature KcpBundle). */
  peerTakesBundles?: (peerId: number) => boolean;
  /** Datagrams this host's sockets dropped unread, cumulative: FEC reports do not count them as path loss. */
  hostDrops?: () => number;
}

/** Flows whose state changed since the last pollEvent(); read `flow.takeEvents()` for what happened. */
export type { KcpFlow } from './flow.js';
export { FlowEvent } from './flow.js';

const RESET_LEN = 5;
/**
 * Hard bounds on KCP windows, in segments (≈ 1.2 KB of memory each when full): one flow's send or
 * receive window, and what all flows of this node together may hold in each direction. A window's
 * share of the node's budget shrinks as flows are added, never below MIN_FLOW_WINDOW.
 */
export const MAX_FLOW_WINDOW = 8192;
export const NODE_WINDOW_BUDGET = 65536;
/** KCP's own dead-link count is off: a flow's life is bounded by time (silentLimitMs), not by retransmissions. */
const NO_DEAD_LINK = 0xffffffff;
export const DEFAULT_SILENT_LIMIT_MS = 30_000;

export class KcpCarrier {
  readonly types: CarrierPacketTypes;
  private readonly mtu: number;
  private readonly sndWnd: number;
  private readonly rcvWnd: number;
  private readonly interval: number;
  private readonly noDelay: { nodelay: number; resend: number; nc: number };
  private readonly openTimeoutMs: number;
  private readonly lingerMs: number;
  private readonly silentLimitMs: number;
  acceptInput: boolean;

  /** The flows by peer, role and conv, and those forgotten recently (their late segments get how they ended). */
  private readonly flows = new FlowTables();
  /** Flows needing a timer run (unacked data, ACKs, a deadline) by when: a pass looks at the earliest, a move is O(log flows). */
  private readonly timers = new DeadlineHeap<KcpFlow>();
  /** The flows one handleTimeout() found due (reused; no allocation per pass). */
  private readonly due: KcpFlow[] = [];
  private readonly pendingEvents = new Set<KcpFlow>();
  /** Flows that took datagrams since the last flushAcks(). */
  private readonly acking = new Set<KcpFlow>();
  private readonly tx: CarrierTransmit[] = [];
  /** One send path (controller + grant ring) per peer, kept while the peer has flows. */
  private readonly paths = new Map<number, PeerPath>();
  /** Paths with flows waiting for the pacer's clock. */
  private readonly pacing = new Set<PeerPath>();
  /** The clock of the latest call that carried one. */
  private clock = 0;
  private readonly mss: number;
  private readonly onSent = (flow: KcpFlow): void => {
    this.account(flow, this.clock);
    // Its grant sent new segments: their retransmission timer is now its deadline.
    if (!flow.retired) this.timers.set(flow, flow.needsTimer() ? flow.deadline() : Infinity);
  };
  private readonly peerDecodesFec: (peerId: number) => boolean;
  private readonly hostDrops: (() => number) | undefined;
  /** FEC decoders by peer, made on the first FEC datagram from it, dropped with its last flow. */
  private readonly decoders = new Map<number, FecDecoder>();
  /** The path whose flow is being drained (for the framer). */
  private framing: PeerPath | null = null;
  /** The flow being drained (its spent datagrams go back to its engine once bundled). */
  private framingFlow: KcpFlow | null = null;
  private readonly peerTakesBundles: (peerId: number) => boolean;
  /** Peers that take bundles, asked once per path (dropped with it). */
  private readonly bundlePeers = new Map<number, boolean>();
  private readonly bundler: AckBundler;
  /** Inside flushAcks(): the flows' answers to this pass's datagrams are bundled per peer. */
  private bundling = false;
  private readonly frame: DatagramFramer = (d, type) => {
    if (this.bundling && this.framingFlow && this.takesBundles(this.framingPeer) && controlOnly(d)) {
      this.bundler.add(this.framingPeer, type, d, this.sendBundle);
      this.framingFlow.kcp.recycleTransmit(d);
      return null;
    }
    const fec = this.framing?.fec;
    if (!fec) return d.subarray(FEC_DATA_PREFIX);
    return fec.data(d, d.length - FEC_DATA_PREFIX, type === this.types.fromInitiator ? 0 : 1, this.clock, this.onParity);
  };
  private readonly onParity = (parity: Uint8Array): void => {
    const path = this.framing!;
    path.ctl.onSent(parity.length, this.clock);
    // Overhead like a retransmission: the controller paces that much above the delivery rate it
    // models, or every round would deliver less than the last and the model would shrink to nothing.
    path.ctl.onSegments(0, 1);
    this.tx.push({ peerId: this.framingPeer, type: this.types.fromInitiator, data: parity });
  };
  private framingPeer = 0;
  /** A full bundle of ACKs: framed (FEC, when on) and charged to its path like any datagram. */
  private readonly sendBundle = (peerId: number, type: number, d: Uint8Array): void => {
    const path = this.paths.get(peerId);
    if (!path) return;
    const [framing, framingPeer, framingFlow] = [this.framing, this.framingPeer, this.framingFlow];
    this.framing = path;
    this.framingPeer = peerId;
    this.framingFlow = null;
    const data = this.frame(d, type)!;
    [this.framing, this.framingPeer, this.framingFlow] = [framing, framingPeer, framingFlow];
    path.ctl.onSent(data.length, this.clock);
    this.tx.push({ peerId, type, data });
  };
  private nextConv: number;
  private nextId = 1;

  /** Counters for the node's stats. */
  readonly stats = { resetsSent: 0, resetsReceived: 0, malformed: 0, unknownConv: 0, faults: 0 };
  /** The last exception a flow met (a bug; `stats.faults` counts them): that flow was reset, the others carry on. */
  lastFault: unknown = undefined;

  constructor(opts: KcpCarrierOptions) {
    this.types = opts.types;
    this.mtu = opts.mtu ?? 1200;
    this.sndWnd = opts.sndWnd ?? 1024;
    this.rcvWnd = opts.rcvWnd ?? 1024;
    this.interval = opts.interval ?? 10;
    this.noDelay = { nodelay: opts.nodelay ?? 1, resend: opts.resend ?? 2, nc: opts.nc ?? 1 };
    this.openTimeoutMs = opts.openTimeoutMs ?? 10_000;
    this.lingerMs = opts.lingerMs ?? 10_000;
    this.silentLimitMs = opts.silentLimitMs ?? DEFAULT_SILENT_LIMIT_MS;
    this.acceptInput = opts.acceptInput ?? true;
    this.nextConv = (opts.convSeed ?? (Math.random() * 0x100000000)) >>> 0;
    this.mss = this.engineMtu - FEC_DATA_PREFIX - 1 - 24; // FEC framing, kind byte, KCP header
    this.peerDecodesFec = opts.peerDecodesFec ?? (() => false);
    this.peerTakesBundles = opts.peerTakesBundles ?? (() => false);
    this.hostDrops = opts.hostDrops;
    this.bundler = new AckBundler(this.engineMtu);
  }

  private takesBundles(peerId: number): boolean {
    let yes = this.bundlePeers.get(peerId);
    if (yes === undefined) this.bundlePeers.set(peerId, (yes = this.peerTakesBundles(peerId)));
    return yes;
  }

  /** An engine's datagram budget: a parity shard carries one byte more header than a data shard. */
  private get engineMtu(): number {
    return this.mtu - PARITY_EXTRA;
  }

  /** The KCP settings every flow of this carrier gets. */
  get settings(): { mtu: number; sndWnd: number; rcvWnd: number; interval: number; nodelay: number; resend: number; nc: number } {
    return { mtu: this.mtu, sndWnd: this.sndWnd, rcvWnd: this.rcvWnd, interval: this.interval, ...this.noDelay };
  }

  /** Opens a flow to `peerId`; the OPEN frame is queued at once. */
  open(peerId: number, req: OpenRequest, now: number): KcpFlow {
    this.clock = now;
    const conv = this.flows.freeConv(peerId, this.nextConv);
    this.nextConv = (conv + 1) >>> 0;
    const flow = new KcpFlow(this.nextId++, peerId, 'initiator', this.newKcp(conv), now, this.openTimeoutMs, this.lingerMs,
      this.silentLimitMs, this.pathTo(peerId));
    this.flows.add(flow);
    flow.request = req;
    flow.sendOpen(req, now);
    this.settle(flow, now);
    return flow;
  }

  /** A peer packet of one of our two types arrived from `fromPeer`. Never throws on any bytes. */
  input(fromPeer: number, type: number, payload: Uint8Array, now: number): void {
    const fromInitiator = type === this.types.fromInitiator;
    if (!fromInitiator && type !== this.types.fromAcceptor) return;
    this.clock = now;
    // The peer's carrier is alive: flows still waiting for its answer are queued, not lost (KcpFlow.peerHeardAt).
    const path = this.paths.get(fromPeer);
    if (path) path.heardAt = now;
    if (payload.length < RESET_LEN) {
      this.stats.malformed++;
      return;
    }
    const kind = payload[0];
    if (kind === KIND_FEC_REPORT) {
      if (path?.fec) {
        const body = payload.subarray(1);
        path.fec.lossReport(body);
        path.ctl.onHostDrops(path.fec.hostDropsIn(body), now);
      }
      return;
    }
    if (kind === KIND_FEC_DATA || kind === KIND_FEC_PARITY) return this.fecInput(fromPeer, kind, payload, now);
    this.inputPlain(fromPeer, fromInitiator, payload, now, true);
  }

  /** A FEC data or parity datagram: deliver the data inside it, and whatever its group lets us rebuild. */
  private fecInput(fromPeer: number, kind: number, payload: Uint8Array, now: number): void {
    const body = payload.subarray(1);
    let dec = this.decoders.get(fromPeer);
    if (!dec) this.decoders.set(fromPeer, (dec = new FecDecoder()));
    this.fecPeer = fromPeer;
    if (kind === KIND_FEC_PARITY) dec.parity(body, this.rebuilt);
    else {
      const inner = dec.data(body, this.rebuilt);
      if (inner === null || inner.payload.length < RESET_LEN) this.stats.malformed++;
      else this.inputPlain(fromPeer, inner.type === 0, inner.payload, now, true);
    }
    const report = dec.takeReport(now, this.hostDrops);
    if (report) this.tx.push({ peerId: fromPeer, type: this.types.fromInitiator, data: report });
  }

  /** The peer of the FEC datagram being decoded, for what its group rebuilds (no closure per datagram). */
  private fecPeer = 0;
  private readonly rebuilt = (r: Rebuilt): void => {
    const kind = r.payload[0];
    if (r.payload.length >= RESET_LEN && (kind === KIND_SEGMENTS || kind === KIND_BUNDLE)) this.inputPlain(this.fecPeer, r.type === 0, r.payload, this.clock, false);
  };

  /** A datagram as it goes without FEC (kind byte first); `regular` = false when FEC rebuilt it. */
  private inputPlain(fromPeer: number, fromInitiator: boolean, payload: Uint8Array, now: number, regular: boolean): void {
    const kind = payload[0];
    const conv = readU32(payload, 1);
    if (kind === KIND_RESET || kind === KIND_CLOSED) {
      if (kind === KIND_RESET) this.stats.resetsReceived++;
      const flow = this.flows.find(fromPeer, fromInitiator, conv);
      if (flow) {
        if (kind === KIND_RESET) flow.peerReset(now);
        else flow.peerClosed(now);
        this.settle(flow, now);
      }
      return;
    }
    if (kind === KIND_SEGMENTS) return this.inputSegments(fromPeer, fromInitiator, conv, payload, now, regular);
    if (kind === KIND_BUNDLE) return this.inputBundle(fromPeer, fromInitiator, payload, now, regular);
    this.stats.malformed++;
  }

  /** A bundle: each run of segments of one conversation goes to its flow as if it came alone. */
  private inputBundle(fromPeer: number, fromInitiator: boolean, payload: Uint8Array, now: number, regular: boolean): void {
    for (let start = 1; start < payload.length;) {
      const conv = readU32(payload, start);
      let end = start;
      while (end + IKCP_OVERHEAD <= payload.length && readU32(payload, end) === conv) end += IKCP_OVERHEAD + readU32(payload, end + 20);
      if (end === start || end > payload.length) {
        this.stats.malformed++;
        return;
      }
      // The byte before the run stands in for a kind byte: a flow reads its segments from offset 1.
      this.inputSegments(fromPeer, fromInitiator, conv, payload.subarray(start - 1, end), now, regular);
      start = end;
    }
  }

  /** KCP segments of conversation `conv`, from payload[1] on. */
  private inputSegments(fromPeer: number, fromInitiator: boolean, conv: number, payload: Uint8Array, now: number, regular: boolean): void {
    let flow = this.flows.find(fromPeer, fromInitiator, conv);
    if (!flow) {
      const gone = this.flows.gone(fromPeer, fromInitiator ? 'acceptor' : 'initiator', conv);
      if (gone || !fromInitiator || !KcpFlow.startsConversation(payload)) {
        // Late segments of a flow we forgot, or of a peer that restarted: tell it how that flow ended.
        this.stats.unknownConv++;
        this.sendReset(fromPeer, fromInitiator, conv, gone?.clean ? KIND_CLOSED : KIND_RESET);
        return;
      }
      flow = new KcpFlow(this.nextId++, fromPeer, 'acceptor', this.newKcp(conv), now, this.openTimeoutMs, this.lingerMs,
        this.silentLimitMs, this.pathTo(fromPeer));
      this.flows.add(flow);
    }
    const f = flow;
    if (!this.guard(f, now, Step.Input, payload, regular)) this.stats.malformed++;
    this.acking.add(flow);
    if (flow.role === 'acceptor' && flow.request && !flow.answered && !this.acceptInput) {
      flow.answer(DialStatus.Denied, now);
    }
    this.settle(flow, now);
  }

  pollTransmit(): CarrierTransmit | null {
    return this.tx.length > 0 ? this.tx.shift()! : null;
  }

  /** Returns a datagram's memory once sent (optional). */
  recycle(t: CarrierTransmit): void {
    if (this.bundler.recycle(t.data)) return;
    const kind = t.data[0];
    const at = kind === KIND_SEGMENTS ? 1 : kind === KIND_FEC_DATA ? FEC_DATA_PREFIX + 1 : -1;
    if (at < 0) return; // parity, reports, resets: not an engine's buffer
    // Our own datagram: sent as initiator, it belongs to a flow we opened.
    const flow = this.flows.find(t.peerId, t.type !== this.types.fromInitiator, readU32(t.data, at));
    flow?.kcp.recycleTransmit(t.data);
  }

  /** The next flow with news, or null. */
  pollEvent(): KcpFlow | null {
    for (const f of this.pendingEvents) {
      this.pendingEvents.delete(f);
      return f;
    }
    return null;
  }

  /** Absolute time at which handleTimeout must run, or Infinity when nothing is pending. */
  pollTimeout(): number {
    let t = this.timers.peekAt();
    for (const p of this.pacing) if (p.wakeAt < t) t = p.wakeAt;
    for (const p of this.paths.values()) {
      const d = p.fec?.deadline() ?? Infinity;
      if (d < t) t = d;
    }
    return t;
  }

  handleTimeout(now: number): void {
    this.clock = now;
    this.flows.expire(now, this.lingerMs * 6);
    // Taken out first: a flow's new deadline may still be due, and it runs once per call.
    const due = this.due;
    for (let f = this.timers.popDue(now); f; f = this.timers.popDue(now)) due.push(f);
    // Held ACKs fall due together (KcpFlow's ACK_DELAY_MS): bundled per peer like a pass's answers.
    this.bundling = true;
    for (const f of due) {
      if (f.deadline() <= now) this.guard(f, now, Step.Timeout);
      this.settle(f, now);
    }
    this.bundling = false;
    this.bundler.flush(this.sendBundle);
    due.length = 0;
    for (const p of this.pacing) if (p.wakeAt <= now) this.pace(p, now);
    for (const [peerId, p] of this.paths) {
      if (p.fec === null || p.fec.deadline() > now) continue;
      this.framing = p;
      this.framingPeer = peerId;
      p.fec.handleTimeout(now, this.onParity);
      this.framing = null;
    }
  }

  /** Answers, in one flush per flow, every datagram input() took since the last call (see KcpFlow.flushAcks). */
  flushAcks(now: number): void {
    this.clock = now;
    this.bundling = true;
    for (const f of this.acking) {
      this.guard(f, now, Step.FlushAcks);
      this.settle(f, now);
    }
    this.bundling = false;
    this.acking.clear();
    this.bundler.flush(this.sendBundle);
  }

  /** Whether flows have news not yet taken by pollEvent() (the pacer's grants can make some). */
  hasEvents(): boolean {
    return this.pendingEvents.size > 0;
  }

  // ---- the proxy's operations on a flow: each goes through here, so its output is queued and its deadline kept ----

  /** Takes `data` if the flow's window has room (see KcpFlow.write). */
  write(flow: KcpFlow, data: Uint8Array, now: number): boolean {
    const ok = flow.write(data, now);
    this.settle(flow, now);
    return ok;
  }

  /** The next chunk the peer sent, or null; reading may open the receive window. */
  read(flow: KcpFlow): Uint8Array | null {
    const d = flow.read();
    if (d) this.settle(flow, this.clock);
    return d;
  }

  /** Our half-close, after the bytes written. */
  closeWrite(flow: KcpFlow, now: number): void {
    flow.closeWrite(now);
    this.settle(flow, now);
  }

  /** Aborts the flow; the peer sees a reset. */
  reset(flow: KcpFlow, now: number): void {
    flow.reset(now);
    this.settle(flow, now);
  }

  /** Acceptor: the remote dial's outcome. */
  answer(flow: KcpFlow, status: DialStatus, now: number): void {
    flow.answer(status, now);
    this.settle(flow, now);
  }

  /** After anything that changed a flow: queue its output and events, move its deadline, forget it once finished. */
  private settle(flow: KcpFlow, now: number): void {
    if (now > this.clock) this.clock = now;
    const path = this.account(flow, now);
    this.pace(path, now);
    if (flow.takeResetToSend()) this.sendReset(flow.peerId, flow.role === 'acceptor', flow.kcp.conv);
    if (flow.hasEvents()) this.pendingEvents.add(flow);
    if (flow.retired) return; // the proxy may still act on a flow the carrier forgot
    if (flow.finished()) {
      this.timers.delete(flow);
      this.acking.delete(flow);
      this.forget(flow, flow.lastSeen);
    } else this.timers.set(flow, flow.needsTimer() ? flow.deadline() : Infinity);
  }

  /**
   * The peer is gone (its process restarted or died) or was unreachable past the flow timeout: every
   * flow with it is reset toward its application now, and told to the peer in case it still listens.
   * Returns how many were still open.
   */
  abortPeer(peerId: number, now: number): number {
    let n = 0;
    for (const flow of this.flows.peerFlows(peerId)) {
      if (!flow.ended) n++;
      flow.lost(now);
      this.settle(flow, now);
    }
    return n;
  }

  /** FEC toward `peerId` (shards sent) and from it (datagrams rebuilt), for stats and tests; undefined without. */
  fecStats(peerId: number): { data: number; parity: number; recovered: number } | undefined {
    const enc = this.paths.get(peerId)?.fec;
    const dec = this.decoders.get(peerId);
    if (!enc && !dec) return undefined;
    return { data: enc?.stats.data ?? 0, parity: enc?.stats.parity ?? 0, recovered: dec?.stats.recovered ?? 0 };
  }

  /** Live flows (for stats and tests). */
  get flowCount(): number {
    return this.flows.count;
  }

  /** Runs one flow's step; an exception (a bug) resets that flow instead of reaching the caller. */
  private guard(flow: KcpFlow, now: number, step: Step, payload?: Uint8Array, regular = true): boolean {
    try { // the step is named, not a closure: this runs per datagram and per timer
      if (step === Step.Input) return flow.input(payload!, now, regular);
      if (step === Step.Timeout) flow.handleTimeout(now);
      else flow.flushAcks(now);
      return true;
    } catch (e) {
      this.stats.faults++;
      this.lastFault = e;
      flow.lost(now);
      return true;
    }
  }

  /** Sends what the flow queued, charges it to its path, and queues the flow there if it has more. */
  private account(flow: KcpFlow, now: number): PeerPath {
    const path = this.pathTo(flow.peerId);
    // The receive window: the flow's share of the node's budget (its slots fill only as data arrives).
    flow.kcp.setWindows(0, this.windowCap());
    this.framing = path;
    this.framingPeer = flow.peerId;
    this.framingFlow = flow;
    const bytes = flow.drainOutput(this.tx, this.types, this.frame);
    this.framing = null;
    this.framingFlow = null;
    if (bytes > 0) path.ctl.onSent(bytes, now);
    path.note(flow, now);
    if (flow.hasEvents()) this.pendingEvents.add(flow);
    return path;
  }

  /** The peer's send path, made with its first flow. */
  private pathTo(peerId: number): PeerPath {
    let path = this.paths.get(peerId);
    if (!path) this.paths.set(peerId, (path = new PeerPath(this.mss, this.peerDecodesFec(peerId))));
    return path;
  }

  /** The most segments one flow's window may span now: its share of the node's budget. */
  private windowCap(): number {
    return Math.max(MIN_FLOW_WINDOW, Math.min(MAX_FLOW_WINDOW, Math.floor(NODE_WINDOW_BUDGET / Math.max(1, this.flows.live))));
  }

  private pace(path: PeerPath, now: number): void {
    path.pace(now, this.onSent, this.windowCap());
    if (path.wakeAt !== Infinity) this.pacing.add(path);
    else this.pacing.delete(path);
  }

  private forget(flow: KcpFlow, now: number): void {
    this.paths.get(flow.peerId)?.retire(flow);
    // A peer with no flows left keeps no path: its model would be stale by the next flow anyway.
    if (this.flows.remove(flow, now)) {
      const path = this.paths.get(flow.peerId);
      if (path) this.pacing.delete(path);
      this.paths.delete(flow.peerId);
      this.decoders.delete(flow.peerId);
      this.bundlePeers.delete(flow.peerId);
    }
  }

  private sendReset(peerId: number, toInitiator: boolean, conv: number, kind = KIND_RESET): void {
    const data = new Uint8Array(RESET_LEN);
    data[0] = kind;
    writeU32(data, 1, conv);
    if (kind === KIND_RESET) this.stats.resetsSent++;
    this.tx.push({ peerId, type: toInitiator ? this.types.fromAcceptor : this.types.fromInitiator, data });
  }

  private newKcp(conv: number): Kcp {
    const kcp = new Kcp({
      conv,
      mtu: this.engineMtu,
      headroom: FEC_DATA_PREFIX + 1,
      sndWnd: this.sndWnd,
      rcvWnd: this.rcvWnd,
      ...this.noDelay,
      interval: this.interval,
      streamMode: true,
      deadLink: NO_DEAD_LINK,
      ackRepeat: true,
      rack: true,
      inputFlushes: false,
      // A sender that saw our window closed asks again after this (kcp-go ≤ v5.6.42's 7 s stalls a flow).
      probeInitMs: 500,
    });
    kcp.newSegmentQuota = 0; // new data goes only when its path grants it (PeerPath.pace)
    kcp.holdPartialTail = true; // until the flow's FIN or RST (KcpFlow)
    return kcp;
  }
}

/** What guard() runs on a flow. */
const enum Step {
  Input,
  Timeout,
  FlushAcks,
}

export { FrameType };
