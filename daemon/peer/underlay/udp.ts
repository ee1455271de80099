/**
 * UDP underlay: one datagram per packet behind an 8-byte header shaped like EasyTier's
 * {conn_id u32 LE, msg_type u8, pad u8, len u16 LE}. The conn_id, picked at random by the
 * dialler, lets one listening socket serve many peers (and several links from one address).
 * msg_type 3 = Data, 4 = Fin (a polite goodbye, so the peer need not wait for its dead timer).
 * EasyTier's connect (docs/easytier-wire.md): a dialler with `syn` first sends Syn (1) with an
 * 8-byte magic and waits for the Sack (2) echoing conn_id and magic; every listener answers a Syn
 * with its Sack, statelessly (a link is still made by its first Data, so Syns cost no state).
 *
 * Speed (with the peer addon): the sockets are the addon's, read in recvmmsg batches with UDP GRO
 * (udp-batch.ts: a peer's GSO run is one read), and a tick's datagrams leave in GSO runs or sendmmsg
 * batches (udp-gso.ts), one syscall per batch; the datagrams on the wire stay the same. Without the addon: node:dgram, with GRO where GSO runs arrive.
 */
import { Socket } from 'node:dgram';
import { randomFillSync, randomInt } from 'node:crypto';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { readU16, readU32, writeU16, writeU32 } from '../wire.js';
import { errorEnd, formatUri, listenError, type AcceptLink, type LinkEnd, type UnderlayAddress, type UnderlayLink, type UnderlayListener } from './link.js';
import { peerAddon } from '../native.js';
import { DatagramBatcher, dgramFd, GSO_SENDS, GsoSocket } from './udp-gso.js';
import { watchDrops } from './udp-drops.js';
import { BatchUdpSocket, bindUdpSocket } from './udp-batch.js';

export const UDP_HEADER_LEN = 8;
/**
 * Socket buffers: the default receive buffer (~208 KiB) overflows whenever the process is
 * descheduled for a few ms at a few hundred Mbit/s; the kernel caps these at net.core.*mem_max.
 */
const SOCKET_BUFFERS = { recvBufferSize: 4 * 1024 * 1024, sendBufferSize: 1024 * 1024 };

/**
 * A listener replies to every datagram with send(buf, port, address), and dgram resolves that
 * address each time through dns.lookup, which answers an IP literal only on the next tick. The
 * addresses a listener replies to are IP literals (the ones packets came from): answer at once.
 */
function literalLookup(host: string, family: number | LookupOneOptions,
  cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const f = isIP(host);
  if (f !== 0) cb(null, host, f);
  else dnsLookup(host, typeof family === 'number' ? { family } : family, cb);
}

/** A link's socket: the addon's (udp-batch.ts), or node:dgram's without it. */
type UdpSock = Socket | BatchUdpSocket;

/** The largest datagram a link takes: a jumbo TUN MTU's packet (9,000) with the peer headers. */
const MAX_DATAGRAM = 9600;

/** A socket bound to host:port (an IP literal): the addon's where it is built, else dgram's. */
async function openSocket(uri: string, host: string, port: number): Promise<UdpSock> {
  try {
    return await bindUdpSocket(host, port, { maxDatagram: MAX_DATAGRAM, ...SOCKET_BUFFERS, gsoSends: GSO_SENDS, gro: true },
      { lookup: literalLookup });
  } catch (e) {
    throw listenError(uri, e as NodeJS.ErrnoException);
  }
}

/** The socket's fd for the addon's probes, while it is open. */
function fdOf(socket: UdpSock): number | undefined {
  if (socket instanceof BatchUdpSocket) return socket.closed ? undefined : socket.fd;
  return dgramFd(socket);
}

function gsoOf(socket: UdpSock): GsoSocket | null {
  return socket instanceof BatchUdpSocket ? socket.gso() : GsoSocket.for(socket);
}
const MSG_SYN = 1;
const MSG_SACK = 2;
const MSG_DATA = 3;
const MSG_FIN = 4;
const MAGIC_LEN = 8;
/** EasyTier's connector waits this long for the Sack; the Syn is not repeated. */
export const SYN_TIMEOUT_MS = 3000;

function writeHeader(buf: Buffer, connId: number, type: number, len: number): void {
  writeU32(buf, 0, connId);
  buf[4] = type;
  buf[5] = 0;
  writeU16(buf, 6, len);
}

