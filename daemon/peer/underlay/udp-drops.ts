/**
 * Datagrams this host dropped before reading them: the kernel's per-socket drop counter (its receive
 * buffer full while the event loop was busy) summed over the node's live UDP underlay sockets (on a
 * GRO socket each counted drop is a run of datagrams: BatchUdpSocket.droppedDatagrams estimates them).
 *
 * Why: under a thousand flows the receiving node's sockets overflow on a clean link, and to the KCP
 * carrier those holes look like path loss, so its adaptive FEC bought parity for them (more datagrams
 * for the host that could not keep up). The carrier's FEC report subtracts them (path-fec.ts).
 * Without the peer addon the count stays 0: host drops then read as path loss, as before.
 */
import type { Socket } from 'node:dgram';
import { peerAddon } from '../native.js';
import { BatchUdpSocket } from './udp-batch.js';
import { dgramFd } from './udp-gso.js';

const sockets = new Set<Socket | BatchUdpSocket>();

/** Counts `socket`'s drops in hostDrops() from now until it closes. */
export function watchDrops(socket: Socket | BatchUdpSocket): void {
  if (!peerAddon()) return;
  sockets.add(socket);
  if (!(socket instanceof BatchUdpSocket)) socket.once('close', () => sockets.delete(socket));
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
    if (s instanceof BatchUdpSocket && s.closed) {
      sockets.delete(s); // the addon's sockets say nothing when they close
      continue;
    }
    if (s instanceof BatchUdpSocket) {
      n += s.droppedDatagrams(addon.udpDrops(s.fd)); // a GRO socket's kernel count is of runs
      continue;
    }
    const fd = dgramFd(s);
    const d = fd === undefined ? 0 : addon.udpDrops(fd);
    if (d > 0) n += d;
  }
  return n;
}
