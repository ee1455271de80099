/**
 * The TCP proxy of a node: intercepts TCP flows at the TUN through a Terminator (kernel: NAT +
 * re-inject; `--use-smoltcp`: the userspace stack; `--proxy-redirect`: a packet-filter REDIRECT to a
 * local listener, outside the TUN), chooses a carrier per SYN (KCP > QUIC > plain
 * packets), and on the far node dials the real destination and pipes the bytes. Both ends list their
 * side of every flow for `easytier-cli proxy`. Plain packets to this node's proxied CIDRs are
 * terminated by the SubnetProxy.
 *
 * This is the adapter of the sans-IO FlowCore (flow-core.ts, where hold, fidelity, fallback and the
 * rows are decided): it turns the terminator's, the carriers' and the peer layer's callbacks into the
 * core's events, carries out the actions the core returns, and wakes it at its deadline.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { FlowEvent, type CarrierDriver, type CarrierFlow, type FlowSink } from '../carrier/carrier.js';
import { DialStatus } from '../carrier/flow-frames.js';
import { nowMs } from '../io/clock.js';
import { PassScheduler } from '../io/pass-scheduler.js';
import { SocketPipe, type AppStream, type PipeEnd } from '../carrier/socket-pipe.js';
import { KernelTerminator } from '../intercept/kernel/terminator.js';
import { RedirectTerminator } from '../intercept/redirect/terminator.js';
import { SmoltcpStack } from '../intercept/smoltcp/stack.js';
import { SmoltcpTerminator } from '../intercept/smoltcp/terminator.js';
import type { PlainRow, TerminatedFlow, Terminator, TerminatorClient } from '../intercept/terminator.js';
import { readU32 } from '../packet/bytes.js';
import type { SocketAddr } from '../packet/flow-key.js';
import { easyTierProxyFeatures } from '../peer/easytier/quic-proxy.js';
import { DEFAULT_TIMERS } from '../peer/peer-layer.js';
import type { ProxyEntryView, ProxyTransport } from '../rpc/source.js';
import { ProxyCarriers } from './carriers.js';
import { dstDialTarget } from './dial-target.js';
import { dialDestination } from './dial.js';
import { errorText, FlowCore, type DstFlowState, type FlowAction, type SrcFlowState } from './flow-core.js';
import { FlowTable, type FlowEntry } from './flow-table.js';
import { closeWaitMs, type ProxyHost } from './proxy-host.js';
import type { SocketCarriers } from './socket-flow.js';
import { SubnetProxy } from './subnet-proxy.js';
import { chooseTransport, type TransportChoice } from './transport-choice.js';

/** The terminators and the subnet proxy expire held SYNs and lingering flows on this tick. */
const HOUSEKEEPING_MS = 1_000;

type Src = SrcFlowState<CarrierFlow>;
type Dst = DstFlowState<CarrierFlow>;

/** The source side's I/O (the terminator's slot, the pipe); its state is the core's. */
class SrcFlow implements TerminatedFlow, FlowSink {
  term: unknown = null;
  pipe: SocketPipe | null = null;
  constructor(private readonly proxy: TcpProxy, readonly state: Src) {}

  onFlowEvents(flow: CarrierFlow, ev: number): void {
    this.proxy.srcEvents(this, flow, ev);
  }
}

/** The destination side's I/O: the dial's socket, then the pipe. */
class DstFlow implements FlowSink {
  pipe: SocketPipe | null = null;
  socket: Socket | null = null;
  constructor(private readonly proxy: TcpProxy, readonly state: Dst) {}

  onFlowEvents(_flow: CarrierFlow, ev: number): void {
    this.proxy.dstEvents(this, ev);
  }
}

