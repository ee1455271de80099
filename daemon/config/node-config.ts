/**
 * The validated configuration of one easytier-core node: what flags, the TOML file (-c) and
 * ET_* environment overrides resolve to. The parser (daemon/config/) produces it; the node
 * consumes it and never sees raw strings.
 */

import type { KcpMode } from '../transport/kcp/modes.js';
import type { PeerProtocol } from './peer-protocol-value.js';
import type { EtAlgorithm } from '../peer/easytier/cipher.js';

/** `--socks5`: where the SOCKS5 server listens and whether it asks for a password. */
export interface Socks5Listen {
  /** "ip:port" (IPv6 bracketed); port 0 asks the OS. */
  listen: string;
  /** RFC 1929 username/password; null: no authentication. */
  credentials: { username: string; password: string } | null;
}

/** `--port-forward`: a local port whose connections or datagrams go to an address in the virtual network. */
export interface PortForwardSpec {
  proto: 'tcp' | 'udp';
  bind: { ip: string; port: number };
  dst: { ip: string; port: number };
}

export interface ProxyNetwork {
  /** The real LAN range behind this node, e.g. "192.168.1.0/24". */
  cidr: string;
  /** Optional range other nodes use to reach it (`cidr->mapped`). */
  mappedCidr?: string;
}

export interface NodeConfig {
  instanceName: string;
  hostname: string;
  networkName: string;
  networkSecret: string;
  /** Virtual IPv4 of the TUN (`-i`); a bare address gets /24. Absent: no TUN address, forward-only. */
  ipv4?: { address: string; prefix: number };
  /** Virtual IPv6 of the TUN (`--ipv6`); a bare address gets /64. Needs `ipv4` for a TUN to exist. */
  ipv6?: { address: string; prefix: number };
  /** Normalized listener URIs, e.g. "udp://0.0.0.0:11010", "tcp://0.0.0.0:11010". */
  listeners: string[];
  /** The peers' wire (`--peer-protocol`): EasyTier 2.6's, the only one (absent means the same). */
  peerProtocol?: PeerProtocol;
  /** EasyTier wire: the payload cipher (`--encryption-algorithm`; absent: aes-gcm). */
  encryptionAlgorithm?: Exclude<EtAlgorithm, 'none'>;
  /** EasyTier wire: payloads in clear (`--disable-encryption`). */
  disableEncryption?: boolean;
  /** EasyTier wire: secure mode (`--secure-mode`): a Noise handshake and per-link session keys. */
  secureMode?: boolean;
  /**
   * Secure mode's raw 32-byte X25519 static private key (TOML `[secure_mode] local_private_key`,
   * base64, as EasyTier's config holds it); absent: a fresh key at every start.
   */
  secureStaticKey?: Uint8Array;
  /** Peer URIs to connect to (`-p`), e.g. "udp://10.1.0.2:11010". */
  peers: string[];
  proxyNetworks: ProxyNetwork[];
  /** "ip:port" of the gRPC portal; loopback by default. */
  rpcPortal: string;
  devName: string;
  mtu: number;
  noTun: boolean;
  useSmoltcp: boolean;
  /**
   * Terminate proxied TCP by a packet-filter REDIRECT to a local listener (redirect/), not through the
   * TUN. Unset: the default where the kernel terminates (a TUN, no userspace stack), falling back to
   * kernel NAT termination with a warning when the rule cannot be installed; true: asked for, so a
   * failure is a start-up error; false: kernel NAT termination.
   */
  proxyRedirect?: boolean;
  enableKcpProxy: boolean;
  disableKcpInput: boolean;
  enableQuicProxy: boolean;
  disableQuicInput: boolean;
  /** The QUIC proxy's congestion controller. */
  quicCongestion: 'bbr' | 'cubic' | 'newreno';
  disableRelayKcp: boolean;
  disableRelayQuic: boolean;
  /** Accept the local TCP connection before the remote dial succeeds (EasyTier's behaviour). */
  proxyOptimistic: boolean;
  /** The SOCKS5 server (`--socks5`); absent: none. */
  socks5?: Socks5Listen;
  /** SOCKS5 may reach addresses outside the virtual network (by this host's own routes). */
  socks5AllowOutside?: boolean;
  /** `--port-forward`, repeatable; more can be added at run time through the RPC. */
  portForwards?: PortForwardSpec[];
  /** `--metrics-listen`: "ip:port" of the HTTP /metrics endpoint; absent: none. */
  metricsListen?: string;
  /** The proxy's KCP tuning (`--kcp-mode`, `--kcp-nodelay`, ...); absent: the built-in defaults. */
  kcpMode?: KcpMode;
  kcpNodelay?: number;
  kcpInterval?: number;
  kcpResend?: number;
  kcpNc?: number;
  kcpSndwnd?: number;
  kcpRcvwnd?: number;
  kcpMtu?: number;
  /** `--rpc-portal-whitelist`: CIDRs allowed to call the portal; absent or empty: everyone. */
  rpcPortalWhitelist?: string[];
  /** Seconds a peer may stay unreachable before its proxied flows are reset toward the applications. */
  proxyFlowTimeout: number;
  /** Seconds a half-closed proxied flow may linger after its first FIN (absent: the default; 0: no bound). */
  proxyCloseWait?: number;
  /** Log level: error | warn | info | debug | trace. */
  logLevel: string;
}
