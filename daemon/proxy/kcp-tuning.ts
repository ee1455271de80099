/**
 * The proxy carrier's KCP settings from the node's flags. Without any flag they are what the proxy
 * always used: fast3's NoDelay(1, 10, 2, 1), 1024-segment windows, 1200-byte datagrams. A mode
 * sets the four NoDelay knobs (kcptun's presets; "manual" starts from kcptun's flag defaults), and
 * each explicit flag then overrides its knob.
 */
import type { NodeConfig } from '../config/node-config.js';
import { kcpModeParams, type KcpMode } from '../transport/kcp/modes.js';

export interface ProxyKcpSettings {
  mode: KcpMode | 'default';
  nodelay: number;
  interval: number;
  resend: number;
  nc: number;
  sndWnd: number;
  rcvWnd: number;
  mtu: number;
}

export const PROXY_KCP_DEFAULTS: Readonly<ProxyKcpSettings> = {
  mode: 'default', nodelay: 1, interval: 10, resend: 2, nc: 1, sndWnd: 1024, rcvWnd: 1024, mtu: 1200,
};

export function proxyKcpSettings(cfg: NodeConfig): ProxyKcpSettings {
  const base = cfg.kcpMode ? { ...PROXY_KCP_DEFAULTS, ...kcpModeParams(cfg.kcpMode), mode: cfg.kcpMode } : { ...PROXY_KCP_DEFAULTS };
  return {
    mode: base.mode,
    nodelay: cfg.kcpNodelay ?? base.nodelay,
    interval: cfg.kcpInterval ?? base.interval,
    resend: cfg.kcpResend ?? base.resend,
    nc: cfg.kcpNc ?? base.nc,
    sndWnd: cfg.kcpSndwnd ?? base.sndWnd,
    rcvWnd: cfg.kcpRcvwnd ?? base.rcvWnd,
    mtu: cfg.kcpMtu ?? base.mtu,
  };
}

/** As `easytier-cli node` shows it. */
export function kcpSettingsText(s: ProxyKcpSettings): string {
  return `mode=${s.mode} nodelay=${s.nodelay} interval=${s.interval} resend=${s.resend} nc=${s.nc} sndwnd=${s.sndWnd} rcvwnd=${s.rcvWnd} mtu=${s.mtu}`;
}
