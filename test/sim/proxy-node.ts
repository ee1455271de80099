/**
 * One node of the proxy flow simulation: the real FlowCore, with everything around it played on the
 * virtual clock. The carriers are modelled at the level the core sees them (an OPEN crosses after a
 * delay, or never when the far carrier is silent; STATUS comes back; resets; the carrier's own open
 * timeout), as are the terminator (the held SYN and its verdicts, the app's connection that reaches
 * the proxy after release, or never), the far node's dial and the applications' ends. What happens
 * to each held SYN is recorded for the invariants in proxy-flow.test.ts.
 */
import { DialStatus } from '../../daemon/carrier/flow-frames.js';
import { FlowCore, type CarriedTransport, type CarrierView, type DstFlowState, type FlowAction, type SocketOpening,
  type SrcFlowState } from '../../daemon/proxy/flow-core.js';
import { FlowTable } from '../../daemon/proxy/flow-table.js';
import { chooseTransport, type TransportChoice } from '../../daemon/proxy/transport-choice.js';
import type { ProxyTransport } from '../../daemon/rpc/source.js';
import { Feature } from '../../daemon/peer/route-record.js';
import type { Rng, SimEndpoint, World } from './world.js';

const SRC_IP = Uint8Array.of(10, 0, 0, 1);
const DST_IP = Uint8Array.of(10, 0, 0, 2);

/** The carrier's own limit on an unheard open (the KCP carrier's is longer; shorter here keeps runs short). */
export const CARRIER_OPEN_TIMEOUT_MS = 8_000;
/** A held SYN the terminator gives up on by itself (HELD_TIMEOUT_MS). */
export const HELD_TIMEOUT_MS = 30_000;
export const LINGER_MS = 10_000;

export interface NodeSetup {
  enableKcp: boolean;
  enableQuic: boolean;
  /** What this node announces in route sync (Feature bits). */
  announces: number;
  /** What its carriers really do with an OPEN: accept, deny, or never answer. */
  kcpInput: 'accept' | 'deny' | 'silent';
  quicInput: 'accept' | 'deny' | 'silent';
  optimistic: boolean;
  flowTimeoutMs: number;
}

/** How the far node's dial for a flow ends, and how its app side behaves. */
export interface FlowPlan {
  dial: DialStatus | 'protected';
  dialMs: number;
  /** The app's connection never reaches the proxy after release (a lost handshake ACK). */
  acceptLost: boolean;
  /** After piping: who ends the flow, when (ms after connected); 'idle' flows live until the checkpoint. */
  end: 'idle' | 'src-close' | 'src-reset' | 'dst-reset';
  endMs: number;
  /** A carrier reset of this flow at this time (ms after the open), or -1. */
  carrierResetMs: number;
  /** The OPEN takes this long to cross (a burst queued ahead of it), or 0: the usual delay. */
  slowOpenMs: number;
}

export class SimFlow implements CarrierView {
  status: DialStatus | null = null;
  heard = false;
  ended = false;
  answered = false;
  readonly txBytes = 0;
  readonly rxBytes = 0;
  readonly rttMs = 0;
  readonly retransmits = 0;
  readonly duplicates = 0;
  peerFlow: SimFlow | null = null;
  /** Initiator: the source app's FIN was sent; acceptor: it arrived (kept until the destination's pipe reads it). */
  fin = false;
  constructor(readonly transport: CarriedTransport, readonly node: ProxyNode, readonly key: number) {}

  /** The carrier hears the peer whenever any of its flows does (an answer, an acknowledgement). */
  get peerHeardAt(): number {
    return this.node.peerHeardAt[this.transport];
  }

  /** Something of this flow came back from the peer at `now`. */
  hear(now: number): void {
    this.heard = true;
    this.node.peerHeardAt[this.transport] = now;
  }
}

/** Keys from here on are flows that start at a socket (a SOCKS5 CONNECT, a port forward). */
export const SOCKET_KEYS = 500;

/**
 * A flow that starts at a socket, played as socket-flow.ts's OutboundFlow plays it: its own
 * transport choice and fallback, the core's no-answer deadline. `outcomes` records its answers.
 */
export class SimSocketFlow implements SocketOpening<SimFlow> {
  carrier: SimFlow | null = null;
  transport: ProxyTransport = 'Tcp';
  reason = 'socket';
  readonly tried = new Set<ProxyTransport>();
  readonly outcomes: string[] = [];
  constructor(readonly key: number, private readonly node: ProxyNode) {}

