/**
 * A UDP socket read in batches through the peer addon (native/src/udp_recv.c): one recvmmsg and one
 * JS call per up to BATCH_MAX datagrams, into one reused buffer. node:dgram pays per datagram a 64 KiB
 * allocation, a Buffer, an address string and a callback; in tstier-kcptun's bulk echo that was a
 * quarter of the CPU. Sends go through the addon's sendmmsg on the same fd (udp-gso.ts).
 *
 * Each datagram is handed on in a Buffer a consumer may keep: the batch buffer, which the next read
 * overwrites, is copied out in chunks of at most COPY_MAX bytes, and the datagrams are views of
 * them (one allocation for dozens of datagrams, not one a datagram). With UDP GRO (the peer
 * underlay's sockets) a peer's GSO run arrives in one slot and is listed datagram by datagram; its
 * bytes lie back to back and are copied in one call.
 * Source addresses arrive in binary; their strings come from a small cache, so a stream from one
 * peer builds no string per datagram.
 *
 * Null from open() means no addon: callers fall back to node:dgram (bindUdpSocket does both).
 * TSTIER_UDP_RECV=dgram in the environment makes them fall back with the addon built (to compare).
 */
import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import { constants } from 'node:os';
import { peerAddon, type PeerAddon, type UdpHandle } from '../native.js';
import { GsoSocket } from './udp-gso.js';

const { EAGAIN, ECONNREFUSED, ENOBUFS } = constants.errno;
/**
 * Datagrams a full send buffer holds back, at most (dgram queued them all), tried again every
 * RETRY_MS: the kernel frees send buffer as the device takes packets. Beyond it they are lost.
 */
const BACKLOG_MAX = 4096;
const RETRY_MS = 1;
/** One source address record in the batch buffer (udp_recv.c's ADDR_LEN, ADDR_TEXT). */
const ADDR_LEN = 64;
const ADDR_TEXT = 20;
/** Source addresses remembered (direct-mapped by address and port). */
const FROM_CACHE = 16;
/**
 * A GRO socket's slots: each takes a whole run (a UDP message is at most 64 KiB), so there are fewer
 * of them (1 MiB in all; up to GRO_SLOTS x 64 datagrams a read), and up to RUN_MAX (udp_recv.c)
 * datagrams are listed per slot.
 */
const GRO_SLOT = 65536;
const GRO_SLOTS = 16;
const RUN_MAX = 128;
/**
 * The most bytes one copy out of the batch buffer holds: at least a GRO run (a UDP message), and
 * what a consumer that keeps one datagram keeps alive with it.
 */
const COPY_MAX = 65536;

export interface DatagramFrom {
  readonly address: string;
  readonly port: number;
}

export type DatagramHandler = (msg: Buffer, from: DatagramFrom) => void;

type SendDone = (err: Error | null) => void;
interface Held {
  data: Uint8Array;
  port: number;
  host: string | null;
  done: SendDone | undefined;
}
const EMPTY = new Uint8Array(0);

export interface BatchUdpOptions {
  /** The largest datagram taken whole (a longer one is counted truncated and dropped; with gro, up to 64 KiB pass). */
  maxDatagram: number;
  recvBufferSize: number;
  sendBufferSize: number;
  /** Runs of datagrams leave in GSO sends (udp-gso.ts): tstier-kcptun's; the peer underlay's unless TSTIER_UDP_GSO=off (GSO_SENDS). */
  gsoSends?: boolean;
  /** UDP GRO: a peer's GSO run is read as one message (and handed on as its datagrams). */
  gro?: boolean;
}

/** An errno-coded Error, as node's sockets raise. */
function errnoError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

