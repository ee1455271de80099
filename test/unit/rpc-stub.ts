/** A fixed ControlPlaneSource for the rpc and cli tests: every enum value appears at least once. */
import type { ControlPlaneSource, NodeInfoView, PeerConnView, ProxyEntryView, RouteView } from '../../daemon/rpc/source.js';

export const STUB_NODE: NodeInfoView = {
  peerId: 3_000_000_001,
  instanceName: 'stub-instance',
  hostname: 'stub-host',
  networkName: 'stubnet',
  ipv4: '10.144.144.1/24',
  ipv6: 'fd00::1/64',
  proxyCidrs: ['192.168.1.0/24', '192.168.2.0/24->10.2.0.0/24'],
  listeners: ['tcp://0.0.0.0:11010', 'udp://0.0.0.0:11010'],
  features: { kcpInput: true, quicInput: false, noRelayKcp: true },
  version: '0.1.0-stub',
  rpcPortal: '127.0.0.1:0',
  kcpSettings: 'mode=fast2 nodelay=1 interval=20 resend=2 nc=1 sndwnd=512 rcvwnd=512 mtu=1000',
};

export const STUB_PEERS: PeerConnView[] = [
  { peerId: 7, remoteUri: 'udp://10.1.0.2:11010', outbound: true, rttMs: 1.5, txBytes: 1234, rxBytes: 5678, txPackets: 12, rxPackets: 34, establishedAt: 1_700_000_000_000, tcpTransport: 'Kcp', tcpReason: 'peer accepts kcp' },
  { peerId: 8, remoteUri: 'tcp://10.1.0.3:40000', outbound: false, rttMs: 20, txBytes: 0, rxBytes: 9_007_199_254_740_991, txPackets: 0, rxPackets: 1, establishedAt: 1_700_000_123_000, tcpTransport: 'Tcp', tcpReason: 'peer does not accept kcp' },
];

export const STUB_ROUTES: RouteView[] = [
  { peerId: 7, hostname: 'peer-a', ipv4: '10.144.144.2/24', ipv6: 'fd00::2/64', proxyCidrs: ['192.168.7.0/24'], nextHopPeerId: 7, cost: 1, features: { kcpInput: true, quicInput: true, noRelayKcp: false, noRelayQuic: true }, tcpTransport: 'Kcp', tcpReason: 'peer accepts kcp' },
  { peerId: 9, hostname: 'peer-b', ipv4: '', ipv6: '', proxyCidrs: [], nextHopPeerId: 7, cost: 2, features: { kcpInput: false, quicInput: false }, tcpTransport: 'Quic', tcpReason: 'relay peer-a refuses kcp; peer accepts quic' },
];

export const STUB_PROXY: ProxyEntryView[] = [
  { src: '10.144.144.1:40001', dst: '192.168.7.10:80', startTime: 1_700_000_000, state: 'Connected', transportType: 'Kcp', role: 'src', txBytes: 1_048_576, rxBytes: 4096, rttMs: 12.5, retransmits: 3, duplicates: 1, reason: 'peer accepts kcp' },
  { src: '10.144.144.2:50000', dst: '10.144.144.1:22', startTime: 1_700_000_100, state: 'ConnectingDst', transportType: 'Quic', role: 'dst', txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 0, duplicates: 0, reason: 'peer requested quic' },
  { src: '10.144.144.1:40002', dst: '192.168.7.11:443', startTime: 1_700_000_200, state: 'ClosingDst', transportType: 'Tcp', role: 'src', txBytes: 10, rxBytes: 20, rttMs: 0.25, retransmits: 0, duplicates: 0, reason: 'peer disabled kcp input' },
];

export const stubSource: ControlPlaneSource = {
  nodeInfo: () => STUB_NODE,
  peers: () => STUB_PEERS,
  routes: () => STUB_ROUTES,
  proxyEntries: () => STUB_PROXY,
};
