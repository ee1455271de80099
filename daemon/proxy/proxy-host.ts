/**
 * What the proxy and the fronts beside it (the subnet proxy, SOCKS5 UDP, port forwards) need from
 * their node. Its own module, so each of them can depend on it without depending on TcpProxy.
 */
import type { NodeAddresses } from '../config/addresses.js';
import type { NodeConfig } from '../config/node-config.js';
import { DEFAULT_PROXY_CLOSE_WAIT } from '../config/values.js';
import type { PeerLayer } from '../peer/peer-layer.js';

export interface ProxyHost {
  readonly config: NodeConfig;
  /** The config's addresses, resolved once at start. */
  readonly addresses: NodeAddresses;
  readonly peer: PeerLayer;
  /** The TUN's interface name; undefined without one. */
  readonly tunName: string | undefined;
  addInterceptor(fn: (packet: Buffer) => boolean): void;
  /** Claims a TUN super-packet whole (docs/tun.md, "Offloads"), before it is cut for the interceptors. */
  addOffloadInterceptor(fn: (packet: Buffer) => boolean): void;
  /** Claims a Data packet from a peer (return true) before it is written to the TUN. */
  addInboundInterceptor(fn: (packet: Buffer) => boolean): void;
  /** `whole`: a super-packet an offload interceptor claimed, written back as read. */
  writeToTun(packet: Uint8Array, whole?: boolean): boolean;
  /** Forwards an outbound IP packet as plain Data, past the interceptors. */
  forward(packet: Buffer): void;
}

/** The pipes' close-wait bound (--proxy-close-wait) in ms; 0: none. */
export function closeWaitMs(config: NodeConfig): number {
  return (config.proxyCloseWait ?? DEFAULT_PROXY_CLOSE_WAIT) * 1000;
}
