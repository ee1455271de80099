/**
 * The accepting side of tunnels (server mode, and a relay's [listener]): a UDP socket on every
 * port of listen_port on every listen_on address, one SessionRouter behind all of them. A session
 * is found by its id from any source; its replies leave through the socket and to the address of
 * its newest authenticated datagram. HELLO is answered with our port range, so clients hop within
 * it. Idle tunnels without connections are swept. With stun_server, the public address of the
 * (single) listening port is learnt, printed, and written to <log_path>/ip_address.txt.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { KcptubeSide } from './config.js';
import { SOCKET_BUFFERS } from './dialer.js';
import { TunnelCipher } from './crypt.js';
import { listen } from './listen.js';
import type { TubeContext } from './log.js';
import { SessionRouter } from './router.js';
import { TubeSession, type TubeEvent } from './session.js';
import { buildBindingRequest, isStun, parseBindingResponse } from './stun.js';
import { nowMs } from '../io/clock.js';
import { Tunnel, type TunnelOwner } from './tunnel.js';
import { TubeSender, type Recycle } from './udp-out.js';

interface ServerPath {
  /** The way out through the socket the datagram arrived on. */
  out: TubeSender;
  localPort: number;
  address: string;
  port: number;
}

/** A tunnel with no connections that heard nothing this long is closed. */
const IDLE_TUNNEL_MS = 30_000;
const SWEEP_MS = 5000;
const STUN_RETRY_MS = 2000;
const STUN_REFRESH_MS = 60_000;
const STUN_DEFAULT_PORT = 3478;

/** "host", "host:port", "v6addr" or "[v6addr]:port". */
export function splitHostPort(spec: string, defaultPort: number): { host: string; port: number } {
  if (isIP(spec) !== 0) return { host: spec, port: defaultPort };
  const m = /^\[(.+)\]:(\d+)$/.exec(spec) ?? /^([^:]+):(\d+)$/.exec(spec);
  return m === null ? { host: spec.replace(/^\[(.*)\]$/, '$1'), port: defaultPort } : { host: m[1]!, port: Number(m[2]) };
}

export interface AcceptHooks {
  /** A new tunnel (its first datagram is being processed). */
  onTunnel(tunnel: Tunnel): void;
  /** open events (hello is answered here). */
  onEvent(tunnel: Tunnel, e: TubeEvent): void;
  onEnded(tunnel: Tunnel, reason: string): void;
}

export class Acceptor implements TunnelOwner {
  readonly cipher: TunnelCipher;
  readonly router: SessionRouter<ServerPath>;
  private readonly sockets: UdpSocket[] = [];
  private readonly tunnels = new Map<number, Tunnel>();
  /** The local port each session last arrived on, to log its moves. */
  private readonly arrivedOn = new Map<number, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private stunTimer: NodeJS.Timeout | undefined;
  private stunTxid = randomBytes(12);
  private stunTarget: { address: string; port: number } | null = null;
  publicAddress = '';

  constructor(
    private readonly side: KcptubeSide,
    private readonly ctx: TubeContext,
    private readonly hooks: AcceptHooks,
  ) {
    this.cipher = TunnelCipher.fromPassword(side.encryption, side.password);
    this.router = new SessionRouter<ServerPath>(this.cipher, ctx.counters, (sid, _path, now) => {
      const session = new TubeSession({ sid, cipher: this.cipher, side, snmp: ctx.snmp, now });
      const tunnel = new Tunnel(session, (d, sent) => this.sendFor(sid, d, sent), this);
      this.tunnels.set(sid, tunnel);
      ctx.log.line(`session ${sid.toString(16)} created`);
      hooks.onTunnel(tunnel);
      return session;
    });
  }

  get tunnelCount(): number {
    return this.tunnels.size;
  }

  async start(): Promise<void> {
    const range = this.side.listenPorts!;
    const hosts = this.side.listenOn.length > 0 ? this.side.listenOn : [this.side.ipv4Only ? '0.0.0.0' : '::'];
    try {
      for (const host of hosts) {
        for (let port = range.start; port <= range.end; port++) await this.bind(host, port);
      }
    } catch (e) {
      this.stop();
      throw e;
    }
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
    if (this.side.stunServer !== '') await this.startStun();
  }

