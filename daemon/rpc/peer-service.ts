/** PeerRpc: one PeerConn message per live peer connection. */
import type * as grpc from '@grpc/grpc-js';
import type { ControlPlaneSource, PeerConnView } from './source.js';
import { unary } from './unary.js';

function peerConnMessage(p: PeerConnView): object {
  return {
    peer_id: p.peerId,
    remote_uri: p.remoteUri,
    outbound: p.outbound,
    rtt_ms: p.rttMs,
    tx_bytes: p.txBytes,
    rx_bytes: p.rxBytes,
    tx_packets: p.txPackets,
    rx_packets: p.rxPackets,
    established_at_ms: p.establishedAt,
    tcp_transport: p.tcpTransport ?? '',
    tcp_reason: p.tcpReason ?? '',
    hostname: p.hostname ?? '',
    version: p.version ?? '',
  };
}

export function peerService(source: ControlPlaneSource): grpc.UntypedServiceImplementation {
  return { ListPeers: unary('ListPeers', () => ({ peers: source.peers().map(peerConnMessage) })) };
}
