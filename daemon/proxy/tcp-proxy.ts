/**
 * The TCP proxy of a node: intercepts TCP flows at the TUN (kernel path: NAT + re-inject), chooses
 * a carrier per SYN (KCP, else plain packets), and on the far node dials the real destination and
 * pipes the bytes. Both ends list their side of every flow for `easytier-cli proxy`.
 *
 * Connection fidelity (default): the application's SYN is held until the far node reports its dial.
 * Connected releases the SYN, so connect() completes only once the destination accepted; Refused
 * answers the SYN with a RST (ECONNREFUSED); Unreachable drops it (the app's connect times out, as it
 * would without the proxy). With --proxy-optimistic the SYN is released at once (EasyTier's way) and
 * the first bytes ride right behind the open request.
 */
import { connect, type Socket } from 'node:net';
import type { NodeConfig } from '../config/node-config.js';
import type { Logger } from '../log.js';
import { DialStatus, dialStatusText, type OpenRequest } from '../carrier/flow-frames.js';
import { FlowEvent, KcpCarrier, type KcpFlow } from '../carrier/kcp/endpoint.js';
import { KcpCarrierDriver, nowMs } from '../carrier/kcp/driver.js';
import { SocketPipe } from '../carrier/socket-pipe.js';
import { KernelListeners } from '../intercept/kernel/listeners.js';
import { KernelNat, Verdict, type NatFlow } from '../intercept/kernel/nat.js';
import { ipv4ToU32, prefixMask, u32ToIpv4, ipv4Destination } from '../peer/ipv4-prefix.js';
import type { PeerManager } from '../peer/peer-manager.js';
import { PacketType } from '../peer/wire.js';
import type { ProxyEntryView } from '../rpc/source.js';
import { FlowTable, type FlowEntry } from './flow-table.js';
import { PlainFlowTracker } from './plain-flows.js';
import { chooseTransport } from './transport-choice.js';
import { dstDialTarget } from './dial-target.js';

/** What the proxy needs from its node. */
export interface ProxyHost {
  readonly config: NodeConfig;
  readonly peer: PeerManager;
  addInterceptor(fn: (packet: Buffer) => boolean): void;
  writeToTun(packet: Uint8Array): boolean;
}

/** The far node's dial gives up after this long (then the app's connect times out, as without us). */
const DIAL_TIMEOUT_MS = 10_000;
const SWEEP_MS = 1_000;

/** The source side of one KCP-carried flow, from held SYN to closed socket. */
class SrcFlow {
  pipe: SocketPipe | null = null;
  nat: NatFlow | null = null;
  flow!: KcpFlow;
  readonly heldAt = nowMs();
  constructor(readonly proxy: TcpProxy, readonly entry: FlowEntry) {}

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

export class TcpProxy {
  readonly table = new FlowTable();
  private readonly driver: KcpCarrierDriver;
  private nat: KernelNat | null = null;
  private listeners: KernelListeners | null = null;
  private readonly plain = new PlainFlowTracker();
  private readonly sweeper: NodeJS.Timeout;
  private readonly myIp: number;

