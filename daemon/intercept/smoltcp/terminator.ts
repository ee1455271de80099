/**
 * The userspace path behind the Terminator seam (`--use-smoltcp`, `--no-tun`): the app's TCP flow
 * ends in our smoltcp stack instead of the kernel, so no inbound SYN ever has to pass the host's
 * firewall on the TUN, any destination works, and SYNs from LAN hosts behind this router node are
 * terminated too (their replies are routed back by the kernel; docs/userspace-stack.md).
 *
 * Packets of a flow the proxy claimed go into the stack; everything else passes. A claimed SYN is
 * held by the stack until release (SYN-ACK), refuse (RST) or drop (silence). The stack's packets go
 * back into the TUN. Flows are tracked by their key (packet/flow-key.ts) until a linger after their
 * end, so late FIN/ACKs still reach the stack rather than leaking to the peer as plain packets. The
 * stack tells which flow a claimed SYN opened (its id, from the input call itself), so its later
 * events find the flow by id, never by re-matching addresses.
 */
import type { Logger } from '../../log.js';
import { formatSocketAddr, readTcpFlowKey, type SocketAddr, TcpFlowKey } from '../../packet/flow-key.js';
import { TCP_ACK, TCP_SYN } from '../../packet/tcp.js';
import { FlowKeyMap, type StoredFlowKey } from '../flow-key-map.js';
import { PlainFlowTracker } from '../plain-flows.js';
import { CLOSED_LINGER_MS, HELD_TIMEOUT_MS, type PlainRow, type TerminatedFlow, type Terminator,
  type TerminatorClient } from '../terminator.js';
import { type FlowRequest, SmoltcpDriver } from './driver.js';
import { InputOutcome, type SmoltcpStack } from './stack.js';
import { isWasmTrap } from '../../wasm/loader.js';

type Phase = 'claimed' | 'held' | 'open' | 'closed';

interface SmolFlow<O> {
  readonly owner: O;
  readonly src: SocketAddr;
  readonly dst: SocketAddr;
  /** Its key in `flows`; set once stored. */
  key: StoredFlowKey | null;
  /** The stack's flow id, from the input call that opened it. */
  id: number;
  phase: Phase;
  /** The app's SYN as read, until the flow is released (carryPlain() forwards it as a plain packet). */
  syn: Uint8Array | null;
  /** When the SYN was claimed, or when the flow ended (linger). */
  since: number;
}

export class SmoltcpTerminator<O extends TerminatedFlow> implements Terminator<O> {
  readonly kind = 'smoltcp';
  readonly driver: SmoltcpDriver;
  private readonly flows = new FlowKeyMap<SmolFlow<O>>();
  /** Flows the stack opened, by its id. */
  private readonly byId = new Map<number, SmolFlow<O>>();
  private readonly key = new TcpFlowKey();
  private readonly plain = new PlainFlowTracker();

  constructor(
    stack: SmoltcpStack,
    private readonly client: TerminatorClient<O>,
    /** Where the stack's packets go (the TUN; for the subnet proxy, the peer owning the client). */
    emit: (packet: Uint8Array) => void,
    /** Sends an outbound packet on as plain Data (a SYN the proxy leaves to plain packets). */
    private readonly forward: (packet: Uint8Array) => void,
    private readonly clock: () => number,
    private readonly log: Logger,
  ) {
    this.driver = new SmoltcpDriver(stack, emit, (req) => this.onRequest(req), clock);
  }

  intercept(pkt: Buffer): boolean {
    if (this.take(pkt)) return true;
    this.plain.observe(pkt);
    return false;
  }

  private take(pkt: Buffer): boolean {
    const k = this.key;
    if (!readTcpFlowKey(pkt, k)) return false;
    const known = this.flows.get(k);
    const pureSyn = (k.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
    if (known && !(known.phase === 'closed' && pureSyn)) {
      this.driver.input(pkt);
      return true;
    }
    if (!pureSyn || this.plain.isTracked(pkt)) return false; // isTracked: a retransmitted SYN of a plain flow
    if (known) this.untrack(known); // the 4-tuple is reused: a new flow
    const src = k.srcAddr();
    const dst = k.dstAddr();
    const owner = this.client.claim(src, dst, (row) => this.plain.track(pkt, row));
    if (!owner) return false;
    const flow: SmolFlow<O> = { owner, src, dst, key: null, id: 0, phase: 'claimed',
      syn: Uint8Array.prototype.slice.call(pkt), // a copy: pkt is a view into the TUN's read batch
      since: this.clock() };
    owner.term = flow;
    flow.key = this.flows.set(k, flow);
    const outcome = this.driver.input(pkt);
    if (outcome === InputOutcome.newFlow) {
      flow.id = this.driver.stack.inputFlow();
      this.byId.set(flow.id, flow);
    } else {
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
    const end = this.driver.accept(flow.id, (err) => {
      if (isWasmTrap(err.cause)) this.log.error('userspace TCP stack crashed; flow reset', { src: this.describe(flow), err });
    });
    this.client.accepted(owner, end);
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

  carryPlain(owner: O, row: PlainRow): 'ipv4' | 'ipv6' | null {
    const flow = owner.term as SmolFlow<O>;
    const syn = flow.syn;
    if (flow.phase !== 'held' || !syn) return null;
    this.driver.drop(flow.id);
    this.untrack(flow);
    this.forward(syn);
    if (syn[0]! >> 4 === 6) return 'ipv6'; // not followed: the row closes
    this.plain.track(syn, row);
    return 'ipv4';
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
    for (const f of this.flows.values()) {
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
    return this.flows.size;
  }

  private onRequest(req: FlowRequest): void {
    const flow = this.byId.get(req.id);
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
    if (flow.key && this.flows.getStored(flow.key) === flow) this.flows.delete(flow.key);
    if (this.byId.get(flow.id) === flow) this.byId.delete(flow.id);
    if (flow.phase !== 'closed') flow.phase = 'closed';
    flow.syn = null;
  }

  private describe(flow: SmolFlow<O>): string {
    return `${formatSocketAddr(flow.src)} -> ${formatSocketAddr(flow.dst)}`;
  }
}