  get done(): boolean {
    return this.outcomes.length > 0;
  }

  noAnswer(why: string): void {
    this.node.socketNoAnswer(this, why);
  }
}

/** What the terminator saw of one held SYN. */
export interface SynRecord {
  state: 'held' | 'released' | 'gone';
  verdicts: string[];
  abandoned: boolean;
  plainRowClosed: boolean;
}

export class ProxyNode implements SimEndpoint {
  readonly table = new FlowTable(LINGER_MS);
  readonly core: FlowCore<SimFlow>;
  other!: ProxyNode;
  reachable = true;
  /** When each carrier last heard from the other node, any flow's answer (see SimFlow.peerHeardAt). */
  readonly peerHeardAt: Record<CarriedTransport, number> = { Kcp: -Infinity, Quic: -Infinity };
  readonly syns = new Map<SrcFlowState<SimFlow>, SynRecord>();
  readonly srcByKey = new Map<number, SrcFlowState<SimFlow>>();
  /** The latest destination flow of each key (a fallback opens another). */
  readonly dstByKey = new Map<number, DstFlowState<SimFlow>>();
  private readonly dstByFlow = new Map<SimFlow, DstFlowState<SimFlow>>();
  /** Carrier flows whose sink is attached (detached ones get no more events). */
  private readonly attached = new Set<SimFlow>();
  private readonly piped = new Set<SrcFlowState<SimFlow> | DstFlowState<SimFlow>>();
  private readonly dialCancelled = new Set<DstFlowState<SimFlow>>();
  readonly plainRows: Array<{ key: number; row: ReturnType<FlowTable['add']> }> = [];
  readonly sockets = new Map<number, SimSocketFlow>();
  private readonly choose: (peer: number, tried: ReadonlySet<ProxyTransport>) => TransportChoice | null;
  readonly problems: string[] = [];
  /** The checkpoint has passed and the applications closed. */
  closed = false;

  constructor(readonly id: number, readonly setup: NodeSetup, private readonly world: World, private readonly rng: Rng,
    readonly plans: Map<number, FlowPlan>) {
    this.choose = (peer, tried) => (!this.reachable || peer !== this.other.id ? null : chooseTransport(
      { enableKcpProxy: setup.enableKcp && !tried.has('Kcp'), enableQuicProxy: setup.enableQuic && !tried.has('Quic') },
      this.other.setup.announces, undefined, false));
    this.core = new FlowCore<SimFlow>({ table: this.table, flowTimeoutMs: setup.flowTimeoutMs, choose: this.choose });
  }

  // ---- SimEndpoint: no datagrams, only the core's deadline ----
  input(): void {}
  pollTransmit(): null {
    return null;
  }
  pollTimeout(): number {
    return this.core.pollTimeout();
  }
  handleTimeout(now: number): void {
    this.core.handleTimeout(now);
    this.drain(now);
  }

  private delay(): number {
    return this.rng.range(1, 150);
  }

  private later(ms: number, fn: (now: number) => void): void {
    this.world.schedule(this.world.now + ms, (now) => {
      fn(now);
      // What happened may concern either node (a frame arriving is the far node's event).
      this.drain(now);
      this.other.drain(now);
    });
  }

  /** The app sends a SYN for flow `key`; the terminator holds it if the core claims it. */
  syn(key: number, now: number): void {
    const claim = this.core.claim({ src: { ip: SRC_IP, port: 1024 + key }, dst: { ip: DST_IP, port: 80 }, optimistic: this.setup.optimistic },
      this.other.id, 0);
    if (claim?.kind === 'plain') {
      if (claim.row) this.plainRows.push({ key, row: claim.row });
    } else if (claim) {
      this.srcByKey.set(key, claim.flow);
      this.syns.set(claim.flow, { state: 'held', verdicts: [], abandoned: false, plainRowClosed: false });
      this.core.held(claim.flow, now);
      const rec = this.syns.get(claim.flow)!;
      this.later(HELD_TIMEOUT_MS, (t) => {
        if (rec.state !== 'held') return;
        rec.state = 'gone';
        rec.abandoned = true;
        this.core.abandoned(claim.flow, 'held SYN expired', t);
      });
    }
    this.drain(now);
  }

  drain(now: number): void {
    for (let a = this.core.pollAction(); a; a = this.core.pollAction()) this.act(a, now);
  }

