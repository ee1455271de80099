/**
 * The proxy's KCP tuning flags (`--kcp-mode`, `--kcp-nodelay`, ...): their accepted ranges. The
 * windows are capped so one flow cannot be made to buffer more than ~5 MB (4096 segments of at most
 * 1400 bytes); the MTU is a whole KCP datagram inside one peer packet, which must also fit the
 * underlay (a TUN packet of the default 1380 bytes does).
 */
import { badConfig } from '../errors.js';
import type { KcpMode } from '../transport/kcp/modes.js';
import { parseIntInRange } from './values.js';

export const KCP_MODES: readonly KcpMode[] = ['normal', 'fast', 'fast2', 'fast3', 'manual'];

export function parseKcpMode(raw: string, name: string): KcpMode {
  const mode = raw.trim().toLowerCase();
  if (!(KCP_MODES as readonly string[]).includes(mode)) throw badConfig(name, `must be one of ${KCP_MODES.join(', ')}, got ${JSON.stringify(raw)}`);
  return mode as KcpMode;
}

const range = (min: number, max: number) => (raw: string, name: string): number => parseIntInRange(raw, name, min, max);
export const parseKcpNodelay = range(0, 2);
export const parseKcpInterval = range(10, 5000);
export const parseKcpResend = range(0, 100);
export const parseKcpNc = range(0, 1);
export const parseKcpWindow = range(16, 4096);
/** The largest KCP datagram: the proxy's default follows the TUN's MTU up to this. */
export const KCP_MTU_MAX = 1400;
export const parseKcpMtu = range(256, KCP_MTU_MAX);
