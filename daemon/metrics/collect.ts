/**
 * The node's metrics as families of samples, read at scrape time from what the layers already
 * count: per-peer traffic and drops (forged, replayed) from the sessions, the peer layer's drops,
 * what the underlays lost for want of buffer, the TUN's packets and drops, the proxy's flows (active now; ended, by transport, role and outcome; runtime
 * fallbacks; KCP/QUIC retransmissions), and wasm traps. Counters of a peer connection start again
 * when its session is replaced, which Prometheus reads as a counter reset.
 */
import type { PeerLayerStats } from '../peer/peer-layer.js';
import type { FlowTable } from '../proxy/flow-table.js';
import type { PeerConnView } from '../rpc/source.js';
import type { Family, Sample } from './family.js';
import { wasmTraps } from './wasm-traps.js';

export interface MetricsInputs {
  peers: PeerConnView[];
  peerLayer: PeerLayerStats;
  node: { tunRxPackets: number; tunTxPackets: number; noRoute: number; dropped: number };
  flows: FlowTable;
  /** The TUN's offload counters (docs/tun.md, "Offloads") and drops; absent without a TUN. */
  tun?: { superPackets: number; wholeWrites: number; segmentsCut: number; writeErrors: number; rxDropsTruncated: number; rxDropsBadHeader: number };
}

