/**
 * The node's peer layer, by `--peer-protocol`: EasyTier 2.6's wire (EtPeerManager, the default) or
 * tstier's earlier protocol (PeerManager), both behind the one PeerLayer seam the rest of the node uses.
 */
import type { NodeConfig } from '../config/node-config.js';
import { EtPeerManager } from '../peer/easytier/manager.js';
import type { PeerLayer } from '../peer/peer-layer.js';
import { PeerManager, type PeerManagerOptions } from '../peer/peer-manager.js';
import type { SessionTimers } from '../peer/session.js';
import type { EtConnTimers } from '../peer/easytier/conn.js';

export type PeerLayerOptions = Pick<PeerManagerOptions, 'networkName' | 'networkSecret' | 'local' | 'log' | 'timers' | 'route' | 'backoff'>;

/**
 * Test-only: `TSTIER_TEST_REKEY_MS=n` rekeys every n ms instead of every few minutes, so a test sees
 * many rekeys in seconds. Ignored unless a positive integer.
 */
function testRekeyMs(): { rekeyMs?: number } {
  const n = Number(process.env.TSTIER_TEST_REKEY_MS);
  return Number.isInteger(n) && n > 0 ? { rekeyMs: n } : {};
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
  if (cfg.peerProtocol === 'tstier') return new PeerManager({ ...opts, ...testRekeyMs() });
  return new EtPeerManager({
    networkName: opts.networkName, networkSecret: opts.networkSecret, local: opts.local, log: opts.log,
    encryption: cfg.disableEncryption ? 'none' : (cfg.encryptionAlgorithm ?? 'aes-gcm'),
    ...(cfg.secureMode ? { secureMode: true } : {}),
    backoff: opts.backoff, timers: opts.timers && etConnTimers(opts.timers),
  });
}
