/**
 * What the node knows of every other node, as the peer layer hands it to the rest of the node:
 * one record per node (built from EasyTier's route sync, easytier/route-view.ts), how to reach it,
 * and this node's own facts the peer layer announces. Feature bits are numbered as EasyTier's.
 */

/** Feature bits, numbered as EasyTier's PeerFeatureFlag fields: bit n = field n. */
export const Feature = {
  KcpInput: 1 << 3,
  NoRelayKcp: 1 << 4,
  QuicInput: 1 << 6,
  NoRelayQuic: 1 << 7,
  /**
   * tstier's own (no EasyTier field): this node's KCP carrier decodes per-peer adaptive FEC
   * (carrier/kcp/path-fec.ts). A high bit, clear of EasyTier's numbering.
   */
  KcpFec: 1 << 24,
  /** tstier's own: this node's KCP carrier takes ACKs of several flows in one datagram (carrier/kcp/ack-bundle.ts). */
  KcpBundle: 1 << 25,
} as const;

/** A virtual IPv6 address (16 bytes, network order) and its prefix length. */
export interface Ipv6Net {
  address: Uint8Array;
  prefix: number;
}

export interface RouteRecord {
  peerId: number;
  /** Raised by the origin on every change; a higher version replaces a lower one everywhere. */
  version: number;
  hostname: string;
  /** Virtual address as a u32 (0 = none) and its prefix length. */
  ipv4: number;
  prefix: number;
  /** Virtual IPv6, when the node has one. */
  ipv6?: Ipv6Net;
  /** As configured: "192.168.1.0/24" or "192.168.1.0/24->10.1.0.0/24". */
  proxyCidrs: string[];
  features: number;
  /** The node's software version as it announced it ("2.6.4-<commit>" from EasyTier, "2.6.4-tstier" from us). */
  softwareVersion: string;
}

/** This node's own facts, which the peer layer announces in route sync (its peer id is the layer's). */
export type LocalNode = Pick<RouteRecord, 'hostname' | 'ipv4' | 'prefix' | 'ipv6' | 'proxyCidrs' | 'features'>;

/** A reachable node: its record, the direct peer we send through, and the path's cost in hops. */
export interface RouteEntry {
  record: RouteRecord;
  nextHop: number;
  cost: number;
}
