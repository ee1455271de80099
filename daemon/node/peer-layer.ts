/**
 * The node's peer layer: EasyTier 2.6's wire (EtPeerManager), with or without --secure-mode, behind
 * the PeerLayer seam the rest of the node uses.
 */
import type { Logger } from '../log.js';
import type { NodeConfig } from '../config/node-config.js';
import type { BackoffOptions } from '../peer/backoff.js';
import { EtPeerManager } from '../peer/easytier/manager.js';
import type { PeerLayer, SessionTimers } from '../peer/peer-layer.js';
import type { LocalNode } from '../peer/route-record.js';
import type { EtConnTimers } from '../peer/easytier/conn.js';

export interface PeerLayerOptions {
  networkName: string;
  networkSecret: string;
  local: LocalNode;
  log: Logger;
  timers?: SessionTimers;
  backoff?: BackoffOptions;
}

/**
 * Test-only: `TSTIER_TEST_EPOCH_MS=n` moves --secure-mode sessions to a new key epoch every n ms
 * instead of every ten minutes, so a test sees many key changes in seconds. Ignored unless a
 * positive integer.
 */
function testEpochMs(): { secureEpochMs?: number } {
  const n = Number(process.env.TSTIER_TEST_EPOCH_MS);
  return Number.isInteger(n) && n > 0 ? { secureEpochMs: n } : {};
}

/**
 * The session timers a test passes, as EasyTier's link timers: a ping every keepalive, a ping lost
 * after two, and as many lost in a row as fit in the dead time (EasyTier's defaults map to 1 s,
 * 2 s and five, its own).
 */
export function etConnTimers(t: SessionTimers): EtConnTimers {
  const pingTimeoutMs = 2 * t.keepaliveMs;
  return { pingIntervalMs: t.keepaliveMs, pingTimeoutMs, handshakeTimeoutMs: t.handshakeTimeoutMs,
    pingsLostToClose: Math.max(1, Math.round((t.deadMs - pingTimeoutMs) / t.keepaliveMs) + 1) };
}

export function createPeerLayer(cfg: NodeConfig, opts: PeerLayerOptions): PeerLayer {
  return new EtPeerManager({
    networkName: opts.networkName, networkSecret: opts.networkSecret, local: opts.local, log: opts.log,
    encryption: cfg.disableEncryption ? 'none' : (cfg.encryptionAlgorithm ?? 'aes-gcm'),
    ...(cfg.secureMode ? { secureMode: true, ...testEpochMs(), ...(cfg.secureStaticKey ? { secureStaticKey: cfg.secureStaticKey } : {}) } : {}),
    backoff: opts.backoff, timers: opts.timers && etConnTimers(opts.timers),
  });
}
