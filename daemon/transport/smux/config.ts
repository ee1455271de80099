/**
 * smux session parameters, with kcptun's defaults. Times are milliseconds.
 */
import { badConfig } from '../../errors.js';
import type { SmuxVersion } from './frame.js';

export interface SmuxConfig {
  /** 1 (kcptun 2021 default) or 2 (per-stream flow control). Both ends must match. */
  version: SmuxVersion;
  /** Largest PSH payload this side sends (smux 2021 default 32768; kcptun current --framesize 8192). */
  maxFrameSize: number;
  /** Session receive bucket (kcptun --smuxbuf): unread bytes beyond this stop input. */
  maxReceiveBuffer: number;
  /** v2 per-stream window this side advertises (kcptun --streambuf). */
  maxStreamBuffer: number;
  /** A NOP goes out this often (kcptun --keepalive); 0 turns keepalive off. */
  keepAliveInterval: number;
  /** The session closes if no frame arrived for this long (while input was not paused); 0 turns it off. */
  keepAliveTimeout: number;
  /**
   * Bytes a stream may have queued but not yet transmitted. write() accepts no more than this, which is
   * the back-pressure a TCP adapter pauses its socket on. Local only; not on the wire.
   */
  streamSendBuffer: number;
}

export const DEFAULT_SMUX_CONFIG: Readonly<SmuxConfig> = Object.freeze({
  version: 1,
  maxFrameSize: 32768,
  maxReceiveBuffer: 4194304,
  maxStreamBuffer: 2097152,
  keepAliveInterval: 10_000,
  keepAliveTimeout: 30_000,
  streamSendBuffer: 65536,
});

/** Fills defaults and checks every value; throws a TSTIER_E_BAD_CONFIG error naming the bad key. */
export function smuxConfig(partial: Partial<SmuxConfig> = {}): SmuxConfig {
  const c: SmuxConfig = { ...DEFAULT_SMUX_CONFIG, ...partial };
  if (c.version !== 1 && c.version !== 2) throw badConfig('smux.version', `must be 1 or 2, got ${String(c.version)}`);
  const int = (key: keyof SmuxConfig, min: number, max: number): void => {
    const v = c[key];
    if (!Number.isInteger(v) || v < min || v > max) throw badConfig(`smux.${key}`, `must be an integer in [${min}, ${max}], got ${v}`);
  };
  int('maxFrameSize', 1, 65535);
  int('maxReceiveBuffer', 1, 0x7fffffff);
  int('maxStreamBuffer', 1, 0x7fffffff);
  int('keepAliveInterval', 0, 0x7fffffff);
  int('keepAliveTimeout', 0, 0x7fffffff);
  int('streamSendBuffer', 1, 0x7fffffff);
  if (c.maxStreamBuffer > c.maxReceiveBuffer) {
    throw badConfig('smux.maxStreamBuffer', `must not exceed maxReceiveBuffer (${c.maxReceiveBuffer}), got ${c.maxStreamBuffer}`);
  }
  if (c.keepAliveInterval > 0 && c.keepAliveTimeout > 0 && c.keepAliveTimeout < c.keepAliveInterval) {
    throw badConfig('smux.keepAliveTimeout', `must be at least keepAliveInterval (${c.keepAliveInterval}), got ${c.keepAliveTimeout}`);
  }
  return c;
}
