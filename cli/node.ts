/** `easytier-cli node`: this node's identity and settings. */
import type { Subcommand } from './subcommand.js';

interface NodeInfoMessage {
  peer_id: number;
  instance_name: string;
  hostname: string;
  network_name: string;
  ipv4: string;
  proxy_cidrs: string[];
  listeners: string[];
  features: { kcp_input: boolean; quic_input: boolean } | null;
  version: string;
  rpc_portal: string;
}

export const nodeCommand: Subcommand = {
  name: 'node',
  summary: 'show this node: peer id, names, virtual IPv4, listeners, features',
  service: 'NodeInfoRpc',
  method: 'ShowNodeInfo',
  layout: 'record',
  columns: ['peer_id', 'instance_name', 'hostname', 'network_name', 'ipv4', 'proxy_cidrs', 'listeners',
    'kcp_input', 'quic_input', 'version', 'rpc_portal'],
  toRows(response) {
    const n = (response as { node_info: NodeInfoMessage | null }).node_info;
    if (n === null) return [];
    return [{
      peer_id: n.peer_id,
      instance_name: n.instance_name,
      hostname: n.hostname,
      network_name: n.network_name,
      ipv4: n.ipv4,
      proxy_cidrs: n.proxy_cidrs.join(', '),
      listeners: n.listeners.join(', '),
      kcp_input: n.features?.kcp_input ?? false,
      quic_input: n.features?.quic_input ?? false,
      version: n.version,
      rpc_portal: n.rpc_portal,
    }];
  },
};
