/**
 * kcptun's `--mode` presets for KCP's NoDelay(nodelay, interval, resend, nc)
 * (docs/kcptun-wire.md §8; identical in kcptun 2021 and current).
 */

export type KcpMode = 'normal' | 'fast' | 'fast2' | 'fast3' | 'manual';

export interface KcpModeParams {
  nodelay: number;
  interval: number;
  resend: number;
  nc: number;
}

/** kcptun's individual-flag defaults, used as they are by an unknown mode such as "manual". */
export const KCPTUN_MANUAL_DEFAULTS: Readonly<KcpModeParams> = { nodelay: 0, interval: 50, resend: 0, nc: 0 };

const PRESETS: Record<Exclude<KcpMode, 'manual'>, Readonly<KcpModeParams>> = {
  normal: { nodelay: 0, interval: 40, resend: 2, nc: 1 },
  fast: { nodelay: 0, interval: 30, resend: 2, nc: 1 },
  fast2: { nodelay: 1, interval: 20, resend: 2, nc: 1 },
  fast3: { nodelay: 1, interval: 10, resend: 2, nc: 1 },
};

/**
 * NoDelay parameters for a mode. 'manual' keeps the given values, each falling back to
 * kcptun's flag default.
 */
export function kcpModeParams(mode: KcpMode, manual?: Partial<KcpModeParams>): KcpModeParams {
  if (mode === 'manual') {
    const d = KCPTUN_MANUAL_DEFAULTS;
    return {
      nodelay: manual?.nodelay ?? d.nodelay,
      interval: manual?.interval ?? d.interval,
      resend: manual?.resend ?? d.resend,
      nc: manual?.nc ?? d.nc,
    };
  }
  return { ...PRESETS[mode] };
}