  private verdict(src: SrcFlowState<SimFlow>, what: string): void {
    const rec = this.syns.get(src)!;
    if (rec.state !== 'held') {
      if (what === 'release' || what === 'pass') this.problems.push(`${what} of a SYN no longer held (${rec.verdicts.join(',')})`);
      return;
    }
    rec.verdicts.push(what);
    rec.state = what === 'release' ? 'released' : 'gone';
  }

  private act(a: FlowAction<SimFlow>, now: number): void {
    switch (a.kind) {
      case 'open': return this.open(a.flow, a.transport);
      case 'detach':
        if (a.abort && !a.carrier.ended) this.resetFlow(a.carrier);
        this.attached.delete(a.carrier);
        return;
      case 'release': {
        this.verdict(a.flow, 'release');
        const plan = this.plans.get(keyOf(a.flow))!;
        if (!plan.acceptLost) this.later(this.delay(), (t) => this.accept(a.flow, t));
        return;
      }
      case 'refuse': case 'drop':
        return this.verdict(a.flow, a.kind);
      case 'reset-app':
        return this.endPipe(a.flow, 'reset-by-peer', now);
      case 'ended':
        // A SYN still held when the proxy is done with it is forgotten unanswered: a drop.
        if (this.syns.get(a.flow)!.state === 'held') this.verdict(a.flow, 'drop');
        else this.syns.get(a.flow)!.state = 'gone';
        return;
      case 'pass': {
        const held = this.syns.get(a.flow)!.state === 'held';
        if (held) this.verdict(a.flow, 'pass');
        this.core.passed(a.flow, held ? 'ipv4' : null, now);
        if (held) this.plainRows.push({ key: keyOf(a.flow), row: a.flow.row });
        return;
      }
      case 'abort-peer':
        for (const f of [...this.attached]) if (!f.ended) this.resetFlow(f, true);
        return;
      case 'dial': return this.dial(a.flow);
      case 'answer': return this.answer(a.flow, a.status);
      case 'cancel-dial':
        if (!this.dialCancelled.has(a.flow)) {
          this.dialCancelled.add(a.flow);
          this.later(1, (t) => this.dialDone(a.flow, DialStatus.Unreachable, 'dial aborted', t));
        }
        return;
      case 'socket-no-answer':
        return a.flow.noAnswer(a.why);
    }
  }

  // ---- flows from sockets ----

  /** A client asks for flow `key` (≥ SOCKET_KEYS) from a socket: the first transport route info gives. */
  socketConnect(key: number, now: number): void {
    const f = new SimSocketFlow(key, this);
    this.sockets.set(key, f);
    this.socketNext(f, this.choose(this.other.id, f.tried) ?? { transport: 'Tcp', reason: 'no route' }, now);
    this.drain(now);
  }

  /** The core's no-answer deadline passed for the carrier the flow is opening. */
  socketNoAnswer(f: SimSocketFlow, why: string): void {
    if (f.done) this.problems.push(`socket flow ${f.key}: a no-answer deadline after its answer (${f.outcomes.join(',')})`);
    else this.socketFallback(f, why, this.world.now);
  }

  private socketNext(f: SimSocketFlow, choice: TransportChoice, now: number): void {
    f.transport = choice.transport;
    f.reason = `${f.reason}; ${choice.reason}`;
    if (choice.transport === 'Tcp') return this.socketOutcome(f, 'plain');
    const flow = new SimFlow(choice.transport, this, f.key);
    f.carrier = flow;
    this.attached.add(flow);
    this.core.socketOpened(f, now);
    this.launch(flow, { src: { ip: SRC_IP, port: 1024 + f.key }, dst: { ip: DST_IP, port: 80 }, optimistic: false });
  }

  private socketFallback(f: SimSocketFlow, why: string, now: number): void {
    f.tried.add(f.transport);
    f.reason = `${f.reason}; ${f.transport.toLowerCase()}: ${why}`;
    this.socketDrop(f);
    this.socketNext(f, this.choose(this.other.id, f.tried) ?? { transport: 'Tcp', reason: 'no route' }, now);
  }

  private socketDrop(f: SimSocketFlow): void {
    const flow = f.carrier;
    if (!flow) return;
    if (!flow.ended) this.resetFlow(flow);
    this.attached.delete(flow);
    f.carrier = null;
  }

  private socketOutcome(f: SimSocketFlow, what: string): void {
    f.outcomes.push(what);
    this.core.socketSettled(f);
  }

