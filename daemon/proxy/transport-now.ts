/**
 * "Which transport, and why", with no flow open: what a new TCP flow to a node would use right now
 * (the same choice a SYN or a SOCKS5 CONNECT would get, before any runtime fallback), for the
 * `peer` and `route` tables. A refusing relay is named, so "relay refuses kcp" says which one.
 */
import type { SocketCarriers } from './socket-flow.js';

export interface TransportNow {
  /** "Kcp", "Quic" or "Tcp"; empty for this node itself or a node with no route. */
  transport: string;
  reason: string;
}

export function transportNow(c: SocketCarriers, peerId: number, nextHop: number | undefined,
  hostname: (id: number) => string | undefined): TransportNow {
  if (peerId === c.selfId) return { transport: '', reason: 'this node' };
  const choice = c.choose(peerId, new Set());
  if (!choice) return { transport: '', reason: 'no route' };
  const relay = nextHop !== undefined && nextHop !== peerId ? hostname(nextHop) ?? `peer ${nextHop}` : undefined;
  return { transport: choice.transport, reason: relay ? choice.reason.replace(/relay refuses/g, `relay ${relay} refuses`) : choice.reason };
}