  private async bind(host: string, port: number): Promise<void> {
    const v6 = isIP(host) === 6 || (isIP(host) === 0 && !this.side.ipv4Only);
    const s = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: this.side.ipv6Only, ...SOCKET_BUFFERS });
    try {
      await listen((cb) => s.bind(port, host, cb), s, host, port);
    } catch (e) {
      s.close();
      throw e;
    }
    // Send errors (no route, address gone) are not fatal: KCP retransmits once the path is back.
    const onError = (e: Error): void => this.ctx.ioErrors.record(`udp ${host}:${port}`, e);
    s.on('error', onError);
    const out = new TubeSender(s, onError);
    s.on('message', (msg, rinfo) => this.onMessage(out, port, msg, rinfo));
    this.sockets.push(s);
  }

  private onMessage(out: TubeSender, localPort: number, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.stunTarget !== null && rinfo.port === this.stunTarget.port && isStun(msg)) {
      this.onStun(msg);
      return;
    }
    const r = this.router.input(msg, { out, localPort, address: rinfo.address, port: rinfo.port }, nowMs());
    if (r === null) return;
    const sid = r.session.sid;
    if (this.arrivedOn.get(sid) !== localPort) {
      this.arrivedOn.set(sid, localPort);
      this.ctx.log.line(`session ${sid.toString(16)} arrives on port ${localPort} from ${rinfo.address}:${rinfo.port}`);
    }
    this.tunnels.get(sid)?.kick();
  }

  private sendFor(sid: number, d: Uint8Array, sent: Recycle): void {
    const p = this.router.sessions.get(sid)?.path;
    if (p !== undefined) p.out.send(d, p.port, p.address, sent);
  }

  onEvent(tunnel: Tunnel, e: TubeEvent): void {
    if (e.type === 'hello') {
      const r = this.side.listenPorts!;
      tunnel.session.sendHelloReply({
        portStart: r.start,
        portEnd: r.end,
        outboundBps: this.side.outboundBandwidth,
        inboundBps: this.side.inboundBandwidth,
      });
      tunnel.kick();
      return;
    }
    this.hooks.onEvent(tunnel, e);
  }

  onEnded(tunnel: Tunnel, reason: string): void {
    this.tunnels.delete(tunnel.sid);
    this.router.delete(tunnel.sid);
    this.arrivedOn.delete(tunnel.sid);
    this.ctx.log.line(`session ${tunnel.sid.toString(16)} ended: ${reason}`);
    this.hooks.onEnded(tunnel, reason);
  }

  private sweep(): void {
    const now = nowMs();
    for (const t of [...this.tunnels.values()]) {
      if (t.conns.size === 0 && now - t.session.lastHeard > Math.max(IDLE_TUNNEL_MS, this.side.udpTimeout * 1000)) t.close();
    }
  }

  // ---- STUN ----

  private async startStun(): Promise<void> {
    const { host, port } = splitHostPort(this.side.stunServer, STUN_DEFAULT_PORT);
    try {
      const r = isIP(host) !== 0 ? { address: host } : await lookup(host, { family: this.side.ipv6Only ? 6 : 4 });
      this.stunTarget = { address: r.address, port };
    } catch (e) {
      this.ctx.log.line(`stun_server: cannot resolve ${host}: ${(e as Error).message}`);
      return;
    }
    this.queryStun();
  }

  private queryStun(): void {
    const t = this.stunTarget;
    if (t === null || this.sockets.length === 0) return;
    const v4 = isIP(t.address) === 4;
    const s = this.sockets.find((x) => (x.address().family === 'IPv4') === v4) ?? this.sockets[0]!;
    // A dual-stack socket reaches IPv4 through the mapped form.
    const to = v4 && s.address().family === 'IPv6' ? `::ffff:${t.address}` : t.address;
    this.stunTxid = randomBytes(12);
    s.send(buildBindingRequest(this.stunTxid), t.port, to);
    // Retry soon until an answer comes; onStun pushes the next query out to the refresh period.
    this.stunTimer = setTimeout(() => this.queryStun(), this.publicAddress === '' ? STUN_RETRY_MS : STUN_REFRESH_MS);
    this.stunTimer.unref();
  }

  private onStun(msg: Buffer): void {
    const a = parseBindingResponse(msg, this.stunTxid);
    if (a === null) return;
    const text = a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    if (this.stunTimer) clearTimeout(this.stunTimer);
    this.stunTimer = setTimeout(() => this.queryStun(), STUN_REFRESH_MS);
    this.stunTimer.unref();
    if (text === this.publicAddress) return;
    this.publicAddress = text;
    // The file first: whoever reads the printed line may look for it at once.
    if (this.side.logPath !== '') {
      try {
        writeFileSync(join(this.side.logPath, 'ip_address.txt'), `${text}\n`);
      } catch (e) {
        this.ctx.log.line(`cannot write ip_address.txt: ${(e as Error).message}`);
      }
    }
    process.stdout.write(`STUN public address: ${text}\n`);
    this.ctx.log.line(`STUN public address: ${text}`);
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.stunTimer) clearTimeout(this.stunTimer);
    for (const t of [...this.tunnels.values()]) t.close();
    setImmediate(() => {
      for (const s of this.sockets) s.close();
      this.sockets.length = 0;
    });
  }
}
