/**
 * The TCP proxy of a node: intercepts TCP flows at the TUN through a Terminator (kernel: NAT +
 * re-inject; `--use-smoltcp`: the userspace stack), chooses a carrier per SYN (KCP > QUIC > plain
 * packets), and on the far node dials the real destination and pipes the bytes. Both ends list their
 * side of every flow for `easytier-cli proxy`. Plain packets to this node's proxied CIDRs are
 * terminated by the SubnetProxy.
 *
 * Runtime fallback (beyond EasyTier, which only decides from route info): while the SYN is still held
 * and no byte has moved, a carrier whose peer denies the open, or that has heard nothing from the peer
 * after NO_ANSWER_FALLBACK_MS, gives way to the next transport in precedence; plain packets means the
 * held SYN is handed back and forwarded as is. The table row says what was tried and why.
 *
 * Connection fidelity (default): the application's SYN is held until the far node reports its dial.
 * Connected releases the SYN, so connect() completes only once the destination accepted; Refused
 * answers the SYN with a RST (ECONNREFUSED); Unreachable drops it (the app's connect times out, as it
 * would without the proxy). With --proxy-optimistic the SYN is released at once (EasyTier's way) and
 * the first bytes ride right behind the open request.
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { FlowEvent, type CarrierDriver, type CarrierFlow, type FlowSink } from '../carrier/carrier.js';
import { DialStatus, dialStatusText, type OpenRequest } from '../carrier/flow-frames.js';
import { KcpCarrier } from '../carrier/kcp/endpoint.js';
import { KcpCarrierDriver } from '../carrier/kcp/driver.js';
import { EtKcpCarrierDriver, easyTierKcpFeatures, etKcpHost, type EtKcpHost } from '../peer/easytier/kcp-carrier.js';
import { nowMs } from '../io/clock.js';
import { QuicCarrierDriver } from '../carrier/quic/driver.js';
import { maxStreamWindow, QUIC_DEFAULTS, QuicEndpoint } from '../carrier/quic/endpoint.js';
import { SocketPipe, type AppStream, type PipeEnd } from '../carrier/socket-pipe.js';
import { KernelTerminator } from '../intercept/kernel/terminator.js';
import { SmoltcpStack } from '../intercept/smoltcp/stack.js';
import { SmoltcpTerminator } from '../intercept/smoltcp/terminator.js';
import type { TerminatedFlow, Terminator, TerminatorClient } from '../intercept/terminator.js';
import { readU32 } from '../packet/bytes.js';
import { formatSocketAddr, type SocketAddr } from '../packet/flow-key.js';
import { Feature } from '../peer/route-record.js';
import { PacketType } from '../peer/wire.js';
import type { ProxyEntryView, ProxyTransport } from '../rpc/source.js';
import { FlowTable, type FlowEntry } from './flow-table.js';
import { kcpSettingsText, proxyKcpSettings } from './kcp-tuning.js';
import { PeerWatch } from './peer-watch.js';
import { PlainFlowTracker } from './plain-flows.js';
import type { SocketCarriers } from './socket-flow.js';
import { SubnetProxy } from './subnet-proxy.js';
import { chooseTransport } from './transport-choice.js';
import { dstDialTarget } from './dial-target.js';
import { dialDestination } from './dial.js';
import type { ProxyHost } from './proxy-host.js';

const SWEEP_MS = 1_000;
/** A held flow whose carrier heard nothing from the peer this long tries the next transport. */
export const NO_ANSWER_FALLBACK_MS = 3_000;

/**
 * Test-only: `TSTIER_TEST_ASSUME_INPUT=kcp,quic` makes this node believe every destination accepts
 * those carriers whatever route sync says, so tests can exercise the runtime fallback honestly
 * against a peer that really refuses.
 */
