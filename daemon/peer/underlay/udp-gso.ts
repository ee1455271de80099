/**
 * Runs of datagrams out of one UDP socket with one GSO send each (the peer addon's udpSendRun):
 * a sending node spent most of its CPU in a syscall and a stack traversal per datagram. The wire
 * does not change: the kernel cuts the run back into the same datagrams.
 *
 * A tick's datagrams are queued per link and flushed on the next tick (process.nextTick, so no
 * added latency), keeping their order. Where GSO is not used (TSTIER_UDP_GSO=off, see GSO_SENDS; a
 * kernel or device without it, a segment over the path MTU) they leave in sendmmsg batches: one
 * syscall and one crossing into the kernel per batch instead of a dgram send (its JS, a request
 * object and a syscall) per datagram; 1,000 KCP-proxied flows spent ~15 % of the sending node's
 * CPU in dgram sends. Where neither can be used — no addon, no fd, dgram still holding queued sends
 * that a direct send would overtake — the datagrams go through dgram as before.
 */
import type { Socket } from 'node:dgram';
import { constants } from 'node:os';
import { peerAddon, type PeerAddon } from '../native.js';

const { EINVAL, EIO, ENOPROTOOPT, EOPNOTSUPP, ECONNREFUSED } = constants.errno;
/**
 * The daemon's GSO sends are on unless TSTIER_UDP_GSO=off (udp.ts asks for them with this;
 * tstier-kcptun always). With GRO on the batch socket (udp-batch.ts) a run is
 * one read at a tstier peer, and they cut the CPU per GiB about a quarter. They were opt-in while a
 * bulk flow right after start stalled for over 20 s now and then (about 1 in 100-250 runs): a cold
 * receiver's socket dropped every run in flight, and RACK never saw the timeout's probes delivered
 * (their ACKs were read after the una that covered them), so the window was repaired two segments per
 * RTO (docs/kcp-proxy-measured.md).
 */
export const GSO_SENDS = process.env.TSTIER_UDP_GSO !== 'off';
/** The kernel's UDP_MAX_SEGMENTS. */
const MAX_SEGMENTS = 64;
/** Bytes one GSO send may carry: a UDP datagram's limit, less IPv6/UDP headers, rounded down. */
const MAX_RUN_BYTES = 65_000;
/** Datagrams per sendmmsg (the addon's limit). */
const MAX_MANY = 64;

/** What a send refused by an ICMP port unreachable looks like to dgram's callers. */
function refusedError(): NodeJS.ErrnoException {
  return Object.assign(new Error('send ECONNREFUSED'), { code: 'ECONNREFUSED', errno: -ECONNREFUSED });
}

interface DgramState {
  handle: { fd?: number } | null;
}

/** dgram keeps its libuv handle under a symbol; the fd is what a GSO send needs. */
function dgramState(socket: Socket): DgramState | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state: unknown = key && Reflect.get(socket, key);
  return state && typeof state === 'object' && 'handle' in state ? state as DgramState : undefined;
}

