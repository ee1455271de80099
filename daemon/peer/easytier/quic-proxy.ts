/**
 * The QUIC proxy toward EasyTier nodes, and which proxy carrier a flow to an EasyTier node takes.
 *
 * EasyTier 2.6 carries a proxied flow as one bidirectional stream of a QUIC connection per
 * destination node, in its own packet types QuicSrc (datagrams of the side that opened the
 * connection) and QuicDst, sealed and routed by the peer layer like data. The QUIC crypto is
 * quinn-plaintext's (the wasm core's 'plaintext' scheme). A stream starts with the connect message,
 * `u16 BE length | KcpConnData`, and has no answer: the acceptor dials, and a failed dial just ends
 * the stream. tstier's QuicCarrier runs it with EASYTIER_HEADS on an endpoint of its own, so
 * tstier's own QUIC between tstier nodes (its handshake, OPEN/STATUS) is untouched.
 */
import { QuicCarrierDriver, type QuicDriverOptions } from '../../carrier/quic/driver.js';
import type { QuicEndpoint } from '../../carrier/quic/endpoint.js';
import type { QuicFlow } from '../../carrier/quic/flow.js';
import type { FlowHeads } from '../../carrier/quic/heads.js';
import { Feature } from '../route-record.js';
import { fromConnData, toConnData, type EtKcpHost } from './kcp-carrier.js';
import { decodeKcpConnData, encodeKcpConnData } from './kcp-envelope.js';
import { EtPacketType } from './pm.js';

/** The acceptor refuses a longer connect message, as EasyTier does. */
const MAX_CONNECT_MESSAGE = 512;
const LENGTH_PREFIX = 2;

export const EASYTIER_HEADS: FlowHeads = {
  answers: false,
  open(req) {
    const c = toConnData(req);
    if (!c) return null; // EasyTier's connectors carry IPv4 flows only
    const msg = encodeKcpConnData(c);
    const head = new Uint8Array(LENGTH_PREFIX + msg.length);
    head[0] = msg.length >>> 8;
    head[1] = msg.length & 0xff;
    head.set(msg, LENGTH_PREFIX);
    return head;
  },
  parse(acc, role) {
    if (role !== 'acceptor') return 'error'; // never asked: the acceptor sends no head
    if (acc.length < LENGTH_PREFIX) return null;
    const len = (acc[0]! << 8) | acc[1]!;
    if (len > MAX_CONNECT_MESSAGE) return 'error';
    const length = LENGTH_PREFIX + len;
    if (acc.length < length) return null;
    const c = decodeKcpConnData(acc.subarray(LENGTH_PREFIX, length));
    return c ? { request: fromConnData(c), length } : 'error';
  },
};

/** The QUIC carrier of flows with EasyTier nodes, on `endpoint` (crypto 'plaintext'). */
export function easyTierQuicDriver(
  host: EtKcpHost,
  endpoint: QuicEndpoint,
  opts: Pick<QuicDriverOptions, 'acceptInput' | 'log'>,
  onOpenRequest: (flow: QuicFlow) => void,
): QuicCarrierDriver {
  const seam = {
    onPacket: (type: number, handler: (from: number, payload: Buffer) => void) => host.onEasyTierPacket(type, handler),
    sendTo: (peerId: number, type: number, payload: Uint8Array) => host.sendEasyTier(peerId, type, payload),
  };
  return new QuicCarrierDriver(seam, endpoint, {
    ...opts, heads: EASYTIER_HEADS, types: { fromInitiator: EtPacketType.QuicSrc, fromAcceptor: EtPacketType.QuicDst },
  }, onOpenRequest);
}

/**
 * For a flow to `dstPeer` (first hop `hop`): the feature bits the transport choice should read when
 * the destination is an EasyTier node (it does not announce tstier's own carriers), else null: its
 * kcp_input (kcp-sys) and quic_input (quinn-plaintext), and the first relay's no_relay_kcp /
 * no_relay_quic, honoured as EasyTier honours them.
 */
export function easyTierProxyFeatures(host: EtKcpHost, dstPeer: number, hop: number): { dst: number; relay: number | undefined } | null {
  const routes = host.routes;
  if ((routes.record(dstPeer)?.features ?? 0) & (Feature.KcpInput | Feature.QuicInput)) return null; // a tstier node
  const advertised = routes.advertised(dstPeer);
  if (advertised === undefined || !(advertised & (Feature.KcpInput | Feature.QuicInput))) return null;
  const relay = hop === dstPeer ? undefined : routes.advertised(hop);
  const noRelay = Feature.NoRelayKcp | Feature.NoRelayQuic;
  return { dst: advertised & (Feature.KcpInput | Feature.QuicInput | noRelay), relay: relay === undefined ? undefined : relay & noRelay };
}
