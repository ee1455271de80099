/**
 * Running totals of the proxy table for metrics: flows that ended, by transport, role and outcome
 * (whether they ever connected), their retransmissions, and the runtime fallbacks from one transport
 * to the next. The table's rows only live until they linger out; these never go down.
 */
import type { ProxyTransport } from '../rpc/source.js';

export interface ClosedFlow {
  transport: ProxyTransport;
  role: 'src' | 'dst';
  /** The state just before Closed. */
  connected: boolean;
  retransmits: number;
}

export class FlowTotals {
  /** "Kcp|src|connected" → count. */
  readonly closed = new Map<string, number>();
  /** Retransmissions of flows that ended, by transport. */
  readonly retransmits = new Map<ProxyTransport, number>();
  /** "Kcp|Quic" → count: a held flow gave up the first for the second. */
  readonly fallbacks = new Map<string, number>();

  flowClosed(f: ClosedFlow): void {
    bump(this.closed, `${f.transport}|${f.role}|${f.connected ? 'connected' : 'failed'}`, 1);
    bump(this.retransmits, f.transport, f.retransmits);
  }

  fellBack(from: ProxyTransport, to: ProxyTransport): void {
    bump(this.fallbacks, `${from}|${to}`, 1);
  }
}

function bump<K>(m: Map<K, number>, key: K, n: number): void {
  m.set(key, (m.get(key) ?? 0) + n);
}
