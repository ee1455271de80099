/**
 * The connecting side of tunnels (client mode, and a relay's [forwarder]): each tunnel gets a
 * random session id and its own UDP socket, so every application connection is its own UDP flow
 * as in kcptube. Every dport_refresh seconds the tunnel moves to a fresh socket and a new random
 * destination port in the server's range; the old socket lingers a few seconds for datagrams
 * already in flight. The session is named by its id, so it carries on across the move.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { badConfig } from '../errors.js';
import type { KcptubeSide, PortRange } from './config.js';
import { TunnelCipher } from './crypt.js';
import type { TubeContext } from './log.js';
import { SessionRouter } from './router.js';
import { TubeSession, type TubeEvent } from './session.js';
import { nowMs } from '../io/clock.js';
import { Tunnel, type TunnelOwner } from './tunnel.js';
import { TubeSender, type Recycle } from './udp-out.js';
import { WIRE_VERSION } from './wire.js';

/** kcptun's default socket buffers; KCP's windows burst more than the kernel's defaults hold. */
export const SOCKET_BUFFERS = { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 };

/** How long a closed tunnel's socket lingers so its last datagrams leave. */
const CLOSE_LINGER_MS = 1000;
/** How long a replaced socket still receives. */
const OLD_SOCKET_GRACE_MS = 5000;

export interface Destination {
  address: string;
  family: 4 | 6;
}

/** Resolves the first destination_address, honouring ipv4_only / ipv6_only. */
export async function resolveDestination(side: KcptubeSide, key = 'destination_address'): Promise<Destination> {
  const host = side.destinationAddresses[0]!;
  const family = side.ipv4Only ? 4 : side.ipv6Only ? 6 : 0;
  const known = isIP(host);
  if (known !== 0) return { address: host, family: known as 4 | 6 };
  try {
    const r = await lookup(host, { family });
    return { address: r.address, family: r.family as 4 | 6 };
  } catch (e) {
    throw badConfig(key, `cannot resolve "${host}": ${(e as Error).message}`);
  }
}

/**
 * A random port of the range, avoiding `recent` ports while the range has enough others: a hop
 * should land somewhere new, or a throttled port may come straight back.
 */
export function randomPort(r: PortRange, recent: readonly number[] = []): number {
  const size = r.end - r.start + 1;
  const avoid = recent.filter((p) => p >= r.start && p <= r.end);
  if (size <= new Set(avoid).size) return randomInt(r.start, r.end + 1);
  for (;;) {
    const p = randomInt(r.start, r.end + 1);
    if (!avoid.includes(p)) return p;
  }
}

/** Ports a hop avoids: the current one and the ones before it. */
const RECENT_PORTS = 3;

/** A tunnel's way out: the current socket and destination port, replaced on each hop. */
export class HoppingPath {
  port: number;
  private readonly recent: number[] = [];
  private sock: UdpSocket;
  private out: TubeSender;
  private readonly old = new Set<UdpSocket>();
  private readonly hopTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly dest: Destination,
    private range: PortRange,
    refreshSec: number,
    private readonly onMessage: (msg: Buffer) => void,
    /** Told of every hop (logging). */
    private readonly onHop: (port: number) => void,
    /** A socket error: a failed send, or a socket that could not even bind (out of descriptors). */
    private readonly onError: (e: NodeJS.ErrnoException) => void,
  ) {
    this.port = randomPort(range);
    this.sock = this.newSocket();
    this.out = new TubeSender(this.sock, this.onError);
    if (refreshSec > 0) {
      this.hopTimer = setInterval(() => this.hop(), refreshSec * 1000);
      this.hopTimer.unref();
    }
  }

  private newSocket(): UdpSocket {
    const s = createSocket({ type: this.dest.family === 6 ? 'udp6' : 'udp4', ...SOCKET_BUFFERS });
    s.on('message', this.onMessage);
    s.on('error', this.onError);
    return s;
  }

  send(d: Uint8Array, sent: Recycle): void {
    if (!this.closed) this.out.send(d, this.port, this.dest.address, sent);
  }

  /**
   * The server told its own range: later hops use it, as kcptube does. The current port stays
   * (it may be a port forward or relay in front of the server).
   */
  setRange(r: PortRange): void {
    this.range = r;
  }

  /** A new socket (new source port) towards a new random port of the range. */
  hop(): void {
    if (this.closed) return;
    const prev = this.sock;
    this.old.add(prev);
    setTimeout(() => {
      this.old.delete(prev);
      prev.close();
    }, OLD_SOCKET_GRACE_MS).unref();
    this.sock = this.newSocket();
    this.out = new TubeSender(this.sock, this.onError);
    this.recent.push(this.port);
    if (this.recent.length > RECENT_PORTS) this.recent.shift();
    this.port = randomPort(this.range, this.recent);
    this.onHop(this.port);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.hopTimer) clearInterval(this.hopTimer);
    // A CLOSE datagram may still be queued: the socket goes once it has surely left.
    const sock = this.sock;
    setTimeout(() => sock.close(), CLOSE_LINGER_MS).unref();
  }
}

