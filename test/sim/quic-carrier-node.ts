/**
 * A QuicCarrier as one end of the simulated world, with the applications of its flows: datagrams
 * are the peer packet type byte followed by the QUIC datagram, as CarrierNode does for KCP. Each flow
 * follows its Plan (what to send each way, how the acceptor answers, who resets when); the tallies
 * record what each end saw, for the assertions of quic-carrier.test.ts.
 */
import { createHash } from 'node:crypto';

import { FlowEvent } from '../../daemon/carrier/carrier.js';
import { DialStatus, type OpenRequest } from '../../daemon/carrier/flow-frames.js';
import { QuicCarrier } from '../../daemon/carrier/quic/carrier.js';
import { QuicEndpoint, type QuicOptions } from '../../daemon/carrier/quic/endpoint.js';
import type { QuicFlow } from '../../daemon/carrier/quic/flow.js';
import type { WasmModule } from '../../daemon/carrier/quic/wasm.js';
import type { SimEndpoint } from './world.js';

const SRC_IP = Uint8Array.of(10, 1, 0, 1);
const DST_IP = Uint8Array.of(10, 1, 0, 2);

export const TYPES = { fromInitiator: 16, fromAcceptor: 17 };

export interface Plan {
  up: Uint8Array;
  down: Uint8Array;
  /** How the acceptor's application answers the open. */
  answer: DialStatus;
  /** Virtual ms the acceptor takes to answer. */
  answerDelayMs: number;
  /** The initiator writes before the STATUS comes (optimistic mode). */
  optimistic: boolean;
  /** Who aborts the flow once it is connected (after `resetAfter` bytes of up were written). */
  resetBy: 'none' | 'initiator' | 'acceptor';
  resetAfter: number;
}

/** What one end of a flow saw. */
export class Tally {
  readonly hash = createHash('sha256');
  bytes = 0;
  /** The peer's FIN: every byte read. */
  fin = false;
  reset = false;
  status: DialStatus | null = null;
  /** Every byte of ours written and our FIN sent. */
  sentAll = false;
  /** Writes so far (of `out`). */
  written = 0;
  digest = '';
  released = false;
  /** When a write last took bytes (or the flow could first write), and the longest wait between two. */
  lastWriteAt = -1;
  longestWait = 0;
  constructor(readonly plan: Plan, readonly out: Uint8Array) {}
}

/** Flow index i travels as source port 1000 + i. */
const portOf = (i: number): number => 1000 + i;
export const indexOf = (req: OpenRequest): number => req.src.port - 1000;

export class QuicCarrierNode implements SimEndpoint {
  readonly carrier: QuicCarrier;
  readonly tallies = new Map<QuicFlow, Tally>();
  /** Opens the acceptor answers later: [when, flow]. */
  private readonly answers: Array<[number, QuicFlow]> = [];
  private clock = 0;

  constructor(
    module: WasmModule,
    readonly peerId: number,
    private readonly otherId: number,
    private readonly plans: readonly Plan[],
    quic: QuicOptions,
    acceptInput: boolean,
  ) {
    this.carrier = new QuicCarrier(new QuicEndpoint(module, quic), { types: TYPES, acceptInput, openTimeoutMs: 15_000 });
  }

  open(i: number, now: number): QuicFlow {
    this.clock = now;
    const plan = this.plans[i]!;
    const req: OpenRequest = { src: { ip: SRC_IP, port: portOf(i) }, dst: { ip: DST_IP, port: 80 }, optimistic: plan.optimistic };
    const flow = this.carrier.open(this.otherId, req, now);
    this.tallies.set(flow, new Tally(plan, plan.up));
    this.react(now);
    return flow;
  }

  input(d: Uint8Array, now: number): void {
    this.carrier.input(this.otherId, d[0]!, d.subarray(1), now);
    this.react(now);
  }

  pollTransmit(): Uint8Array | null {
    const t = this.carrier.pollTransmit();
    if (!t) return null;
    const out = new Uint8Array(1 + t.data.length);
    out[0] = t.type;
    out.set(t.data, 1);
    return out;
  }

