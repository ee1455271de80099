/** TcpProxyRpc: proxied flows with EasyTier's entry fields plus tstier's counters. */
import type * as grpc from '@grpc/grpc-js';
import type { ControlPlaneSource, ProxyEntryView, ProxyTransport } from './source.js';
import { unary } from './unary.js';

// Enum value names in proxy.proto (TcpProxyEntryState names equal ProxyState already).
const TRANSPORT_ENUM: Record<ProxyTransport, string> = { Tcp: 'TCP', Kcp: 'KCP', Quic: 'QUIC' };
const ROLE_ENUM = { src: 'Src', dst: 'Dst' } as const;

function proxyEntryMessage(e: ProxyEntryView): object {
  return {
    src: e.src,
    dst: e.dst,
    start_time: e.startTime,
    state: e.state,
    transport_type: TRANSPORT_ENUM[e.transportType],
    role: ROLE_ENUM[e.role],
    tx_bytes: e.txBytes,
    rx_bytes: e.rxBytes,
    rtt_ms: e.rttMs,
    retransmits: e.retransmits,
    duplicates: e.duplicates,
    reason: e.reason,
  };
}

export function proxyService(source: ControlPlaneSource): grpc.UntypedServiceImplementation {
  return {
    ListTcpProxyEntry: unary('ListTcpProxyEntry', () => ({ entries: source.proxyEntries().map(proxyEntryMessage) })),
  };
}
