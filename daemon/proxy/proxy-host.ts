/**
 * What the proxy and the fronts beside it (the subnet proxy, SOCKS5 UDP, port forwards) need from
 * their node. Its own module, so each of them can depend on it without depending on TcpProxy.
 */
import type { NodeConfig } from '../config/node-config.js';
import type { PeerLayer } from '../peer/peer-layer.js';

export interface ProxyHost {
  readonly config: NodeConfig;
  readonly peer: PeerLayer;
  addInterceptor(fn: (packet: Buffer) => boolean): void;
  /** Claims a Data packet from a peer (return true) before it is written to the TUN. */
  addInboundInterceptor(fn: (packet: Buffer) => boolean): void;
  writeToTun(packet: Uint8Array): boolean;
  /** Forwards an outbound IP packet as plain Data, past the interceptors. */
  forward(packet: Buffer): void;
}
