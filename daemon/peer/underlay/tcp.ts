/**
 * TCP underlay: each packet framed by a u32 LE length (tcp-frames.ts). A frame over its limit means
 * the stream is not ours or is corrupt: the link ends. When the kernel send buffer backs up past
 * MAX_QUEUED, packets are dropped (as a router drops), rather than letting memory grow; the
 * tunnelled TCP flows see loss and slow down.
 *
 * Inbound streams are half-open until their first packet (the handshake) is accepted, and the
 * listener bounds them (half-open.ts): a deadline counted from the accept, caps per source address
 * and in all, and a first frame no longer than a handshake. So a flood of slow clients costs at
 * most `global` descriptors and `global` x maxFirstPacket bytes of buffered frames, whatever it
 * trickles; authenticated links may buffer one frame of up to MAX_FRAME each.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { nowMs } from '../../io/clock.js';
import { descriptorUse, openFileLimit } from '../../io/limits.js';
import type { Logger } from '../../log.js';
import { writeU32 } from '../wire.js';
import { halfOpenLimitsFor, HalfOpenGate, sourceKey, type HalfOpenLimits } from './half-open.js';
import { errorEnd, formatUri, listenError, type AcceptLink, type LinkEnd, type UnderlayAddress, type UnderlayLink, type UnderlayListener } from './link.js';
import { FrameReader, LENGTH_LEN, MAX_FRAME } from './tcp-frames.js';

const MAX_QUEUED = 4 * 1024 * 1024;
/** At most one warning per this span about failing accepts or scarce descriptors. */
const WARN_EVERY_MS = 10_000;
/** How often, at most, the listener counts the process's open descriptors (a readdir). */
const DESCRIPTOR_CHECK_MS = 1000;
/** Above this share of the descriptor limit in use, half-open streams are shed. */
const DESCRIPTOR_HIGH_WATER = 0.9;
/** A dial that has no answer this soon is abandoned (and retried with backoff). */
const DIAL_TIMEOUT_MS = 10_000;

/** Packets every TCP link of this process dropped at a full send queue, closed links' too: for the metrics. */
let queueDrops = 0;
export const tcpQueueDrops = (): number => queueDrops;

class TcpLink implements UnderlayLink {
  readonly headroom = LENGTH_LEN;
  onPacket: (pkt: Buffer) => void = () => {};
  onClose: (reason: string, how: LinkEnd) => void = () => {};
  /** Refused: what arrives is read and discarded. */
  discarding = false;
  private readonly frames: FrameReader;
  private corked = false;
  private closed = false;

  /** An inbound link is offered to its listener's owner with its first packet. */
  private offer: AcceptLink | undefined;

  constructor(readonly remoteUri: string, readonly outbound: boolean, private readonly socket: Socket,
    offer?: AcceptLink, maxFirstPacket = MAX_FRAME) {
    this.offer = offer;
    this.frames = new FrameReader(offer ? maxFirstPacket : MAX_FRAME);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.ended(`socket error: ${e.message}`, errorEnd(e)));
    // A close without an error is the remote's FIN: its process closed the link or exited.
    socket.on('close', () => this.ended('remote closed', 'closed'));
  }

  send(buf: Buffer): void {
    if (this.closed) return;
    if (this.socket.writableLength > MAX_QUEUED) {
      queueDrops++;
      return;
    }
    writeU32(buf, 0, buf.length - LENGTH_LEN);
    // Packets sent in one tick (a TUN batch, say) leave in one writev instead of one syscall each.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(buf);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  close(): void {
    this.socket.destroy();
    this.ended('closed', 'local');
  }

  /**
   * Reads and discards from now on; the listener closes the link at its half-open deadline, as it
   * would a silent one: no early FIN to learn from.
   */
  refuse(): void {
    this.onPacket = () => {};
    this.onClose = () => {};
    this.discarding = true;
  }

  private ended(reason: string, how: LinkEnd): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(reason, how);
  }

  private onData(chunk: Buffer): void {
    if (this.discarding) return;
    // A length over the limit (before the handshake, longer than a handshake): not our protocol.
    if (!this.frames.feed(chunk, this.dispatch)) this.close();
  }

  private readonly dispatch = (pkt: Buffer): void => {
    if (this.closed || this.discarding) return;
    if (this.offer) {
      const offer = this.offer;
      this.offer = undefined;
      this.frames.maxFrame = MAX_FRAME;
      offer(this, pkt);
    } else {
      this.onPacket(pkt);
    }
  };
}

export interface TcpListenerOptions {
  log: Logger;
  /** The longest first packet the owner can accept (a handshake); announcing a longer one ends the link unread. */
  maxFirstPacket: number;
  /** By default halfOpenLimitsFor(the descriptor limit). */
  halfOpen?: HalfOpenLimits;
}

export interface TcpListenerStats {
  /** Accepts that failed and were reported to us (libuv resets the connections it could not take). */
  acceptErrors: number;
  /** Checks that found the process's descriptors nearly exhausted (and shed half-open streams). */
  descriptorPressure: number;
}

