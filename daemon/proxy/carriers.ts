/**
 * The node's carriers for proxied flows, built from its config and bound to its peer layer: the KCP
 * carrier always, the QUIC carrier when its core loads, and kcp-sys flows with EasyTier nodes when the
 * peer layer speaks EasyTier's wire. Whoever receives an OPEN through one is told with the driver it
 * came on.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import type { CarrierDriver, CarrierFlow } from '../carrier/carrier.js';
import { KcpCarrier } from '../carrier/kcp/endpoint.js';
import { KcpCarrierDriver } from '../carrier/kcp/driver.js';
import { QuicCarrierDriver } from '../carrier/quic/driver.js';
import { maxStreamWindow, QUIC_DEFAULTS, QuicEndpoint } from '../carrier/quic/endpoint.js';
import { QuicFlow } from '../carrier/quic/flow.js';
import { EtKcpCarrierDriver, EtKcpFlow, easyTierKcpFeatures, etKcpHost, type EtKcpHost } from '../peer/easytier/kcp-carrier.js';
import { Feature } from '../peer/route-record.js';
import { PacketType } from '../peer/wire.js';
import { kcpSettingsText, proxyKcpSettings } from './kcp-tuning.js';
import type { ProxyHost } from './proxy-host.js';

export type OpenHandler = (driver: CarrierDriver, flow: CarrierFlow) => void;

export class ProxyCarriers {
  private constructor(
    readonly kcp: KcpCarrierDriver,
    /** Null when the QUIC core could not be loaded (the node then carries no QUIC flows). */
    readonly quic: QuicCarrierDriver | null,
    /** The KCP carrier's settings, as `easytier-cli node` shows them. */
    readonly kcpSettings: string,
    /** The peer layer's EasyTier seam, when it speaks EasyTier's wire. */
    readonly etHost: EtKcpHost | null,
    /** kcp-sys flows with EasyTier nodes (with etHost). */
    readonly etKcp: EtKcpCarrierDriver | null,
  ) {}

  static async open(host: ProxyHost, log: Logger, onOpen: OpenHandler): Promise<ProxyCarriers> {
    const cfg = host.config;
    const { mode, ...tuning } = proxyKcpSettings(cfg);
    const carrier = new KcpCarrier({
      types: { fromInitiator: PacketType.KcpSrc, fromAcceptor: PacketType.KcpDst },
      acceptInput: !cfg.disableKcpInput,
      silentLimitMs: cfg.proxyFlowTimeout * 1000,
      // FEC toward a peer only when it announces that it decodes it.
      peerDecodesFec: (peerId) => ((host.peer.routes.record(peerId)?.features ?? 0) & Feature.KcpFec) !== 0,
      peerTakesBundles: (peerId) => ((host.peer.routes.record(peerId)?.features ?? 0) & Feature.KcpBundle) !== 0,
      ...tuning,
    });
    const kcp: KcpCarrierDriver = new KcpCarrierDriver(host.peer, carrier, (flow) => onOpen(kcp, flow), log);
    const endpoint = await openQuicEndpoint(host, log);
    const quic: QuicCarrierDriver | null = endpoint && new QuicCarrierDriver(host.peer, endpoint,
      { acceptInput: !cfg.disableQuicInput, log }, (flow) => onOpen(quic!, flow));
    const etHost = etKcpHost(host.peer);
    const etKcp: EtKcpCarrierDriver | null = etHost && new EtKcpCarrierDriver(etHost, etHost.peerId,
      { acceptInput: !cfg.disableKcpInput }, (flow) => onOpen(etKcp!, flow), log);
    etHost?.advertiseEasyTierInput({ kcpInput: !cfg.disableKcpInput, quicInput: false });
    // Read back from the carrier, so what the CLI shows is what the flows get.
    return new ProxyCarriers(kcp, quic, kcpSettingsText({ mode, ...carrier.settings }), etHost, etKcp);
  }

  /** The carrier of a transport between tstier nodes (flows from sockets use these). */
  driver(transport: 'Kcp' | 'Quic'): CarrierDriver {
    return transport === 'Kcp' || !this.quic ? this.kcp : this.quic;
  }

  /** The carrier a new flow to `dstPeer` opens on: KCP toward an EasyTier node is kcp-sys's. */
  openDriver(transport: 'Kcp' | 'Quic', dstPeer: number): CarrierDriver {
    if (transport === 'Kcp' && this.etHost && easyTierKcpFeatures(this.etHost, dstPeer, dstPeer)) return this.etKcp!;
    return this.driver(transport);
  }

  /** The carrier a flow belongs to. */
  driverOf(flow: CarrierFlow): CarrierDriver {
    if (flow instanceof EtKcpFlow) return this.etKcp!;
    return flow instanceof QuicFlow ? this.quic! : this.kcp;
  }

  /** Resets every flow with the peer, on every carrier; how many. */
  abortPeer(peerId: number): number {
    return this.kcp.abortPeer(peerId) + (this.etKcp?.abortPeer(peerId) ?? 0) + (this.quic?.abortPeer(peerId) ?? 0);
  }

  kick(): void {
    this.kcp.kick();
    this.etKcp?.kick();
    this.quic?.kick();
  }

  close(): void {
    this.kcp.close();
    this.etKcp?.close();
    this.quic?.close();
  }
}

/**
 * Receive window per QUIC stream: the largest that loss cannot turn into a connection close (see
 * maxStreamWindow). quinn's 1.25 MB held one flow to ~13 MB/s at 40 ms RTT; 8 MiB gave ~31 MB/s but
 * killed the connection at 20 % loss. The connection window (16 MiB) bounds what one peer can make us
 * buffer.
 */
const PROXY_STREAM_WINDOW = maxStreamWindow(QUIC_DEFAULTS.maxUdpPayload);

/**
 * The node's QUIC endpoint. Its stateless-reset key comes from the network secret and the peer id,
 * so after a restart this node's resets end its peers' stale connections at once. A missing or broken
 * QUIC core leaves the node without QUIC (logged), not without a proxy. TSTIER_QUIC_WASM overrides
 * where the core is loaded from.
 */
async function openQuicEndpoint(host: ProxyHost, log: Logger): Promise<QuicEndpoint | null> {
  const resetKey = createHash('sha256').update('tstier quic reset key\0').update(host.config.networkSecret)
    .update(String(host.peer.peerId)).digest().subarray(0, 16);
  try {
    return await QuicEndpoint.create({
      streamWindow: PROXY_STREAM_WINDOW, resetKey, congestion: host.config.quicCongestion,
      // A connection survives silence as long as the flows on it should (the flow timeout), no longer.
      idleTimeoutMs: host.config.proxyFlowTimeout * 1000,
      wasmPath: process.env.TSTIER_QUIC_WASM || undefined,
    });
  } catch (e) {
    log.error('QUIC core unavailable: no QUIC-carried flows on this node', { err: e });
    return null;
  }
}