function assumedInputBits(): number {
  const names = (process.env.TSTIER_TEST_ASSUME_INPUT ?? '').split(',');
  return (names.includes('kcp') ? Feature.KcpInput : 0) | (names.includes('quic') ? Feature.QuicInput : 0);
}

type CarriedTransport = 'Kcp' | 'Quic';

/** The source side of one carried flow, from held SYN to closed stream. */
class SrcFlow implements TerminatedFlow, FlowSink {
  term: unknown = null;
  pipe: SocketPipe | null = null;
  flow: CarrierFlow | null = null;
  driver: CarrierDriver | null = null;
  /** Carriers that failed this flow before any byte moved. */
  readonly tried = new Set<ProxyTransport>();
  /** When the current carrier's open started (for the no-answer fallback). */
  openedAt = 0;
  constructor(readonly proxy: TcpProxy, readonly entry: FlowEntry, readonly req: OpenRequest, readonly dstPeer: number) {}

  onFlowEvents(flow: CarrierFlow, ev: number): void {
    if (flow !== this.flow) return; // a carrier this flow already gave up for the next one
    try {
      this.handle(flow, ev);
    } catch (e) {
      this.proxy.srcFault(this, e);
    }
  }

  private handle(flow: CarrierFlow, ev: number): void {
    if (ev & FlowEvent.Status) this.proxy.onStatus(this, flow.status!);
    if (this.pipe) {
      if (ev & FlowEvent.Reset) this.pipe.onReset();
      else {
        if (ev & (FlowEvent.Readable | FlowEvent.Fin)) this.pipe.onReadable();
        if (ev & FlowEvent.Writable) this.pipe.onWritable();
      }
    } else if (ev & FlowEvent.Reset) this.proxy.onEarlyReset(this);
  }
}

/** The destination side: dial, then pipe. */
class DstFlow implements FlowSink {
  pipe: SocketPipe | null = null;
  socket: Socket | null = null;
  constructor(readonly entry: FlowEntry, private readonly driver: CarrierDriver, private readonly table: FlowTable,
    private readonly log: Logger) {}

  /** A bug met inside this flow: it is closed (reset both ways, row closed), the node carries on. */
  fault(flow: CarrierFlow, e: unknown): void {
    if (this.pipe) return contain(() => this.pipe!.fail(e)); // the pipe's end resets both ways, logs, closes the row
    this.log.error('proxied flow failed; reset', { src: this.entry.src, dst: this.entry.dst, err: e });
    this.entry.reason = `${this.entry.reason}; failed: ${errorText(e)}`;
    contain(() => this.socket?.destroy());
    contain(() => this.driver.abort(flow));
    this.driver.detach(flow);
    this.table.close(this.entry, nowMs());
  }

  onFlowEvents(flow: CarrierFlow, ev: number): void {
    try {
      this.handle(ev);
    } catch (e) {
      this.fault(flow, e);
    }
  }

  private handle(ev: number): void {
    if (!this.pipe) {
      if (ev & FlowEvent.Reset) this.socket?.destroy();
      return;
    }
    if (ev & FlowEvent.Reset) this.pipe.onReset();
    else {
      if (ev & (FlowEvent.Readable | FlowEvent.Fin)) this.pipe.onReadable();
      if (ev & FlowEvent.Writable) this.pipe.onWritable();
    }
  }
}