  pollTimeout(): number {
    const due = this.answers.length > 0 ? this.answers[0]![0] : Infinity;
    return Math.min(due, this.carrier.pollTimeout());
  }

  handleTimeout(now: number): void {
    this.carrier.handleTimeout(now);
    this.react(now);
  }

  /** The applications: answer opens (when due), read, write, half-close, reset, release. */
  react(now: number): void {
    this.clock = now;
    while (this.answers.length > 0 && this.answers[0]![0] <= now) this.answerOpen(this.answers.shift()![1]);
    for (let flow = this.carrier.pollEvent(); flow; flow = this.carrier.pollEvent()) {
      const ev = flow.takeEvents();
      if (ev & FlowEvent.OpenRequest) this.accepted(flow, now);
      const t = this.tallies.get(flow);
      if (!t) continue;
      if (ev & FlowEvent.Status) t.status = flow.status;
      if (ev & FlowEvent.Reset) t.reset = true;
      this.serve(flow, t);
    }
  }

  private accepted(flow: QuicFlow, now: number): void {
    const plan = this.plans[indexOf(flow.request!)]!;
    this.carrier.hold(flow);
    this.tallies.set(flow, new Tally(plan, plan.down));
    this.answers.push([now + plan.answerDelayMs, flow]);
    this.answers.sort((x, y) => x[0] - y[0]);
  }

  private answerOpen(flow: QuicFlow): void {
    const t = this.tallies.get(flow)!;
    if (flow.isReset) return this.serve(flow, t);
    this.carrier.answer(flow, t.plan.answer);
    t.status = t.plan.answer;
    this.serve(flow, t);
  }

  /** Moves what can move for one flow; releases it once both directions ended. */
  private serve(flow: QuicFlow, t: Tally): void {
    if (t.released) return;
    const mine = flow.role === 'initiator' ? 'initiator' : 'acceptor';
    for (let d = this.carrier.read(flow); d; d = this.carrier.read(flow)) {
      t.hash.update(d);
      t.bytes += d.length;
    }
    if (flow.readEnded && !t.fin) {
      t.fin = true;
      t.digest = t.hash.copy().digest('hex');
    }
    const before = t.written;
    if (t.lastWriteAt < 0 && flow.status === DialStatus.Connected) t.lastWriteAt = this.clock; // free to write from here
    const resetDue = (): boolean => t.plan.resetBy === mine && !flow.isReset && flow.status === DialStatus.Connected &&
      t.written >= Math.min(t.plan.resetAfter, t.out.length);
    while (!t.sentAll && !flow.isReset && t.written < t.out.length && !resetDue()) {
      // Uneven pieces, as sockets deliver them.
      const n = Math.min(t.out.length - t.written, 1 + ((t.written * 7919) % 30_000));
      const took = this.carrier.write(flow, t.out.subarray(t.written, t.written + n));
      t.written += took;
      if (took < n) break;
    }
    if (resetDue()) this.carrier.abort(flow);
    if (t.written > before) {
      t.longestWait = Math.max(t.longestWait, this.clock - t.lastWriteAt);
      t.lastWriteAt = this.clock;
    }
    const open = mine === 'initiator' ? flow.status === DialStatus.Connected : flow.answered && flow.status === DialStatus.Connected;
    if (!t.sentAll && open && !flow.isReset && t.written === t.out.length && t.plan.resetBy !== mine) {
      this.carrier.shutdown(flow);
      t.sentAll = true;
    }
    if (flow.isReset || flow.ended || (mine === 'initiator' && flow.status !== null && flow.status !== DialStatus.Connected)) {
      t.released = true;
      this.carrier.release(flow);
    }
  }

  /** Every flow of this node finished one way or another, and the carrier forgot them all. */
  get settled(): boolean {
    return this.answers.length === 0 && this.carrier.flowCount === 0 && [...this.tallies.values()].every((t) => t.released);
  }

  get now(): number {
    return this.clock;
  }
}