export class TcpProxy implements TerminatorClient<SrcFlow> {
  readonly table = new FlowTable();
  private readonly core: FlowCore<CarrierFlow>;
  private readonly timer = new PassScheduler(() => this.onTimer(), nowMs);
  private housekeeping: NodeJS.Timeout | undefined;
  private carriers!: ProxyCarriers;
  private term: Terminator<SrcFlow> | null = null;
  private subnet: SubnetProxy | null = null;
  private readonly srcs = new WeakMap<Src, SrcFlow>();
  private readonly dsts = new WeakMap<Dst, DstFlow>();
  /** Every flow moving bytes, source and destination side: a stopping node resets their applications. */
  private readonly pipes = new Set<SocketPipe>();
  /** A half-closed flow whose other side never finishes is closed this long after its first FIN. */
  readonly closeWaitMs: number;
  private readonly onPeerGone = (peerId: number): void => this.step(() => this.core.peerGone(peerId));
  /**
   * The peer went silent somewhere between its last packet and the next keepalive it owed us: it has
   * been away since then at the earliest, so its flows are never reset before the flow timeout.
   */
  private readonly onPeerDown = (peerId: number, silentForMs: number): void => {
    const awayMs = Math.max(0, silentForMs - DEFAULT_TIMERS.keepaliveMs);
    if (this.host.peer.routes.nextHop(peerId) === undefined) this.step(() => this.core.peerDown(peerId, awayMs, nowMs()));
  };
  private readonly onRoutes = (): void => {
    const routes = this.host.peer.routes;
    const reachable = new Map<number, number>();
    for (const id of routes.reachable()) reachable.set(id, routes.record(id)?.ipv4 ?? 0);
    this.step(() => this.core.routes(reachable, nowMs()));
  };

  private constructor(private readonly host: ProxyHost, private readonly log: Logger) {
    this.closeWaitMs = closeWaitMs(host.config);
    this.core = new FlowCore<CarrierFlow>({
      table: this.table, flowTimeoutMs: host.config.proxyFlowTimeout * 1000,
      choose: (peer, tried) => this.choose(peer, tried),
      note: (what, fields) => log.debug(what, fields),
    });
    // Rows closed outside the core (socket flows, the subnet proxy) linger out on the core's clock too.
    this.table.onSweepDue = (at) => this.timer.arm(at);
  }

  /** The KCP carrier's settings, as `easytier-cli node` shows them. */
  get kcpSettings(): string {
    return this.carriers.kcpSettings;
  }

