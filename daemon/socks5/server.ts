/**
 * The SOCKS5 server (`--socks5`): binds Socks5Session (the handshake) to TCP sockets, and the
 * requests to the node's proxy.
 *  - CONNECT to a virtual address or a proxied range goes through dialFromSocket: the TUN flows'
 *    transport choice and fallback, a row in `easytier-cli proxy`, and the far node's real dial
 *    outcome as the reply (refused: 05 "connection refused"; unreachable: 04 "host unreachable";
 *    denied by the far node: 02 "not allowed"). A destination outside the virtual network gets 02
 *    unless --socks5-allow-outside, then this host dials it itself.
 *  - UDP ASSOCIATE opens a relay socket on the address the client reached us on; datagrams from the
 *    client's address go to the virtual network from this node's virtual address (VirtualUdp), and
 *    the answers come back wrapped. The association ends with its TCP connection.
 * Bounded: MAX_CLIENTS connections, a handshake deadline, domain names resolved by this host only
 * for CONNECT (datagrams must name an IP address).
 */
import { lookup } from 'node:dns/promises';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { DialStatus } from '../carrier/flow-frames.js';
import type { Socks5Listen } from '../config/node-config.js';
import { TstierError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseIpAddress } from '../packet/address.js';
import { dialFromSocket, placeOf, type SocketCarriers, type SocketDial } from '../proxy/socket-flow.js';
import type { VirtualUdp, VirtualUdpSocket } from '../proxy/virtual-udp.js';
import { Socks5Session } from './session.js';
import { encodeUdpDatagram, parseUdpDatagram, Rep, type SocksAddr } from './wire.js';

/** Concurrent client connections at most (each holds a socket, and maybe a flow or a UDP relay). */
export const MAX_CLIENTS = 1024;
/** A client must finish its handshake (through the reply) within this. */
export const HANDSHAKE_TIMEOUT_MS = 15_000;

export interface Socks5ServerOptions extends Socks5Listen {
  allowOutside: boolean;
}

const STATUS_REP: Record<DialStatus, Rep> = {
  [DialStatus.Connected]: Rep.Succeeded,
  [DialStatus.Refused]: Rep.ConnectionRefused,
  [DialStatus.Unreachable]: Rep.HostUnreachable,
  [DialStatus.Denied]: Rep.NotAllowed,
};

/** "::ffff:1.2.3.4" as "1.2.3.4", so addresses compare and encode as the client's family. */
function plainIp(ip: string | undefined): string {
  return (ip ?? '0.0.0.0').replace(/^::ffff:(?=\d+\.)/, '');
}

export class Socks5Server {
  private constructor(private readonly server: Server, readonly address: string) {}

  static async start(opts: Socks5ServerOptions, carriers: SocketCarriers, udp: VirtualUdp, log: Logger): Promise<Socks5Server> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false });
    server.maxConnections = MAX_CLIENTS;
    server.on('connection', (socket) => new Socks5Client(socket, opts, carriers, udp, log));
    const sep = opts.listen.lastIndexOf(':');
    const host = opts.listen.slice(0, sep).replace(/^\[|\]$/g, '');
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new TstierError(e.code === 'EADDRINUSE' ? 'TSTIER_E_ADDR_IN_USE' : 'TSTIER_E_BAD_CONFIG',
        `--socks5: cannot listen on ${opts.listen}: ${e.code ?? e.message}`)));
      server.listen(Number(opts.listen.slice(sep + 1)), host, () => resolve());
    });
    server.on('error', (e) => log.warn('socks5 listener error', { err: e }));
    const a = server.address() as { address: string; port: number };
    const address = a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    log.info(`socks5 server on ${address}${opts.credentials ? ' (username/password)' : ''}`);
    return new Socks5Server(server, address);
  }

  close(): void {
    this.server.close();
  }
}

class Socks5Client {
  private readonly session: Socks5Session;
  private readonly deadline: NodeJS.Timeout;
  private dial: SocketDial | null = null;
  private relay: UdpRelay | null = null;
  private readonly onData = (chunk: Buffer): void => {
    this.session.input(chunk);
    this.pump();
  };
  /** Before the reply (and during an association) the client's FIN ends the conversation. */
  private readonly onEnd = (): void => this.end('client closed');

  constructor(private readonly socket: Socket, private readonly opts: Socks5ServerOptions,
    private readonly carriers: SocketCarriers, private readonly udp: VirtualUdp, private readonly log: Logger) {
    this.session = new Socks5Session(opts.credentials);
    this.deadline = setTimeout(() => this.end('handshake timed out'), HANDSHAKE_TIMEOUT_MS);
    socket.on('data', this.onData);
    socket.on('error', () => undefined); // 'close' follows
    socket.on('end', this.onEnd);
    socket.on('close', () => {
      clearTimeout(this.deadline);
      this.dial?.abort();
      this.relay?.close();
    });
  }

  private pump(): void {
    for (let out = this.session.pollTransmit(); out; out = this.session.pollTransmit()) this.socket.write(out);
    for (let ev = this.session.pollEvent(); ev; ev = this.session.pollEvent()) {
      if (ev.type === 'close') return this.end(ev.why);
      this.socket.pause(); // until the request is answered
      const handle = ev.cmd === 'connect' ? this.connect(ev.dst) : this.associate();
      handle.catch((e: Error) => this.answer(Rep.GeneralFailure, e.message));
    }
  }