  private constructor(private readonly host: ProxyHost, private readonly log: Logger) {
    const cfg = host.config;
    this.myIp = cfg.ipv4 ? ipv4ToU32(cfg.ipv4.address) ?? 0 : 0;
    const carrier = new KcpCarrier({
      types: { fromInitiator: PacketType.KcpSrc, fromAcceptor: PacketType.KcpDst },
      acceptInput: !cfg.disableKcpInput,
    });
    this.driver = new KcpCarrierDriver(host.peer, carrier, (flow) => this.onOpenRequest(flow));
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Starts the proxy on a node: the destination role always, the source role with --enable-kcp-proxy. */
  static async start(host: ProxyHost, log: Logger): Promise<TcpProxy> {
    const proxy = new TcpProxy(host, log);
    const cfg = host.config;
    if (cfg.enableKcpProxy && cfg.ipv4 && !cfg.noTun) {
      const { address, prefix } = cfg.ipv4;
      const listeners = await KernelListeners.open(address, (s, port) => proxy.onAccept(s, port));
      proxy.listeners = listeners;
      proxy.nat = new KernelNat(proxy.myIp, fakeSourceIp(proxy.myIp, prefix), listeners.ports);
      host.addInterceptor((pkt) => proxy.fromTun(pkt));
    }
    return proxy;
  }

  entries(): ProxyEntryView[] {
    return this.table.list();
  }

  close(): void {
    clearInterval(this.sweeper);
    this.listeners?.close();
    this.driver.close();
  }

  // ---- source side ----

  /** Every IP packet read from the TUN, before normal forwarding. True: the proxy took it. */
  private fromTun(pkt: Buffer): boolean {
    switch (this.nat!.classify(pkt)) {
      case Verdict.ToTun:
        this.host.writeToTun(pkt);
        return true;
      case Verdict.Absorb:
        return true;
      case Verdict.NewSyn:
        return this.onSyn(pkt);
      default:
        this.plain.observe(pkt, this.table, nowMs());
        return false;
    }
  }

  private onSyn(syn: Buffer): boolean {
    const routes = this.host.peer.routes;
    const dst = ipv4Destination(syn);
    const dstPeer = routes.lookupIpv4(dst) ?? routes.lookupProxy(dst);
    if (dstPeer === undefined || dstPeer === this.host.peer.peerId) return false;
    const hop = routes.nextHop(dstPeer);
    if (hop === undefined) return false;
    const cfg = this.host.config;
    const choice = chooseTransport(
      { enableKcpProxy: cfg.enableKcpProxy, enableQuicProxy: false },
      routes.record(dstPeer)?.features, routes.record(hop)?.features, hop !== dstPeer,
    );
    const req = openRequestOf(syn, cfg.proxyOptimistic);
    const startTime = Math.floor(Date.now() / 1000);
    const addr = (a: { ip: string; port: number }): string => `${a.ip}:${a.port}`;
    this.log.debug('new flow', { src: `${req.src.ip}:${req.src.port}`, dst: `${req.dst.ip}:${req.dst.port}`, ...choice });
    if (choice.transport !== 'Kcp') {
      this.plain.track(syn, this.table.add({ src: addr(req.src), dst: addr(req.dst), role: 'src', transport: 'Tcp',
        reason: choice.reason, state: 'Connected', startTime }));
      return false;
    }
    const entry = this.table.add({ src: addr(req.src), dst: addr(req.dst), role: 'src', transport: 'Kcp',
      reason: choice.reason, state: 'SynReceived', startTime });
    const src = new SrcFlow(this, entry);
    src.nat = this.nat!.hold(syn, src);
    if (!src.nat) {
      entry.transport = 'Tcp';
      entry.reason = 'no free listener port for this source port';
      this.table.close(entry, nowMs());
      return false;
    }
    src.flow = this.driver.open(dstPeer, req, src);
    entry.counters = src.flow;
    entry.state = 'ConnectingDst';
    if (req.optimistic) this.releaseSyn(src);
    return true;
  }

  onStatus(src: SrcFlow, status: DialStatus): void {
    const nat = src.nat!;
    if (status === DialStatus.Connected) {
      if (!src.flow.request!.optimistic) this.releaseSyn(src);
      return;
    }
    if (status === DialStatus.Refused && nat.state === 'held') {
      const rst = this.nat!.refuse(nat);
      if (rst) this.host.writeToTun(rst);
    }
    this.endSrc(src, `dial ${dialStatusText(status)}`);
  }

  endSrc(src: SrcFlow, why: string): void {
    if (src.entry.closedAt !== 0) return;
    src.entry.reason = `${src.entry.reason}; ${why}`;
    this.log.debug('proxied flow ended', { src: src.entry.src, dst: src.entry.dst, why });
    if (src.nat && src.nat.state === 'held') this.nat!.remove(src.nat);
    else if (src.nat) this.nat!.closed(src.nat, nowMs());
    this.table.close(src.entry, nowMs());
  }

  private releaseSyn(src: SrcFlow): void {
    const syn = this.nat!.release(src.nat!);
    if (syn) this.host.writeToTun(syn);
  }

  private onAccept(socket: Socket, listenerPort: number): void {
    const nat = this.nat?.accepted(listenerPort, socket.remotePort ?? 0);
    const src = nat?.owner as SrcFlow | undefined;
    if (!src || src.pipe || src.flow.ended) {
      socket.destroy();
      return;
    }
    src.entry.state = 'Connected';
    src.pipe = new SocketPipe(socket, this.driver.pipeStream(src.flow), () => this.driver.kick(), (how) => {
      this.endSrc(src, how === 'clean' ? 'closed' : how);
    });
    socket.resume();
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
    const socket = connect({ host: target.ip, port: req.dst.port, allowHalfOpen: true });
    dst.socket = socket;
    socket.pause();
    const timer = setTimeout(() => {
      socket.destroy();
      this.answer(flow, dst, DialStatus.Unreachable, 'dial timed out');
    }, DIAL_TIMEOUT_MS);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (dst.pipe) return;
      clearTimeout(timer);
      this.answer(flow, dst, err.code === 'ECONNREFUSED' ? DialStatus.Refused : DialStatus.Unreachable, `dial failed: ${err.code ?? err.message}`);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      if (flow.ended) {
        socket.destroy();
        return;
      }
      this.answer(flow, dst, DialStatus.Connected, 'connected');
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
    if (!this.nat) return;
    for (const gone of this.nat.sweep(now, (f) => (f.owner as SrcFlow).heldAt)) {
      const src = gone.owner as SrcFlow;
      if (gone.closedAt === 0) {
        src.flow.reset(now);
        this.driver.carrier.touch(src.flow);
        this.table.close(src.entry, now);
      }
    }
    this.driver.kick();
  }
}

/**
 * The source address injected SYNs carry: another address of the TUN's subnet (its network address,
 * or the next one if that is ours), so the kernel's replies leave through the TUN rather than loopback.
 */
export function fakeSourceIp(myIp: number, prefix: number): number {
  const net = (myIp & prefixMask(prefix)) >>> 0;
  return net === myIp ? (net + 1) >>> 0 : net;
}

function openRequestOf(syn: Uint8Array, optimistic: boolean): OpenRequest {
  const ihl = (syn[0]! & 0x0f) * 4;
  const sport = (syn[ihl]! << 8) | syn[ihl + 1]!;
  const dport = (syn[ihl + 2]! << 8) | syn[ihl + 3]!;
  const src = ((syn[12]! << 24) | (syn[13]! << 16) | (syn[14]! << 8) | syn[15]!) >>> 0;
  return { src: { ip: u32ToIpv4(src), port: sport }, dst: { ip: u32ToIpv4(ipv4Destination(syn)), port: dport }, optimistic };
}
