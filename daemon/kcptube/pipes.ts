/**
 * Application connections on a tunnel.
 *
 * TcpConn: TCP ⇄ records, with back-pressure both ways. TCP is paused (never dropped) while KCP's
 * window is full and resumed on 'writable'; while the socket's own buffer is full the tunnel stops
 * reading KCP, so the peer's window closes. Half-close is carried as FIN both ways.
 *
 * UdpConn: datagrams ⇄ DATA records, one record per datagram. A datagram that finds KCP's window
 * full is dropped and counted, as kcptube drops it. The connection expires after udp_timeout
 * seconds without traffic either way.
 */
import type { Socket } from 'node:net';
import type { TubeCounters } from './router.js';
import type { Conn, Tunnel } from './tunnel.js';

export class TcpConn implements Conn {
  private localEnded = false;
  private remoteEnded = false;
  private full = false;
  private done = false;

  constructor(
    private readonly tunnel: Tunnel,
    readonly id: number,
    private readonly socket: Socket,
    counters: TubeCounters,
    private readonly onDone: (c: TcpConn) => void,
  ) {
    tunnel.conns.set(id, this);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      const s = tunnel.session;
      s.write(id, chunk);
      if (!s.canWrite()) {
        socket.pause();
        counters.tcpPauses++;
      }
      tunnel.kick();
    });
    socket.on('end', () => {
      this.localEnded = true;
      tunnel.session.fin(id);
      tunnel.kick();
      this.maybeDone();
    });
    socket.on('drain', () => this.setFull(false));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      if (!this.done) {
        if (!(this.localEnded && this.remoteEnded)) tunnel.session.reset(id);
        this.finish();
      }
    });
  }

  data(d: Uint8Array): void {
    if (this.done || this.socket.destroyed) return;
    if (!this.socket.write(d)) this.setFull(true);
  }

  fin(): void {
    this.remoteEnded = true;
    if (!this.socket.destroyed) this.socket.end();
    this.maybeDone();
  }

  reset(): void {
    this.abort();
  }

  writable(): void {
    if (!this.localEnded && !this.done) this.socket.resume();
  }

  abort(): void {
    if (!this.socket.destroyed) this.socket.destroy();
    this.finish();
  }

  private setFull(full: boolean): void {
    if (this.full === full) return;
    this.full = full;
    this.tunnel.sinkFull(full);
  }

  private maybeDone(): void {
    if (this.localEnded && this.remoteEnded && !this.done) {
      // Both FINs crossed: the socket closes once its last bytes are flushed.
      this.socket.once('finish', () => this.socket.destroy());
      if (this.socket.writableFinished) this.socket.destroy();
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.setFull(false);
    this.tunnel.conns.delete(this.id);
    this.onDone(this);
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

  abort(): void {
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
