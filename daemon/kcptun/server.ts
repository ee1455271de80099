/**
 * kcptun server: one UDP socket per --listen port (a `host:min-max` range listens on every port),
 * sessions keyed by the source address with kcp-go's Listener rules (docs/kcptun-wire.md §7), a smux server on
 * each, and every accepted stream piped to a new TCP connection to --target.
 */
import { connect, type Socket } from 'node:net';
import { deriveKcptunKey } from '../transport/crypt/kdf.js';
import { newDatagramCrypt, OPEN_TOO_SHORT, type DatagramCrypt } from '../transport/crypt/datagram.js';
import { KcptunSession } from '../transport/session/kcptun-session.js';
import { peekConvSn } from '../transport/session/route.js';
import { parseHostPortRange, type KcptunConfig } from './config.js';
import { bindUdp, KcptunProcess, logSettings, resolveHost, sessionConfig, sessionSender } from './common.js';
import { nowMs } from '../io/clock.js';
import { SessionDriver, streamClosedLine } from './driver.js';
import { FakeTcpListener } from '../faketcp/listen.js';
import type { PacketFrom, PacketSocket } from '../faketcp/packet-socket.js';

/**
 * A memory guard against floods of forged-but-valid first packets (kcp-go's only limit is its
 * 128-deep accept queue, which kcptun drains at once).
 */
const MAX_SESSIONS = 8192;

export class KcptunServer {
  readonly proc: KcptunProcess;
  private readonly pass: Uint8Array;
  /** Opens datagrams to route them; sessions seal with their own instance. */
  private readonly opener: DatagramCrypt;
  private readonly sockets: PacketSocket[] = [];
  private readonly sessions = new Map<string, SessionDriver>();
  /** The peeked conv and sn of the datagram being routed. */
  private readonly route = { conv: 0, sn: 0 };
  private lastFrom: PacketFrom | null = null;
  private lastKey = '';
  /** Bound UDP ports, in listen order. */
  readonly ports: number[] = [];

  constructor(readonly cfg: KcptunConfig) {
    this.proc = new KcptunProcess(cfg);
    this.pass = deriveKcptunKey(cfg.key);
    this.opener = newDatagramCrypt(cfg.crypt, this.pass);
  }

  async start(): Promise<number[]> {
    const cfg = this.cfg;
    const listen = parseHostPortRange('--listen', cfg.localaddr);
    const host = await resolveHost(listen.host, true);
    try {
      for (let port = listen.minPort; port <= listen.maxPort; port++) {
        // --tcp: fake TCP segments on a real TCP listener's port instead of UDP datagrams.
        const sock: PacketSocket = cfg.tcp ? await FakeTcpListener.listen(host, port, '--listen')
          : await bindUdp(host, port, cfg, this.proc.ioErrors);
        this.sockets.push(sock);
        this.ports.push(sock.address().port);
        sock.on('message', (msg: Buffer, from: PacketFrom) => this.onDatagram(sock, msg, from));
      }
    } catch (e) {
      for (const s of this.sockets) s.close();
      throw e;
    }
    const shown = this.ports.length === 1 ? `${host}:${this.ports[0]}` : `${host}:${this.ports[0]}-${this.ports.at(-1)}`;
    logSettings(this.proc, [['listening on', shown], ['target', cfg.remoteaddr]]);
    this.proc.log.line('initiating key derivation');
    this.proc.log.line('key derivation done');
    this.proc.startReporting();
    return this.ports;
  }

  private onDatagram(sock: PacketSocket, msg: Buffer, from: PacketFrom): void {
    const snmp = this.proc.snmp;
    const off = this.opener.open(msg, msg.length);
    if (off < 0) {
      if (off === OPEN_TOO_SHORT) snmp.InErrs++;
      else snmp.InCsumErrors++;
      return;
    }
    const key = this.keyOf(from);
    const hasConv = peekConvSn(msg, off, msg.length - this.opener.tailroom, this.route);
    let driver = this.sessions.get(key);
    if (driver) {
      if (!hasConv || this.route.conv === driver.session.conv) {
        driver.inputOpened(msg, off);
        return;
      }
      // Another conv from the same address: a restarted client takes over with sn 0.
      if (this.route.sn !== 0) return;
      driver.close();
    }
    // Only a conversation's first datagram (sn 0) opens a session. kcp-go opens one for any conv, so
    // a client that outlived a server restart gets a session that acknowledges its segments but can
    // never deliver them (KCP waits for sn 0), and stays up on the new server's NOPs: with kcptun
    // both ends, new flows hang for over a minute. Unanswered, the client's smux keepalive ends its
    // session within the timeout and the next flow dials a new one.
    if (!hasConv || this.route.sn !== 0 || this.sessions.size >= MAX_SESSIONS) return;
    driver = this.newSession(sock, from, this.route.conv, key);
    driver.inputOpened(msg, off);
  }

  /**
   * The session key of a source address. The batch socket and fake TCP hand out one `from` object per
   * source (never changed), so the text is built once per source, not once per datagram.
   */
  private keyOf(from: PacketFrom): string {
    if (from !== this.lastFrom) {
      this.lastKey = `${from.address}:${from.port}`;
      this.lastFrom = from;
    }
    return this.lastKey;
  }

  private newSession(sock: PacketSocket, from: PacketFrom, conv: number, key: string): SessionDriver {
    const cfg = this.cfg;
    const session = new KcptunSession(sessionConfig(cfg, this.pass, conv), this.proc.snmp, nowMs());
    const out = sessionSender(cfg, sock, from.port, from.address, this.proc.ioErrors, (d) => session.recycleTransmit(d));
    const driver = new SessionDriver(session, out.send, {
      onAccept: (drv, sid) => this.dialTarget(drv, sid, key),
      onClosed: (drv, error) => {
        out.close();
        this.proc.sessionClosed();
        if (error) this.proc.log.line(`session ${key} closed: ${error.message}`);
        if (this.sessions.get(key) === drv) this.sessions.delete(key);
      },
      onStreamClosed: (_d, sid, how) => this.proc.log.stream(streamClosedLine(sid, how)),
    }, cfg.closewait * 1000);
    this.sessions.set(key, driver);
    this.proc.sessionOpened(false);
    this.proc.log.stream(`remote address: ${key} conv: ${conv}`);
    return driver;
  }

  private dialTarget(driver: SessionDriver, sid: number, key: string): void {
    const target = this.cfg.remoteaddr;
    let socket: Socket;
    // allowHalfOpen: the target's FIN travels as an smux FIN while the request side stays open.
    if (target.startsWith('/')) socket = connect({ path: target, allowHalfOpen: true });
    else {
      const i = target.lastIndexOf(':');
      const host = target.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
      socket = connect({ port: Number(target.slice(i + 1)), host, allowHalfOpen: true });
    }
    socket.setNoDelay(true);
    // Node clears `connecting` before it emits a connect error, so the flag cannot tell the two
    // apart; this one can. After connect the pipe owns the socket and its errors.
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      if (driver.isEnded) {
        socket.destroy();
        return;
      }
      this.proc.log.stream(`stream opened in: ${key} out: ${target} sid: ${sid}`);
      driver.attach(sid, socket);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (connected) return;
      // Refused, unreachable, out of descriptors: the stream ends at once (kcptun closes it too),
      // so the client's application sees EOF instead of waiting on a stream nobody serves.
      this.proc.ioErrors.record(`dial ${target}`, e);
      socket.destroy();
      if (!driver.isEnded) driver.reject(sid);
    });
  }

  async stop(): Promise<void> {
    this.proc.stop();
    for (const d of [...this.sessions.values()]) d.close();
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
