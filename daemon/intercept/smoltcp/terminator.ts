/**
 * The userspace path behind the Terminator seam (`--use-smoltcp`, `--no-tun`): the app's TCP flow
 * ends in our smoltcp stack instead of the kernel, so no inbound SYN ever has to pass the host's
 * firewall on the TUN, any destination works, and SYNs from LAN hosts behind this router node are
 * terminated too (their replies are routed back by the kernel; docs/userspace-stack.md).
 *
 * Packets of a flow the proxy claimed go into the stack; everything else passes. A claimed SYN is
 * held by the stack until release (SYN-ACK), refuse (RST) or drop (silence). The stack's packets go
 * back into the TUN. Flows are tracked by 4-tuple until a linger after their end, so late FIN/ACKs
 * still reach the stack rather than leaking to the peer as plain packets. IPv4 flows are keyed by
 * numbers (no allocation per packet); IPv6 flows by a 36-byte string key (see tcp6FlowKey).
 */
import type { Logger } from '../../log.js';
import { formatIpAddress, parseIpv6Address } from '../../packet/address.js';
import { u32ToIpv4, ipv4ToU32 } from '../../peer/ipv4-prefix.js';
import { TCP_ACK, TCP_SYN } from '../../packet/tcp.js';
import { FlowKeyMap, ipv6FlowKey, tcp6FlowKey, tcpFlowKey } from '../flow-key-map.js';
import { CLOSED_LINGER_MS, HELD_TIMEOUT_MS, type TerminatedFlow, type Terminator,
  type TerminatorClient } from '../terminator.js';
import { type FlowRequest, SmoltcpDriver } from './driver.js';
import { InputOutcome, type SmoltcpStack } from './stack.js';
import { isWasmTrap } from './wasm.js';

type Phase = 'claimed' | 'held' | 'open' | 'closed';

interface SmolFlow<O> {
  readonly owner: O;
  readonly src: number;
  readonly dst: number;
  readonly ports: number;
  /** IPv6 flows: their key in `flows6` (src and dst are then 0); null for IPv4. */
  readonly key6: string | null;
  /** The stack's flow id, once its 'new' event arrived. */
  id: number;
  phase: Phase;
  /** The app's SYN as read, until the flow is released (pass() hands it back for plain forwarding). */
  syn: Uint8Array | null;
  /** When the SYN was claimed, or when the flow ended (linger). */
  since: number;
}

export class SmoltcpTerminator<O extends TerminatedFlow> implements Terminator<O> {
  readonly kind = 'smoltcp';
  readonly driver: SmoltcpDriver;
  private readonly flows = new FlowKeyMap<SmolFlow<O>>();
  private readonly flows6 = new Map<string, SmolFlow<O>>();
  private readonly key = { src: 0, dst: 0, ports: 0, flags: 0 };

  constructor(
    stack: SmoltcpStack,
    private readonly client: TerminatorClient<O>,
    /** Where the stack's packets go (the TUN; for the subnet proxy, the peer owning the client). */
    emit: (packet: Uint8Array) => void,
    private readonly clock: () => number,
    private readonly log: Logger,
  ) {
    this.driver = new SmoltcpDriver(stack, emit, (req) => this.onRequest(req), clock);
  }