class UdpLink implements UnderlayLink {
  readonly headroom = UDP_HEADER_LEN;
  onPacket: (pkt: Buffer) => void = () => {};
  onClose: (reason: string, how: LinkEnd) => void = () => {};
  private sent = false;
  private closed = false;
  /** Sends dgram refused outright (thrown, not a lost datagram on the wire). */
  sendErrors = 0;
  /** Datagrams of one tick go out as GSO runs when the socket allows (udp-gso.ts). */
  private readonly batcher: DatagramBatcher | null;

  constructor(
    readonly remoteUri: string,
    readonly outbound: boolean,
    private readonly socket: UdpSock,
    readonly connId: number,
    private readonly port: number,
    private readonly address: string,
    /** Called at once on close: stop routing datagrams here. */
    private readonly forget: () => void,
    /** Called once our goodbye left (or at once without one): the socket may close now. */
    private readonly release: () => void,
    gso: GsoSocket | null,
    /** A listener's: told each send's outcome (see UdpListener.onRefused); a dialler's sends need none. */
    private readonly onSent: ((err: Error | null) => void) | undefined = undefined,
  ) {
    this.batcher = gso && new DatagramBatcher(gso, outbound ? null : address, port, (buf) => this.transmit(buf), onSent);
  }

  send(buf: Buffer): void {
    if (this.closed || buf.length - UDP_HEADER_LEN > 0xffff) return;
    writeHeader(buf, this.connId, MSG_DATA, buf.length - UDP_HEADER_LEN);
    this.sent = true;
    if (this.batcher) this.batcher.push(buf);
    else this.transmit(buf);
  }

  /**
   * A dialler's socket is connected: sending without an address skips per-packet address handling.
   * Without `done` dgram drops send errors silently (a lost datagram, for UDP) and spares a tick.
   */
  private transmit(buf: Buffer, done?: () => void): void {
    try {
      if (this.outbound) this.socket.send(buf, done);
      else this.socket.send(buf, this.port, this.address, done ?? this.onSent);
    } catch (e) {
      // dgram throws synchronously on a socket that is closed or lost its connection; it runs from
      // the batcher's nextTick too, where a throw would reach the process. It ends this link only.
      // `done` (the goodbye's) releases the socket itself: release it once, not twice.
      this.sendErrors++;
      this.ended(`send failed: ${(e as Error).message}`, 'failed', done === undefined);
      done?.();
    }
  }

  close(): void {
    if (this.closed) return;
    if (this.sent) {
      this.batcher?.flush(); // the goodbye goes last
      const fin = Buffer.alloc(UDP_HEADER_LEN);
      writeHeader(fin, this.connId, MSG_FIN, 0);
      this.transmit(fin, () => this.release());
      this.ended('closed', 'local', false);
    } else {
      this.ended('closed', 'local');
    }
  }

  /** Nothing was ever sent on a refused link, so closing it is silent already. */
  refuse(): void {
    this.close();
  }

  ended(reason: string, how: LinkEnd, release = true): void {
    if (this.closed) return;
    this.closed = true;
    this.batcher?.clear();
    this.forget();
    if (release) this.release();
    this.onClose(reason, how);
  }

  /** One well-formed datagram for this link, header included. */
  receive(msg: Buffer): void {
    const type = msg[4];
    if (type === MSG_FIN) this.ended('remote said goodbye', 'closed');
    else if (type === MSG_DATA && !this.closed) this.onPacket(msg.subarray(UDP_HEADER_LEN));
  }
}

/**
 * A listener's socket is not connected, so the kernel drops the ICMP port unreachable a dead peer's
 * address answers with; the addon turns on the socket's error queue (IP_RECVERR), and a receive then
 * fails with ECONNREFUSED, after which the queue says whose port it was. Null without the addon.
 */
function refusalReader(socket: UdpSock, ipv6: boolean): (() => (string | number)[]) | null {
  const addon = peerAddon();
  const fd = fdOf(socket);
  if (!addon || fd === undefined || addon.udpRecvErrors(fd, ipv6) !== 0) return null;
  return () => (fdOf(socket) === fd ? addon.udpTakeRefused(fd) : []);
}

function closeQuietly(socket: UdpSock): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}

/**
 * Header check shared by both ends: where the datagram at msg[at..] ends, or -1 if it is
 * malformed. A message is one datagram, or on a socket with UDP GRO (`coalesced`) a run of
 * them back to back, each delimited by the length in its own header.
 */
