/**
 * TCP underlay: each packet framed by a u32 LE length of the packet that follows (EasyTier frames
 * the same way). A frame over MAX_FRAME means the stream is not ours or is corrupt: the link ends.
 * When the kernel send buffer backs up past MAX_QUEUED, packets are dropped (as a router drops),
 * rather than letting memory grow; the tunnelled TCP flows see loss and slow down.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { readU32, writeU32 } from '../wire.js';
import { addrInUse, formatUri, errorEnd, type AcceptLink, type LinkEnd, type UnderlayAddress, type UnderlayLink, type UnderlayListener } from './link.js';

const LENGTH_LEN = 4;
export const MAX_FRAME = 70_000;
const MAX_QUEUED = 4 * 1024 * 1024;
/** An inbound stream must deliver its first packet (the handshake) this soon, or it is closed. */
const FIRST_PACKET_TIMEOUT_MS = 5000;

class TcpLink implements UnderlayLink {
  readonly headroom = LENGTH_LEN;
  onPacket: (pkt: Buffer) => void = () => {};
  onClose: (reason: string, how: LinkEnd) => void = () => {};
  /** Packets dropped because the socket's send queue was full. */
  queueDrops = 0;
  private readonly frames = new FrameReader();
  private corked = false;
  private closed = false;

  /** An inbound link is offered to its listener's owner with its first packet. */
  private offer: AcceptLink | undefined;

  constructor(readonly remoteUri: string, readonly outbound: boolean, private readonly socket: Socket, offer?: AcceptLink) {
    this.offer = offer;
    if (offer) socket.setTimeout(FIRST_PACKET_TIMEOUT_MS, () => this.close());
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.ended(`socket error: ${e.message}`, errorEnd(e)));
    // A close without an error is the remote's FIN: its process closed the link or exited.
    socket.on('close', () => this.ended('remote closed', 'closed'));
  }

  send(buf: Buffer): void {
    if (this.closed) return;
    if (this.socket.writableLength > MAX_QUEUED) {
      this.queueDrops++;
      return;
    }
    writeU32(buf, 0, buf.length - LENGTH_LEN);
    // Packets sent in one tick (a TUN batch, say) leave in one writev instead of one syscall each.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(buf);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  close(): void {
    this.socket.destroy();
    this.ended('closed', 'local');
  }

  /** Reads and discards until FIRST_PACKET_TIMEOUT_MS after the refusal, then closes: no early FIN to learn from. */
  refuse(): void {
    this.onPacket = () => {};
    this.onClose = () => {};
    this.socket.setTimeout(0);
    setTimeout(() => this.close(), FIRST_PACKET_TIMEOUT_MS).unref();
  }

  private ended(reason: string, how: LinkEnd): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(reason, how);
  }

  private onData(chunk: Buffer): void {
    if (!this.frames.feed(chunk, this.dispatch)) this.close();
  }

  private readonly dispatch = (pkt: Buffer): void => {
    if (this.closed) return;
    if (this.offer) {
      const offer = this.offer;
      this.offer = undefined;
      this.socket.setTimeout(0);
      offer(this, pkt);
    } else {
      this.onPacket(pkt);
    }
  };
}

/**
 * Splits a byte stream into frames, each a u32 LE length then that many bytes. Frames are views
 * into the chunks read; only a frame split across chunks is copied, once, never a whole chunk.
 */
export class FrameReader {
  private pending: Buffer | null = null;

  /** Calls `frame` with each complete frame; false (at the culprit) when a length exceeds MAX_FRAME. */
  feed(chunk: Buffer, frame: (pkt: Buffer) => void): boolean {
    let at = 0;
    while (this.pending && at < chunk.length) {
      const p = this.pending;
      const want = p.length < LENGTH_LEN ? LENGTH_LEN : LENGTH_LEN + readU32(p, 0);
      const take = Math.min(want - p.length, chunk.length - at);
      const grown = Buffer.concat([p, chunk.subarray(at, at + take)]);
      at += take;
      this.pending = grown;
      if (grown.length < LENGTH_LEN) break;
      const len = readU32(grown, 0);
      if (len > MAX_FRAME) return false;
      if (grown.length === LENGTH_LEN + len) {
        this.pending = null;
        frame(grown.subarray(LENGTH_LEN));
      }
    }
    while (chunk.length - at >= LENGTH_LEN) {
      const len = readU32(chunk, at);
      if (len > MAX_FRAME) return false;
      if (chunk.length - at - LENGTH_LEN < len) break;
      frame(chunk.subarray(at + LENGTH_LEN, at + LENGTH_LEN + len));
      at += LENGTH_LEN + len;
    }
    if (at < chunk.length) this.pending = Buffer.from(chunk.subarray(at));
    return true;
  }
}

export class TcpListener implements UnderlayListener {
  private readonly sockets = new Set<Socket>();
  boundUri: string;

  private constructor(readonly uri: string, private readonly server: Server) {
    this.boundUri = uri;
  }

  static open(uri: string, addr: UnderlayAddress, accept: AcceptLink): Promise<TcpListener> {
    const server = createServer();
    const listener = new TcpListener(uri, server);
    server.on('connection', (socket) => {
      listener.sockets.add(socket);
      socket.on('close', () => listener.sockets.delete(socket));
      new TcpLink(formatUri('tcp', socket.remoteAddress ?? '?', socket.remotePort ?? 0), false, socket, accept);
    });
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? addrInUse(uri, e) : e));
      server.listen(addr.port, addr.host, () => {
        server.removeAllListeners('error');
        const a = server.address();
        if (a && typeof a === 'object') listener.boundUri = formatUri('tcp', addr.host, a.port);
        server.on('error', () => {});
        resolve(listener);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function dialTcp(uri: string, addr: UnderlayAddress): Promise<UnderlayLink> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: addr.host, port: addr.port });
    const onError = (e: Error): void => {
      socket.destroy();
      reject(e);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(new TcpLink(uri, true, socket));
    });
  });
}
