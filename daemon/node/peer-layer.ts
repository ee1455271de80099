/**
 * The node's peer layer, by `--peer-protocol`: tstier's own protocol (PeerManager, still the default)
 * or EasyTier 2.6's wire (EtPeerManager), both behind the one PeerLayer seam the rest of the node uses.
 */
import type { NodeConfig } from '../config/node-config.js';
import { EtPeerManager } from '../peer/easytier/manager.js';
import type { PeerLayer } from '../peer/peer-layer.js';
import { PeerManager, type PeerManagerOptions } from '../peer/peer-manager.js';

export type PeerLayerOptions = Pick<PeerManagerOptions, 'networkName' | 'networkSecret' | 'local' | 'log' | 'timers' | 'route' | 'backoff' | 'tickMs'>;

export function createPeerLayer(cfg: NodeConfig, opts: PeerLayerOptions): PeerLayer {
  if (cfg.peerProtocol !== 'easytier') return new PeerManager(opts);
  return new EtPeerManager({
    networkName: opts.networkName, networkSecret: opts.networkSecret, local: opts.local, log: opts.log,
    encryption: cfg.disableEncryption ? 'none' : (cfg.encryptionAlgorithm ?? 'aes-gcm'),
    ...(opts.backoff ? { backoff: opts.backoff } : {}), ...(opts.tickMs ? { tickMs: opts.tickMs } : {}),
  });
}