export class BatchUdpSocket {
  private handle: UdpHandle | null;
  readonly fd: number;
  /** Datagrams the kernel dropped for this socket (its receive buffer full), as of the last batch. */
  drops = 0;
  /** Sends lost for want of buffer: a full send buffer (EAGAIN, ENOBUFS) with BACKLOG_MAX held back already. */
  sendDrops = 0;
  /** Sends a full send buffer held back, in order; while any wait, later ones queue behind them. */
  private readonly backlog: Held[] = [];
  private retry: NodeJS.Timeout | null = null;
  private onMessage: DatagramHandler = () => {};
  private onError: (e: NodeJS.ErrnoException) => void = () => {};
  private readonly one: Uint8Array[] = [];
  private readonly fromCache: (DatagramFrom & { key: number[] })[] = [];
  private batching: GsoSocket | null | undefined;
  /** Messages read (a GRO run is one), and the datagrams they held: the average run, for the drop estimate. */
  messages = 0;
  datagrams = 0;
  /** The kernel's drop count as last seen, and the datagrams those drops are estimated to have held. */
  private dropsSeen = 0;
  private dropEstimate = 0;

  private constructor(private readonly addon: PeerAddon, handle: UdpHandle, private readonly slot: number,
    private readonly slots: number, private readonly entries: number, private readonly gsoSends: boolean) {
    this.handle = handle;
    this.fd = addon.udpFd(handle);
  }

  /** A socket bound to host:port (an IP literal), or null without the addon. Throws an errno-coded Error. */
  static open(host: string, port: number, opts: BatchUdpOptions): BatchUdpSocket | null {
    const addon = peerAddon();
    if (!addon?.udpOpen || process.env.TSTIER_UDP_RECV === 'dgram') return null;
    const gro = opts.gro ?? false;
    const slot = gro ? GRO_SLOT : (opts.maxDatagram + 4) & ~3; // the address records after the slots stay 4-byte aligned
    const slots = gro ? GRO_SLOTS : addon.BATCH_MAX;
    const handle = addon.udpOpen(host.includes(':'), host, port, opts.recvBufferSize, opts.sendBufferSize, slot, slots, gro);
    return new BatchUdpSocket(addon, handle, slot, slots, Math.max(addon.BATCH_MAX, gro ? slots * RUN_MAX : slots),
      opts.gsoSends ?? false);
  }

  get closed(): boolean {
    return this.handle === null;
  }

  /** Connects to host:port (an IP literal). Throws an errno-coded Error (ENETUNREACH...). */
  connect(host: string, port: number): void {
    const rc = this.handle ? this.addon.udpConnect(this.handle, host, port) : -9;
    if (rc < 0) throw errnoError(codeOf(-rc), `connect ${host}:${port}: ${codeOf(-rc)}`);
  }

  address(): { address: string; port: number } {
    const [address, port] = this.handle ? this.addon.udpLocal(this.handle) : ['', 0];
    return { address, port };
  }

  /**
   * One listener per event (a later one replaces it). 'message': the datagrams, and reading starts
   * with the first; 'error': socket errors (ICMP reports), after which reading goes on.
   */
  on(event: 'message', listener: DatagramHandler): this;
  on(event: 'error', listener: (e: NodeJS.ErrnoException) => void): this;
  on(event: 'message' | 'error', listener: DatagramHandler | ((e: NodeJS.ErrnoException) => void)): this {
    if (event === 'error') this.onError = listener as (e: NodeJS.ErrnoException) => void;
    else {
      this.onMessage = listener as DatagramHandler;
      if (!this.reading) this.start();
    }
    return this;
  }

  private reading = false;

