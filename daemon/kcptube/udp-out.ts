/**
 * Datagrams out of one of kcptube's dgram sockets: a tick's datagrams to one address leave in GSO
 * runs, or sendmmsg batches, through the peer addon (udp-gso.ts) instead of one dgram send each; a
 * peer reads the same datagrams (its kernel cuts a run back). Reads stay dgram's: the addon's batch
 * reader holds a fixed buffer per socket (1 MiB with GRO), and kcptube opens a socket per tunnel
 * and per listening port. Without the addon, or before the socket is bound, datagrams go one by one.
 * A datagram a batch took (the kernel copied it) goes back to its sender's `sent`, so a session reuses
 * its buffer; one sent through dgram is not, since dgram reads it later.
 */
import type { Socket } from 'node:dgram';
import { DatagramBatcher, GsoSocket, dgramFd } from '../peer/underlay/udp-gso.js';

/** Takes back a datagram the kernel has copied, for its buffer to be reused. */
export type Recycle = (datagram: Uint8Array) => void;

export class TubeSender {
  /** undefined until the socket has an fd (dgram binds on the first send); null: no addon. */
  private gso: GsoSocket | null | undefined;
  /**
   * The batcher for the address and sender of the latest send; another address or sender (a shared
   * listening socket carries several tunnels) flushes it first, keeping order.
   */
  private batcher: DatagramBatcher<Uint8Array> | null = null;
  private host = '';
  private port = 0;
  private sent: Recycle | undefined;

  constructor(private readonly socket: Socket, private readonly onError: (e: NodeJS.ErrnoException) => void) {}

  /** Sends `d` to host:port; `sent` gets it back if a batch took it. */
  send(d: Uint8Array, port: number, host: string, sent?: Recycle): void {
    if (this.gso === undefined && dgramFd(this.socket) !== undefined) this.gso = GsoSocket.for(this.socket, true, false);
    if (!this.gso) return this.plain(d, port, host);
    if (this.batcher === null || port !== this.port || host !== this.host || sent !== this.sent) {
      this.batcher?.flush();
      this.host = host;
      this.port = port;
      this.sent = sent;
      this.batcher = new DatagramBatcher<Uint8Array>(this.gso, host, port, (b) => this.plain(b, port, host), this.onError, sent);
    }
    this.batcher.push(d);
  }

  private plain(d: Uint8Array, port: number, host: string): void {
    try {
      this.socket.send(d, port, host);
    } catch (e) {
      this.onError(e as NodeJS.ErrnoException); // the socket closed under the session
    }
  }
}
