/**
 * What a namespace's kernel and an easytier-core node counted as lost, read once a test's traffic is
 * over: for tests that excuse the datagrams a busy host dropped for want of buffer, and must say
 * where each excused one was counted (so a failure points at the place nobody counted).
 */
import { cliJson } from './core.js';
import type { Namespace } from './netns.js';

export interface KernelCounters {
  /** nstat (since the namespace was made): datagrams refused at a full receive buffer or memory limit. */
  udpReceive: number;
  /** nstat UdpSndbufErrors: sends refused for want of buffer (those retried after EAGAIN too). */
  udpSend: number;
  /** ip -s link: each link's RX and TX dropped. */
  links: Record<string, { rx: number; tx: number }>;
}

export async function kernelCounters(ns: Namespace): Promise<KernelCounters> {
  const snmp = JSON.parse((await ns.exec(['nstat', '-asz', '-j', 'UdpRcvbufErrors', 'UdpMemErrors', 'UdpSndbufErrors'])).stdout) as
    { kernel: Record<string, number> };
  const k = snmp.kernel;
  const links = JSON.parse((await ns.exec(['ip', '-s', '-j', 'link', 'show'])).stdout) as
    { ifname: string; stats64: { rx: { dropped: number }; tx: { dropped: number } } }[];
  return {
    udpReceive: (k.UdpRcvbufErrors ?? 0) + (k.UdpMemErrors ?? 0),
    udpSend: k.UdpSndbufErrors ?? 0,
    links: Object.fromEntries(links.map((l) => [l.ifname, { rx: l.stats64.rx.dropped, tx: l.stats64.tx.dropped }])),
  };
}

export interface NodeCounters {
  /** Peer packets sent to (tx) and read from (rx) each peer id, over its live connections. */
  tx: Map<number, number>;
  rx: Map<number, number>;
  /** Underlay sends dropped for want of send buffer (tstier_underlay_dropped_packets_total). */
  sendDrops: number;
  /** The kernel's drops at the node's UDP underlay sockets, a GRO run counted once (tstier_underlay_udp_receive_drops_total). */
  socketDrops: number;
  /** Every other drop, error or fault counter that is not 0, as "name{labels}": for a failure message. */
  otherLosses: Record<string, number>;
}

/** One row of `easytier-cli stats -o json`. */
interface StatRow { name: string; labels: string; value: number }

export async function nodeCounters(ns: Namespace): Promise<NodeCounters> {
  const out: NodeCounters = { tx: new Map(), rx: new Map(), sendDrops: 0, socketDrops: 0, otherLosses: {} };
  for (const r of await cliJson<StatRow>(ns, ['stats'])) {
    const peer = Number(/(?:^|,)peer_id=(\d+)/.exec(r.labels)?.[1]);
    if (r.name === 'tstier_peer_tx_packets_total') out.tx.set(peer, (out.tx.get(peer) ?? 0) + r.value);
    else if (r.name === 'tstier_peer_rx_packets_total') out.rx.set(peer, (out.rx.get(peer) ?? 0) + r.value);
    else if (r.name === 'tstier_underlay_dropped_packets_total') out.sendDrops += r.value;
    else if (r.name === 'tstier_underlay_udp_receive_drops_total') out.socketDrops += r.value;
    else if (/drop|error|fault/.test(r.name) && r.value !== 0) out.otherLosses[`${r.name}{${r.labels}}`] = r.value;
  }
  return out;
}

/**
 * Datagrams one kernel drop on a peer link may have held: a sender's GSO run is at most 64 datagrams
 * (udp-gso.ts), and a receiver with GRO takes it, or drops it, whole.
 */
const RUN_MAX = 64;

/** One of two nodes under test: a name for messages, its namespace and its peer id. */
export interface NodeEnd { name: string; ns: Namespace; peerId: number }

export interface HostDrops {
  /** The datagrams excused, each place's count summed. */
  excused: number;
  /** Each place's count; a peer link's with what was counted on its path. */
  where: Record<string, unknown>;
  /** Each node's other drop, error and fault counters that are not 0: losses nothing here excuses. */
  otherLosses: Record<string, Record<string, number>>;
}

/**
 * What the host dropped for want of buffer on the forwarding path between two nodes (a TUN `tun`
 * each, a veth `veth` between their namespaces), by where it was counted:
 *  - each peer link: the datagrams one node sent and the other never read, by the nodes' own counts
 *    (exact). The kernel counts a GRO run it drops once, so its counts cannot say how many datagrams
 *    were lost there, only that the host dropped something. The loss is excused as far as what was
 *    counted on its path can hold it: the sender's underlay sends dropped (a datagram each), and the
 *    kernel's drops at the receiver's underlay sockets and the veth, either end (a datagram, or a
 *    run of up to RUN_MAX, each);
 *  - each TUN's rx and tx dropped: its queue towards the node full, or a write the kernel refused;
 *  - the streams' own sockets in each namespace: nstat's UDP buffer errors, less the node's socket
 *    drops (the link's, above). UdpSndbufErrors also counts sends retried after EAGAIN, and a node's
 *    sends a veth dropped: it may excuse more than was lost there, never less.
 * Each direction's receiver is read before its sender, so a link's loss may count high (by the few
 * pings sent between the reads), never short.
 */
export async function hostDrops(a: NodeEnd, b: NodeEnd, tun: string, veth: string): Promise<HostDrops> {
  const kernel = new Map([[a, await kernelCounters(a.ns)], [b, await kernelCounters(b.ns)]]);
  const aFirst = await nodeCounters(a.ns);
  const bOnce = await nodeCounters(b.ns);
  const aLast = await nodeCounters(a.ns);
  const where: Record<string, unknown> = {};
  let excused = 0;
  const link = (from: NodeEnd, sender: NodeCounters, to: NodeEnd, receiver: NodeCounters): void => {
    const lost = (sender.tx.get(to.peerId) ?? 0) - (receiver.rx.get(from.peerId) ?? 0);
    const vethTx = kernel.get(from)!.links[veth]?.tx ?? 0;
    const vethRx = kernel.get(to)!.links[veth]?.rx ?? 0;
    const n = Math.max(0, Math.min(lost, sender.sendDrops + RUN_MAX * (receiver.socketDrops + vethTx + vethRx)));
    where[`link ${from.name}→${to.name}`] = { lost, excused: n, counted: {
      [`node ${from.name} sends dropped`]: sender.sendDrops, [`node ${to.name} socket drops`]: receiver.socketDrops,
      [`${veth} ${from.name} tx dropped`]: vethTx, [`${veth} ${to.name} rx dropped`]: vethRx } };
    excused += n;
  };
  link(a, aLast, b, bOnce);
  link(b, bOnce, a, aFirst);
  for (const [end, node] of [[a, aLast], [b, bOnce]] as const) {
    const k = kernel.get(end)!;
    const tunDrops = (k.links[tun]?.rx ?? 0) + (k.links[tun]?.tx ?? 0);
    const sockets = Math.max(0, k.udpReceive - node.socketDrops) + k.udpSend;
    where[`${tun} ${end.name} rx+tx dropped`] = tunDrops;
    where[`stream sockets ${end.name}`] = sockets;
    excused += tunDrops + sockets;
  }
  return { excused, where, otherLosses: { [a.name]: aLast.otherLosses, [b.name]: bOnce.otherLosses } };
}
