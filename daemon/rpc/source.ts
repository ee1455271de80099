/**
 * What the control plane reads from a running node. The node implements this; the gRPC
 * services only translate it to protobuf messages. Keeping it a plain interface lets the
 * RPC layer be tested against any node and keeps the data path free of protobuf types.
 */

import type { Family } from '../metrics/family.js';

export interface NodeInfoView {
  peerId: number;
  instanceName: string;
  hostname: string;
  networkName: string;
  /** Virtual IPv4 in CIDR form, e.g. "10.144.144.1/24"; empty when the node has no TUN address. */
  ipv4: string;
  /** Virtual IPv6 in CIDR form, e.g. "fd00::1/64"; empty without --ipv6. */
  ipv6: string;
  /** CIDRs this node proxies (`-n`), as given: "192.168.1.0/24" or "192.168.1.0/24->10.1.0.0/24". */
  proxyCidrs: string[];
  listeners: string[];
  features: PeerFeatures;
  version: string;
  rpcPortal: string;
  /** The KCP proxy carrier's settings, e.g. "mode=fast2 nodelay=1 interval=20 ..." (absent: unknown). */
  kcpSettings?: string;
}

export interface PeerFeatures {
  kcpInput: boolean;
  quicInput: boolean;
  /** As a relay, this node refuses to carry KCP flows of others (`--disable-relay-kcp`). */
  noRelayKcp?: boolean;
  /** As a relay, this node refuses to carry QUIC flows of others (`--disable-relay-quic`). */
  noRelayQuic?: boolean;
}

/** A directly connected peer (one row per live connection). */
export interface PeerConnView {
  peerId: number;
  /** e.g. "udp://10.1.0.2:11010" — the underlay address. */
  remoteUri: string;
  /** Whether we dialled it (true) or accepted it. */
  outbound: boolean;
  rttMs: number;
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
  /** Unix ms when the session was established. */
  establishedAt: number;
  /** What a new TCP flow to this peer would use now (Kcp, Quic, Tcp) and why. */
  tcpTransport?: string;
  tcpReason?: string;
  /** The peer's hostname and software version, from its route info ('' when not known). */
  hostname?: string;
  version?: string;
  /** Packets this session dropped (metrics); of them, failed authentication and replays. */
  dropped?: number;
  forged?: number;
  replayed?: number;
}

/** One entry of the route table: how to reach a node of the virtual network. */
export interface RouteView {
  peerId: number;
  hostname: string;
  ipv4: string;
  /** "fd00::2/64", or empty when the node has no virtual IPv6. */
  ipv6: string;
  proxyCidrs: string[];
  /** Next hop's peer id; equals peerId for a direct peer. */
  nextHopPeerId: number;
  /** Hops to reach it: 1 for a direct peer. */
  cost: number;
  features: PeerFeatures;
  /** The node's software version as it announced it ('' when not known). */
  version?: string;
  /** What a new TCP flow to this node would use now (Kcp, Quic, Tcp; empty: this node) and why. */
  tcpTransport?: string;
  tcpReason?: string;
}

export type ProxyState =
  | 'Unknown' | 'SynReceived' | 'ConnectingDst' | 'Connected' | 'Closed' | 'ClosingSrc' | 'ClosingDst';
export type ProxyTransport = 'Tcp' | 'Kcp' | 'Quic';

/** One proxied TCP flow, as `easytier-cli proxy` lists it. */
export interface ProxyEntryView {
  src: string; // "ip:port"
  dst: string; // "ip:port"
  /** Unix seconds. */
  startTime: number;
  state: ProxyState;
  transportType: ProxyTransport;
  /** "src" on the node that intercepted the flow, "dst" on the node that dialled the destination. */
  role: 'src' | 'dst';
  txBytes: number;
  rxBytes: number;
  rttMs: number;
  retransmits: number;
  /** Data received more than once (KCP segments; 0 for QUIC and plain flows): resends that were not needed. */
  duplicates: number;
  /** Why this transport was chosen, e.g. "peer accepts kcp", "peer disabled kcp input". */
  reason: string;
}

/** One port forward, as `easytier-cli port-forward list` shows it. */
export interface PortForwardView {
  spec: string;
  proto: 'tcp' | 'udp';
  bind: string;
  dst: string;
  /** Open TCP connections, or UDP clients seen recently. */
  active: number;
}

/** Run-time changes to the port forwards; errors are TstierErrors with one-line messages. */
export interface PortForwardControl {
  list(): PortForwardView[];
  add(spec: string): Promise<void>;
  /** False when no forward has that spec. */
  remove(spec: string): boolean;
}

export interface ControlPlaneSource {
  nodeInfo(): NodeInfoView;
  peers(): PeerConnView[];
  routes(): RouteView[];
  proxyEntries(): ProxyEntryView[];
  /** Absent on a source without port forwarding. */
  portForwards?(): PortForwardControl | undefined;
  /** The node's metrics (absent: none). */
  metrics?(): Family[];
}
