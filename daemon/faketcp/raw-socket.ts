/**
 * The raw TCP socket (native/): reads arrive in batches in one reused buffer, parsed in place into a
 * reused SegmentInfo and handed on one at a time, valid only during the call (copy what you keep).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { TstierError } from '../errors.js';
import { newSegmentInfo, parseSegment, type SegmentError, type SegmentInfo } from './segment.js';

type Handle = object;
interface RawTcpAddon {
  BATCH_MAX: number;
  SLOT: number;
  open(bindAddress: string | null): Handle;
  filterPort(h: Handle, port: number, dst: boolean): void;
  start(h: Handle, batch: ArrayBuffer, offsets: Uint32Array, lengths: Uint32Array,
    onBatch: (count: number) => void, onError: (code: string, message: string) => void): void;
  send(h: Handle, segment: Uint8Array, src: number, dst: number): number;
  stats(h: Handle, out: Float64Array): void;
  close(h: Handle): void;
  setTtl(fd: number, ttl: number): number;
}

const ADDON_FILE = 'daemon/faketcp/native/build/Release/tstier_rawtcp.node';
let addon: RawTcpAddon | undefined;

export function rawTcpAddon(): RawTcpAddon {
  if (addon) return addon;
  const found = ['../../../', '../../'].map((up) => new URL(up + ADDON_FILE, import.meta.url)).find((u) => existsSync(u));
  if (!found) throw new TstierError('TSTIER_E_BAD_CONFIG', `fake TCP: the raw TCP addon is not built (${ADDON_FILE} missing): run bin/setup`);
  addon = createRequire(import.meta.url)(found.pathname) as RawTcpAddon;
  return addon;
}

/** Counters of what the raw socket read and could not use. */
export interface RawRxErrors {
  /** Not an IPv4 TCP segment, or its header is malformed. */
  malformed: number;
  /** A data segment whose TCP checksum is wrong. */
  badChecksum: number;
}

export type SegmentHandler = (buf: Uint8Array, seg: SegmentInfo) => void;

export class RawTcpSocket {
  private readonly a = rawTcpAddon();
  private handle: Handle | null;
  private readonly seg = newSegmentInfo();
  readonly errors: RawRxErrors = { malformed: 0, badChecksum: 0 };

  /**
   * Opens the socket (bound to `bindAddress` if given) and delivers segments to `port` (dst) or from
   * it (!dst) to onSegment. A raw socket the kernel refuses (EPERM) names CAP_NET_RAW.
   */
  constructor(bindAddress: string | null, port: number, dst: boolean, onSegment: SegmentHandler,
    onError: (message: string) => void) {
    try {
      this.handle = this.a.open(bindAddress);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EPERM' || err.code === 'EACCES') {
        throw new TstierError('TSTIER_E_BAD_CONFIG', 'fake TCP needs the CAP_NET_RAW capability (raw sockets); run as root or grant it');
      }
      throw new TstierError('TSTIER_E_BAD_CONFIG', `fake TCP: ${err.message}`);
    }
    this.a.filterPort(this.handle, port, dst);
    const batch = new ArrayBuffer(this.a.BATCH_MAX * this.a.SLOT);
    const bytes = new Uint8Array(batch);
    const offsets = new Uint32Array(this.a.BATCH_MAX);
    const lengths = new Uint32Array(this.a.BATCH_MAX);
    const onBatch = (count: number): void => {
      for (let i = 0; i < count && this.handle; i++) {
        const start = offsets[i]!;
        const err: SegmentError | null = parseSegment(bytes, start, start + lengths[i]!, this.seg);
        if (err === 'bad-checksum') this.errors.badChecksum++;
        else if (err) this.errors.malformed++;
        else onSegment(bytes, this.seg);
      }
    };
    this.a.start(this.handle, batch, offsets, lengths, onBatch, (_code, message) => onError(message));
  }

  /** Replaces the kernel filter: from now on only segments to (dst) or from (!dst) `port` are read. */
  filter(port: number, dst: boolean): void {
    if (this.handle) this.a.filterPort(this.handle, port, dst);
  }

  /** Sends one built segment from src to dst (host-order IPv4); bytes sent or -errno. */
  send(segment: Uint8Array, src: number, dst: number): number {
    return this.handle ? this.a.send(this.handle, segment, src, dst) : -9;
  }

  close(): void {
    if (this.handle) this.a.close(this.handle);
    this.handle = null;
  }
}

/** Sets IP_TTL on a connected node:net socket's descriptor; false if it has none or the call failed. */
export function setSocketTtl(socket: Socket, ttl: number): boolean {
  // libuv's TCP handle exposes its descriptor on Linux; node:net's types do not declare it.
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 && rawTcpAddon().setTtl(fd, ttl) === 0;
}
