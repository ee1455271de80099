/**
 * Which transport carries a new TCP flow, decided per SYN from what route sync says about the
 * destination node and the first relay (docs/quic-proxy.md, "Which transport a flow takes"). Precedence here is
 * KCP > QUIC > plain packets: KCP keeps latency lowest, QUIC serves peers that refuse KCP.
 */
import { Feature } from '../peer/route-record.js';
import type { ProxyTransport } from '../rpc/source.js';

export interface LocalProxyFlags {
  enableKcpProxy: boolean;
  enableQuicProxy: boolean;
}

export interface TransportChoice {
  transport: ProxyTransport;
  /** Why, in words the proxy table shows. */
  reason: string;
}

/**
 * `dstFeatures`: the destination node's feature bits (undefined: unknown, e.g. a node without feature
 * flags). `relayFeatures`: the first hop's bits when the destination is not a direct peer.
 */
export function chooseTransport(
  local: LocalProxyFlags,
  dstFeatures: number | undefined,
  relayFeatures: number | undefined,
  viaRelay: boolean,
): TransportChoice {
  const why: string[] = [];
  const candidates: Array<[ProxyTransport, boolean, number, number, string]> = [
    ['Kcp', local.enableKcpProxy, Feature.KcpInput, Feature.NoRelayKcp, 'kcp'],
    ['Quic', local.enableQuicProxy, Feature.QuicInput, Feature.NoRelayQuic, 'quic'],
  ];
  for (const [transport, enabled, input, noRelay, name] of candidates) {
    if (!enabled) continue;
    if (dstFeatures === undefined || (dstFeatures & input) === 0) why.push(`peer does not accept ${name}`);
    else if (viaRelay && relayFeatures !== undefined && (relayFeatures & noRelay) !== 0) why.push(`relay refuses ${name}`);
    else return { transport, reason: [...why, `peer accepts ${name}`].join('; ') };
  }
  return { transport: 'Tcp', reason: why.length > 0 ? why.join('; ') : 'proxy disabled' };
}