/** A bound dgram socket's file descriptor, if it has one. */
export function dgramFd(socket: Socket): number | undefined {
  const fd = dgramState(socket)?.handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** One socket's GSO sends, shared by the links on it (a listener serves many), and its GRO. */
export class GsoSocket {
  /** Largest segment the kernel takes in a GSO send; 0 where it takes none. */
  maxSegment: number;
  /**
   * UDP GRO is on: a received message may hold a run of datagrams back to back, so a GSO run
   * costs the receiver one read, not one per datagram. Our datagrams carry their own length.
   */
  readonly gro: boolean;

  private constructor(private readonly fd: number, private readonly addon: PeerAddon, gsoSends: boolean, gro: boolean,
    /** Whether a direct send may go now: the fd is still the socket's, and no queued send would be overtaken. */
    private readonly usable: () => boolean) {
    const bits = gsoSends || gro ? addon.udpOffloads(fd, gro) : 0;
    this.maxSegment = bits & 1 && gsoSends ? 0xffff : 0;
    this.gro = (bits & 2) !== 0;
  }

  /**
   * For a bound socket (and turns its GRO on); null when the addon or the fd is missing. With
   * offloads false it only batches sends (sendmmsg), GSO and GRO left off: for datagrams that do not
   * carry their own length (kcptun's), which a GRO read could not split again. With `gro` false, GSO
   * sends but no GRO: a receiver's kernel cuts a run back into datagrams for a socket without GRO.
   */
  static for(socket: Socket, offloads = true, gro = offloads): GsoSocket | null {
    const addon = peerAddon();
    const state = dgramState(socket);
    const fd = state?.handle?.fd;
    if (!addon || !state || typeof fd !== 'number' || fd < 0) return null;
    // A closed socket's fd number may already belong to another file: check the handle is live.
    return new GsoSocket(fd, addon, offloads && GSO_SENDS, gro, () => state.handle?.fd === fd && socket.getSendQueueCount() === 0);
  }

  /**
   * For a socket of the addon's own (udp-batch.ts): `usable` says it is still open. Its GRO is its
   * reader's (which cuts runs by the kernel's segment size), not this probe's; GSO sends where
   * `gsoSends`: the receiver's kernel cuts a run back into datagrams for a socket without GRO, so any
   * peer reads them as before.
   */
  static forFd(fd: number, gsoSends: boolean, usable: () => boolean): GsoSocket | null {
    const addon = peerAddon();
    return addon && fd >= 0 ? new GsoSocket(fd, addon, gsoSends, false, usable) : null;
  }

  /**
   * One GSO send of q[first, first + count), all `segment` bytes but the last; to `ip`:`port`, or
   * the connected peer when ip is null. False if it did not go: the caller sends them through dgram.
   */
  trySend(q: Uint8Array[], first: number, count: number, segment: number, ip: string | null, port: number): boolean {
    if (segment > this.maxSegment || !this.usable()) return false;
    const n = this.addon.udpSendRun(this.fd, q, first, count, segment, ip, port);
    if (n >= 0) return true;
    if (n === -EINVAL) this.maxSegment = segment - 1; // over the path MTU: such datagrams fragment, one by one
    else if (n === -EIO || n === -ENOPROTOOPT || n === -EOPNOTSUPP) this.maxSegment = 0; // no GSO on this path
    return false; // EAGAIN: dgram queues them; other errors: they meet the same fate one by one
  }

  /**
   * One sendmmsg of q[first, first + count) to `ip`:`port` (null: the connected peer). Returns how
   * many went (the caller sends the rest through dgram, which queues them if the socket is full), or
   * -ECONNREFUSED when the kernel reported a refused port on this call (nothing went).
   */
  trySendMany(q: Uint8Array[], first: number, count: number, ip: string | null, port: number): number {
    if (!this.usable()) return 0;
    const n = this.addon.udpSendMany(this.fd, q, first, count, ip, port);
    return n >= 0 || n === -ECONNREFUSED ? n : 0;
  }
}

/** Per link: queues a tick's datagrams, then sends them in equal-size runs. */
export class DatagramBatcher<B extends Uint8Array = Buffer> {
  private readonly queue: B[] = [];

  constructor(
    private readonly gso: GsoSocket,
    /** The unconnected peer's address, or null on a connected socket. */
    private readonly ip: string | null,
    private readonly port: number,
    /** Sends one datagram through dgram. */
    private readonly plain: (buf: B) => void,
    /** Told of a send the kernel refused (ICMP port unreachable), as dgram's send callback would be. */
    private readonly onRefused?: (err: Error) => void,
    /** Given each datagram a sendmmsg or GSO send took: the kernel copied it, its buffer may be reused. */
    private readonly sent?: (buf: B) => void,
  ) {}

  push(buf: B): void {
    this.queue.push(buf);
    if (this.queue.length === 1) process.nextTick(this.flush);
  }

  /** Forgets what is queued (the link is gone). */
  clear(): void {
    this.queue.length = 0;
  }

  readonly flush = (): void => {
    const q = this.queue;
    for (let i = 0; i < q.length;) i += this.gso.maxSegment > 0 ? this.sendRun(q, i) : this.sendMany(q, i);
    q.length = 0;
  };

  /** Sends `count` datagrams (up to MAX_MANY) starting at q[first] with one sendmmsg; returns how many it took off q. */
  private sendMany(q: B[], first: number, count = Math.min(q.length - first, MAX_MANY)): number {
    const sent = this.gso.trySendMany(q, first, count, this.ip, this.port);
    if (sent < 0) this.onRefused?.(refusedError());
    if (this.sent) for (let i = first; i < first + sent; i++) this.sent(q[i]!);
    for (let i = first + Math.max(sent, 0); i < first + count; i++) this.plain(q[i]!);
    return count;
  }

  /** Sends the longest run starting at q[first] that one GSO send takes; returns its length. */
  private sendRun(q: B[], first: number): number {
    const segment = q[first]!.length;
    let count = 1;
    let bytes = segment;
    while (first + count < q.length && count < MAX_SEGMENTS) {
      const len = q[first + count]!.length;
      if (len > segment || bytes + len > MAX_RUN_BYTES) break;
      count++;
      bytes += len;
      if (len < segment) break; // only the last segment may be short
    }
    if (count === 1) {
      // A lone datagram (a request, an ACK) needs no GSO: it goes by its owner's own send, unless the
      // owner wants its buffers back; then by sendmmsg, which is synchronous, so the buffer returns at
      // once (dgram would queue a request and read the buffer later).
      if (this.sent) return this.sendMany(q, first, 1);
      this.plain(q[first]!);
      return 1;
    }
    if (!this.gso.trySend(q, first, count, segment, this.ip, this.port)) {
      for (let i = first; i < first + count; i++) this.plain(q[i]!);
    } else if (this.sent) for (let i = first; i < first + count; i++) this.sent(q[i]!);
    return count;
  }
}
