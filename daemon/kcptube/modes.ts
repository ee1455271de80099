/**
 * kcptube's `kcp=` presets (kcptube src/shares/configurations.cpp verify_kcp_settings; docs/parameters).
 * Each maps to KCP's NoDelay(nodelay, interval, resend, nc) and default windows. The individual
 * kcp_* keys override a preset's values; `manual` requires nodelay/interval/resend/nc.
 *
 * kcptube's source sets interval 0 for fast1/fast2 and 1 for the other fast/regular1-3 presets
 * (its patched ikcp runs that fast); our engine clamps intervals to kcp-go's [10, 5000] ms, so
 * these presets all tick every 10 ms here.
 */
import type { KcpTuning } from '../transport/kcp/kcp.js';

export const KCPTUBE_MODES = [
  'manual', 'fast1', 'fast2', 'fast3', 'fast4', 'fast5', 'fast6',
  'regular1', 'regular2', 'regular3', 'regular4', 'regular5',
] as const;

export type KcptubeKcpMode = (typeof KCPTUBE_MODES)[number];

export type KcptubeKcpParams = KcpTuning;

/** kcptube's constant_values::kcp_send_window / kcp_receive_window; fast presets double them. */
const REGULAR_WND = 1024;
const FAST_WND = 2 * REGULAR_WND;

const p = (wnd: number, nodelay: number, interval: number, resend: number): KcptubeKcpParams =>
  ({ sndWnd: wnd, rcvWnd: wnd, nodelay, interval, resend, nc: 1 });

export const KCPTUBE_PRESETS: Readonly<Record<Exclude<KcptubeKcpMode, 'manual'>, Readonly<KcptubeKcpParams>>> = {
  fast1: p(FAST_WND, 1, 0, 2),
  fast2: p(FAST_WND, 2, 0, 2),
  fast3: p(FAST_WND, 1, 1, 3),
  fast4: p(FAST_WND, 2, 1, 3),
  fast5: p(FAST_WND, 1, 1, 4),
  fast6: p(FAST_WND, 2, 1, 4),
  regular1: p(REGULAR_WND, 1, 1, 5),
  regular2: p(REGULAR_WND, 2, 1, 5),
  regular3: p(REGULAR_WND, 0, 1, 2),
  regular4: p(REGULAR_WND, 0, 15, 2),
  regular5: p(REGULAR_WND, 0, 30, 2),
};

/** kcptube's default when `kcp=` is absent (its switch falls through to regular5). */
export const KCPTUBE_DEFAULT_MODE: KcptubeKcpMode = 'regular5';

export function isKcptubeMode(v: string): v is KcptubeKcpMode {
  return (KCPTUBE_MODES as readonly string[]).includes(v);
}

/** Windows for `manual` when kcp_sndwnd/kcp_rcvwnd are absent (kcptube doubles the constants). */
export const KCPTUBE_MANUAL_WND = FAST_WND;
