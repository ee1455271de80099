/**
 * faketcp:// underlay: the peer protocol's packets as they go over udp://, one per fake TCP segment
 * (daemon/faketcp/), for networks that drop or throttle UDP. Each link is one fake connection with
 * a real kernel handshake under it, so no header of our own is needed: the 4-tuple tells links apart,
 * and the kernel connection's FIN or RST is the goodbye (either end closing it ends the link).
 */
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { TstierError } from '../../errors.js';
import { FakeTcpConn } from '../../faketcp/dial.js';
import { FakeTcpListener } from '../../faketcp/listen.js';
import type { PacketFrom } from '../../faketcp/packet-socket.js';
import { formatUri, type AcceptLink, type LinkEnd, type UnderlayAddress, type UnderlayLink, type UnderlayListener } from './link.js';

class FakeTcpLink implements UnderlayLink {
  readonly headroom = 0;
  onPacket: (pkt: Buffer) => void = () => {};
  onClose: (reason: string, how: LinkEnd) => void = () => {};
  private closed = false;

  constructor(
    readonly remoteUri: string,
    readonly outbound: boolean,
    private readonly transmit: (buf: Buffer) => void,
    private readonly hangUp: () => void,
  ) {}

  send(buf: Buffer): void {
    if (!this.closed) this.transmit(buf);
  }

  close(): void {
    if (this.closed) return;
    this.hangUp();
    this.ended('closed', 'local');
  }

  /**
   * The handshake already happened in the kernel, so a refusal cannot be silent: the connection is
   * closed like any other (the remote sees a FIN, as from a TCP server that closed at once).
   */
  refuse(): void {
    this.close();
  }

  ended(reason: string, how: LinkEnd): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(reason, how);
  }
}

export class FakeTcpUnderlayListener implements UnderlayListener {
  readonly boundUri: string;
  private readonly links = new Map<PacketFrom, FakeTcpLink>();

  private constructor(readonly uri: string, private readonly l: FakeTcpListener, accept: AcceptLink) {
    this.boundUri = formatUri('faketcp', l.address().address, l.address().port);
    l.on('message', (msg: Buffer, from: PacketFrom) => {
      const link = this.links.get(from);
      if (link) return link.onPacket(msg);
      const fresh: FakeTcpLink = new FakeTcpLink(formatUri('faketcp', from.address, from.port), false,
        (buf) => l.sendTo(from, buf), () => {
          this.links.delete(from);
          l.hangUp(from);
        });
      this.links.set(from, fresh);
      accept(fresh, msg);
    });
    l.on('peerclose', (from: PacketFrom) => {
      const link = this.links.get(from);
      this.links.delete(from);
      link?.ended('remote closed the connection', 'closed');
    });
    // The raw socket failed: the listener is gone, and its links with it.
    l.on('close', (why: string) => {
      for (const link of [...this.links.values()]) link.ended(`listener failed: ${why}`, 'failed');
      this.links.clear();
    });
  }

  static async open(uri: string, addr: UnderlayAddress, accept: AcceptLink): Promise<FakeTcpUnderlayListener> {
    return new FakeTcpUnderlayListener(uri, await FakeTcpListener.listen(addr.host, addr.port, `listener ${uri}`), accept);
  }

  /** Links this listener routes segments to. */
  get linkCount(): number {
    return this.links.size;
  }

  async close(): Promise<void> {
    for (const link of [...this.links.values()]) link.close();
    await new Promise<void>((resolve) => this.l.close(resolve));
  }
}

export async function dialFakeTcp(uri: string, addr: UnderlayAddress): Promise<UnderlayLink> {
  let host = addr.host;
  if (!isIPv4(host)) {
    try {
      host = (await lookup(host, { family: 4 })).address;
    } catch (e) {
      throw new TstierError('TSTIER_E_BAD_CONFIG', `${uri}: cannot resolve ${addr.host} to an IPv4 address`, { cause: e });
    }
  }
  const conn = await FakeTcpConn.dial(host, addr.port, uri);
  const link = new FakeTcpLink(uri, true, (buf) => conn.send(buf), () => conn.close());
  conn.on('message', (msg: Buffer) => link.onPacket(msg));
  conn.once('close', (why: string, how: 'closed' | 'failed') => link.ended(why, how));
  return link;
}
