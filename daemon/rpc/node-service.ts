/** NodeInfoRpc: translates the node's NodeInfoView to the NodeInfo message. */
import type * as grpc from '@grpc/grpc-js';
import type { ControlPlaneSource, NodeInfoView, PeerFeatures } from './source.js';
import { unary } from './unary.js';

export function featuresMessage(f: PeerFeatures): object {
  return { kcp_input: f.kcpInput, quic_input: f.quicInput, no_relay_kcp: f.noRelayKcp ?? false, no_relay_quic: f.noRelayQuic ?? false };
}

function nodeInfoMessage(n: NodeInfoView): object {
  return {
    peer_id: n.peerId,
    instance_name: n.instanceName,
    hostname: n.hostname,
    network_name: n.networkName,
    ipv4: n.ipv4,
    ipv6: n.ipv6,
    proxy_cidrs: n.proxyCidrs,
    listeners: n.listeners,
    features: featuresMessage(n.features),
    version: n.version,
    rpc_portal: n.rpcPortal,
    kcp_settings: n.kcpSettings ?? '',
  };
}

export function nodeInfoService(source: ControlPlaneSource): grpc.UntypedServiceImplementation {
  return { ShowNodeInfo: unary('ShowNodeInfo', () => ({ node_info: nodeInfoMessage(source.nodeInfo()) })) };
}
