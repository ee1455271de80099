/**
 * Kernel-path termination of proxied TCP flows, as a pure state machine over IPv4 packets read from
 * the TUN (EasyTier's NAT trick; docs/kcp-proxy.md, "How a flow goes"):
 *
 *   app  myIp:P  -> dst D:Q                    (read from the TUN)
 *   becomes fakeIp:P -> myIp:L                 (written back into the TUN: the kernel sees an inbound
 *                                               connection to our listener on port L)
 *   listener myIp:L -> fakeIp:P                (its replies, read from the TUN)
 *   becomes D:Q -> myIp:P                      (written back: the app sees D answering)
 *
 * fakeIp is another address of the TUN's subnet (its network address), so the listener's replies are
 * routed out through the TUN instead of over loopback. A flow is keyed by (P, D, Q); the listener
 * learns (fakeIp, P) as the peer of the accepted socket and finds the flow by (L, P). Linux may reuse
 * one source port P for different destinations, so when (L, P) is taken another listener port is used.
 *
 * Fidelity: the app's SYN is held (not re-injected) until the remote dial's outcome is known. Then it
 * is released (the connection completes), answered with a RST (ECONNREFUSED), or dropped (the app's
 * connect times out, as it would without the proxy). SYN retransmissions meanwhile are absorbed.
 */
import { rewriteAddress, rewritePort } from '../../packet/rewrite.js';
import { buildTcpPacket } from '../../packet/build.js';
import { readTcpFlowKey, TcpFlowKey } from '../../packet/flow-key.js';
import { TCP_ACK, TCP_RST, TCP_SYN } from '../../packet/tcp.js';
import { u32ToBytes } from './addr.js';
import { CLOSED_LINGER_MS, HELD_TIMEOUT_MS } from '../terminator.js';

export type NatState = 'held' | 'active' | 'closed';

export interface NatFlow {
  readonly appPort: number;
  readonly dstIp: number;
  /** dstIp's 4 bytes, for the rewrite of every reply (no allocation per packet). */
  readonly dstIpBytes: Uint8Array;
  readonly dstPort: number;
  readonly listenerPort: number;
  state: NatState;
  /** The app's SYN while held. */
  syn: Uint8Array | null;
  /** When the flow closed (caller's clock), for the linger; 0 while open. */
  closedAt: number;
  /** Whatever the proxy attaches (its carrier flow). */
  owner: unknown;
}

export const enum Verdict {
  /** Not ours: forward it as usual. */
  Pass,
  /** Rewritten in place: write it back into the TUN. */
  ToTun,
  /** Swallow it (a retransmitted SYN of a held flow, or a packet of a flow being torn down). */
  Absorb,
  /** A SYN to a destination we do not track yet: the caller decides whether to proxy it (hold()). */
  NewSyn,
}


export class KernelNat {
  /** Flows by destination address, then by appPort * 65536 + dstPort (numeric keys: no allocation per packet). */
  private readonly byForward = new Map<number, Map<number, NatFlow>>();
  private count = 0;
  private readonly byListener = new Map<number, NatFlow>(); // key: listenerPort * 65536 + appPort
  private readonly myIpBytes: Uint8Array;
  private readonly fakeIpBytes: Uint8Array;
  /** The key of the packet at hand; its views are what the rewrites work on. */
  private readonly key = new TcpFlowKey();

  constructor(
    readonly myIp: number,
    readonly fakeIp: number,
    /** Ports of our kernel listeners on myIp; at least one. */
    private readonly listenerPorts: readonly number[],
  ) {
    this.myIpBytes = u32ToBytes(myIp);
    this.fakeIpBytes = u32ToBytes(fakeIp);
  }

