/**
 * The TCP proxy of a node: intercepts TCP flows at the TUN through a Terminator (kernel: NAT +
 * re-inject; `--use-smoltcp`: the userspace stack), chooses a carrier per SYN (KCP, else plain
 * packets), and on the far node dials the real destination and pipes the bytes. Both ends list their
 * side of every flow for `easytier-cli proxy`. Plain packets to this node's proxied CIDRs are
 * terminated by the SubnetProxy.
 *
 * Connection fidelity (default): the application's SYN is held until the far node reports its dial.
 * Connected releases the SYN, so connect() completes only once the destination accepted; Refused
 * answers the SYN with a RST (ECONNREFUSED); Unreachable drops it (the app's connect times out, as it
 * would without the proxy). With --proxy-optimistic the SYN is released at once (EasyTier's way) and
 * the first bytes ride right behind the open request.
 */
import type { Socket } from 'node:net';
import type { NodeConfig } from '../config/node-config.js';
import type { Logger } from '../log.js';
import { DialStatus, dialStatusText, type OpenRequest, type SocketAddr } from '../carrier/flow-frames.js';
import { FlowEvent, KcpCarrier, type KcpFlow } from '../carrier/kcp/endpoint.js';
import { KcpCarrierDriver, nowMs } from '../carrier/kcp/driver.js';
import { SocketPipe, type AppStream } from '../carrier/socket-pipe.js';
import { KernelTerminator } from '../intercept/kernel/terminator.js';
import { SmoltcpStack } from '../intercept/smoltcp/stack.js';
import { SmoltcpTerminator } from '../intercept/smoltcp/terminator.js';
import type { TerminatedFlow, Terminator, TerminatorClient } from '../intercept/terminator.js';
import { ipv4ToU32 } from '../peer/ipv4-prefix.js';
import type { PeerManager } from '../peer/peer-manager.js';
import { PacketType } from '../peer/wire.js';
import type { ProxyEntryView } from '../rpc/source.js';
import { FlowTable, type FlowEntry } from './flow-table.js';
import { PlainFlowTracker } from './plain-flows.js';
import { SubnetProxy } from './subnet-proxy.js';
import { chooseTransport } from './transport-choice.js';
import { dstDialTarget } from './dial-target.js';
import { dialDestination } from './dial.js';

/** What the proxy needs from its node. */
export interface ProxyHost {
  readonly config: NodeConfig;
  readonly peer: PeerManager;
  addInterceptor(fn: (packet: Buffer) => boolean): void;
  /** Claims a Data packet from a peer (return true) before it is written to the TUN. */
  addInboundInterceptor(fn: (packet: Buffer) => boolean): void;
  writeToTun(packet: Uint8Array): boolean;
}

const SWEEP_MS = 1_000;

/** The source side of one KCP-carried flow, from held SYN to closed stream. */
class SrcFlow implements TerminatedFlow {
  term: unknown = null;
  pipe: SocketPipe | null = null;
  flow: KcpFlow | null = null;
  constructor(readonly proxy: TcpProxy, readonly entry: FlowEntry, readonly req: OpenRequest, readonly dstPeer: number) {}

  onFlowEvents(flow: KcpFlow, ev: number): void {
    if (ev & FlowEvent.Status) this.proxy.onStatus(this, flow.status!);
    if (this.pipe) {
      if (ev & FlowEvent.Reset) this.pipe.onReset();
      else {
        if (ev & (FlowEvent.Readable | FlowEvent.Fin)) this.pipe.onReadable();
        if (ev & FlowEvent.Writable) this.pipe.onWritable();
      }
    } else if (ev & FlowEvent.Reset) this.proxy.endSrc(this, 'reset before the connection was accepted');
  }
}

/** The destination side: dial, then pipe. */
class DstFlow {
  pipe: SocketPipe | null = null;
  socket: Socket | null = null;
  constructor(readonly entry: FlowEntry) {}

