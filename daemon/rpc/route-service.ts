/** RouteRpc: the node's route table, one Route message per reachable node. */
import type * as grpc from '@grpc/grpc-js';
import { featuresMessage } from './node-service.js';
import type { ControlPlaneSource, RouteView } from './source.js';
import { unary } from './unary.js';

function routeMessage(r: RouteView): object {
  return {
    peer_id: r.peerId,
    hostname: r.hostname,
    ipv4: r.ipv4,
    ipv6: r.ipv6,
    proxy_cidrs: r.proxyCidrs,
    next_hop_peer_id: r.nextHopPeerId,
    cost: r.cost,
    features: featuresMessage(r.features),
    tcp_transport: r.tcpTransport ?? '',
    tcp_reason: r.tcpReason ?? '',
    version: r.version ?? '',
  };
}

export function routeService(source: ControlPlaneSource): grpc.UntypedServiceImplementation {
  return { ListRoutes: unary('ListRoutes', () => ({ routes: source.routes().map(routeMessage) })) };
}
