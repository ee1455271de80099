/**
 * The socket options the redirect termination needs and Node lacks, from the TUN addon
 * (tun/native/src/sockopt.c): a redirected connection's original destination, a socket that carries
 * the exemption mark before it connects, and a fixed receive buffer for the listener.
 */
import { Socket } from 'node:net';
import { loadAddon } from '../../tun/tun-device.js';
import { EXEMPT_MARK } from './rules.js';

/** An IPv4 endpoint: the address as a u32. */
export interface Ipv4Endpoint {
  ip: number;
  port: number;
}

/** Where the application meant to connect before the REDIRECT; null for a connection that was not redirected. */
export function originalDst(socket: Socket): Ipv4Endpoint | null {
  // Node keeps the descriptor on the handle (Linux); it has no public accessor.
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return null;
  const dst = loadAddon().originalDst(fd);
  return dst ? { ip: dst[0], port: dst[1] } : null;
}

/** An unconnected TCP socket the redirect rule lets pass: connect() it to reach the real destination. */
export function exemptSocket(): Socket {
  return new Socket({ fd: loadAddon().markedSocket(EXEMPT_MARK), allowHalfOpen: true });
}

/** Fixes a socket's receive buffer (no autotuning); a listener's connections inherit it. */
export function setRecvBuffer(fd: number, bytes: number): void {
  loadAddon().setRecvBuffer(fd, bytes);
}
