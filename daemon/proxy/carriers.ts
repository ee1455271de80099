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
import { maxStreamWindow, QUIC_DEFAULTS, QuicEndpoint, type QuicCrypto } from '../carrier/quic/endpoint.js';
import { QuicFlow } from '../carrier/quic/flow.js';
import { EtKcpCarrierDriver, EtKcpFlow, etKcpHost, type EtKcpHost } from '../peer/easytier/kcp-carrier.js';
import { easyTierProxyFeatures, easyTierQuicDriver } from '../peer/easytier/quic-proxy.js';
import { Feature } from '../peer/route-record.js';
import { hostDrops } from '../peer/underlay/udp-drops.js';
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
    /** quinn-plaintext QUIC flows with EasyTier nodes (with etHost and a QUIC core). */
    readonly etQuic: QuicCarrierDriver | null,
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
      hostDrops,
      ...tuning,
    });
    const kcp: KcpCarrierDriver = new KcpCarrierDriver(host.peer, carrier, (flow) => onOpen(kcp, flow), log);
    const endpoint = await openQuicEndpoint(host, log, 'tstier');
    const quic: QuicCarrierDriver | null = endpoint && new QuicCarrierDriver(host.peer, endpoint,
      { acceptInput: !cfg.disableQuicInput, log }, (flow) => onOpen(quic!, flow));
    const etHost = etKcpHost(host.peer);
    const etKcp: EtKcpCarrierDriver | null = etHost && new EtKcpCarrierDriver(etHost, etHost.peerId,
      { acceptInput: !cfg.disableKcpInput }, (flow) => onOpen(etKcp!, flow), log);
    const etEndpoint = etHost && endpoint && await openQuicEndpoint(host, log, 'plaintext');
    const etQuic: QuicCarrierDriver | null = etHost && etEndpoint && easyTierQuicDriver(etHost, etEndpoint,
      { acceptInput: !cfg.disableQuicInput, log }, (flow) => onOpen(etQuic!, flow));
    etHost?.advertiseEasyTierInput({ kcpInput: !cfg.disableKcpInput, quicInput: !cfg.disableQuicInput && etQuic !== null });
    // Read back from the carrier, so what the CLI shows is what the flows get.
    return new ProxyCarriers(kcp, quic, kcpSettingsText({ mode, ...carrier.settings }), etHost, etKcp, etQuic);
  }

  /** The carrier of a transport between tstier nodes (flows from sockets use these). */
  driver(transport: 'Kcp' | 'Quic'): CarrierDriver {
    return transport === 'Kcp' || !this.quic ? this.kcp : this.quic;
  }

  /** The carrier a new flow to `dstPeer` opens on: toward an EasyTier node, kcp-sys's or quinn-plaintext's. */
  openDriver(transport: 'Kcp' | 'Quic', dstPeer: number): CarrierDriver {
    if (this.etHost && easyTierProxyFeatures(this.etHost, dstPeer, dstPeer)) {
      if (transport === 'Kcp') return this.etKcp!;
      if (this.etQuic) return this.etQuic;
    }
    return this.driver(transport);
  }

  /** The carrier a flow belongs to. */
  driverOf(flow: CarrierFlow): CarrierDriver {
    if (flow instanceof EtKcpFlow) return this.etKcp!;
    if (!(flow instanceof QuicFlow)) return this.kcp;
    return this.etQuic?.owns(flow) ? this.etQuic : this.quic!;
  }

  /** Resets every flow with the peer, on every carrier; how many. */
  abortPeer(peerId: number): number {
    return this.kcp.abortPeer(peerId) + (this.etKcp?.abortPeer(peerId) ?? 0) + (this.quic?.abortPeer(peerId) ?? 0)
      + (this.etQuic?.abortPeer(peerId) ?? 0);
  }

  kick(): void {
    this.kcp.kick();
    this.etKcp?.kick();
    this.quic?.kick();
    this.etQuic?.kick();
  }

  close(): void {
    this.kcp.close();
    this.etKcp?.close();
    this.quic?.close();
    this.etQuic?.close();
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
async function openQuicEndpoint(host: ProxyHost, log: Logger, crypto: QuicCrypto): Promise<QuicEndpoint | null> {
  const resetKey = createHash('sha256').update(`tstier quic reset key${crypto === 'tstier' ? '' : ` ${crypto}`}\0`)
    .update(host.config.networkSecret).update(String(host.peer.peerId)).digest().subarray(0, 16);
  try {
    return await QuicEndpoint.create({
      streamWindow: PROXY_STREAM_WINDOW, resetKey, congestion: host.config.quicCongestion, crypto,
      // A connection survives silence as long as the flows on it should (the flow timeout), no longer.
      idleTimeoutMs: host.config.proxyFlowTimeout * 1000,
      wasmPath: process.env.TSTIER_QUIC_WASM || undefined,
    });
  } catch (e) {
    log.error('QUIC core unavailable: no QUIC-carried flows on this node', { err: e });
    return null;
  }
}
