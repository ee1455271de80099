/** `easytier-cli peer`: directly connected peers, one row per connection. */
import { formatLocalTime } from './output.js';
import type { Subcommand } from './subcommand.js';

interface PeerConnMessage {
  peer_id: number;
  remote_uri: string;
  outbound: boolean;
  rtt_ms: number;
  tx_bytes: number;
  rx_bytes: number;
  tx_packets: number;
  rx_packets: number;
  established_at_ms: number;
  tcp_transport: string;
  tcp_reason: string;
  hostname: string;
  version: string;
}

export const peerCommand: Subcommand = {
  name: 'peer',
  summary: 'list directly connected peers: traffic counters, and which transport a new TCP flow would take',
  service: 'PeerRpc',
  method: 'ListPeers',
  layout: 'list',
  columns: ['peer_id', 'remote', 'direction', 'rtt_ms', 'tx_bytes', 'rx_bytes', 'tx_packets', 'rx_packets', 'established',
    'tcp_transport', 'tcp_reason', 'hostname', 'version'],
  toRows(response) {
    return (response as { peers: PeerConnMessage[] }).peers.map((p) => ({
      peer_id: p.peer_id,
      remote: p.remote_uri,
      direction: p.outbound ? 'out' : 'in',
      rtt_ms: p.rtt_ms,
      tx_bytes: p.tx_bytes,
      rx_bytes: p.rx_bytes,
      tx_packets: p.tx_packets,
      rx_packets: p.rx_packets,
      established: formatLocalTime(p.established_at_ms),
      tcp_transport: p.tcp_transport,
      tcp_reason: p.tcp_reason,
      hostname: p.hostname,
      version: p.version,
    }));
  },
};