  private start(): void {
    if (!this.handle) return;
    this.reading = true;
    const { slot, slots } = this;
    const batch = new ArrayBuffer(slots * (slot + ADDR_LEN) + 4);
    const bytes = Buffer.from(batch);
    const words = new Uint32Array(batch);
    const offsets = new Uint32Array(this.entries);
    const lengths = new Uint32Array(this.entries);
    const addrs = slots * slot;
    const dropsWord = (addrs + slots * ADDR_LEN) / 4;
    const onBatch = (count: number): void => {
      this.drops = words[dropsWord]!;
      this.datagrams += count;
      let fromSlot = -1;
      let from: DatagramFrom | undefined;
      for (let i = 0; i < count && this.handle;) {
        let size = lengths[i]!;
        let last = i + 1;
        while (last < count && size + lengths[last]! <= COPY_MAX) size += lengths[last++]!;
        const copy = Buffer.allocUnsafe(size);
        for (let j = i, to = 0; j < last;) {
          const first = offsets[j]!;
          let end = first + lengths[j++]!;
          while (j < last && offsets[j] === end) end += lengths[j++]!; // a GRO run, back to back
          to += bytes.copy(copy, to, first, end);
        }
        for (let at = 0; i < last && this.handle; i++) {
          const s = Math.floor(offsets[i]! / slot); // a message per slot, each with its source
          if (s !== fromSlot) {
            fromSlot = s;
            from = this.from(bytes, words, addrs + s * ADDR_LEN);
            this.messages++;
          }
          const len = lengths[i]!;
          this.onMessage(copy.subarray(at, at + len), from!);
          at += len;
        }
      }
    };
    this.addon.udpStart(this.handle, batch, offsets, lengths, onBatch,
      (code, message) => this.onError(errnoError(code, message)));
  }

  /**
   * This socket's drops in datagrams, from the kernel's count `kernelDrops` (cumulative). With GRO the
   * kernel counts a dropped run as one, so each new drop counts as a run of the average size read so
   * far (without GRO that average is 1). Cumulative too; never falls.
   */
  droppedDatagrams(kernelDrops: number): number {
    const fresh = kernelDrops - this.dropsSeen;
    if (fresh > 0) {
      this.dropsSeen = kernelDrops;
      this.dropEstimate += this.messages > 0 ? Math.round((fresh * this.datagrams) / this.messages) : fresh;
    }
    return this.dropEstimate;
  }

  /** The source address of the record at bytes[at]: the cached one when seen lately. */
  private from(bytes: Buffer, words: Uint32Array, at: number): DatagramFrom {
    const w = at >> 2;
    const k0 = words[w]!, k1 = words[w + 1]!, k2 = words[w + 2]!, k3 = words[w + 3]!, k4 = words[w + 4]!;
    const slot = (((k0 >>> 16) ^ k1 ^ k4) >>> 0) % FROM_CACHE;
    const hit = this.fromCache[slot];
    if (hit) {
      const k = hit.key;
      if (k[0] === k0 && k[1] === k1 && k[2] === k2 && k[3] === k3 && k[4] === k4) return hit;
    }
    const from = {
      key: [k0, k1, k2, k3, k4],
      address: bytes.toString('latin1', at + ADDR_TEXT, at + ADDR_TEXT + bytes[at + 1]!),
      port: bytes[at + 2]! | (bytes[at + 3]! << 8),
    };
    this.fromCache[slot] = from;
    return from;
  }

  /** Removes a listener on()` set: that event is then ignored. */
  off(event: 'message' | 'error', listener: unknown): this {
    if (event === 'error' && this.onError === listener) this.onError = () => {};
    if (event === 'message' && this.onMessage === listener) this.onMessage = () => {};
    return this;
  }