  onFlowEvents(_flow: KcpFlow, ev: number): void {
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
  private readonly driver: KcpCarrierDriver;
  private term: Terminator<SrcFlow> | null = null;
  private subnet: SubnetProxy | null = null;
  private readonly plain = new PlainFlowTracker();
  private readonly sweeper: NodeJS.Timeout;

  private constructor(private readonly host: ProxyHost, private readonly log: Logger) {
    const cfg = host.config;
    const carrier = new KcpCarrier({
      types: { fromInitiator: PacketType.KcpSrc, fromAcceptor: PacketType.KcpDst },
      acceptInput: !cfg.disableKcpInput,
    });
    this.driver = new KcpCarrierDriver(host.peer, carrier, (flow) => this.onOpenRequest(flow));
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /**
   * Starts the proxy on a node: the destination role always; the source role with
   * --enable-kcp-proxy and a TUN (in the kernel, or in smoltcp with --use-smoltcp); the subnet proxy
   * with -n (or --no-tun, for flows to the node's own address).
   */
  static async start(host: ProxyHost, log: Logger): Promise<TcpProxy> {
    const proxy = new TcpProxy(host, log);
    const cfg = host.config;
    const myIp = cfg.ipv4 ? ipv4ToU32(cfg.ipv4.address) ?? 0 : 0;
    const toTun = (p: Uint8Array): void => void host.writeToTun(p);
    try {
      if (cfg.enableKcpProxy && cfg.ipv4 && !cfg.noTun) {
        proxy.term = cfg.useSmoltcp
          ? new SmoltcpTerminator(await SmoltcpStack.create({ mtu: cfg.mtu }), proxy, toTun, nowMs, log)
          : await KernelTerminator.open(myIp, cfg.ipv4.prefix, proxy, toTun, nowMs, log);
        host.addInterceptor((pkt) => proxy.fromTun(pkt));
        log.info(`kcp proxy: source flows terminated in the ${proxy.term.kind} stack`);
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

  close(): void {
    clearInterval(this.sweeper);
    this.term?.close();
    this.subnet?.close();
    this.driver.close();
  }

  // ---- source side (TerminatorClient) ----

  /** Every IP packet read from the TUN, before normal forwarding. True: the proxy took it. */
  private fromTun(pkt: Buffer): boolean {
    if (this.term!.intercept(pkt)) return true;
    this.plain.observe(pkt, this.table, nowMs());
    return false;
  }

  claim(src: SocketAddr, dst: SocketAddr, syn: Uint8Array): SrcFlow | null {
    const routes = this.host.peer.routes;
    const dstIp = ipv4ToU32(dst.ip) ?? 0;
    const dstPeer = routes.lookupIpv4(dstIp) ?? routes.lookupProxy(dstIp);
    if (dstPeer === undefined || dstPeer === this.host.peer.peerId) return null;
    const hop = routes.nextHop(dstPeer);
    if (hop === undefined) return null;
    const cfg = this.host.config;
    const choice = chooseTransport(
      { enableKcpProxy: cfg.enableKcpProxy, enableQuicProxy: false },
      routes.record(dstPeer)?.features, routes.record(hop)?.features, hop !== dstPeer,
    );
    const startTime = Math.floor(Date.now() / 1000);
    const row = { src: `${src.ip}:${src.port}`, dst: `${dst.ip}:${dst.port}`, role: 'src' as const, startTime };
    this.log.debug('new flow', { src: row.src, dst: row.dst, ...choice });
    if (choice.transport !== 'Kcp') {
      this.plain.track(syn, this.table.add({ ...row, transport: 'Tcp', reason: choice.reason, state: 'Connected' }));
      return null;
    }
    const entry = this.table.add({ ...row, transport: 'Kcp', reason: choice.reason, state: 'SynReceived' });
    return new SrcFlow(this, entry, { src, dst, optimistic: cfg.proxyOptimistic }, dstPeer);
  }

  held(src: SrcFlow): void {
    src.flow = this.driver.open(src.dstPeer, src.req, src);
    src.entry.counters = src.flow;
    src.entry.state = 'ConnectingDst';
    if (src.req.optimistic) this.term!.release(src);
  }

  accepted(src: SrcFlow, stream: AppStream): void {
    if (src.pipe || !src.flow || src.flow.ended) {
      stream.destroy();
      return;
    }
    src.entry.state = 'Connected';
    src.pipe = new SocketPipe(stream, this.driver.pipeStream(src.flow), () => this.driver.kick(), (how) => {
      this.endSrc(src, how === 'clean' ? 'closed' : how);
    });
    stream.resume();
  }

  abandoned(src: SrcFlow, why: string): void {
    if (src.flow && !src.flow.ended) {
      src.flow.reset(nowMs());
      this.driver.carrier.touch(src.flow);
      this.driver.kick();
    }
    this.closeEntry(src, why);
  }

  onStatus(src: SrcFlow, status: DialStatus): void {
    if (status === DialStatus.Connected) {
      if (!src.req.optimistic) this.term!.release(src);
      return;
    }
    if (status === DialStatus.Refused) this.term!.refuse(src);
    else this.term!.drop(src);
    this.endSrc(src, `dial ${dialStatusText(status)}`);
  }

  endSrc(src: SrcFlow, why: string): void {
    if (src.entry.closedAt !== 0) return;
    this.term!.ended(src);
    this.closeEntry(src, why);
  }

  private closeEntry(src: SrcFlow, why: string): void {
    if (src.entry.closedAt !== 0) return;
    src.entry.reason = `${src.entry.reason}; ${why}`;
    this.log.debug('proxied flow ended', { src: src.entry.src, dst: src.entry.dst, why });
    this.table.close(src.entry, nowMs());
  }

  // ---- destination side ----

  private onOpenRequest(flow: KcpFlow): void {
    const req = flow.request!;
    const entry = this.table.add({
      src: `${req.src.ip}:${req.src.port}`, dst: `${req.dst.ip}:${req.dst.port}`, role: 'dst', transport: 'Kcp',
      reason: 'accepted', state: 'ConnectingDst', startTime: Math.floor(Date.now() / 1000),
    });
    entry.counters = flow;
    const dst = new DstFlow(entry);
    this.driver.attach(flow, dst);
    const target = dstDialTarget(req.dst, this.host.config);
    if (!target.ok) return this.answer(flow, dst, DialStatus.Denied, target.why);
    dst.socket = dialDestination(target.ip, req.dst.port, (status, socket, why) => {
      if (flow.ended) {
        // The source gave up (reset) while we dialled.
        socket?.destroy();
        this.driver.detach(flow);
        entry.reason = 'source reset during the dial';
        this.table.close(entry, nowMs());
        return;
      }
      if (!socket) return this.answer(flow, dst, status, why);
      this.answer(flow, dst, DialStatus.Connected, why);
      dst.pipe = new SocketPipe(socket, this.driver.pipeStream(flow), () => this.driver.kick(), (how) => {
        entry.reason = `connected; ${how === 'clean' ? 'closed' : how}`;
        this.table.close(entry, nowMs());
      });
      socket.resume();
    });
  }

  private answer(flow: KcpFlow, dst: DstFlow, status: DialStatus, why: string): void {
    if (flow.answered) return;
    flow.answer(status, nowMs());
    this.driver.carrier.touch(flow);
    this.driver.kick();
    dst.entry.reason = why;
    if (status === DialStatus.Connected) dst.entry.state = 'Connected';
    else {
      this.driver.detach(flow);
      this.table.close(dst.entry, nowMs());
    }
  }

  private sweep(): void {
    const now = nowMs();
    this.table.sweep(now);
    this.term?.sweep(now);
    this.subnet?.sweep(now);
    this.driver.kick();
  }
}
