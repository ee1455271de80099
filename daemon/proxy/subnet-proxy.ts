/**
 * The destination node's subnet proxy (`-n CIDR`, `-n CIDR->MAPPED`): TCP flows that peers send as
 * plain Data packets to one of our proxied ranges (or, with --no-tun, to our own address) end in a
 * userspace stack here, and this node dials the LAN host itself. So LAN hosts need no route back to
 * the virtual network: they see this node as the client (docs/userspace-stack.md, "Subnet proxy").
 *
 * Fidelity as on the KCP path: the client's SYN is held until our dial's outcome. Connected: SYN-ACK;
 * refused: RST; unreachable or timed out: silence. The stack's packets go back to the node that owns
 * the client's address as Data packets. Only SYNs and packets of flows we terminated are taken;
 * anything else to the range (other TCP, UDP, ICMP) still goes to the TUN as before.
 */
import type { Socket } from 'node:net';
import { DialStatus } from '../carrier/flow-frames.js';
import { nowMs } from '../io/clock.js';
import type { AppStream } from '../carrier/socket-pipe.js';
import { SmoltcpStack } from '../intercept/smoltcp/stack.js';
import { SmoltcpTerminator } from '../intercept/smoltcp/terminator.js';
import type { TerminatedFlow, TerminatorClient } from '../intercept/terminator.js';
import type { Logger } from '../log.js';
import { readU32 } from '../packet/bytes.js';
import { formatSocketAddr, type SocketAddr } from '../packet/flow-key.js';
import { ipv4Destination } from '../peer/ipv4-prefix.js';
import { PacketType } from '../peer/wire.js';
import { dialDestination } from './dial.js';
import { dstDialTarget } from './dial-target.js';
import type { FlowEntry, FlowTable } from './flow-table.js';
import { splice } from './splice.js';
import { closeWaitMs, type ProxyHost } from './proxy-host.js';

class InboundFlow implements TerminatedFlow {
  term: unknown = null;
  /** The dial to the LAN host, until it is piped. */
  dial: Socket | null = null;
  constructor(readonly entry: FlowEntry, readonly dst: SocketAddr) {}
}

export class SubnetProxy implements TerminatorClient<InboundFlow> {
  private readonly term: SmoltcpTerminator<InboundFlow>;
  private readonly myIp: number;
  /** Stack packets for clients no node owns any more. */
  unroutable = 0;

  private constructor(private readonly host: ProxyHost, private readonly table: FlowTable, stack: SmoltcpStack,
    private readonly log: Logger) {
    this.myIp = host.addresses.ipv4?.u32 ?? 0;
    // Its SYNs come from peers and are never left to plain packets (claim holds them or lets them pass).
    this.term = new SmoltcpTerminator(stack, this, (p) => this.toClient(p), () => undefined, nowMs, log);
  }

  /** Null when the node proxies no range and has a TUN (its own flows then reach its kernel). */
  static async start(host: ProxyHost, table: FlowTable, log: Logger): Promise<SubnetProxy | null> {
    const cfg = host.config;
    if (cfg.proxyNetworks.length === 0 && !cfg.noTun) return null;
    const proxy = new SubnetProxy(host, table, await SmoltcpStack.create({ mtu: cfg.mtu }), log);
    host.addInboundInterceptor((pkt) => proxy.term.intercept(pkt));
    return proxy;
  }

  claim(src: SocketAddr, dst: SocketAddr): InboundFlow | null {
    const peer = this.host.peer;
    if (dst.ip.length !== 4) return null; // proxied ranges are IPv4
    const dstIp = readU32(dst.ip, 0);
    const ours = peer.routes.lookupProxy(dstIp) === peer.peerId || (this.host.config.noTun && dstIp === this.myIp);
    if (!ours) return null;
    const entry = this.table.add({ src: formatSocketAddr(src), dst: formatSocketAddr(dst), role: 'dst',
      transport: 'Tcp', reason: 'subnet proxy', state: 'ConnectingDst', startTime: Math.floor(Date.now() / 1000) });
    return new InboundFlow(entry, dst);
  }

  held(flow: InboundFlow): void {
    const target = dstDialTarget(flow.dst, this.host.addresses, this.host.config.noTun);
    if (!target.ok) {
      this.term.refuse(flow);
      return this.finish(flow, target.why);
    }
    flow.dial = dialDestination(target.ip, flow.dst.port, (status, socket, why) => {
      flow.dial = socket;
      if (flow.entry.closedAt !== 0) socket?.destroy(); // the client gave up meanwhile
      else if (status === DialStatus.Connected) this.term.release(flow);
      else {
        if (status === DialStatus.Refused) this.term.refuse(flow);
        else this.term.drop(flow);
        this.finish(flow, why);
      }
    });
  }

  accepted(flow: InboundFlow, stream: AppStream): void {
    const socket = flow.dial;
    if (!socket) {
      stream.destroy();
      return;
    }
    flow.entry.state = 'Connected';
    splice(stream, socket, (how) => {
      this.term.ended(flow);
      this.finish(flow, how === 'clean' ? 'closed' : how);
    }, closeWaitMs(this.host.config), flow.entry.counters);
  }

  abandoned(flow: InboundFlow, why: string): void {
    flow.dial?.destroy();
    this.finish(flow, why);
  }

  sweep(now: number): void {
    this.term.sweep(now);
  }

  close(): void {
    this.term.close();
  }

  private finish(flow: InboundFlow, why: string): void {
    if (flow.entry.closedAt !== 0) return;
    flow.entry.reason = `subnet proxy; ${why}`;
    this.log.debug('subnet flow ended', { src: flow.entry.src, dst: flow.entry.dst, why });
    this.table.close(flow.entry, nowMs());
  }

  /** A packet from the stack: to the node that owns the client's address. */
  private toClient(pkt: Uint8Array): void {
    const routes = this.host.peer.routes;
    const dst = ipv4Destination(pkt);
    const owner = routes.lookupIpv4(dst) ?? routes.lookupProxy(dst);
    if (owner === undefined || owner === this.host.peer.peerId || !this.host.peer.sendTo(owner, PacketType.Data, pkt)) {
      this.unroutable++;
    }
  }
}