function datagramEnd(msg: Buffer, at: number, coalesced: boolean): number {
  if (msg.length - at < UDP_HEADER_LEN) return -1;
  const end = at + UDP_HEADER_LEN + readU16(msg, at + 6);
  if (coalesced ? end > msg.length : end !== msg.length) return -1;
  const t = msg[at + 4];
  if (t === MSG_SYN || t === MSG_SACK) return end - at === UDP_HEADER_LEN + MAGIC_LEN ? end : -1;
  return t === MSG_DATA || t === MSG_FIN ? end : -1;
}

/** The datagram msg[at, end): the message itself when it holds just the one. */
function datagramAt(msg: Buffer, at: number, end: number): Buffer {
  return at === 0 && end === msg.length ? msg : msg.subarray(at, end);
}

export class UdpListener implements UnderlayListener {
  /** Datagrams dropped before any session saw them: malformed headers. */
  malformed = 0;
  private readonly links = new Map<string, UdpLink>();
  /** The link of the last datagram: a stream from one peer skips building a key string per datagram. */
  private last: { address: string; port: number; connId: number; link: UdpLink } | undefined;
  /** Links not yet released (live, or their goodbye still being sent); the socket closes after them. */
  private unreleased = 0;
  private onAllReleased: (() => void) | undefined;

  readonly boundUri: string;
  private readonly gso: GsoSocket | null;
  /** UDP GRO is on: one message may hold several datagrams back to back (see udp-gso.ts). */
  readonly gro: boolean;
  /** Drains the socket's ICMP reports: [address, port, ...] of refusing peers; null without the addon. */
  private readonly takeRefused: (() => (string | number)[]) | null;

  private constructor(readonly uri: string, host: string, private readonly socket: UdpSock, private readonly accept: AcceptLink) {
    this.boundUri = formatUri('udp', host, socket.address().port);
    this.gso = gsoOf(socket);
    this.gro = this.gso?.gro ?? false;
    watchDrops(socket);
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
    this.takeRefused = refusalReader(socket, isIPv6(host));
    // Any socket error is an ICMP report (see refusalReader): the queue is drained whatever it holds, or
    // the socket would keep polling as failed; only refusals end links, the rest are lost datagrams.
    socket.on('error', () => this.onRefused());
  }