  /**
   * Classifies (and, for tracked flows, rewrites in place) one packet read from the TUN. Any bytes
   * are accepted; what does not parse as IPv4/TCP passes. `partial`: a TUN super-packet, whose
   * checksum is partial (rewrite.ts); only Pass or ToTun are then possible (it carries no SYN).
   */
  classify(pkt: Uint8Array, partial = false): Verdict {
    const k = this.key;
    if (!this.bind(pkt) || k.src4 !== this.myIp) return Verdict.Pass;
    const ip = k.ip4;
    const tcp = k.tcp;

    if (ip.dst === this.fakeIp) {
      // Our listener answering an injected connection.
      const flow = this.byListener.get(tcp.srcPort * 65536 + tcp.dstPort);
      if (!flow) return Verdict.Pass;
      rewriteAddress(ip, 'src', flow.dstIpBytes, partial);
      rewritePort(ip, 'src', flow.dstPort, partial);
      rewriteAddress(ip, 'dst', this.myIpBytes, partial);
      return Verdict.ToTun;
    }

    const flow = this.byForward.get(ip.dst)?.get(tcp.srcPort * 65536 + tcp.dstPort);
    if (!flow || (partial && flow.state === 'held')) {
      // A super-packet is never a SYN; one for a held flow is cut, and its segments are absorbed.
      return !partial && (tcp.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN ? Verdict.NewSyn : Verdict.Pass;
    }
    if (flow.state === 'held') {
      if ((tcp.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN) flow.syn = copyOf(pkt); // the latest SYN is released
      return Verdict.Absorb;
    }
    this.toListener(flow, partial);
    return Verdict.ToTun;
  }

  /**
   * Starts tracking the SYN just classified NewSyn, holding it. Returns null when every listener port
   * is already paired with this app port (the caller then lets the flow pass unproxied).
   */
  hold(syn: Uint8Array, owner: unknown): NatFlow | null {
    if (!this.bind(syn)) return null;
    const { ip4: ip, tcp } = this.key;
    const appPort = tcp.srcPort;
    const listenerPort = this.listenerPorts.find((l) => !this.byListener.has(l * 65536 + appPort));
    if (listenerPort === undefined) return null;
    const flow: NatFlow = {
      appPort, dstIp: ip.dst, dstIpBytes: u32ToBytes(ip.dst), dstPort: tcp.dstPort, listenerPort, state: 'held', syn: copyOf(syn), closedAt: 0, owner,
    };
    let byPorts = this.byForward.get(flow.dstIp);
    if (!byPorts) this.byForward.set(flow.dstIp, (byPorts = new Map()));
    byPorts.set(appPort * 65536 + flow.dstPort, flow);
    this.count++;
    this.byListener.set(listenerPort * 65536 + appPort, flow);
    return flow;
  }

  /** The remote dial succeeded: returns the held SYN, rewritten, to write into the TUN. */
  release(flow: NatFlow): Uint8Array | null {
    const syn = flow.syn;
    flow.syn = null;
    if (flow.state !== 'held' || !syn) return null;
    flow.state = 'active';
    if (!this.bind(syn)) return null;
    this.toListener(flow);
    return syn;
  }

  /** The destination refused: a RST for the app (its connect fails with ECONNREFUSED); the flow is dropped. */
  refuse(flow: NatFlow): Uint8Array | null {
    const syn = flow.syn;
    this.remove(flow);
    if (!syn || !this.bind(syn)) return null;
    return buildTcpPacket(
      { src: u32ToBytes(flow.dstIp), dst: this.myIpBytes },
      {
        srcPort: flow.dstPort, dstPort: flow.appPort, seq: 0, ack: (this.key.tcp.seq + 1) >>> 0,
        flags: TCP_RST | TCP_ACK, window: 0, urgent: 0, options: {}, payload: new Uint8Array(0),
      },
    );
  }

  /** Forgets a flow at once (an unreachable destination: the app's SYN retries then time out). */
  remove(flow: NatFlow): void {
    const byPorts = this.byForward.get(flow.dstIp);
    if (byPorts?.get(flow.appPort * 65536 + flow.dstPort) === flow) {
      byPorts.delete(flow.appPort * 65536 + flow.dstPort);
      if (byPorts.size === 0) this.byForward.delete(flow.dstIp);
      this.count--;
    }
    this.byListener.delete(flow.listenerPort * 65536 + flow.appPort);
    flow.state = 'closed';
    flow.syn = null;
  }

  /** The flow ended; its late packets are still rewritten for a while (see sweep). */
  closed(flow: NatFlow, now: number): void {
    if (flow.closedAt === 0) flow.closedAt = now || 1;
  }

  /** The flow a listener accepted, from the accepted socket's local port and remote port. */
  accepted(listenerPort: number, remotePort: number): NatFlow | undefined {
    return this.byListener.get(listenerPort * 65536 + remotePort);
  }

  /** Forgets closed flows past their linger and held SYNs that waited too long (returned, so the caller can clean up). */
  sweep(now: number, heldSince: (f: NatFlow) => number): NatFlow[] {
    const gone: NatFlow[] = [];
    for (const byPorts of this.byForward.values()) for (const f of byPorts.values()) {
      const expired = f.closedAt !== 0 ? now - f.closedAt >= CLOSED_LINGER_MS : f.state === 'held' && now - heldSince(f) >= HELD_TIMEOUT_MS;
      if (expired) gone.push(f);
    }
    for (const f of gone) this.remove(f);
    return gone;
  }

  get size(): number {
    return this.count;
  }

  /** Rewrites the packet bound in the views: fakeIp:appPort -> myIp:listenerPort. */
  private toListener(flow: NatFlow, partial = false): void {
    const ip = this.key.ip4;
    rewriteAddress(ip, 'src', this.fakeIpBytes, partial);
    rewriteAddress(ip, 'dst', this.myIpBytes, partial);
    rewritePort(ip, 'dst', flow.listenerPort, partial);
  }

  /** Binds the key (and its views) to an IPv4 TCP flow packet; false for anything else. */
  private bind(pkt: Uint8Array): boolean {
    return readTcpFlowKey(pkt, this.key) && this.key.family === 4;
  }
}

/**
 * A copy that owns its bytes. Packets from the TUN are Buffers into the read batch, which the next
 * read overwrites, and Buffer's slice() is a view, not a copy.
 */
function copyOf(pkt: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(pkt);
}
