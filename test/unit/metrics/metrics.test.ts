import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectMetrics } from '../../../daemon/metrics/collect.js';
import { renderPrometheus } from '../../../daemon/metrics/prometheus.js';
import { FlowTable } from '../../../daemon/proxy/flow-table.js';

const LAYER = { forwarded: 3, noRoute: 1, hopLimit: 0, unhandled: 0, rejectedLinks: 2, relayRefused: 0, routeInfoRefused: 4, sessionFaults: 1,
  udpSendDrops: 5, tcpSendDrops: 6, udpReceiveDrops: 7 };
const NODE = { tunRxPackets: 10, tunTxPackets: 9, noRoute: 1, dropped: 0 };

function sample(text: string, line: string): number {
  const m = text.split('\n').find((l) => l.startsWith(`${line} `));
  assert.ok(m, `no sample ${line} in\n${text}`);
  return Number(m.slice(line.length + 1));
}

test('flows: active by transport and role, closed by outcome, fallbacks, retransmits survive the row', () => {
  const table = new FlowTable(0);
  const row = { src: '10.0.0.1:1', dst: '10.0.0.2:80', role: 'src' as const, startTime: 0, reason: '' };
  const a = table.add({ ...row, transport: 'Kcp', state: 'Connected' });
  a.counters = { txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 5, duplicates: 0 };
  const b = table.add({ ...row, transport: 'Kcp', state: 'Connected' });
  b.counters = { txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 7, duplicates: 0 };
  const c = table.add({ ...row, transport: 'Quic', state: 'ConnectingDst' });
  table.totals.fellBack('Kcp', 'Quic');
  let text = renderPrometheus(collectMetrics({ peers: [], peerLayer: LAYER, node: NODE, flows: table }));
  assert.equal(sample(text, 'tstier_proxy_active_flows{transport="Kcp",role="src"}'), 2);
  assert.equal(sample(text, 'tstier_proxy_retransmits_total{transport="Kcp"}'), 12);
  table.close(b, 5);
  table.close(c, 5);
  table.sweep(10); // the rows are gone; the totals are not
  text = renderPrometheus(collectMetrics({ peers: [], peerLayer: LAYER, node: NODE, flows: table }));
  assert.equal(sample(text, 'tstier_proxy_active_flows{transport="Kcp",role="src"}'), 1);
  assert.equal(sample(text, 'tstier_proxy_retransmits_total{transport="Kcp"}'), 12);
  assert.equal(sample(text, 'tstier_proxy_flows_closed_total{transport="Kcp",role="src",outcome="connected"}'), 1);
  assert.equal(sample(text, 'tstier_proxy_flows_closed_total{transport="Quic",role="src",outcome="failed"}'), 1);
  assert.equal(sample(text, 'tstier_proxy_fallbacks_total{from="Kcp",to="Quic"}'), 1);
});

test('peers: bytes, packets and drops split into forged, replayed and other; label values escaped', () => {
  const peer = { peerId: 7, remoteUri: 'udp://1.2.3.4:11010"\\', outbound: true, rttMs: 1, txBytes: 100, rxBytes: 200,
    txPackets: 3, rxPackets: 4, establishedAt: 0, dropped: 10, forged: 4, replayed: 5 };
  const text = renderPrometheus(collectMetrics({ peers: [peer], peerLayer: LAYER, node: NODE, flows: new FlowTable() }));
  const labels = 'peer_id="7",remote="udp://1.2.3.4:11010\\"\\\\"';
  assert.equal(sample(text, `tstier_peer_rx_bytes_total{${labels}}`), 200);
  assert.equal(sample(text, `tstier_peer_tx_packets_total{${labels}}`), 3);
  assert.equal(sample(text, `tstier_peer_dropped_packets_total{${labels},reason="forged"}`), 4);
  assert.equal(sample(text, `tstier_peer_dropped_packets_total{${labels},reason="replayed"}`), 5);
  assert.equal(sample(text, `tstier_peer_dropped_packets_total{${labels},reason="other"}`), 1);
  assert.equal(sample(text, 'tstier_peer_rejected_links_total'), 2);
  assert.equal(sample(text, 'tstier_peer_session_faults_total'), 1);
  assert.equal(sample(text, 'tstier_peer_layer_dropped_packets_total{reason="route_info_refused"}'), 4);
  // Every family has HELP and TYPE before its samples, and counters end in _total.
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (m[2] === 'counter') assert.match(m[1]!, /_total$/);
  }
});

test('what the underlays and the TUN lost: by reason, the TUN\'s only with a TUN', () => {
  const flows = new FlowTable();
  const tun = { superPackets: 0, wholeWrites: 0, segmentsCut: 0, writeErrors: 8, rxDropsTruncated: 9, rxDropsBadHeader: 10 };
  const text = renderPrometheus(collectMetrics({ peers: [], peerLayer: LAYER, node: NODE, flows, tun }));
  assert.equal(sample(text, 'tstier_underlay_dropped_packets_total{reason="udp_send_backlog_full"}'), 5);
  assert.equal(sample(text, 'tstier_underlay_dropped_packets_total{reason="tcp_send_queue_full"}'), 6);
  assert.equal(sample(text, 'tstier_underlay_udp_receive_drops_total'), 7);
  assert.equal(sample(text, 'tstier_tun_dropped_packets_total{reason="write_failed"}'), 8);
  assert.equal(sample(text, 'tstier_tun_dropped_packets_total{reason="read_truncated"}'), 9);
  assert.equal(sample(text, 'tstier_tun_dropped_packets_total{reason="read_bad_header"}'), 10);
  assert.doesNotMatch(renderPrometheus(collectMetrics({ peers: [], peerLayer: LAYER, node: NODE, flows })), /tstier_tun_dropped/);
});