export class TcpListener implements UnderlayListener {
  private readonly sockets = new Set<Socket>();
  /** The inbound links not yet past their handshake, with their deadline and caps. */
  readonly halfOpen: HalfOpenGate<TcpLink>;
  readonly stats: TcpListenerStats = { acceptErrors: 0, descriptorPressure: 0 };
  boundUri: string;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private lastAcceptErrorLog = -Infinity;
  private lastPressureLog = -Infinity;
  private nextDescriptorCheck = 0;

  private constructor(readonly uri: string, private readonly server: Server, private readonly opts: TcpListenerOptions) {
    this.boundUri = uri;
    this.halfOpen = new HalfOpenGate(opts.halfOpen ?? halfOpenLimitsFor(openFileLimit()));
  }

  static open(uri: string, addr: UnderlayAddress, accept: AcceptLink, opts: TcpListenerOptions): Promise<TcpListener> {
    const server = createServer();
    const listener = new TcpListener(uri, server, opts);
    server.on('connection', (socket) => listener.onConnection(socket, accept));
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(uri, e)));
      server.listen(addr.port, addr.host, () => {
        server.removeAllListeners('error');
        const a = server.address();
        if (a && typeof a === 'object') listener.boundUri = formatUri('tcp', addr.host, a.port);
        server.on('error', (e: NodeJS.ErrnoException) => listener.onAcceptError(e));
        resolve(listener);
      });
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: Socket, accept: AcceptLink): void {
    const address = socket.remoteAddress ?? '?';
    const link = new TcpLink(formatUri('tcp', address, socket.remotePort ?? 0), false, socket, (l, first) => {
      accept(l, first);
      if (!link.discarding) this.halfOpen.settle(link);
    }, this.opts.maxFirstPacket);
    this.sockets.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.halfOpen.settle(link);
    });
    const now = nowMs();
    for (const victim of this.halfOpen.admit(link, sourceKey(address), now)) victim.close();
    this.checkDescriptors(now);
    this.afterGate();
  }

  /**
   * Out of descriptors, libuv resets the connections it cannot accept (its reserve-descriptor trick)
   * and tells nobody; nothing spins, but nothing is logged either, and Node offers no way to pause
   * accepting. So, at most once a second while connections arrive or half-open ones wait, we count
   * our descriptors: near the limit, or at it (where the count itself fails), we say so (once per
   * WARN_EVERY_MS) and shed half-open streams, which gives the next accepts a descriptor.
   */
  private checkDescriptors(now: number): void {
    if (now < this.nextDescriptorCheck) return;
    this.nextDescriptorCheck = now + DESCRIPTOR_CHECK_MS;
    const use = descriptorUse();
    if (use === undefined || (use !== 'exhausted' && use.used < use.limit * DESCRIPTOR_HIGH_WATER)) return;
    this.stats.descriptorPressure++;
    for (const l of this.halfOpen.shed(now)) l.close();
    if (now - this.lastPressureLog >= WARN_EVERY_MS) {
      this.lastPressureLog = now;
      this.opts.log.warn('descriptors nearly exhausted; shedding half-open connections',
        use === 'exhausted' ? { listener: this.uri, used: 'all' } : { listener: this.uri, ...use });
    }
  }

  /** An accept failed and libuv could not absorb it (see checkDescriptors): counted, logged now and then, and we shed. */
  private onAcceptError(e: NodeJS.ErrnoException): void {
    this.stats.acceptErrors++;
    const now = nowMs();
    if (e.code === 'EMFILE' || e.code === 'ENFILE') for (const link of this.halfOpen.shed(now)) link.close();
    if (now - this.lastAcceptErrorLog >= WARN_EVERY_MS) {
      this.lastAcceptErrorLog = now;
      this.opts.log.warn('accept failed', { listener: this.uri, err: e.code ?? e.message, count: this.stats.acceptErrors });
    }
    this.afterGate();
  }

  /** Logs the gate's events and keeps one timer armed for its next deadline. */
  private afterGate(): void {
    for (let ev = this.halfOpen.pollEvent(); ev; ev = this.halfOpen.pollEvent()) {
      if (ev.type === 'overload') {
        this.opts.log.warn('half-open connections over the cap; closing the oldest until it eases',
          { listener: this.uri, cap: ev.cap, source: ev.source });
      } else {
        this.opts.log.info('half-open overload over', { listener: this.uri, closed: ev.evicted, duration_ms: ev.durationMs });
      }
    }
    const at = this.halfOpen.pollTimeout();
    if (at === Infinity || (this.timer && this.timerAt <= at)) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, at - nowMs()));
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = nowMs();
    for (const link of this.halfOpen.handleTimeout(now)) link.close();
    this.checkDescriptors(now);
    this.afterGate();
  };
}

/**
 * Dials; an error (no route, refused, a name that does not resolve) or no answer within
 * DIAL_TIMEOUT_MS rejects, and the connector tries again with backoff. Without the timeout a
 * black-holed address would hold the dial for the kernel's two minutes of SYN retries.
 */
export function dialTcp(uri: string, addr: UnderlayAddress): Promise<UnderlayLink> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: addr.host, port: addr.port });
    const onError = (e: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    const timer = setTimeout(() => onError(Object.assign(new Error(`no answer within ${DIAL_TIMEOUT_MS} ms`),
      { code: 'ETIMEDOUT' })), DIAL_TIMEOUT_MS);
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(new TcpLink(uri, true, socket));
    });
  });
}