  private async connect(dst: SocksAddr): Promise<void> {
    const ip = await resolve(dst.host);
    if (this.socket.destroyed) return;
    if (!ip) return this.answer(Rep.HostUnreachable, `cannot resolve ${dst.host}`);
    const ipBytes = parseIpAddress(ip);
    if (!ipBytes) return this.answer(Rep.HostUnreachable, `cannot resolve ${dst.host}`);
    if (placeOf(this.carriers, ipBytes) === 'outside' && !this.opts.allowOutside) {
      return this.answer(Rep.NotAllowed, `${ip} is outside the virtual network (--socks5-allow-outside)`);
    }
    const src = { ip: parseIpAddress(plainIp(this.socket.remoteAddress)) ?? new Uint8Array(4), port: this.socket.remotePort ?? 0 };
    this.dial = dialFromSocket(this.carriers, { src, dst: { ip: ipBytes, port: dst.port }, label: 'socks5' }, (r) => {
      if (!r.ok) return this.answer(STATUS_REP[r.status], r.why);
      this.session.reply(Rep.Succeeded, { ip: plainIp(this.socket.localAddress), port: this.socket.localPort ?? 0 });
      this.pump();
      clearTimeout(this.deadline);
      this.socket.off('data', this.onData);
      this.socket.off('end', this.onEnd);
      r.attach(this.socket, this.session.takeEarlyData());
    });
  }

  private async associate(): Promise<void> {
    const local = plainIp(this.socket.localAddress);
    const client = plainIp(this.socket.remoteAddress);
    this.relay = await UdpRelay.open(local, client, this.opts.allowOutside, this.carriers, this.udp);
    if (this.socket.destroyed) return this.relay.close();
    this.session.reply(Rep.Succeeded, { ip: local, port: this.relay.port });
    this.pump();
    clearTimeout(this.deadline);
    // The association lives as long as this connection; what the client sends on it means nothing.
    this.socket.off('data', this.onData);
    this.socket.on('data', () => undefined);
    this.socket.resume();
  }

  private answer(rep: Rep, why: string): void {
    this.log.debug('socks5 request refused', { client: this.socket.remoteAddress, rep, why });
    this.session.reply(rep);
    this.pump();
  }

  private end(why: string): void {
    this.log.debug('socks5 client closed', { client: this.socket.remoteAddress, why });
    clearTimeout(this.deadline);
    this.socket.end();
    this.socket.destroySoon();
  }
}

/** An IP literal as is; a name by this host's resolver; null when it does not resolve. */
async function resolve(host: string): Promise<string | null> {
  if (isIP(host)) return host;
  try {
    return (await lookup(host, { family: 4 })).address;
  } catch {
    return null;
  }
}

/**
 * One UDP ASSOCIATE: the relay socket the client sends to, and (opened on first use) a socket on
 * the node's virtual address for the virtual network. Only datagrams from the client's IP are
 * relayed; the first one fixes the client's port.
 */
class UdpRelay {
  private clientPort = 0;
  private virtual: Promise<VirtualUdpSocket> | null = null;
  private closed = false;

  private constructor(private readonly sock: UdpSocket, readonly port: number, private readonly client: string,
    private readonly allowOutside: boolean, private readonly carriers: SocketCarriers, private readonly udp: VirtualUdp) {
    sock.on('message', (msg, rinfo) => this.onMessage(msg, plainIp(rinfo.address), rinfo.port));
    sock.on('error', () => undefined); // one failed send must not end the association
  }

  static open(local: string, client: string, allowOutside: boolean, carriers: SocketCarriers, udp: VirtualUdp): Promise<UdpRelay> {
    const sock = createSocket(isIP(local) === 6 ? 'udp6' : 'udp4');
    return new Promise((res, rej) => {
      sock.once('error', rej);
      sock.bind(0, local, () => {
        sock.off('error', rej);
        res(new UdpRelay(sock, sock.address().port, client, allowOutside, carriers, udp));
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
    void this.virtual?.then((v) => v.close(), () => undefined);
  }

  private onMessage(msg: Buffer, from: string, port: number): void {
    if (from !== this.client || (this.clientPort !== 0 && port !== this.clientPort)) {
      // An outside host's answer (with --socks5-allow-outside, the relay socket sent it there).
      if (this.allowOutside && this.clientPort !== 0) this.toClient({ ip: from, port }, msg);
      return;
    }
    this.clientPort = port;
    const d = parseUdpDatagram(msg);
    if (!d || !isIP(d.dst.host)) return;
    const to = { ip: d.dst.host, port: d.dst.port };
    const place = placeOf(this.carriers, parseIpAddress(to.ip)!); // isIP() above
    if (place === 'outside') {
      if (this.allowOutside) this.sock.send(d.payload, to.port, to.ip);
      return;
    }
    this.virtual ??= this.udp.open((src, payload) => this.toClient(src, payload));
    this.virtual.then((v) => this.closed || v.send(to, d.payload), () => undefined);
  }

  private toClient(src: { ip: string; port: number }, payload: Uint8Array): void {
    if (!this.closed) this.sock.send(encodeUdpDatagram(src, payload), this.clientPort, this.client);
  }
}