  intercept(pkt: Buffer): boolean {
    const k = this.key;
    let key6: string | null = null;
    let known: SmolFlow<O> | undefined;
    if (tcpFlowKey(pkt, k)) known = this.flows.get(k.src, k.dst, k.ports);
    else if ((key6 = tcp6FlowKey(pkt, k)) !== null) known = this.flows6.get(key6);
    else return false;
    const pureSyn = (k.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
    if (known && !(known.phase === 'closed' && pureSyn)) {
      this.driver.input(pkt);
      return true;
    }
    if (!pureSyn) return false;
    if (known) this.untrack(known); // the 4-tuple is reused: a new flow
    const owner = this.client.claim(
      { ip: key6 === null ? u32ToIpv4(k.src) : formatIpAddress(pkt.subarray(8, 24)), port: k.ports >>> 16 },
      { ip: key6 === null ? u32ToIpv4(k.dst) : formatIpAddress(pkt.subarray(24, 40)), port: k.ports & 0xffff }, pkt);
    if (!owner) return false;
    const src = key6 === null ? k.src : 0;
    const dst = key6 === null ? k.dst : 0;
    const flow: SmolFlow<O> = { owner, src, dst, ports: k.ports, key6, id: 0, phase: 'claimed',
      syn: Uint8Array.prototype.slice.call(pkt), // a copy: pkt is a view into the TUN's read batch
      since: this.clock() };
    owner.term = flow;
    if (key6 === null) this.flows.set(src, dst, k.ports, flow);
    else this.flows6.set(key6, flow);
    const outcome = this.driver.input(pkt);
    if (outcome !== InputOutcome.newFlow) {
      // Over the flow limit the stack answered with RST; a malformed SYN it dropped.
      this.untrack(flow);
      this.client.abandoned(owner, `userspace stack did not take the SYN (outcome ${outcome})`);
    }
    return true;
  }

  release(owner: O): void {
    const flow = owner.term as SmolFlow<O>;
    if (flow.phase !== 'held') return;
    flow.phase = 'open';
    flow.syn = null;
    const socket = this.driver.accept(flow.id);
    socket.on('error', (err: Error) => {
      if (isWasmTrap(err.cause)) this.log.error('userspace TCP stack crashed; flow reset', { src: this.describe(flow), err });
    });
    this.client.accepted(owner, socket);
  }

  refuse(owner: O): void {
    const flow = owner.term as SmolFlow<O>;
    if (flow.phase !== 'held') return this.ended(owner);
    this.driver.reject(flow.id);
    this.untrack(flow);
  }

  drop(owner: O): void {
    const flow = owner.term as SmolFlow<O>;
    if (flow.phase !== 'held') return this.ended(owner);
    this.driver.drop(flow.id);
    this.untrack(flow);
  }

  pass(owner: O): Uint8Array | null {
    const flow = owner.term as SmolFlow<O>;
    if (flow.phase !== 'held') return null;
    const syn = flow.syn;
    this.driver.drop(flow.id);
    this.untrack(flow);
    return syn;
  }

  ended(owner: O): void {
    const flow = owner.term as SmolFlow<O>;
    if (flow.phase === 'held') return this.drop(owner);
    if (flow.phase === 'closed') return;
    flow.phase = 'closed';
    flow.since = this.clock();
  }

  sweep(now: number): void {
    const expired: SmolFlow<O>[] = [];
    for (const f of [...this.flows.values(), ...this.flows6.values()]) {
      if (f.phase === 'closed' ? now - f.since >= CLOSED_LINGER_MS : f.phase !== 'open' && now - f.since >= HELD_TIMEOUT_MS) {
        expired.push(f);
      }
    }
    for (const f of expired) {
      const wasHeld = f.phase !== 'closed';
      if (f.phase === 'held') this.driver.drop(f.id);
      this.untrack(f);
      if (wasHeld) this.client.abandoned(f.owner, 'held SYN expired');
    }
  }

  close(): void {
    this.driver.close();
  }

  get size(): number {
    return this.flows.size + this.flows6.size;
  }

  private onRequest(req: FlowRequest): void {
    const flow = req.family === 4
      ? this.flows.get(ipv4ToU32(req.src.address) ?? 0, ipv4ToU32(req.dst.address) ?? 0, ((req.src.port << 16) | req.dst.port) >>> 0)
      : this.flows6.get(ipv6FlowKey(parseIpv6Address(req.src.address) ?? new Uint8Array(16),
        parseIpv6Address(req.dst.address) ?? new Uint8Array(16), req.src.port, req.dst.port));
    if (!flow || flow.phase !== 'claimed') {
      this.driver.reject(req.id); // not a SYN we claimed (cannot happen: only claimed flows are fed)
      return;
    }
    flow.id = req.id;
    flow.phase = 'held';
    req.signal.addEventListener('abort', () => {
      if (flow.phase !== 'held') return;
      this.untrack(flow);
      const err = req.signal.reason as Error;
      if (isWasmTrap(err.cause)) this.log.error('userspace TCP stack crashed; held flow dropped', { src: this.describe(flow), err });
      this.client.abandoned(flow.owner, err.message);
    }, { once: true });
    this.client.held(flow.owner);
  }

  private untrack(flow: SmolFlow<O>): void {
    if (flow.key6 !== null) {
      if (this.flows6.get(flow.key6) === flow) this.flows6.delete(flow.key6);
    } else if (this.flows.get(flow.src, flow.dst, flow.ports) === flow) this.flows.delete(flow.src, flow.dst, flow.ports);
    if (flow.phase !== 'closed') flow.phase = 'closed';
    flow.syn = null;
  }

  private describe(flow: SmolFlow<O>): string {
    const key = flow.key6 === null ? null : Buffer.from(flow.key6, 'latin1');
    const src = key ? `[${formatIpAddress(key.subarray(0, 16))}]` : u32ToIpv4(flow.src);
    const dst = key ? `[${formatIpAddress(key.subarray(16, 32))}]` : u32ToIpv4(flow.dst);
    return `${src}:${flow.ports >>> 16} -> ${dst}:${flow.ports & 0xffff}`;
  }
}