  /**
   * Starts the proxy on a node: the destination role always (KCP and QUIC); the source role with
   * --enable-kcp-proxy or --enable-quic-proxy and a TUN (in the kernel, or in smoltcp with
   * --use-smoltcp); the subnet proxy with -n (or --no-tun, for flows to the node's own address).
   */
  static async start(host: ProxyHost, log: Logger): Promise<TcpProxy> {
    const cfg = host.config;
    const proxy = new TcpProxy(host, log);
    proxy.carriers = await ProxyCarriers.open(host, log, (driver, flow) => proxy.onOpenRequest(driver, flow));
    proxy.housekeeping = setInterval(() => proxy.sweepTerminators(), HOUSEKEEPING_MS);
    proxy.housekeeping.unref();
    host.peer.on('peer-gone', proxy.onPeerGone).on('peer-down', proxy.onPeerDown).on('routes', proxy.onRoutes);
    proxy.onRoutes();
    const toTun = (p: Uint8Array, whole?: boolean): void => void host.writeToTun(p, whole);
    const forward = (p: Uint8Array): void => host.forward(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    try {
      if ((cfg.enableKcpProxy || cfg.enableQuicProxy) && cfg.ipv4 && !cfg.noTun) {
        proxy.term = cfg.useSmoltcp
          ? new SmoltcpTerminator(await SmoltcpStack.create({ mtu: cfg.mtu }), proxy, toTun, forward, nowMs, log)
          : await proxy.openKernelSide(toTun, forward);
        const term = proxy.term;
        host.addInterceptor((pkt) => term.intercept(pkt));
        if (term.interceptWhole) host.addOffloadInterceptor((pkt) => term.interceptWhole!(pkt));
        const names = [cfg.enableKcpProxy ? 'kcp' : '', cfg.enableQuicProxy && proxy.carriers.quic ? 'quic' : ''].filter(Boolean);
        log.info(`tcp proxy (${names.join(', ') || 'no carrier'}): source flows terminated in the ${proxy.term.kind} stack`);
      }
      proxy.subnet = await SubnetProxy.start(host, proxy.table, log);
    } catch (e) {
      proxy.close();
      throw e;
    }
    return proxy;
  }

  /**
   * Where the kernel terminates: the redirect (the default), or kernel NAT when asked for with
   * `--proxy-redirect false`, or when the redirect was not asked for and cannot be set up (no nft,
   * no CAP_NET_ADMIN): then one warning. Asked for, its failure stops the node (exit 2).
   */
  private async openKernelSide(toTun: (p: Uint8Array, whole?: boolean) => void, forward: (p: Uint8Array) => void,
  ): Promise<Terminator<SrcFlow>> {
    const cfg = this.host.config;
    if (cfg.proxyRedirect !== false && this.host.tunName) {
      try {
        return await RedirectTerminator.open(this.host.tunName, this, nowMs, this.closeWaitMs, this.log);
      } catch (e) {
        if (cfg.proxyRedirect === true) throw e;
        this.log.warn(`${(e as Error).message}; proxied TCP is terminated by kernel NAT instead (--proxy-redirect false: without this warning)`);
      }
    }
    return KernelTerminator.open(this.host.addresses.ipv4!.u32, cfg.ipv4!.prefix, this, toTun, forward, nowMs, this.log);
  }

  entries(): ProxyEntryView[] {
    return this.table.list();
  }

  /** The seam for flows that start at a Node socket (SOCKS5, port forwarding): socket-flow.ts. */
  socketCarriers(): SocketCarriers {
    return {
      table: this.table, config: this.host.config, addresses: this.host.addresses, selfId: this.host.peer.peerId, pipes: this.pipes,
      closeWaitMs: this.closeWaitMs,
      plainSocket: () => this.term?.plainSocket?.(),
      ownerOf: (ip) => this.ownerOf(ip), choose: (peerId, tried) => this.choose(peerId, tried),
      driver: (t, dstPeer) => this.carriers.openDriver(t, dstPeer),
      awaitAnswer: (flow) => this.step(() => this.core.socketOpened(flow, nowMs())),
      settled: (flow) => this.step(() => this.core.socketSettled(flow)),
    };
  }

  close(): void {
    clearInterval(this.housekeeping);
    this.timer.close();
    // Our flows end with us: their applications get a reset, not the FIN a process's exit would send,
    // so a cut-off stream never looks complete. The peers learn it from our goodbye (the peer layer's).
    for (const pipe of [...this.pipes]) pipe.onReset();
    this.host.peer.off('peer-gone', this.onPeerGone).off('peer-down', this.onPeerDown).off('routes', this.onRoutes);
    this.term?.close();
    this.subnet?.close();
    this.carriers?.close();
  }

  // ---- source side (TerminatorClient) ----

  claim(src: SocketAddr, dst: SocketAddr, follow: (row: PlainRow) => void): SrcFlow | null {
    const dstPeer = this.ownerOf(dst.ip);
    if (dstPeer === undefined || dstPeer === this.host.peer.peerId) return null;
    const claim = this.core.claim({ src, dst, optimistic: this.host.config.proxyOptimistic }, dstPeer,
      Math.floor(Date.now() / 1000));
    if (claim?.kind !== 'held') {
      if (claim?.row) follow(this.plainRow(claim.row));
      return null;
    }
    const flow = new SrcFlow(this, claim.flow);
    this.srcs.set(claim.flow, flow);
    return flow;
  }

  held(src: SrcFlow): void {
    this.step(() => this.core.held(src.state, nowMs()), src);
  }

  accepted(src: SrcFlow, stream: AppStream): void {
    if (src.pipe || !this.core.accepted(src.state)) {
      stream.destroy();
      return;
    }
    const flow = src.state.carrier!;
    const driver = this.carriers.driverOf(flow);
    const pipe = src.pipe = new SocketPipe(stream, driver.pipeStream(flow), () => driver.kick(), (how, cause) => {
      this.pipes.delete(pipe);
      this.step(() => this.core.pipeEnded(src.state, this.pipeEnd(src.state.row, how, cause), nowMs()));
    }, { closeWaitMs: this.closeWaitMs });
    this.pipes.add(pipe);
    stream.resume();
  }

  abandoned(src: SrcFlow, why: string): void {
    this.step(() => this.core.abandoned(src.state, why, nowMs()));
  }

  /** The carrier's events for a source flow. */
  srcEvents(src: SrcFlow, flow: CarrierFlow, ev: number): void {
    if (flow !== src.state.carrier) return; // a carrier this flow already gave up for the next one
    this.step(() => {
      if (ev & FlowEvent.Status) this.core.status(src.state, flow, flow.status!, nowMs());
      if (src.pipe) pipeEvents(src.pipe, ev);
      else if (ev & FlowEvent.Reset) this.core.carrierReset(src.state, flow, nowMs());
    }, src);
  }

  /** A bug met inside this flow: it is closed (the application gets a reset), the node carries on. */
  private srcFault(src: SrcFlow, e: unknown): void {
    if (src.pipe) return contain(() => src.pipe!.fail(e)); // the pipe's end resets both ways, logs, closes the row
    this.log.error('proxied flow failed; reset', { src: src.state.row.src, dst: src.state.row.dst, err: e });
    contain(() => this.step(() => this.core.srcFault(src.state, errorText(e), nowMs())));
  }

  /** How a piped flow ended, for its row; a failure (a bug met in the flow) is logged with its cause. */
  private pipeEnd(entry: { src: string; dst: string }, how: PipeEnd, cause: unknown): string {
    if (how !== 'failed') return how === 'clean' ? 'closed' : how;
    this.log.error('proxied flow failed; reset', { src: entry.src, dst: entry.dst, err: cause });
    return `failed: ${errorText(cause)}`;
  }

  // ---- carrier choice ----

  /** The node owning a virtual address (IPv4: also a proxied range; IPv6: exact address only). */
  private ownerOf(ip: Uint8Array): number | undefined {
    const routes = this.host.peer.routes;
    if (ip.length === 16) return routes.lookupIpv6(ip);
    const v4 = readU32(ip, 0);
    return routes.lookupIpv4(v4) ?? routes.lookupProxy(v4);
  }

  /**
   * The transport for a flow to `dstPeer` from current route info, skipping carriers already tried;
   * null when the peer has no route.
   */
  private choose(dstPeer: number, tried: ReadonlySet<ProxyTransport>): TransportChoice | null {
    const routes = this.host.peer.routes;
    const hop = routes.nextHop(dstPeer);
    if (hop === undefined) return null;
    const cfg = this.host.config;
    const local = { enableKcpProxy: cfg.enableKcpProxy && !tried.has('Kcp'), enableQuicProxy: cfg.enableQuicProxy && this.carriers.quic !== null && !tried.has('Quic') };
    // An EasyTier node: its kcp_input / quic_input and relaying flags, carried by kcp-sys / quinn-plaintext.
    const et = this.carriers.etHost && easyTierProxyFeatures(this.carriers.etHost, dstPeer, hop);
    if (et) return chooseTransport({ ...local, enableQuicProxy: local.enableQuicProxy && this.carriers.etQuic !== null }, et.dst, et.relay, hop !== dstPeer);
    return chooseTransport(local, routes.record(dstPeer)?.features, routes.record(hop)?.features, hop !== dstPeer);
  }

  // ---- destination side ----

  private onOpenRequest(driver: CarrierDriver, flow: CarrierFlow): void {
    const req = flow.request!;
    this.step(() => {
      const state = this.core.openRequest(driver.kind, flow, req, dstDialTarget(req.dst, this.host.addresses, this.host.config.noTun),
        Math.floor(Date.now() / 1000), nowMs());
      const dst = new DstFlow(this, state);
      this.dsts.set(state, dst);
      driver.attach(flow, dst);
    });
  }

  /** The carrier's events for a destination flow. */
  dstEvents(dst: DstFlow, ev: number): void {
    this.step(() => {
      if (dst.pipe) pipeEvents(dst.pipe, ev);
      else if (ev & FlowEvent.Reset) this.core.dstCarrierReset(dst.state);
    }, dst);
  }

  private dialed(dst: DstFlow, status: DialStatus, socket: Socket | null, why: string): void {
    dst.socket = null;
    let piped = false;
    this.step(() => {
      piped = this.core.dialed(dst.state, status, why, nowMs());
    }, dst);
    if (!piped) return void socket?.destroy();
    const flow = dst.state.carrier;
    const driver = this.carriers.driverOf(flow);
    const pipe = dst.pipe = new SocketPipe(socket!, driver.pipeStream(flow), () => driver.kick(), (how, cause) => {
      this.pipes.delete(pipe);
      this.step(() => this.core.dstPipeEnded(dst.state, this.pipeEnd(dst.state.row, how, cause), nowMs()));
    }, { closeWaitMs: this.closeWaitMs });
    this.pipes.add(pipe);
    socket!.resume();
  }

  /** A bug met inside this flow: it is closed (reset both ways, row closed), the node carries on. */
  private dstFault(dst: DstFlow, e: unknown): void {
    if (dst.pipe) return contain(() => dst.pipe!.fail(e));
    this.log.error('proxied flow failed; reset', { src: dst.state.row.src, dst: dst.state.row.dst, err: e });
    contain(() => this.step(() => this.core.dstFault(dst.state, errorText(e), nowMs())));
  }

  // ---- driving the core ----

  /**
   * Runs one event into the core, then carries out what it asks. An exception inside one flow's
   * step or action closes that flow (`owner`), never the node.
   */
  private step(event: () => void, owner?: SrcFlow | DstFlow): void {
    try {
      event();
    } catch (e) {
      if (owner) this.fault(owner, e);
      else throw e;
    }
    this.drain();
  }

  private drain(): void {
    for (let a = this.core.pollAction(); a; a = this.core.pollAction()) {
      try {
        this.act(a);
      } catch (e) {
        const owner = 'flow' in a ? this.srcs.get(a.flow as Src) ?? this.dsts.get(a.flow as Dst) : undefined;
        if (owner) this.fault(owner, e);
        else this.log.error('proxy action failed', { action: a.kind, err: e });
      }
    }
    this.timer.arm(this.core.pollTimeout());
  }

  private fault(owner: SrcFlow | DstFlow, e: unknown): void {
    if (owner instanceof SrcFlow) this.srcFault(owner, e);
    else this.dstFault(owner, e);
  }

  private act(a: FlowAction<CarrierFlow>): void {
    switch (a.kind) {
      case 'open': {
        const driver = this.carriers.openDriver(a.transport, a.flow.dstPeer);
        return this.core.opened(a.flow, driver.open(a.flow.dstPeer, a.flow.req, this.srcs.get(a.flow)!));
      }
      case 'detach': {
        const driver = this.carriers.driverOf(a.carrier);
        if (a.abort && !a.carrier.ended) driver.abort(a.carrier);
        return driver.detach(a.carrier);
      }
      case 'release': case 'refuse': case 'drop': case 'ended':
        return this.term![a.kind](this.srcs.get(a.flow)!);
      case 'pass':
        return this.passPlain(a.flow);
      case 'reset-app':
        return this.srcs.get(a.flow)!.pipe?.onReset();
      case 'abort-peer': {
        const flows = this.carriers.abortPeer(a.peer);
        if (flows > 0) this.log.info('proxied flows with peer reset', { peer_id: a.peer, flows, why: a.why });
        return;
      }
      case 'dial': {
        const dst = this.dsts.get(a.flow)!;
        dst.socket = dialDestination(a.ip, a.port, (status, socket, why) => this.dialed(dst, status, socket, why));
        return;
      }
      case 'answer': {
        const driver = this.carriers.driverOf(a.flow.carrier);
        driver.answer(a.flow.carrier, a.status);
        if (a.status !== DialStatus.Connected) driver.detach(a.flow.carrier);
        return;
      }
      case 'cancel-dial':
        return void this.dsts.get(a.flow)?.socket?.destroy();
      case 'socket-no-answer':
        return a.flow.noAnswer(a.why);
    }
  }

  /** No carrier took the held flow: the terminator carries it as plain packets, its row following it. */
  private passPlain(state: Src): void {
    const family = this.term!.carryPlain(this.srcs.get(state)!, this.plainRow(state.row));
    this.core.passed(state, family, nowMs());
  }

  /** A plain flow's row, as the terminator follows the flow: its bytes from zero, closed when it ends. */
  private plainRow(row: FlowEntry): PlainRow {
    const counters = row.counters = { txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 0, duplicates: 0 };
    return {
      counters,
      ended: (why) => {
        if (why !== undefined) row.reason = `${row.reason}; ${why}`;
        this.table.close(row, nowMs());
      },
    };
  }

  private onTimer(): void {
    this.core.handleTimeout(nowMs());
    this.drain();
  }

  private sweepTerminators(): void {
    const now = nowMs();
    this.term?.sweep(now);
    this.subnet?.sweep(now);
    this.carriers.kick();
  }
}

function pipeEvents(pipe: SocketPipe, ev: number): void {
  if (ev & FlowEvent.Reset) return pipe.onReset();
  if (ev & (FlowEvent.Readable | FlowEvent.Fin)) pipe.onReadable();
  if (ev & FlowEvent.Writable) pipe.onWritable();
}

/** Runs a step of cleaning up after a fault; a second fault there must not stop the rest. */
function contain(fn: () => void): void {
  try {
    fn();
  } catch {
    // already reported once; the flow is being closed anyway
  }
}