  /**
   * Sends one datagram to host:port, or to the connected peer (as dgram's send(msg, callback)); the
   * caller leaves `data` alone until `done` (as with dgram). A refusal (ECONNREFUSED: an ICMP port
   * unreachable) goes to onError, as a receive would have seen it; a full send buffer holds it back
   * (see BACKLOG_MAX). `done` runs on a later tick with the send's error, like dgram's callback.
   */
  send(data: Uint8Array, done?: SendDone): void;
  send(data: Uint8Array, port: number, host: string, done?: SendDone): void;
  send(data: Uint8Array, portOrDone?: number | SendDone, host?: string, done?: SendDone): void {
    const port = typeof portOrDone === 'number' ? portOrDone : 0;
    const cb = typeof portOrDone === 'function' ? portOrDone : done;
    if (!this.handle) {
      if (cb) process.nextTick(cb, errnoError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running'));
      return;
    }
    const n = this.backlog.length > 0 ? -EAGAIN : this.sendOne(data, port, host ?? null);
    if (n === -EAGAIN || n === -ENOBUFS) return this.hold({ data, port, host: host ?? null, done: cb });
    if (cb) process.nextTick(cb, n < 0 ? errnoError(codeOf(-n), `send ${codeOf(-n)}`) : null);
  }

  /** One send now: 1, or -errno (a refusal also told to onError). */
  private sendOne(data: Uint8Array, port: number, host: string | null): number {
    this.one[0] = data;
    const n = this.addon.udpSendMany(this.fd, this.one, 0, 1, host, port);
    this.one[0] = EMPTY;
    if (n === -ECONNREFUSED) this.refused();
    return n;
  }

  private hold(held: Held): void {
    if (this.backlog.length >= BACKLOG_MAX) {
      this.sendDrops++;
      if (held.done) process.nextTick(held.done, errnoError('ENOBUFS', 'send ENOBUFS'));
      return;
    }
    this.backlog.push(held);
    this.retry ??= setTimeout(this.drain, RETRY_MS);
  }

  /** Sends what a full buffer held back, in order, until it is full again. */
  private readonly drain = (): void => {
    this.retry = null;
    const q = this.backlog;
    let i = 0;
    for (; i < q.length && this.handle; i++) {
      const h = q[i]!;
      const n = this.sendOne(h.data, h.port, h.host);
      if (n === -EAGAIN || n === -ENOBUFS) break;
      h.done?.(n < 0 ? errnoError(codeOf(-n), `send ${codeOf(-n)}`) : null);
    }
    q.splice(0, i);
    if (q.length > 0 && this.handle) this.retry = setTimeout(this.drain, RETRY_MS);
  };

  /** Tells onError of a refusal a batched send met (udp-gso.ts), on the next tick: never inside a send. */
  refused(): void {
    process.nextTick(() => this.handle && this.onError(errnoError('ECONNREFUSED', 'send ECONNREFUSED')));
  }

  /** Batched (and where opened so, GSO) sends on this socket (udp-gso.ts); GRO, if on, is this reader's. */
  gso(): GsoSocket | null {
    // A batch must not overtake what a full buffer held back.
    if (this.batching === undefined) this.batching = GsoSocket.forFd(this.fd, this.gsoSends, () => this.handle !== null && this.backlog.length === 0);
    return this.batching;
  }

  close(callback?: () => void): void {
    if (this.handle) this.addon.udpClose(this.handle);
    this.handle = null;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    for (const h of this.backlog.splice(0)) if (h.done) process.nextTick(h.done, errnoError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running'));
    if (callback) process.nextTick(callback);
  }

  /** rxPackets rxBytes txPackets txBytes rxTruncated txErrors, from the addon. */
  stats(): Float64Array {
    const out = new Float64Array(6);
    if (this.handle) this.addon.udpStats(this.handle, out);
    return out;
  }
}

/**
 * A UDP socket bound to host:port (an IP literal): the addon's batch socket, or without it node:dgram's,
 * made with `dgram` options too (a lookup...) and the same buffer sizes. Rejects with the bind's
 * errno-coded Error (EADDRINUSE...), the socket closed.
 */
export async function bindUdpSocket(host: string, port: number, opts: BatchUdpOptions,
  dgram: Partial<SocketOptions> = {}): Promise<BatchUdpSocket | Socket> {
  const batch = BatchUdpSocket.open(host, port, opts);
  if (batch) return batch;
  const sock = createSocket({
    type: host.includes(':') ? 'udp6' : 'udp4',
    ...(opts.recvBufferSize > 0 && { recvBufferSize: opts.recvBufferSize }),
    ...(opts.sendBufferSize > 0 && { sendBufferSize: opts.sendBufferSize }),
    ...dgram,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, host, () => {
        sock.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    sock.close();
    throw e;
  }
  return sock;
}

function codeOf(errno: number): string {
  for (const [name, n] of Object.entries(constants.errno)) if (n === errno) return name;
  return `errno ${errno}`;
}
