/** The PeerFeatures columns shared by `node` and `route`. */
import type { Row } from './output.js';

export interface FeaturesMessage { kcp_input: boolean; quic_input: boolean; no_relay_kcp: boolean; no_relay_quic: boolean }

export const FEATURE_COLUMNS = ['kcp_input', 'quic_input', 'no_relay_kcp', 'no_relay_quic'] as const;

export function featureCells(f: FeaturesMessage | null): Row {
  return {
    kcp_input: f?.kcp_input ?? false,
    quic_input: f?.quic_input ?? false,
    no_relay_kcp: f?.no_relay_kcp ?? false,
    no_relay_quic: f?.no_relay_quic ?? false,
  };
}
