/**
 * Application connections on a tunnel.
 *
 * TcpConn: TCP ⇄ records through the shared pipe (daemon/carrier/socket-pipe.ts): TCP is paused
 * (never dropped) while KCP's window is full and resumed on 'writable'; while the socket's own
 * buffer is full the tunnel stops reading KCP (hold), so the peer's window closes. Half-close is
 * carried as FIN both ways, an abort as RESET both ways.
 *
 * UdpConn: datagrams ⇄ DATA records, one record per datagram. A datagram that finds KCP's window
 * full is dropped and counted, as kcptube drops it. The connection expires after udp_timeout
 * seconds without traffic either way.
 */
import type { Socket } from 'node:net';
import { SocketPipe, type PipeStream } from '../carrier/socket-pipe.js';
import type { TubeCounters } from './router.js';
import type { Conn, Tunnel } from './tunnel.js';

export class TcpConn implements Conn, PipeStream {
  private readonly pipe: SocketPipe;
  /** The peer's records for the socket, waiting while it is full (the session pushes them). */
  private readonly rx: Uint8Array[] = [];
  private peerFin = false;
  private held = false;
  private blocked = false;

  constructor(
    private readonly tunnel: Tunnel,
    readonly id: number,
    socket: Socket,
    private readonly counters: TubeCounters,
    onDone: (c: TcpConn) => void,
  ) {
    tunnel.conns.set(id, this);
    this.pipe = new SocketPipe(socket, this, tunnel.kick, () => onDone(this));
  }

  // ---- the tunnel's side (Conn) ----

  data(d: Uint8Array): void {
    this.rx.push(d);
    this.pipe.onReadable();
  }

  fin(): void {
    this.peerFin = true;
    this.pipe.onReadable();
  }

  reset(): void {
    this.pipe.onReset();
  }

  writable(): void {
    this.pipe.onWritable();
  }

  tunnelEnded(): void {
    this.pipe.onReset();
  }

  // ---- the pipe's side (PipeStream) ----

  write(d: Uint8Array): number {
    const s = this.tunnel.session;
    if (!s.canWrite()) {
      if (!this.blocked) this.counters.tcpPauses++;
      this.blocked = true;
      return 0;
    }
    this.blocked = false;
    s.write(this.id, d);
    return d.length;
  }

  read(): Uint8Array | null {
    return this.rx.shift() ?? null;
  }

  readEnded(): boolean {
    return this.peerFin && this.rx.length === 0;
  }

  shutdown(): void {
    this.tunnel.session.fin(this.id);
  }

  abort(): void {
    this.tunnel.session.reset(this.id);
  }

  hold(full: boolean): void {
    if (this.held === full) return;
    this.held = full;
    this.tunnel.sinkFull(full);
  }

  release(): void {
    this.hold(false);
    this.tunnel.conns.delete(this.id);
  }
}

export class UdpConn implements Conn {
  private timer: NodeJS.Timeout;
  private active = false;
  private done = false;

  constructor(
    private readonly tunnel: Tunnel,
    readonly id: number,
    /** Sends a datagram to the application. */
    private readonly toApp: (d: Uint8Array) => void,
    timeoutMs: number,
    private readonly counters: TubeCounters,
    private readonly onDone: (c: UdpConn) => void,
  ) {
    tunnel.conns.set(id, this);
    this.timer = setInterval(() => this.expireIfIdle(), timeoutMs);
    this.timer.unref();
  }

  /** A datagram from the application. */
  fromApp(d: Uint8Array): void {
    if (this.done) return;
    this.active = true;
    const s = this.tunnel.session;
    if (!s.canWrite()) {
      this.counters.udpQueueFull++;
      return;
    }
    s.write(this.id, d);
    this.tunnel.kick();
  }

  data(d: Uint8Array): void {
    if (this.done) return;
    this.active = true;
    this.toApp(d);
  }

  fin(): void {
    this.finish();
  }

  reset(): void {
    this.finish();
  }

  writable(): void {}

  tunnelEnded(): void {
    this.finish();
  }

  /** Checked every timeout period: a period with no datagram either way ends the connection. */
  private expireIfIdle(): void {
    if (this.active) {
      this.active = false;
      return;
    }
    this.tunnel.session.fin(this.id);
    this.tunnel.kick();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.timer);
    this.tunnel.conns.delete(this.id);
    this.onDone(this);
  }
}
