/**
 * The proxy carrier's KCP settings from the node's flags. Without any flag: fast3's NoDelay(1, 10, 2,
 * 1), 1024-segment windows, and datagrams as large as the TUN's packets (the default 1380 bytes; at
 * most 1400). A mode sets the four NoDelay knobs (kcptun's presets; "manual" starts from kcptun's flag
 * defaults), and each explicit flag then overrides its knob.
 *
 * Why the TUN's MTU: a KCP datagram rides in the same peer packet as a forwarded TUN packet, so it
 * fits wherever plain forwarding does; and the application's TCP segments, the TUN's MTU less
 * headers, then fit one KCP segment each. With 1200 bytes a read of one or two of them ended in a
 * short second datagram: 1,000 flows sent ~1,100 datagrams per MiB instead of ~860, at ~25 % more CPU.
 */
import { KCP_MTU_MAX } from '../config/kcp-values.js';
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
  mode: 'default', nodelay: 1, interval: 10, resend: 2, nc: 1, sndWnd: 1024, rcvWnd: 1024, mtu: 1380,
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
    mtu: cfg.kcpMtu ?? Math.min(KCP_MTU_MAX, cfg.mtu),
  };
}

/** As `easytier-cli node` shows it. */
export function kcpSettingsText(s: ProxyKcpSettings): string {
  return `mode=${s.mode} nodelay=${s.nodelay} interval=${s.interval} resend=${s.resend} nc=${s.nc} sndwnd=${s.sndWnd} rcvwnd=${s.rcvWnd} mtu=${s.mtu}`;
}