/** The tunnel's owner as the dialer's user sees it. */
export interface DialHooks {
  onEvent?(tunnel: Tunnel, e: TubeEvent): void;
  onEnded(tunnel: Tunnel, reason: string): void;
}

export class TunnelDialer implements TunnelOwner {
  readonly cipher: TunnelCipher;
  private readonly router: SessionRouter<null>;
  private readonly tunnels = new Map<number, { tunnel: Tunnel; path: HoppingPath; hooks: DialHooks }>();

  constructor(
    private readonly side: KcptubeSide,
    private readonly dest: Destination,
    private readonly ctx: TubeContext,
  ) {
    this.cipher = TunnelCipher.fromPassword(side.encryption, side.password);
    this.router = new SessionRouter<null>(this.cipher, ctx.counters, null);
  }

  get size(): number {
    return this.tunnels.size;
  }

  /** A new tunnel with its own socket; HELLO is queued at once. */
  dial(hooks: DialHooks): Tunnel {
    let sid: number;
    do sid = randomInt(1, 0x100000000); while (this.tunnels.has(sid));
    const now = nowMs();
    const session = new TubeSession({ sid, cipher: this.cipher, side: this.side, snmp: this.ctx.snmp, now });
    const onMessage = (msg: Buffer): void => {
      const r = this.router.input(msg, null, nowMs());
      if (r !== null) this.tunnels.get(r.session.sid)?.tunnel.kick();
    };
    const path = new HoppingPath(this.dest, this.side.destinationPorts!, this.side.dportRefresh, onMessage, (port) =>
      this.ctx.log.line(`session ${sid.toString(16)} hops to port ${port}`), (e) => {
      this.ctx.ioErrors.record('udp', e);
      // Without a bound socket the tunnel can never send: end it, so its connections are reset
      // instead of waiting. Other send errors (no route while a link is down) pass: KCP retransmits.
      if (e.syscall === 'bind') this.tunnels.get(sid)?.tunnel.close();
    });
    const tunnel = new Tunnel(session, (d, sent) => path.send(d, sent), this);
    this.router.sessions.set(sid, { session, path: null });
    this.tunnels.set(sid, { tunnel, path, hooks });
    session.sendHello({ version: WIRE_VERSION, outboundBps: this.side.outboundBandwidth, inboundBps: this.side.inboundBandwidth });
    return tunnel;
  }

  onEvent(tunnel: Tunnel, e: TubeEvent): void {
    const t = this.tunnels.get(tunnel.sid);
    if (e.type === 'hello-reply' && t !== undefined) {
      t.path.setRange({ start: e.reply.portStart, end: e.reply.portEnd });
    }
    t?.hooks.onEvent?.(tunnel, e);
  }

  onEnded(tunnel: Tunnel, reason: string): void {
    const t = this.tunnels.get(tunnel.sid);
    this.tunnels.delete(tunnel.sid);
    this.router.delete(tunnel.sid);
    t?.path.close();
    t?.hooks.onEnded(tunnel, reason);
  }

  closeAll(): void {
    for (const t of [...this.tunnels.values()]) t.tunnel.close();
  }
}