export function collectMetrics(i: MetricsInputs): Family[] {
  const fams: Family[] = [];
  const fam = (name: string, type: Family['type'], help: string, samples: Sample[]): void => {
    fams.push({ name, type, help, samples });
  };
  const perConn = (value: (p: PeerConnView) => number, extra: Record<string, string> = {}): Sample[] =>
    i.peers.map((p) => ({ labels: { peer_id: String(p.peerId), remote: p.remoteUri, ...extra }, value: value(p) }));

  fam('tstier_peer_tx_bytes_total', 'counter', 'Bytes sent to a peer, per live connection', perConn((p) => p.txBytes));
  fam('tstier_peer_rx_bytes_total', 'counter', 'Bytes received from a peer, per live connection', perConn((p) => p.rxBytes));
  fam('tstier_peer_tx_packets_total', 'counter', 'Packets sent to a peer, per live connection', perConn((p) => p.txPackets));
  fam('tstier_peer_rx_packets_total', 'counter', 'Packets received from a peer, per live connection', perConn((p) => p.rxPackets));
  fam('tstier_peer_dropped_packets_total', 'counter', 'Packets a peer session dropped: forged (failed authentication), replayed, other (malformed, wrong state)', [
    ...perConn((p) => p.forged ?? 0, { reason: 'forged' }),
    ...perConn((p) => p.replayed ?? 0, { reason: 'replayed' }),
    ...perConn((p) => (p.dropped ?? 0) - (p.forged ?? 0) - (p.replayed ?? 0), { reason: 'other' }),
  ]);
  const l = i.peerLayer;
  fam('tstier_peer_layer_dropped_packets_total', 'counter', 'Packets the peer layer dropped, by reason', [
    { labels: { reason: 'no_route' }, value: l.noRoute },
    { labels: { reason: 'hop_limit' }, value: l.hopLimit },
    { labels: { reason: 'unhandled' }, value: l.unhandled },
    { labels: { reason: 'relay_refused' }, value: l.relayRefused },
    { labels: { reason: 'route_info_refused' }, value: l.routeInfoRefused },
  ]);
  fam('tstier_peer_rejected_links_total', 'counter', 'Inbound links refused because their first packet was no valid handshake', [{ labels: {}, value: l.rejectedLinks }]);
  fam('tstier_peer_session_faults_total', 'counter', 'Peer sessions closed because handling one of their packets threw', [{ labels: {}, value: l.sessionFaults }]);
  fam('tstier_peer_forwarded_packets_total', 'counter', 'Packets relayed for other nodes', [{ labels: {}, value: l.forwarded }]);
  fam('tstier_underlay_dropped_packets_total', 'counter', 'Packets the underlays dropped for want of send buffer: UDP sends beyond those a full socket buffer held back, TCP packets while the socket queue was full', [
    { labels: { reason: 'udp_send_backlog_full' }, value: l.udpSendDrops },
    { labels: { reason: 'tcp_send_queue_full' }, value: l.tcpSendDrops },
  ]);
  fam('tstier_underlay_udp_receive_drops_total', 'counter', 'Drops the kernel counted at the UDP underlay sockets (a full receive buffer): one per datagram, or one per GRO run however many datagrams it held',
    [{ labels: {}, value: l.udpReceiveDrops }]);
  fam('tstier_tun_packets_total', 'counter', 'Packets read from (rx) and written to (tx) the TUN', [
    { labels: { direction: 'rx' }, value: i.node.tunRxPackets },
    { labels: { direction: 'tx' }, value: i.node.tunTxPackets },
  ]);
  const tun = i.tun;
  if (tun) {
    fam('tstier_tun_offload_packets_total', 'counter', 'TUN offloads: TCP super-packets read, written back whole (kernel termination), and the segments cut from the others', [
      { labels: { kind: 'super_read' }, value: tun.superPackets },
      { labels: { kind: 'whole_written' }, value: tun.wholeWrites },
      { labels: { kind: 'segments_cut' }, value: tun.segmentsCut },
    ]);
    fam('tstier_tun_dropped_packets_total', 'counter', 'Packets lost at the TUN: writes the kernel refused, reads longer than a slot, reads with a virtio header the addon does not take', [
      { labels: { reason: 'write_failed' }, value: tun.writeErrors },
      { labels: { reason: 'read_truncated' }, value: tun.rxDropsTruncated },
      { labels: { reason: 'read_bad_header' }, value: tun.rxDropsBadHeader },
    ]);
  }
  fam('tstier_node_dropped_packets_total', 'counter', 'Packets the node dropped: no route to their destination, or not addressed to it', [
    { labels: { reason: 'no_route' }, value: i.node.noRoute },
    { labels: { reason: 'not_ours' }, value: i.node.dropped },
  ]);

  const active = new Map<string, number>();
  const liveRetransmits = new Map<string, number>();
  for (const e of i.flows.open()) {
    const key = `${e.transport}|${e.role}`;
    active.set(key, (active.get(key) ?? 0) + 1);
    liveRetransmits.set(e.transport, (liveRetransmits.get(e.transport) ?? 0) + e.counters.retransmits);
  }
  const t = i.flows.totals;
  fam('tstier_proxy_active_flows', 'gauge', 'Proxied TCP flows open now, by transport and role',
    [...active].map(([k, v]) => ({ labels: split(k, 'transport', 'role'), value: v })));
  fam('tstier_proxy_flows_closed_total', 'counter', 'Proxied TCP flows that ended, by transport, role and outcome (connected: the destination accepted)',
    [...t.closed].map(([k, v]) => ({ labels: split(k, 'transport', 'role', 'outcome'), value: v })));
  fam('tstier_proxy_fallbacks_total', 'counter', 'Held flows that gave up one transport for the next before any byte moved',
    [...t.fallbacks].map(([k, v]) => ({ labels: split(k, 'from', 'to'), value: v })));
  fam('tstier_proxy_retransmits_total', 'counter', 'Retransmitted KCP segments / QUIC packets of proxied flows',
    (['Kcp', 'Quic'] as const).map((tr) => ({ labels: { transport: tr }, value: (t.retransmits.get(tr) ?? 0) + (liveRetransmits.get(tr) ?? 0) })));
  fam('tstier_wasm_traps_total', 'counter', 'Traps (Rust panics) of the wasm modules, each followed by a fresh instance', [
    { labels: { module: 'quic' }, value: wasmTraps.quic },
    { labels: { module: 'smoltcp' }, value: wasmTraps.smoltcp },
  ]);
  return fams;
}

function split(key: string, ...names: string[]): Record<string, string> {
  const parts = key.split('|');
  return Object.fromEntries(names.map((n, k) => [n, parts[k] ?? '']));
}
