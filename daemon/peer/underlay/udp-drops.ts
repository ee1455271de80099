/**
 * Datagrams this host dropped before reading them: the kernel's per-socket drop counter (its receive
 * buffer full while the event loop was busy) summed over the node's live UDP underlay sockets, and
 * fewer of them: those sockets get a larger receive buffer than dgram can ask for.
 *
 * Why: under a thousand flows the receiving node's sockets overflow on a clean link, and to the KCP
 * carrier those holes look like path loss, so its adaptive FEC bought parity for them (more datagrams
 * for the host that could not keep up). The carrier's FEC report subtracts them (path-fec.ts).
 * Without the peer addon the count stays 0: host drops then read as path loss, as before.
 */
import type { Socket } from 'node:dgram';
import { peerAddon } from '../native.js';
import { dgramFd } from './udp-gso.js';

const sockets = new Set<Socket>();
/**
 * The receive buffer asked for, past net.core.rmem_max (which caps dgram's recvBufferSize; 4 MiB on
 * the bench host, where a loaded receiver still dropped ~5 % of datagrams under 200 flows): a busy
 * host's stall of 100 ms at 1 Gbit/s is 12.5 MB. Only memory the backlog uses; needs CAP_NET_ADMIN
 * (else the socket keeps what dgram got).
 */
const FORCED_RECV_BUFFER = 16 * 1024 * 1024;

/** A bound underlay socket: its receive buffer raised, and its drops counted in hostDrops() until it closes. */
export function limitDrops(socket: Socket): void {
  const addon = peerAddon();
  const fd = dgramFd(socket);
  if (!addon || fd === undefined) return;
  addon.udpForceRecvBuffer(fd, FORCED_RECV_BUFFER);
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
}

/**
 * Drops of the live sockets since each was made. Cumulative, but a socket that closes takes its
 * count along, so callers take differences and treat a fall as none.
 */
export function hostDrops(): number {
  const addon = peerAddon();
  let n = 0;
  if (!addon) return n;
  for (const s of sockets) {
    const fd = dgramFd(s);
    const d = fd === undefined ? 0 : addon.udpDrops(fd);
    if (d > 0) n += d;
  }
  return n;
}
