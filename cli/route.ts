/** `easytier-cli route`: every node of the virtual network and how to reach it. */
import { FEATURE_COLUMNS, featureCells, type FeaturesMessage } from './features.js';
import type { Subcommand } from './subcommand.js';

interface RouteMessage {
  peer_id: number;
  hostname: string;
  ipv4: string;
  ipv6: string;
  proxy_cidrs: string[];
  next_hop_peer_id: number;
  cost: number;
  features: FeaturesMessage | null;
  tcp_transport: string;
  tcp_reason: string;
  version: string;
}

export const routeCommand: Subcommand = {
  name: 'route',
  summary: 'list routes: node, virtual IPv4 and IPv6, proxied CIDRs, next hop, cost, transport for a new TCP flow',
  service: 'RouteRpc',
  method: 'ListRoutes',
  layout: 'list',
  columns: ['peer_id', 'hostname', 'ipv4', 'ipv6', 'proxy_cidrs', 'next_hop', 'cost', ...FEATURE_COLUMNS, 'tcp_transport', 'tcp_reason', 'version'],
  toRows(response) {
    return (response as { routes: RouteMessage[] }).routes.map((r) => ({
      peer_id: r.peer_id,
      hostname: r.hostname,
      ipv4: r.ipv4,
      ipv6: r.ipv6,
      proxy_cidrs: r.proxy_cidrs.join(', '),
      next_hop: r.next_hop_peer_id,
      cost: r.cost,
      ...featureCells(r.features),
      tcp_transport: r.tcp_transport,
      tcp_reason: r.tcp_reason,
      version: r.version,
    }));
  },
};