export class TcpProxy implements TerminatorClient<SrcFlow> {
  readonly table = new FlowTable();
  private readonly kcp: KcpCarrierDriver;
  /** kcp-sys flows with EasyTier nodes, when the peer layer speaks EasyTier's wire. */
  private readonly etKcp: EtKcpCarrierDriver | null;
  private readonly etHost: EtKcpHost | null;
  /** Null when the QUIC core could not be loaded (the node then carries no QUIC flows). */
  private readonly quic: QuicCarrierDriver | null;
  private term: Terminator<SrcFlow> | null = null;
  private subnet: SubnetProxy | null = null;
  private readonly plain = new PlainFlowTracker();
  /** Held source flows waiting for their carrier's STATUS (the no-answer fallback watches them). */
  private readonly opening = new Set<SrcFlow>();
  private readonly assumedInput = assumedInputBits();
  private readonly sweeper: NodeJS.Timeout;
  /** The KCP carrier's settings, as `easytier-cli node` shows them. */
  readonly kcpSettings: string;
  private readonly watch: PeerWatch;
  /** Every flow moving bytes, source and destination side: a stopping node resets their applications. */
  private readonly pipes = new Set<SocketPipe>();
  private readonly onPeerGone = (peerId: number): void => this.watch.gone(peerId);
  private readonly onPeerDown = (peerId: number, silentForMs: number): void => {
    if (this.host.peer.routes.nextHop(peerId) === undefined) this.watch.down(peerId, silentForMs, nowMs());
  };
  private readonly onRoutes = (): void => {
    const routes = this.host.peer.routes;
    const reachable = new Map<number, number>();
    for (const id of routes.reachable()) reachable.set(id, routes.record(id)?.ipv4 ?? 0);
    this.watch.routes(reachable, nowMs());
  };

