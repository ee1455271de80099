/** `easytier-cli node`: this node's identity and settings. */
import { FEATURE_COLUMNS, featureCells, type FeaturesMessage } from './features.js';
import type { Subcommand } from './subcommand.js';

interface NodeInfoMessage {
  peer_id: number;
  instance_name: string;
  hostname: string;
  network_name: string;
  ipv4: string;
  ipv6: string;
  proxy_cidrs: string[];
  listeners: string[];
  features: FeaturesMessage | null;
  version: string;
  rpc_portal: string;
  kcp_settings: string;
}

export const nodeCommand: Subcommand = {
  name: 'node',
  summary: 'show this node: peer id, names, virtual IPv4 and IPv6, listeners, features',
  service: 'NodeInfoRpc',
  method: 'ShowNodeInfo',
  layout: 'record',
  columns: ['peer_id', 'instance_name', 'hostname', 'network_name', 'ipv4', 'ipv6', 'proxy_cidrs', 'listeners',
    ...FEATURE_COLUMNS, 'version', 'rpc_portal', 'kcp_settings'],
  toRows(response) {
    const n = (response as { node_info: NodeInfoMessage | null }).node_info;
    if (n === null) return [];
    return [{
      peer_id: n.peer_id,
      instance_name: n.instance_name,
      hostname: n.hostname,
      network_name: n.network_name,
      ipv4: n.ipv4,
      ipv6: n.ipv6,
      proxy_cidrs: n.proxy_cidrs.join(', '),
      listeners: n.listeners.join(', '),
      ...featureCells(n.features),
      version: n.version,
      rpc_portal: n.rpc_portal,
      kcp_settings: n.kcp_settings,
    }];
  },
};
