/**
 * The table of proxied TCP flows that `easytier-cli proxy` lists. Each side of a flow keeps its own
 * entry: the node that intercepted the SYN ("src") and the node that dialled the destination ("dst").
 * A closed entry lingers for a while so a user who looks right after a short flow still sees it,
 * and so late packets of the flow can still be matched.
 */
import type { ProxyEntryView, ProxyState, ProxyTransport } from '../rpc/source.js';
import { FlowTotals } from './flow-totals.js';

/** Live per-flow numbers that the carrier owns; read only when the table is listed. */
export interface FlowCounters {
  txBytes: number;
  rxBytes: number;
  rttMs: number;
  retransmits: number;
  duplicates: number;
}

/** An endpoint as rows show it: "10.0.0.1:80", "[fd00::1]:80". */
export function endpointText(a: { ip: string; port: number }): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

export interface FlowEntry {
  readonly id: number;
  readonly src: string;
  readonly dst: string;
  readonly role: 'src' | 'dst';
  readonly startTime: number;
  state: ProxyState;
  transport: ProxyTransport;
  reason: string;
  /** The carrier's counters; the table reads them at listing time. */
  counters: FlowCounters;
  /** When the entry reached Closed (ms, the caller's clock); 0 while open. */
  closedAt: number;
}

export const CLOSED_LINGER_MS = 10_000;
const SWEEP_BATCH_MS = 1_000;

export class FlowTable {
  private readonly entries = new Map<number, FlowEntry>();
  private nextId = 1;
  /** What closed rows add up to, for metrics. */
  readonly totals = new FlowTotals();
  /** When the first closed row is due to go (Infinity: none); the owner's clock wakes sweep() then. */
  sweepAt = Infinity;
  /** Told when sweepAt moves earlier (a row closed), so the owner can arm its timer. */
  onSweepDue: ((at: number) => void) | null = null;

  constructor(private readonly lingerMs = CLOSED_LINGER_MS) {}

  add(init: {
    src: string;
    dst: string;
    role: 'src' | 'dst';
    transport: ProxyTransport;
    reason: string;
    state?: ProxyState;
    /** Unix seconds, as the RPC reports it. */
    startTime: number;
  }): FlowEntry {
    const entry: FlowEntry = {
      id: this.nextId++,
      src: init.src,
      dst: init.dst,
      role: init.role,
      startTime: init.startTime,
      state: init.state ?? 'SynReceived',
      transport: init.transport,
      reason: init.reason,
      counters: { txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 0, duplicates: 0 },
      closedAt: 0,
    };
    this.entries.set(entry.id, entry);
    return entry;
  }

  /** Marks the entry Closed; it is listed until `sweep` runs `lingerMs` later. */
  close(entry: FlowEntry, now: number): void {
    if (entry.closedAt !== 0) return;
    this.totals.flowClosed({ transport: entry.transport, role: entry.role, connected: entry.state === 'Connected',
      retransmits: entry.counters.retransmits });
    entry.state = 'Closed';
    entry.closedAt = now || 1;
    if (entry.closedAt + this.lingerMs < this.sweepAt) {
      this.sweepAt = entry.closedAt + this.lingerMs;
      this.onSweepDue?.(this.sweepAt);
    }
  }

  /**
   * Forgets entries closed more than `lingerMs` ago. The next sweep is due no sooner than a second
   * from now: one pass over the table collects every row due in that second.
   */
  sweep(now: number): void {
    let next = Infinity;
    for (const [id, e] of this.entries) {
      if (e.closedAt === 0) continue;
      if (now - e.closedAt >= this.lingerMs) this.entries.delete(id);
      else next = Math.min(next, e.closedAt + this.lingerMs);
    }
    this.sweepAt = next === Infinity ? next : Math.max(next, now + SWEEP_BATCH_MS);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Open flows only (not lingering closed ones). */
  get openCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.closedAt === 0) n++;
    return n;
  }

  /** Open entries only, for metrics. */
  *open(): IterableIterator<FlowEntry> {
    for (const e of this.entries.values()) if (e.closedAt === 0) yield e;
  }

  list(): ProxyEntryView[] {
    const out: ProxyEntryView[] = [];
    for (const e of this.entries.values()) {
      const c = e.counters;
      out.push({
        src: e.src,
        dst: e.dst,
        startTime: e.startTime,
        state: e.state,
        transportType: e.transport,
        role: e.role,
        txBytes: c.txBytes,
        rxBytes: c.rxBytes,
        rttMs: c.rttMs,
        retransmits: c.retransmits,
        duplicates: c.duplicates,
        reason: e.reason,
      });
    }
    return out;
  }
}