  /**
   * The kernel reports a refusal once, to whichever call on the socket comes first: a receive (the
   * 'error' event) or a send (its callback). Either way the error queue then says whose port it was.
   */
  private readonly afterSend = (err: Error | null): void => {
    if ((err as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED') this.onRefused();
  };

  /**
   * Some peer's port answered ICMP port unreachable: its process is gone. Its links end now, not at
   * their sessions' dead timers, so a peer killed with -9 has its flows reset at once.
   */
  private onRefused(): void {
    const refused = this.takeRefused?.() ?? [];
    for (let i = 0; i + 1 < refused.length; i += 2) {
      const prefix = `${refused[i]}|${refused[i + 1]}|`;
      for (const [key, link] of [...this.links]) {
        if (key.startsWith(prefix)) link.ended('port unreachable', 'refused');
      }
    }
  }

  static async open(uri: string, addr: UnderlayAddress, accept: AcceptLink): Promise<UdpListener> {
    return new UdpListener(uri, addr.host, await openSocket(uri, addr.host, addr.port), accept);
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    let at = 0;
    do {
      const end = datagramEnd(msg, at, this.gro);
      if (end < 0) {
        this.malformed++;
        return;
      }
      this.onDatagram(datagramAt(msg, at, end), address, port);
      at = end;
    } while (at < msg.length);
  }

  private onDatagram(msg: Buffer, address: string, port: number): void {
    if (msg[4] === MSG_SYN) return this.answerSyn(msg, address, port);
    const connId = readU32(msg, 0);
    const last = this.last;
    if (last && last.connId === connId && last.port === port && last.address === address) return last.link.receive(msg);
    const key = `${address}|${port}|${connId}`;
    const link = this.links.get(key);
    if (link) {
      this.last = { address, port, connId, link };
      return link.receive(msg);
    }
    if (msg[4] !== MSG_DATA) return;
    this.unreleased++;
    const fresh: UdpLink = new UdpLink(formatUri('udp', address, port), false, this.socket, connId, port, address,
      () => this.forget(key, fresh), () => this.released(), this.gso, this.takeRefused ? this.afterSend : undefined);
    this.links.set(key, fresh);
    this.accept(fresh, msg.subarray(UDP_HEADER_LEN));
  }

  /** A Syn's Sack: the same bytes with the type changed, from this socket. No state is kept. */
  private answerSyn(msg: Buffer, address: string, port: number): void {
    const sack = Buffer.from(msg);
    sack[4] = MSG_SACK;
    try {
      this.socket.send(sack, port, address);
    } catch {
      // a closed socket: the dialler retries
    }
  }

  /** Links this listener routes datagrams to: the state a flood of strangers must not grow. */
  get linkCount(): number {
    return this.links.size;
  }

  async close(): Promise<void> {
    const allReleased = new Promise<void>((resolve) => { this.onAllReleased = resolve; });
    for (const l of [...this.links.values()]) l.close();
    if (this.unreleased > 0) await allReleased;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private forget(key: string, link: UdpLink): void {
    this.links.delete(key);
    if (this.last?.link === link) this.last = undefined;
  }

  private released(): void {
    if (--this.unreleased === 0) this.onAllReleased?.();
  }
}

/**
 * Connects a dialler's socket. A name that does not resolve, or an address with no route right
 * now (ENETUNREACH), rejects here: the socket stays unconnected, and sending on it without an
 * address would throw (ERR_SOCKET_BAD_PORT) from deep inside a tick.
 */
function connectSocket(socket: UdpSock, addr: UnderlayAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket instanceof Socket) socket.connect(addr.port, addr.host, (err?: Error) => (err ? reject(err) : resolve()));
    else {
      literalLookup(addr.host, isIPv6(addr.host) ? 6 : 4, (err, ip) => {
        if (err) return reject(err);
        try {
          socket.connect(ip, addr.port);
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      });
    }
  });
}

/**
 * Dials: a socket of its own, connected to the peer, so replies from its single listening socket
 * reach only us, and a closed port (the peer restarting) surfaces as an error that ends the link.
 */
export async function dialUdp(uri: string, addr: UnderlayAddress, opts: { syn?: boolean } = {}): Promise<UnderlayLink> {
  const socket = await openSocket(uri, isIPv6(addr.host) ? '::' : '0.0.0.0', 0);
  const connId = randomInt(1, 2 ** 32 - 1);
  try {
    await connectSocket(socket, addr);
    if (opts.syn) await synExchange(socket, connId);
  } catch (e) {
    closeQuietly(socket);
    throw e;
  }
  const gso = gsoOf(socket);
  const coalesced = gso?.gro ?? false;
  watchDrops(socket);
  const link = new UdpLink(uri, true, socket, connId, addr.port, addr.host, () => {},
    () => closeQuietly(socket), gso);
  socket.on('message', (msg, rinfo) => {
    if (rinfo.port !== addr.port) return;
    let at = 0;
    do {
      const end = datagramEnd(msg, at, coalesced);
      if (end < 0) return;
      if (readU32(msg, at) === link.connId) link.receive(datagramAt(msg, at, end));
      at = end;
    } while (at < msg.length);
  });
  // ECONNREFUSED: the peer's port answered ICMP port unreachable, so its process is gone.
  socket.on('error', (e) => link.ended(`socket error: ${e.message}`, errorEnd(e)));
  return link;
}

/** EasyTier's connect on a connected socket: Syn, then the Sack echoing conn_id and magic within SYN_TIMEOUT_MS. */
function synExchange(socket: UdpSock, connId: number): Promise<void> {
  const syn = Buffer.alloc(UDP_HEADER_LEN + MAGIC_LEN);
  writeHeader(syn, connId, MSG_SYN, MAGIC_LEN);
  randomFillSync(syn, UDP_HEADER_LEN);
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      socket.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (msg: Buffer): void => {
      if (msg.length === syn.length && msg[4] === MSG_SACK && readU32(msg, 0) === connId && msg.subarray(UDP_HEADER_LEN).equals(syn.subarray(UDP_HEADER_LEN))) done();
    };
    const onError = (e: Error): void => done(e);
    const timer = setTimeout(() => done(new Error(`no Sack within ${SYN_TIMEOUT_MS} ms`)), SYN_TIMEOUT_MS);
    socket.on('message', onMessage);
    socket.on('error', onError);
    socket.send(syn, (err) => err && done(err));
  });
}
