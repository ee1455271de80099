/**
 * What the rest of the node (forwarding, the TCP proxy, the control plane) uses of a peer layer.
 * easytier/manager.ts implements it (EasyTier 2.6's wire, with or without --secure-mode). Events:
 * 'routes', 'peer-up' (peerId), 'peer-down' (peerId, silentForMs), 'peer-gone' (peerId).
 */
import type { EventEmitter } from 'node:events';
import type { PeerConnView } from '../rpc/source.js';
import type { RouteRecord } from './route-record.js';
import type { RouteEntry } from './route-record.js';

/** A link's liveness timers; easytier-core maps them to EasyTier's link timers (node/peer-layer.ts). */
export interface SessionTimers {
  keepaliveMs: number;
  deadMs: number;
  handshakeRetryMs: number;
  handshakeTimeoutMs: number;
}

export const DEFAULT_TIMERS: SessionTimers = {
  keepaliveMs: 1000,
  deadMs: 6000,
  handshakeRetryMs: 1000,
  handshakeTimeoutMs: 5000,
};

/** Receives a packet addressed to us: the origin's peer id and the decrypted payload. */
export type PacketHandler = (from: number, payload: Buffer) => void;

/** Who owns which address, and how to reach each node. Our own id answers for our own addresses. */
export interface RouteLookup {
  nextHop(peerId: number): number | undefined;
  lookupIpv4(addr: number): number | undefined;
  lookupIpv6(packet: Uint8Array, at?: number): number | undefined;
  lookupProxy(addr: number): number | undefined;
  record(peerId: number): RouteRecord | undefined;
  reachable(): IterableIterator<number>;
  /** Every reachable node but us, sorted by peer id. */
  routes(): RouteEntry[];
}

export interface PeerLayerStats {
  /** Packets relayed for others. */
  forwarded: number;
  /** Packets for a node we have no route to (or no live session towards). */
  noRoute: number;
  /** Packets dropped because their forward counter passed MAX_FORWARD_COUNTER. */
  hopLimit: number;
  /** Packets of a type nobody registered for. */
  unhandled: number;
  /** Inbound links whose first packet was not a valid handshake: refused without a word. */
  rejectedLinks: number;
  /** KCP/QUIC proxy packets of others we would not relay (--disable-relay-kcp/quic). */
  relayRefused: number;
  /** Route infos refused in route sync: an IPv4 network length over 32 or an IPv6 prefix over 128. */
  routeInfoRefused: number;
  /** Sessions closed because handling them threw (a bug, contained to that peer). */
  sessionFaults: number;
  /** UDP underlay sends lost at a full send buffer with the backlog full (underlay/udp-batch.ts). */
  udpSendDrops: number;
  /** TCP underlay packets dropped while the socket's send queue was full (underlay/tcp.ts). */
  tcpSendDrops: number;
  /** The kernel's drops at the UDP underlay sockets: a datagram each, or a whole GRO run (underlay/udp-drops.ts). */
  udpReceiveDrops: number;
}

export interface PeerLayer extends EventEmitter {
  readonly peerId: number;
  readonly routes: RouteLookup;
  readonly stats: PeerLayerStats;
  /** Opens a listener; resolves to the URI bound (port 0 filled in). */
  listen(uri: string): Promise<string>;
  /** Keeps a connection to `uri` up for the node's lifetime, redialling with backoff. */
  connect(uri: string): void;
  /** Registers the receiver of one packet type (one receiver per type). */
  onPacket(type: number, handler: PacketHandler): void;
  /** Sends a packet of `type` to any reachable node; false if there is no route right now. */
  sendTo(peerId: number, type: number, payload: Uint8Array, flags?: number): boolean;
  /** One row per live connection. */
  peerConns(): PeerConnView[];
  close(): Promise<void>;
}
