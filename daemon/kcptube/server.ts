/**
 * kcptube server mode: tunnels accepted on the listen_port range; each OPEN connects to
 * destination_address:destination_port with the connection's protocol (TCP or UDP).
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { KcptubeSide } from './config.js';
import { Acceptor } from './acceptor.js';
import { resolveDestination, type Destination } from './dialer.js';
import type { TubeContext } from './log.js';
import { TcpConn, UdpConn } from './pipes.js';
import type { TubeEvent } from './session.js';
import type { Tunnel } from './tunnel.js';
import { PROTO_TCP, PROTO_UDP } from './wire.js';

export class KcptubeServer {
  readonly acceptor: Acceptor;
  private dest: Destination | null = null;

  constructor(
    private readonly side: KcptubeSide,
    private readonly ctx: TubeContext,
  ) {
    this.acceptor = new Acceptor(side, ctx, {
      onTunnel: () => undefined,
      onEvent: (t, e) => this.onEvent(t, e),
      onEnded: () => undefined,
    });
  }

  async start(): Promise<void> {
    this.dest = await resolveDestination(this.side);
    await this.acceptor.start();
    const r = this.side.listenPorts!;
    this.ctx.log.line(`server listening on ports ${r.start}-${r.end}, forwarding to ${this.dest.address}:${this.side.destinationPorts!.start}`);
  }

  private onEvent(tunnel: Tunnel, e: TubeEvent): void {
    if (e.type !== 'open' || this.dest === null) return;
    const port = this.side.destinationPorts!.start;
    const host = this.dest.address;
    if (e.protocol === PROTO_TCP) {
      const socket = connect({ host, port, allowHalfOpen: true });
      // Refused, unreachable, out of descriptors: TcpConn resets the connection at once; say why.
      const onDialError = (err: Error): void => this.ctx.ioErrors.record(`connect ${host}:${port}`, err);
      socket.once('error', onDialError);
      socket.once('connect', () => socket.off('error', onDialError));
      new TcpConn(tunnel, e.conn, socket, this.ctx.counters, () => tunnel.kick());
    } else if (e.protocol === PROTO_UDP) {
      const sock = createSocket(this.dest.family === 6 ? 'udp6' : 'udp4');
      sock.on('error', (err) => this.ctx.ioErrors.record(`udp to ${host}:${port}`, err));
      const conn = new UdpConn(tunnel, e.conn, (d) => {
        try {
          sock.send(d, port, host);
        } catch (err) {
          this.ctx.ioErrors.record(`udp to ${host}:${port}`, err as Error);
        }
      }, this.side.udpTimeout * 1000, this.ctx.counters, () => sock.close());
      sock.on('message', (msg) => conn.fromApp(msg));
    } else {
      tunnel.session.reset(e.conn);
      tunnel.kick();
    }
  }

  stop(): void {
    this.acceptor.stop();
  }
}
