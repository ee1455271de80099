/**
 * Datagrams this host dropped before reading them: the kernel's per-socket drop counter (its receive
 * buffer full while the event loop was busy) summed over the node's live UDP underlay sockets (on a
 * GRO socket each counted drop is a run of datagrams: BatchUdpSocket.droppedDatagrams estimates them).
 *
 * Why: under a thousand flows the receiving node's sockets overflow on a clean link, and to the KCP
 * carrier those holes look like path loss, so its adaptive FEC bought parity for them (more datagrams
 * for the host that could not keep up). The carrier's FEC report subtracts them (path-fec.ts).
 * Without the peer addon the count stays 0: host drops then read as path loss, as before.
 *
 * The metrics (udpDropTotals) read the same sockets, but keep what a closed socket had counted: a
 * counter must not fall when a link is replaced.
 */
import type { Socket } from 'node:dgram';
import { peerAddon, type PeerAddon } from '../native.js';
import { BatchUdpSocket } from './udp-batch.js';
import { dgramFd } from './udp-gso.js';

type UdpSocket = Socket | BatchUdpSocket;

/** Each watched socket, with its kernel drop count as last read. */
const sockets = new Map<UdpSocket, number>();
/** What the sockets closed since counted (the kernel's drops as last read; sends lost at a full backlog). */
const retired = { receive: 0, sendBacklog: 0 };

/** Counts `socket`'s drops in hostDrops() and udpDropTotals() from now until it closes. */
export function watchDrops(socket: UdpSocket): void {
  if (!peerAddon()) return;
  sockets.set(socket, 0);
  if (!(socket instanceof BatchUdpSocket)) socket.once('close', () => retire(socket));
}

function retire(s: UdpSocket): void {
  const last = sockets.get(s) ?? 0;
  if (s instanceof BatchUdpSocket) {
    // Its reader saw the count with every batch, perhaps later than the last read here.
    retired.receive += Math.max(last, s.drops);
    retired.sendBacklog += s.sendDrops;
  } else {
    retired.receive += last;
  }
  sockets.delete(s);
}

/** The live sockets with their kernel drop counts (remembered for retire); closed addon sockets are retired. */
function* live(addon: PeerAddon): Generator<[UdpSocket, number]> {
  for (const [s, last] of sockets) {
    const fd = s instanceof BatchUdpSocket ? (s.closed ? undefined : s.fd) : dgramFd(s);
    if (fd === undefined) {
      if (s instanceof BatchUdpSocket) retire(s); // the addon's sockets say nothing when they close
      continue;
    }
    const d = addon.udpDrops(fd);
    const drops = d >= 0 ? d : last; // -errno: a kernel without the counter
    sockets.set(s, drops);
    yield [s, drops];
  }
}

/**
 * Drops of the live sockets since each was made, in datagrams. Cumulative, but a socket that closes
 * takes its count along, so callers take differences and treat a fall as none.
 */
export function hostDrops(): number {
  const addon = peerAddon();
  let n = 0;
  if (!addon) return n;
  for (const [s, drops] of live(addon)) n += s instanceof BatchUdpSocket ? s.droppedDatagrams(drops) : drops; // a GRO socket's kernel count is of runs
  return n;
}

/**
 * For the metrics, every watched socket's since it was made, closed ones too: `receive`, the kernel's
 * drops (one per datagram, or per GRO run however many datagrams it held: the kernel's unit, not
 * estimated); `sendBacklog`, sends lost at a full send buffer with the backlog full (udp-batch.ts).
 */
export function udpDropTotals(): { receive: number; sendBacklog: number } {
  const addon = peerAddon();
  const t = { receive: 0, sendBacklog: 0 };
  if (addon) {
    for (const [s, drops] of live(addon)) {
      t.receive += drops;
      if (s instanceof BatchUdpSocket) t.sendBacklog += s.sendDrops;
    }
  }
  // Read after live(), which retires the sockets it finds closed.
  return { receive: t.receive + retired.receive, sendBacklog: t.sendBacklog + retired.sendBacklog };
}
