/**
 * The kernel path behind the Terminator seam: KernelNat rewrites the app's SYN toward one of our
 * kernel listeners (held until released), and the accepted net.Socket is the application's stream.
 * Only flows from this node's own address qualify (KernelNat passes the rest): a LAN host's SYN
 * rewritten to us would be answered by the kernel over the LAN, never through the TUN (docs/userspace-stack.md);
 * those need smoltcp.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../../log.js';
import { prefixMask, u32ToIpv4 } from '../../peer/ipv4-prefix.js';
import { u32ToBytes } from './addr.js';
import { KernelListeners } from './listeners.js';
import { KernelNat, Verdict, type NatFlow } from './nat.js';
import { PlainFlowTracker } from '../plain-flows.js';
import type { PlainRow, TerminatedFlow, Terminator, TerminatorClient } from '../terminator.js';

export class KernelTerminator<O extends TerminatedFlow> implements Terminator<O> {
  readonly kind = 'kernel';
  private readonly heldAt = new WeakMap<NatFlow, number>();
  private readonly plain = new PlainFlowTracker();

  private constructor(
    private readonly nat: KernelNat,
    private listeners: KernelListeners | null,
    private readonly client: TerminatorClient<O>,
    private readonly writeToTun: (packet: Uint8Array, whole?: boolean) => void,
    private readonly forward: (packet: Uint8Array) => void,
    private readonly clock: () => number,
  ) {}

  /** `forward`: sends an outbound packet on as plain Data, past the interceptors. */
  static async open<O extends TerminatedFlow>(
    myIp: number, prefix: number, client: TerminatorClient<O>, writeToTun: (packet: Uint8Array, whole?: boolean) => void,
    forward: (packet: Uint8Array) => void, clock: () => number, log: Logger,
  ): Promise<KernelTerminator<O>> {
    let term: KernelTerminator<O> | null = null;
    const listeners = await KernelListeners.open(u32ToIpv4(myIp), (s, port) => {
      if (term) term.onAccept(s, port);
      else s.destroy();
    });
    const nat = new KernelNat(myIp, fakeSourceIp(myIp, prefix), listeners.ports);
    term = new KernelTerminator(nat, listeners, client, writeToTun, forward, clock);
    log.debug('kernel termination', { listeners: listeners.ports.join(',') });
    return term;
  }

  intercept(pkt: Buffer): boolean {
    if (this.take(pkt)) return true;
    this.plain.observe(pkt);
    return false;
  }

  private take(pkt: Buffer): boolean {
    switch (this.nat.classify(pkt)) {
      case Verdict.ToTun:
        this.writeToTun(pkt);
        return true;
      case Verdict.Absorb:
        return true;
      case Verdict.NewSyn:
        return this.onSyn(pkt);
      default:
        return false;
    }
  }

  /** The NAT only rewrites addresses and ports, so a super-packet of a tracked flow goes back whole. */
  interceptWhole(pkt: Buffer): boolean {
    if (this.nat.classify(pkt, true) !== Verdict.ToTun) return false;
    this.writeToTun(pkt, true);
    return true;
  }

  release(owner: O): void {
    const syn = this.nat.release(owner.term as NatFlow);
    if (syn) this.writeToTun(syn);
  }

  refuse(owner: O): void {
    const nat = owner.term as NatFlow;
    if (nat.state !== 'held') return this.ended(owner);
    const rst = this.nat.refuse(nat);
    if (rst) this.writeToTun(rst);
  }

  drop(owner: O): void {
    const nat = owner.term as NatFlow;
    if (nat.state === 'held') this.nat.remove(nat);
    else this.ended(owner);
  }

  carryPlain(owner: O, row: PlainRow): 'ipv4' | null {
    const nat = owner.term as NatFlow;
    const syn = nat.syn; // a copy, never rewritten while held
    if (nat.state !== 'held' || !syn) return null;
    this.nat.remove(nat);
    this.forward(syn);
    this.plain.track(syn, row);
    return 'ipv4';
  }

  ended(owner: O): void {
    const nat = owner.term as NatFlow;
    if (nat.state === 'held') this.nat.remove(nat);
    else this.nat.closed(nat, this.clock());
  }

  sweep(now: number): void {
    for (const gone of this.nat.sweep(now, (f) => this.heldAt.get(f) ?? now)) {
      if (gone.closedAt === 0) this.client.abandoned(gone.owner as O, 'held SYN expired');
    }
  }

  close(): void {
    this.listeners?.close();
    this.listeners = null;
  }

  private onSyn(syn: Buffer): boolean {
    if (this.plain.isTracked(syn)) return false; // a retransmitted SYN of a flow left to plain packets
    const nat = this.nat.hold(syn, null);
    if (!nat) return false; // every listener port already pairs with this source port
    const owner = this.client.claim(
      { ip: u32ToBytes(this.nat.myIp), port: nat.appPort }, { ip: u32ToBytes(nat.dstIp), port: nat.dstPort },
      (row) => this.plain.track(syn, row));
    if (!owner) {
      this.nat.remove(nat);
      return false;
    }
    nat.owner = owner;
    owner.term = nat;
    this.heldAt.set(nat, this.clock());
    this.client.held(owner);
    return true;
  }

  private onAccept(socket: Socket, listenerPort: number): void {
    const nat = this.nat.accepted(listenerPort, socket.remotePort ?? 0);
    if (!nat || nat.state !== 'active' || nat.closedAt !== 0 || !nat.owner) {
      socket.destroy();
      return;
    }
    this.client.accepted(nat.owner as O, socket);
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
