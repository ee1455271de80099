/**
 * What the peer layer needs from an underlay (UDP, TCP): a bidirectional packet pipe to one
 * remote, and listeners that produce such pipes. Sessions write into buffers that leave `headroom`
 * bytes in front, so each underlay adds its own header without copying the packet.
 */
import { TstierError } from '../../errors.js';

export interface UnderlayLink {
  readonly remoteUri: string;
  /** True if we dialled this link. */
  readonly outbound: boolean;
  readonly headroom: number;
  /** Sends one packet; the first `headroom` bytes of `buf` are this link's to fill. Never throws. */
  send(buf: Buffer): void;
  /** Closes the link; a link that never sent anything closes silently (no goodbye on the wire). */
  close(): void;
  /**
   * Drops a link we refuse (its first packet was no valid handshake) without telling the remote
   * anything: no answer, and for a stream not even a close before its listener's half-open deadline.
   */
  refuse(): void;
  /** Set by the owner: one packet received (a view, valid during the call). */
  onPacket: (pkt: Buffer) => void;
  /** Set by the owner: the link ended (remote closed, error, or our close). Called once. */
  onClose: (reason: string, how: LinkEnd) => void;
}

export interface UnderlayListener {
  readonly uri: string;
  /** The URI with the port actually bound (differs from `uri` when that asked for port 0). */
  readonly boundUri: string;
  close(): Promise<void>;
}

/** A new inbound link and its first packet; the owner either adopts it or closes it. */
export type AcceptLink = (link: UnderlayLink, first: Buffer) => void;

export interface UnderlayAddress {
  scheme: 'udp' | 'tcp' | 'faketcp';
  host: string;
  port: number;
}

/** Parses "udp://host:port" / "tcp://host:port" / "faketcp://host:port" (IPv6 hosts in brackets); errors name the key. */
export function parseUnderlayUri(uri: string, key: string): UnderlayAddress {
  const m = /^(udp|tcp|faketcp):\/\/(\[[0-9A-Fa-f:.]+\]|[^:/[\]]+):(\d{1,5})\/?$/.exec(uri.trim());
  const port = m ? Number(m[3]) : -1;
  if (!m || port > 65535) {
    throw new TstierError('TSTIER_E_BAD_CONFIG', `${key}: "${uri}" is not udp://, tcp:// or faketcp://host:port`);
  }
  return { scheme: m[1] as UnderlayAddress['scheme'], host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

export function formatUri(scheme: string, host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Why a listener could not bind, as one line naming it: TSTIER_E_ADDR_IN_USE for a taken port,
 * TSTIER_E_LISTEN for anything else (an address not on this host, a privileged port, ...).
 */
export function listenError(uri: string, cause: unknown): TstierError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return new TstierError('TSTIER_E_ADDR_IN_USE', `listener ${uri}: address already in use`, { cause });
  const why = code === 'EADDRNOTAVAIL' ? 'address not available on this host (EADDRNOTAVAIL)'
    : code === 'EACCES' ? 'permission denied (EACCES; ports below 1024 need CAP_NET_BIND_SERVICE)'
      : `cannot listen (${code ?? (cause instanceof Error ? cause.message : String(cause))})`;
  return new TstierError('TSTIER_E_LISTEN', `listener ${uri}: ${why}`, { cause });
}

/**
 * How a link ended, as far as the far end's process is concerned:
 *  - 'local': we closed it;
 *  - 'failed': an error or silence; the remote may well be alive (an outage);
 *  - 'closed': the remote closed it (a goodbye, a TCP FIN or RST): that link is done, its node may live on;
 *  - 'refused': the remote's port answered ICMP port unreachable: nothing listens there any more, so
 *    the process behind it is gone (killed, or restarted on another port).
 */
export type LinkEnd = 'local' | 'failed' | 'closed' | 'refused';

/** A socket error's LinkEnd. */
export function errorEnd(e: NodeJS.ErrnoException): LinkEnd {
  if (e.code === 'ECONNREFUSED') return 'refused';
  return e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'closed' : 'failed';
}