  /** A carrier event for a socket flow, as OutboundFlow.onFlowEvents takes it. */
  private socketEvent(f: SimSocketFlow, flow: SimFlow, what: 'status' | 'reset', now: number): void {
    if (f.done) return;
    if (what === 'status') {
      this.core.socketSettled(f);
      if (flow.status === DialStatus.Denied) return this.socketFallback(f, 'denied by peer', now);
      if (flow.status !== DialStatus.Connected) this.socketDrop(f);
      return this.socketOutcome(f, flow.status === DialStatus.Connected ? 'connected' : `failed ${flow.status}`);
    }
    if (flow.status === null && !flow.heard) return this.socketFallback(f, 'no answer from peer', now);
    this.socketDrop(f);
    this.socketOutcome(f, 'reset');
  }

  // ---- the carriers ----

  private open(src: SrcFlowState<SimFlow>, transport: CarriedTransport): void {
    const flow = new SimFlow(transport, this, keyOf(src));
    this.core.opened(src, flow);
    this.attached.add(flow);
    this.launch(flow, src.req);
  }

  /** The OPEN crosses (unless the far carrier is silent); the carrier's own timeout and planned reset. */
  private launch(flow: SimFlow, req: SrcFlowState<SimFlow>['req']): void {
    const input = flow.transport === 'Kcp' ? this.other.setup.kcpInput : this.other.setup.quicInput;
    const plan = this.plans.get(flow.key)!;
    if (input !== 'silent') this.later(plan.slowOpenMs || this.delay(), (t) => this.other.openArrived(flow, req, t));
    this.later(CARRIER_OPEN_TIMEOUT_MS, () => {
      if (!flow.heard && !flow.ended) this.resetFlow(flow, true);
    });
    if (plan.carrierResetMs >= 0) this.later(plan.carrierResetMs, () => {
      if (!flow.ended) this.resetFlow(flow, true);
    });
  }

  /** The far side of an open: deny it (carrier input off), or hand it to the core. */
  private openArrived(init: SimFlow, req: SrcFlowState<SimFlow>['req'], now: number): void {
    if (init.ended) return;
    const acc = new SimFlow(init.transport, this, init.key);
    acc.fin = init.fin; // it follows the OPEN in the same stream
    acc.peerFlow = init;
    init.peerFlow = acc;
    this.other.later(this.delay(), (t) => init.hear(t));
    const input = init.transport === 'Kcp' ? this.setup.kcpInput : this.setup.quicInput;
    if (input === 'deny') return this.sendStatus(acc, DialStatus.Denied);
    this.attached.add(acc);
    const plan = this.plans.get(init.key)!;
    const target = plan.dial === 'protected' ? { ok: false as const, why: 'port 80 is one of this node\'s own services' } : { ok: true as const, ip: '10.0.0.2' };
    const dst = this.core.openRequest(init.transport, acc, req, target, 0, now);
    this.dstByKey.set(init.key, dst);
    this.dstByFlow.set(acc, dst);
  }

  private sendStatus(acc: SimFlow, status: DialStatus): void {
    acc.answered = true;
    if (status !== DialStatus.Connected) acc.ended = true;
    const init = acc.peerFlow!;
    this.later(this.delay(), (t) => {
      if (init.ended) return;
      init.hear(t);
      init.status = status;
      if (status !== DialStatus.Connected) init.ended = true;
      init.node.flowEvent(init, 'status', t);
    });
  }

  /** Ends a carrier flow with a reset: the peer's side learns after a delay; `local`: this side too. */
  private resetFlow(flow: SimFlow, local = false): void {
    flow.ended = true;
    if (local) this.flowEvent(flow, 'reset', this.world.now);
    const peer = flow.peerFlow;
    if (peer && !peer.ended) {
      this.later(this.delay(), (t) => {
        if (peer.ended) return;
        peer.ended = true;
        peer.node.flowEvent(peer, 'reset', t);
      });
    }
  }

  /** A carrier event toward this node's sink (none once detached). */
  flowEvent(flow: SimFlow, what: 'status' | 'reset', now: number): void {
    if (!this.attached.has(flow)) return;
    const sock = flow.node === this ? this.sockets.get(flow.key) : undefined;
    if (sock) {
      if (sock.carrier === flow) this.socketEvent(sock, flow, what, now);
      return this.drain(now);
    }
    const src = this.srcByKey.get(flow.key);
    if (src && flow.node === this && src.carrier === flow) {
      if (what === 'status') this.core.status(src, flow, flow.status!, now);
      else if (this.piped.has(src)) this.endPipe(src, 'reset-by-peer', now);
      else this.core.carrierReset(src, flow, now);
    } else {
      const dst = this.dstByFlow.get(flow);
      if (!dst) return;
      if (this.piped.has(dst)) {
        if (what === 'reset') this.endPipe(dst, 'reset-by-peer', now);
      } else if (what === 'reset') this.core.dstCarrierReset(dst);
    }
    this.drain(now);
  }