  private constructor(private readonly host: ProxyHost, private readonly log: Logger, quic: QuicEndpoint | null) {
    const cfg = host.config;
    const { mode, ...tuning } = proxyKcpSettings(cfg);
    const carrier = new KcpCarrier({
      types: { fromInitiator: PacketType.KcpSrc, fromAcceptor: PacketType.KcpDst },
      acceptInput: !cfg.disableKcpInput,
      silentLimitMs: cfg.proxyFlowTimeout * 1000,
      // FEC toward a peer only when it announces that it decodes it.
      peerDecodesFec: (peerId) => ((host.peer.routes.record(peerId)?.features ?? 0) & Feature.KcpFec) !== 0,
      ...tuning,
    });
    // Read back from the carrier, so what the CLI shows is what the flows get.
    this.kcpSettings = kcpSettingsText({ mode, ...carrier.settings });
    this.kcp = new KcpCarrierDriver(host.peer, carrier, (flow) => this.onOpenRequest(this.kcp, flow), log);
    this.etHost = etKcpHost(host.peer);
    this.etKcp = this.etHost && new EtKcpCarrierDriver(this.etHost, this.etHost.peerId, { acceptInput: !cfg.disableKcpInput },
      (flow) => this.onOpenRequest(this.etKcp!, flow), log);
    this.etHost?.advertiseEasyTierInput({ kcpInput: !cfg.disableKcpInput, quicInput: false });
    this.quic = quic && new QuicCarrierDriver(host.peer, quic, { acceptInput: !cfg.disableQuicInput, log },
      (flow) => this.onOpenRequest(this.quic!, flow));
    this.watch = new PeerWatch(cfg.proxyFlowTimeout * 1000, (peerId, why) => this.resetPeer(peerId, why));
    host.peer.on('peer-gone', this.onPeerGone).on('peer-down', this.onPeerDown).on('routes', this.onRoutes);
    this.onRoutes();
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Resets every flow with the peer, on both carriers (see PeerWatch). */
  private resetPeer(peerId: number, why: string): void {
    const flows = this.kcp.abortPeer(peerId) + (this.etKcp?.abortPeer(peerId) ?? 0) + (this.quic?.abortPeer(peerId) ?? 0);
    if (flows > 0) this.log.info('proxied flows with peer reset', { peer_id: peerId, flows, why });
  }

  /**
   * Starts the proxy on a node: the destination role always (KCP and QUIC); the source role with
   * --enable-kcp-proxy or --enable-quic-proxy and a TUN (in the kernel, or in smoltcp with
   * --use-smoltcp); the subnet proxy with -n (or --no-tun, for flows to the node's own address).
   */
  static async start(host: ProxyHost, log: Logger): Promise<TcpProxy> {
    const cfg = host.config;
    const proxy = new TcpProxy(host, log, await openQuicEndpoint(host, log));
    const toTun = (p: Uint8Array): void => void host.writeToTun(p);
    try {
      if ((cfg.enableKcpProxy || cfg.enableQuicProxy) && cfg.ipv4 && !cfg.noTun) {
        proxy.term = cfg.useSmoltcp
          ? new SmoltcpTerminator(await SmoltcpStack.create({ mtu: cfg.mtu }), proxy, toTun, nowMs, log)
          : await KernelTerminator.open(host.addresses.ipv4!.u32, cfg.ipv4.prefix, proxy, toTun, nowMs, log);
        host.addInterceptor((pkt) => proxy.fromTun(pkt));
        const carriers = [cfg.enableKcpProxy ? 'kcp' : '', cfg.enableQuicProxy && proxy.quic ? 'quic' : ''].filter(Boolean);
        log.info(`tcp proxy (${carriers.join(', ') || 'no carrier'}): source flows terminated in the ${proxy.term.kind} stack`);
      }
      proxy.subnet = await SubnetProxy.start(host, proxy.table, log);
    } catch (e) {
      proxy.close();
      throw e;
    }
    return proxy;
  }

  entries(): ProxyEntryView[] {
    return this.table.list();
  }

  /** The seam for flows that start at a Node socket (SOCKS5, port forwarding): socket-flow.ts. */
  socketCarriers(): SocketCarriers {
    return {
      table: this.table, config: this.host.config, addresses: this.host.addresses, selfId: this.host.peer.peerId, noAnswerMs: NO_ANSWER_FALLBACK_MS, pipes: this.pipes,
      ownerOf: (ip) => this.ownerOf(ip), choose: (peerId, tried) => this.choose(peerId, tried),
      driver: (t) => (t === 'Kcp' || !this.quic ? this.kcp : this.quic),
    };
  }

  close(): void {
    clearInterval(this.sweeper);
    // Our flows end with us: their applications get a reset, not the FIN a process's exit would send,
    // so a cut-off stream never looks complete. The peers learn it from our goodbye (PeerManager).
    for (const pipe of [...this.pipes]) pipe.onReset();
    this.host.peer.off('peer-gone', this.onPeerGone).off('peer-down', this.onPeerDown).off('routes', this.onRoutes);
    this.term?.close();
    this.subnet?.close();
    this.kcp.close();
    this.etKcp?.close();
    this.quic?.close();
  }

  // ---- source side (TerminatorClient) ----

  /** Every IP packet read from the TUN, before normal forwarding. True: the proxy took it. */
  private fromTun(pkt: Buffer): boolean {
    if (this.term!.intercept(pkt)) return true;
    this.plain.observe(pkt, this.table, nowMs());
    return false;
  }

  claim(src: SocketAddr, dst: SocketAddr, syn: Uint8Array): SrcFlow | null {
    if (this.plain.isTracked(syn)) return null; // a retransmitted SYN of a flow already given to plain packets
    const dstPeer = this.ownerOf(dst.ip);
    if (dstPeer === undefined || dstPeer === this.host.peer.peerId) return null;
    const choice = this.choose(dstPeer, new Set());
    if (!choice) return null;
    const startTime = Math.floor(Date.now() / 1000);
    const row = { src: formatSocketAddr(src), dst: formatSocketAddr(dst), role: 'src' as const, startTime };
    this.log.debug('new flow', { src: row.src, dst: row.dst, ...choice });
    if (choice.transport === 'Tcp') {
      this.plain.track(syn, this.table.add({ ...row, transport: 'Tcp', reason: choice.reason, state: 'Connected' }));
      return null;
    }
    const entry = this.table.add({ ...row, transport: choice.transport, reason: choice.reason, state: 'SynReceived' });
    return new SrcFlow(this, entry, { src, dst, optimistic: this.host.config.proxyOptimistic }, dstPeer);
  }

  held(src: SrcFlow): void {
    this.openWith(src, src.entry.transport as CarriedTransport);
    if (src.req.optimistic) this.term!.release(src);
  }

  accepted(src: SrcFlow, stream: AppStream): void {
    if (src.pipe || !src.flow || src.flow.ended) {
      stream.destroy();
      return;
    }
    src.entry.state = 'Connected';
    const driver = src.driver!;
    const pipe = src.pipe = new SocketPipe(stream, driver.pipeStream(src.flow), () => driver.kick(), (how, cause) => {
      this.pipes.delete(pipe);
      this.endSrc(src, this.pipeEnd(src.entry, how, cause));
    });
    this.pipes.add(pipe);
    stream.resume();
  }

  abandoned(src: SrcFlow, why: string): void {
    if (src.flow && !src.flow.ended) src.driver!.abort(src.flow);
    this.closeEntry(src, why);
  }

  onStatus(src: SrcFlow, status: DialStatus): void {
    this.opening.delete(src);
    if (status === DialStatus.Connected) {
      if (!src.req.optimistic) this.term!.release(src);
      return;
    }
    // Nothing moved yet (the SYN is still held): another carrier, or plain packets, may still work.
    if (status === DialStatus.Denied && !src.req.optimistic) return this.fallback(src, 'denied by peer');
    if (status === DialStatus.Refused) this.term!.refuse(src);
    else this.term!.drop(src);
    this.endSrc(src, `dial ${dialStatusText(status)}`);
  }

  /** A bug met inside this flow: it is closed (the application gets a reset), the node carries on. */
  srcFault(src: SrcFlow, e: unknown): void {
    if (src.pipe) return contain(() => src.pipe!.fail(e)); // the pipe's end resets both ways, logs, closes the row
    this.log.error('proxied flow failed; reset', { src: src.entry.src, dst: src.entry.dst, err: e });
    contain(() => this.term!.drop(src));
    if (src.flow && !src.flow.ended) contain(() => src.driver!.abort(src.flow!));
    contain(() => this.endSrc(src, `failed: ${errorText(e)}`));
    this.closeEntry(src, 'failed');
  }

  /** How a piped flow ended, for its row; a failure (a bug met in the flow) is logged with its cause. */
  private pipeEnd(entry: FlowEntry, how: PipeEnd, cause: unknown): string {
    if (how !== 'failed') return how === 'clean' ? 'closed' : how;
    this.log.error('proxied flow failed; reset', { src: entry.src, dst: entry.dst, err: cause });
    return `failed: ${errorText(cause)}`;
  }

  /** The carrier reset the flow before any STATUS. */
  onEarlyReset(src: SrcFlow): void {
    this.opening.delete(src);
    if (!src.req.optimistic && src.flow?.status === null && !src.flow.heard) return this.fallback(src, 'no answer from peer');
    this.endSrc(src, 'reset before the connection was accepted');
  }

  endSrc(src: SrcFlow, why: string): void {
    if (src.entry.closedAt !== 0) return;
    this.term!.ended(src);
    this.closeEntry(src, why);
  }

  private closeEntry(src: SrcFlow, why: string): void {
    if (src.entry.closedAt !== 0) return;
    this.opening.delete(src);
    if (src.flow) src.driver!.detach(src.flow);
    src.entry.reason = `${src.entry.reason}; ${why}`;
    this.log.debug('proxied flow ended', { src: src.entry.src, dst: src.entry.dst, why });
    this.table.close(src.entry, nowMs());
  }

  // ---- carrier choice and runtime fallback ----

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
  private choose(dstPeer: number, tried: Set<ProxyTransport>): ReturnType<typeof chooseTransport> | null {
    const routes = this.host.peer.routes;
    const hop = routes.nextHop(dstPeer);
    if (hop === undefined) return null;
    const cfg = this.host.config;
    const features = routes.record(dstPeer)?.features;
    const local = { enableKcpProxy: cfg.enableKcpProxy && !tried.has('Kcp'), enableQuicProxy: cfg.enableQuicProxy && this.quic !== null && !tried.has('Quic') };
    const et = this.etHost && easyTierKcpFeatures(this.etHost, dstPeer, hop);
    if (et) return chooseTransport(local, et.dst, et.relay, hop !== dstPeer);
    return chooseTransport(
      local,
      features === undefined && this.assumedInput === 0 ? undefined : (features ?? 0) | this.assumedInput,
      routes.record(hop)?.features, hop !== dstPeer,
    );
  }

  private openWith(src: SrcFlow, transport: CarriedTransport): void {
    const viaEt = transport === 'Kcp' && this.etHost !== null && easyTierKcpFeatures(this.etHost, src.dstPeer, src.dstPeer) !== null;
    const driver: CarrierDriver = transport === 'Kcp' ? (viaEt ? this.etKcp! : this.kcp) : this.quic!;
    src.driver = driver;
    src.flow = driver.open(src.dstPeer, src.req, src);
    src.entry.transport = transport;
    src.entry.counters = src.flow;
    src.entry.state = 'ConnectingDst';
    src.openedAt = nowMs();
    if (!src.req.optimistic) this.opening.add(src);
  }

  /** The current carrier cannot open this held flow: try the next transport, down to plain packets. */
  private fallback(src: SrcFlow, why: string): void {
    this.opening.delete(src);
    const entry = src.entry;
    const gaveUp = entry.transport;
    src.tried.add(gaveUp);
    if (src.flow) {
      if (!src.flow.ended) src.driver!.abort(src.flow);
      src.driver!.detach(src.flow);
    }
    src.flow = src.driver = null;
    entry.reason = `${entry.reason}; ${gaveUp.toLowerCase()}: ${why}`;
    const next = this.choose(src.dstPeer, src.tried);
    this.table.totals.fellBack(gaveUp, next?.transport ?? 'Tcp');
    this.log.debug('proxied flow falls back', { src: entry.src, dst: entry.dst, from: gaveUp, why, to: next?.transport ?? 'none' });
    if (next && next.transport !== 'Tcp') {
      entry.reason = `${entry.reason}; ${next.reason}`;
      return this.openWith(src, next.transport);
    }
    const syn = this.term!.pass(src);
    entry.transport = 'Tcp';
    entry.counters = { txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 0 };
    if (!syn) return this.closeEntry(src, 'SYN no longer held');
    entry.reason = `${entry.reason}; plain packets`;
    entry.state = 'Connected';
    this.host.forward(Buffer.from(syn.buffer, syn.byteOffset, syn.byteLength));
    if (!this.plain.track(syn, entry)) this.closeEntry(src, 'not followed');
  }

  // ---- destination side ----

  private onOpenRequest(driver: CarrierDriver, flow: CarrierFlow): void {
    const req = flow.request!;
    const entry = this.table.add({
      src: formatSocketAddr(req.src), dst: formatSocketAddr(req.dst), role: 'dst', transport: driver.kind,
      reason: 'accepted', state: 'ConnectingDst', startTime: Math.floor(Date.now() / 1000),
    });
    entry.counters = flow;
    const dst = new DstFlow(entry, driver, this.table, this.log);
    driver.attach(flow, dst);
    try {
      this.dialFor(driver, flow, dst);
    } catch (e) {
      dst.fault(flow, e);
    }
  }

  private dialFor(driver: CarrierDriver, flow: CarrierFlow, dst: DstFlow): void {
    const req = flow.request!;
    const target = dstDialTarget(req.dst, this.host.addresses, this.host.config.noTun);
    if (!target.ok) return this.answer(driver, flow, dst, DialStatus.Denied, target.why);
    dst.socket = dialDestination(target.ip, req.dst.port, (status, socket, why) => {
      try {
        this.dialed(driver, flow, dst, status, socket, why);
      } catch (e) {
        dst.fault(flow, e);
      }
    });
  }

  private dialed(driver: CarrierDriver, flow: CarrierFlow, dst: DstFlow, status: DialStatus, socket: Socket | null,
    why: string): void {
    const entry = dst.entry;
    if (flow.ended) {
      // The source gave up (reset) while we dialled.
      socket?.destroy();
      driver.detach(flow);
      entry.reason = 'source reset during the dial';
      this.table.close(entry, nowMs());
      return;
    }
    if (!socket) return this.answer(driver, flow, dst, status, why);
    this.answer(driver, flow, dst, DialStatus.Connected, why);
    const pipe = dst.pipe = new SocketPipe(socket, driver.pipeStream(flow), () => driver.kick(), (how, cause) => {
      this.pipes.delete(pipe);
      entry.reason = `connected; ${this.pipeEnd(entry, how, cause)}`;
      this.table.close(entry, nowMs());
    });
    this.pipes.add(pipe);
    socket.resume();
  }

  private answer(driver: CarrierDriver, flow: CarrierFlow, dst: DstFlow, status: DialStatus, why: string): void {
    if (flow.answered) return;
    driver.answer(flow, status);
    dst.entry.reason = why;
    if (status === DialStatus.Connected) dst.entry.state = 'Connected';
    else {
      driver.detach(flow);
      this.table.close(dst.entry, nowMs());
    }
  }

  private sweep(): void {
    const now = nowMs();
    this.watch.sweep(now);
    this.table.sweep(now);
    this.term?.sweep(now);
    this.subnet?.sweep(now);
    for (const src of this.opening) {
      if (src.flow && src.flow.status === null && !src.flow.heard && now - src.openedAt >= NO_ANSWER_FALLBACK_MS) {
        this.fallback(src, `no answer in ${NO_ANSWER_FALLBACK_MS / 1000} s`);
      }
    }
    this.kcp.kick();
    this.quic?.kick();
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs a step of cleaning up after a fault; a second fault there must not stop the rest. */
function contain(fn: () => void): void {
  try {
    fn();
  } catch {
    // already reported once; the flow is being closed anyway
  }
}

/**
 * Receive window per QUIC stream: the largest that loss cannot turn into a connection close (see
 * maxStreamWindow). quinn's 1.25 MB held one flow to ~13 MB/s at 40 ms RTT; 8 MiB gave ~31 MB/s but
 * killed the connection at 20 % loss. The connection window (16 MiB) bounds what one peer can make us
 * buffer.
 */
const PROXY_STREAM_WINDOW = maxStreamWindow(QUIC_DEFAULTS.maxUdpPayload);

/**
 * The node's QUIC endpoint. Its stateless-reset key comes from the network secret and the peer id,
 * so after a restart this node's resets end its peers' stale connections at once. A missing or broken
 * QUIC core leaves the node without QUIC (logged), not without a proxy. TSTIER_QUIC_WASM overrides
 * where the core is loaded from.
 */
async function openQuicEndpoint(host: ProxyHost, log: Logger): Promise<QuicEndpoint | null> {
  const resetKey = createHash('sha256').update('tstier quic reset key\0').update(host.config.networkSecret)
    .update(String(host.peer.peerId)).digest().subarray(0, 16);
  try {
    return await QuicEndpoint.create({
      streamWindow: PROXY_STREAM_WINDOW, resetKey, congestion: host.config.quicCongestion,
      // A connection survives silence as long as the flows on it should (the flow timeout), no longer.
      idleTimeoutMs: host.config.proxyFlowTimeout * 1000,
      wasmPath: process.env.TSTIER_QUIC_WASM || undefined,
    });
  } catch (e) {
    log.error('QUIC core unavailable: no QUIC-carried flows on this node', { err: e });
    return null;
  }
}
