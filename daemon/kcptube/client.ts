/**
 * kcptube client mode: TCP and UDP accepted on listen_port; each TCP connection and each UDP
 * source gets its own tunnel (its own session and UDP flow), unless mux_tunnels=N asks for N
 * shared tunnels, made up front and used in turn.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { KcptubeSide } from './config.js';
import { TunnelDialer, resolveDestination } from './dialer.js';
import type { TubeContext } from './log.js';
import { listen } from './listen.js';
import { capConnections, connectionBudget } from '../io/fd-budget.js';
import { TcpConn, UdpConn } from './pipes.js';
import type { Tunnel } from './tunnel.js';
import { PROTO_TCP, PROTO_UDP } from './wire.js';

export class KcptubeClient {
  private dialer: TunnelDialer | null = null;
  private readonly tcp: Server[] = [];
  private readonly udp: UdpSocket[] = [];
  private readonly udpConns = new Map<string, UdpConn>();
  private readonly mux: Tunnel[] = [];
  private muxNext = 0;
  private nextConn = 1;
  private stopped = false;

  constructor(
    private readonly side: KcptubeSide,
    private readonly ctx: TubeContext,
  ) {}

  async start(): Promise<void> {
    const dest = await resolveDestination(this.side);
    this.dialer = new TunnelDialer(this.side, dest, this.ctx);
    const hosts = this.side.listenOn.length > 0 ? this.side.listenOn : [this.side.ipv4Only ? '0.0.0.0' : '::'];
    const port = this.side.listenPorts!.start;
    try {
      for (const host of hosts) await this.listenOn(host, port);
    } catch (e) {
      this.stop();
      throw e;
    }
    for (let i = 0; i < this.side.muxTunnels; i++) this.mux.push(this.dialMux());
    this.ctx.log.line(`client listening on ${hosts.join(', ')} port ${port} (TCP and UDP), server ${dest.address} ports ${this.side.destinationPorts!.start}-${this.side.destinationPorts!.end}`);
  }

  /** TCP and UDP on one address. */
  private async listenOn(host: string, port: number): Promise<void> {
    const tcp = createServer({ allowHalfOpen: true }, (s) => this.onTcp(s)); // FIN is carried, not answered
    await listen((cb) => tcp.listen({ host, port, ipv6Only: this.side.ipv6Only }, cb), tcp, host, port);
    tcp.on('error', (e) => this.ctx.ioErrors.record(`accept ${host}:${port}`, e));
    // Without mux_tunnels each connection costs a second descriptor, its own tunnel's UDP socket.
    const budget = connectionBudget(this.side.muxTunnels);
    capConnections(tcp, this.side.muxTunnels > 0 ? budget : Math.floor(budget / 2),
      (e) => this.ctx.ioErrors.record(`accept ${host}:${port}`, e));
    this.tcp.push(tcp);
    const udp = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: this.side.ipv6Only });
    try {
      await listen((cb) => udp.bind(port, host, cb), udp, host, port);
    } catch (e) {
      udp.close();
      throw e;
    }
    udp.on('message', (msg, rinfo) => this.onUdp(udp, msg, rinfo));
    udp.on('error', (e) => this.ctx.ioErrors.record(`udp ${host}:${port}`, e));
    this.udp.push(udp);
  }

  private dialMux(): Tunnel {
    return this.dialer!.dial({
      onEnded: (t, reason) => {
        this.ctx.log.line(`mux tunnel ${t.sid.toString(16)} ended: ${reason}`);
        const i = this.mux.indexOf(t);
        if (i >= 0 && !this.stopped) this.mux[i] = this.dialMux();
      },
    });
  }

  /** A tunnel for a new connection: a mux one in turn, or a fresh one that ends with it. */
  private tunnelFor(): { tunnel: Tunnel; conn: number; own: boolean } {
    if (this.mux.length > 0) {
      const tunnel = this.mux[this.muxNext++ % this.mux.length]!;
      return { tunnel, conn: this.nextConn++, own: false };
    }
    const tunnel = this.dialer!.dial({ onEnded: () => undefined });
    return { tunnel, conn: 1, own: true };
  }

  private onTcp(socket: Socket): void {
    if (this.stopped) return void socket.destroy();
    const { tunnel, conn, own } = this.tunnelFor();
    tunnel.session.open(conn, PROTO_TCP);
    new TcpConn(tunnel, conn, socket, this.ctx.counters, () => {
      if (own) tunnel.finish();
      else tunnel.kick();
    });
    tunnel.kick();
  }

  private onUdp(udp: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.stopped) return;
    const key = `${udp.address().address}|${rinfo.address}|${rinfo.port}`;
    let c = this.udpConns.get(key);
    if (c === undefined) {
      const { tunnel, conn, own } = this.tunnelFor();
      tunnel.session.open(conn, PROTO_UDP);
      c = new UdpConn(tunnel, conn, (d) => this.sendTo(udp, d, rinfo), this.side.udpTimeout * 1000,
        this.ctx.counters, () => {
          this.udpConns.delete(key);
          if (own) tunnel.finish();
        });
      this.udpConns.set(key, c);
    }
    c.fromApp(msg);
  }

  /** A datagram back to a UDP application; a socket closed by stop() only counts an error. */
  private sendTo(udp: UdpSocket, d: Uint8Array, to: RemoteInfo): void {
    try {
      udp.send(d, to.port, to.address);
    } catch (e) {
      this.ctx.ioErrors.record('udp send', e as Error);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.tcp) t.close();
    this.dialer?.closeAll();
    const udp = this.udp.splice(0);
    setImmediate(() => {
      for (const u of udp) u.close();
    });
  }
}