  // ---- the terminator and the applications ----

  private accept(src: SrcFlowState<SimFlow>, _now: number): void {
    if (!this.core.accepted(src)) return; // the stream is destroyed: the app sees a reset
    this.piped.add(src);
    const plan = this.plans.get(keyOf(src))!;
    if (plan.end === 'idle') return;
    this.later(plan.endMs, (t) => {
      if (!this.piped.has(src)) return;
      const flow = src.carrier!;
      if (plan.end === 'src-close') {
        flow.fin = true;
        this.endPipe(src, 'closed', t);
        const peer = flow.peerFlow;
        if (peer) this.later(this.delay(), (t2) => peer.node.finArrived(peer, t2));
      } else if (plan.end === 'src-reset') {
        this.resetFlow(flow);
        this.endPipe(src, 'reset-by-app', t);
      } else {
        const peer = flow.peerFlow;
        if (peer) peer.node.appReset(peer, t);
      }
    });
  }

  /** The source app closed: the destination's pipe finishes cleanly too. */
  finArrived(flow: SimFlow, now: number): void {
    flow.fin = true;
    const dst = this.dstByFlow.get(flow);
    if (dst && this.piped.has(dst)) this.endPipe(dst, 'closed', now);
    this.drain(now);
  }

  appReset(flow: SimFlow, now: number): void {
    const dst = this.dstByFlow.get(flow);
    if (!dst || !this.piped.has(dst)) return;
    this.resetFlow(flow);
    this.endPipe(dst, 'reset-by-app', now);
    this.drain(now);
  }

  /** Every piped flow still open closes cleanly from the source side; plain rows close. */
  closeAll(now: number): void {
    this.closed = true;
    for (const src of this.srcByKey.values()) {
      if (!this.piped.has(src)) continue;
      const peer = src.carrier?.peerFlow;
      if (src.carrier) src.carrier.fin = true;
      this.endPipe(src, 'closed', now);
      if (peer) this.later(this.delay(), (t) => peer.node.finArrived(peer, t));
    }
    for (const f of this.sockets.values()) {
      const peer = f.carrier?.peerFlow;
      if (f.outcomes[0] !== 'connected' || !f.carrier || f.carrier.ended) continue;
      f.carrier.fin = true;
      if (peer) this.later(this.delay(), (t) => peer.node.finArrived(peer, t));
    }
    for (const { row } of this.plainRows) this.table.close(row, now);
    this.drain(now);
  }

  private endPipe(p: SrcFlowState<SimFlow> | DstFlowState<SimFlow>, how: string, now: number): void {
    if (!this.piped.delete(p)) return;
    if ('tried' in p) this.core.pipeEnded(p, how, now);
    else {
      this.attached.delete(p.carrier);
      this.core.dstPipeEnded(p, how, now);
    }
  }

  // ---- the far node's dial ----

  private dial(dst: DstFlowState<SimFlow>): void {
    const plan = this.plans.get(dst.carrier.key)!;
    const status = plan.dial === 'protected' ? DialStatus.Denied : plan.dial;
    this.later(plan.dialMs, (t) => this.dialDone(dst, status, 'dialled', t));
  }

  private dialDone(dst: DstFlowState<SimFlow>, status: DialStatus, why: string, now: number): void {
    if (this.dialCancelled.has(dst) && why !== 'dial aborted') return;
    if (dst.phase !== 'dialling') return;
    if (!this.core.dialed(dst, status, why, now)) return;
    this.piped.add(dst);
    if (dst.carrier.fin) this.endPipe(dst, 'closed', now);
  }

  private answer(dst: DstFlowState<SimFlow>, status: DialStatus): void {
    if (status !== DialStatus.Connected) this.attached.delete(dst.carrier);
    this.sendStatus(dst.carrier, status);
  }
}

/** A flow's key: its source port less 1024. */
export function keyOf(src: SrcFlowState<SimFlow>): number {
  return src.req.src.port - 1024;
}

export const ANNOUNCE = { kcp: Feature.KcpInput, quic: Feature.QuicInput };
