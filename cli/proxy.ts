/**
 * `easytier-cli proxy`: proxied TCP flows. The first five columns are EasyTier's, rendered the way
 * it renders them (local start time, enum names such as Connected and Kcp); the rest are tstier's.
 */
import { formatLocalTime } from './output.js';
import type { Subcommand } from './subcommand.js';

interface TcpProxyEntryMessage {
  src: string;
  dst: string;
  start_time: number;
  state: string;
  transport_type: string;
  role: string;
  tx_bytes: number;
  rx_bytes: number;
  rtt_ms: number;
  retransmits: number;
  reason: string;
  duplicates: number;
}

// EasyTier prints the Rust enum's debug names: Tcp, Kcp, Quic.
const TRANSPORT_NAME: Record<string, string> = { TCP: 'Tcp', KCP: 'Kcp', QUIC: 'Quic' };

export const proxyCommand: Subcommand = {
  name: 'proxy',
  summary: 'list proxied TCP flows: endpoints, state, transport, counters',
  service: 'TcpProxyRpc',
  method: 'ListTcpProxyEntry',
  layout: 'list',
  columns: ['src', 'dst', 'start_time', 'state', 'transport_type', 'role', 'tx_bytes', 'rx_bytes', 'rtt_ms',
    'retransmits', 'duplicates', 'reason'],
  summaryView: {
    columns: ['transport_type', 'state', 'role', 'count'],
    toRows(response) {
      const counts = new Map<string, number>();
      for (const e of (response as { entries: TcpProxyEntryMessage[] }).entries) {
        const key = [TRANSPORT_NAME[e.transport_type] ?? e.transport_type, e.state, e.role.toLowerCase()].join('|');
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => {
        const [transport_type, state, role] = key.split('|') as [string, string, string];
        return { transport_type, state, role, count };
      });
    },
  },
  toRows(response) {
    return (response as { entries: TcpProxyEntryMessage[] }).entries.map((e) => ({
      src: e.src,
      dst: e.dst,
      start_time: formatLocalTime(e.start_time * 1000),
      state: e.state,
      transport_type: TRANSPORT_NAME[e.transport_type] ?? e.transport_type,
      role: e.role.toLowerCase(),
      tx_bytes: e.tx_bytes,
      rx_bytes: e.rx_bytes,
      rtt_ms: e.rtt_ms,
      retransmits: e.retransmits,
      duplicates: e.duplicates,
      reason: e.reason,
    }));
  },
};
