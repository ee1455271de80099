/**
 * A Linux TUN device for the daemon: the thin adapter between the kernel and the packet code.
 *
 * Reads arrive in batches: one reused buffer plus offsets/lengths, valid ONLY during the callback
 * (copy what you keep). This is what keeps the receive path free of per-packet allocation; see
 * docs/tun.md for the measurements behind it. Writes go one packet per call.
 * Device failures (e.g. EBADFD after `ip link del`) arrive as an 'error' event followed by 'close'.
 *
 * Offloads (on by default; TSTIER_TUN_OFFLOAD=off turns them off): the kernel hands TCP data over as
 * super-packets of up to 64 KB, marked in the batch's gso[] with their segment size. A consumer that
 * only rewrites addresses and ports hands one back whole (writeWhole); everyone else gets it cut
 * into ordinary packets (segment). docs/tun.md, "Offloads".
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadNativeAddon, TstierError } from '../errors.js';

export interface TunOptions {
  /** Interface name, at most 15 bytes; a kernel pattern such as "tt%d" works. Default: the kernel's "tun%d". */
  name?: string;
  mtu: number;
  /** "10.0.0.1/24" */
  ipv4?: string;
  /** "fd00::1/64" */
  ipv6?: string;
  /**
   * Kernel queue towards us, in packets (default 32768). The kernel's 500 overflows whenever Node is
   * descheduled; 4096 still overflowed under the kernel-path proxy, whose flows cross the TUN twice
   * (docs/tun.md, "Queue length"). A drop there costs the application's TCP a retransmission timeout,
   * and repeated ones back it off for a minute.
   */
  txQueueLen?: number;
  /** TCP offloads (default: on unless TSTIER_TUN_OFFLOAD=off); the kernel may refuse them (see offloadRefused). */
  offload?: boolean;
}

export interface TunStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Packets that did not fit a receive slot (larger than the MTU plus headroom), dropped. */
  rxDropsTruncated: number;
  writeErrors: number;
  /** TCP super-packets read (offloads on). */
  superPackets: number;
  /** Super-packets written back whole. */
  wholeWrites: number;
  /** Segments cut from super-packets for consumers that need ordinary packets. */
  segmentsCut: number;
  /** Reads dropped for a virtio header the addon does not take (a GSO type it did not ask for). */
  rxDropsBadHeader: number;
}

/**
 * Called once per batch; `batch` and the arrays are reused and valid only during the call.
 * gso[i] is 0 for an ordinary packet, else packet i is a TCP super-packet cut at that segment size.
 */
export type PacketBatchHandler = (batch: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number, gso: Uint32Array) => void;

/** Receives the segments of a super-packet, one at a time; each is valid only during the call. */
export type SegmentHandler = (segment: Buffer) => void;

type Handle = object;
interface NativeTun {
  BATCH_MAX: number;
  open(
    name: string | null,
    mtu: number,
    txQueueLen: number,
    ipv4: string | null,
    ipv4Prefix: number,
    ipv6: string | null,
    ipv6Prefix: number,
    offload: boolean,
  ): [Handle, string, string | null];
  start(
    h: Handle,
    batch: ArrayBuffer,
    offsets: Uint32Array,
    lengths: Uint32Array,
    onBatch: (count: number) => void,
    onError: (code: string, message: string) => void,
    gso: Uint32Array,
  ): void;
  write(h: Handle, packet: Uint8Array): number;
  writeWhole(h: Handle, superPacket: Uint8Array): number;
  stats(h: Handle, out: Float64Array): void;
  offloadStats(h: Handle, out: Float64Array): void;
  close(h: Handle): void;
  slotSize(mtu: number, offload: boolean): number;
  segment(superPacket: Uint8Array, mss: number, out: Uint8Array, offsets: Uint32Array, lengths: Uint32Array): number;
  finishChecksum(packet: Uint8Array, csumStart: number, csumOffset: number): number;
  /** The redirect termination's socket options (native/src/sockopt.c). */
  originalDst(fd: number): [number, number] | null;
  markedSocket(mark: number): number;
  setRecvBuffer(fd: number, bytes: number): void;
}

/** The addon's pure offload functions (no device), for tests that check them against the TypeScript checksums. */
export type OffloadFunctions = Pick<NativeTun, 'segment' | 'finishChecksum'>;

const ADDON_FILE = 'daemon/tun/native/build/Release/tstier_tun.node';
let addon: NativeTun | undefined;

/**
 * Loads the addon on first use, so importing this module never fails on a machine without it.
 * TSTIER_TUN_ADDON names another file to load instead (a build elsewhere, or a test's broken one).
 */
export function loadAddon(): NativeTun {
  if (addon) return addon;
  const override = process.env.TSTIER_TUN_ADDON;
  // Compiled code lives in dist/daemon/tun/, sources in daemon/tun/: try the project root seen from both.
  const candidates = ['../../../', '../../'].map((up) => fileURLToPath(new URL(up + ADDON_FILE, import.meta.url)));
  const found = override || candidates.find((p) => existsSync(p));
  if (!found) {
    throw new TstierError('TSTIER_E_TUN', `TUN addon not built (${ADDON_FILE} missing): run bin/setup`);
  }
  addon = loadNativeAddon(found, 'TUN addon', override ? 'TSTIER_TUN_ADDON' : undefined) as NativeTun;
  return addon;
}

const NAME_RE = /^[A-Za-z0-9_.%-]{1,15}$/;

function tunError(message: string, cause?: unknown): TstierError {
  return new TstierError('TSTIER_E_TUN', message, cause === undefined ? undefined : { cause });
}

/** Splits "addr/prefix"; the address itself is checked by the kernel-side parser (inet_pton). */
function parseCidr(key: 'ipv4' | 'ipv6', value: string | undefined, maxPrefix: number): [string | null, number] {
  if (value === undefined) return [null, 0];
  const m = /^([0-9A-Fa-f.:]+)\/(\d{1,3})$/.exec(value);
  const prefix = m ? Number(m[2]) : -1;
  if (!m || prefix > maxPrefix) throw tunError(`TUN option ${key}: "${value}" is not an address/prefix`);
  return [m[1]!, prefix];
}

function validate(opts: TunOptions): void {
  if (opts.name !== undefined && !NAME_RE.test(opts.name)) {
    throw tunError(`TUN option name: "${opts.name}" must be 1-15 characters of [A-Za-z0-9_.%-]`);
  }
  const minMtu = opts.ipv6 !== undefined ? 1280 : 68;
  if (!Number.isInteger(opts.mtu) || opts.mtu < minMtu || opts.mtu > 65535) {
    throw tunError(`TUN option mtu: ${opts.mtu} is outside ${minMtu}..65535`);
  }
  const q = opts.txQueueLen;
  if (q !== undefined && (!Number.isInteger(q) || q < 1 || q > 1_000_000)) {
    throw tunError(`TUN option txQueueLen: ${q} is outside 1..1000000`);
  }
}

/** Room for the segments of one super-packet: 64 KB of payload, each segment with its own headers (at most 120 bytes, 8-aligned). */
const SEGMENTS_MAX = 1024;
const SEGMENT_ROOM = 65536 + SEGMENTS_MAX * 128;

export class TunDevice extends EventEmitter {
  readonly name: string;
  readonly mtu: number;
  /** Whether the kernel hands this device TCP super-packets (false: refused, or turned off). */
  readonly offload: boolean;
  /** Why offloads are off though asked for (the ioctl the kernel refused), else null. */
  readonly offloadRefused: string | null;
  #native: NativeTun;
  #handle: Handle;
  #closed = false;
  #handler: PacketBatchHandler | undefined;
  #batch: Buffer | undefined;
  #offsets: Uint32Array | undefined;
  #lengths: Uint32Array | undefined;
  #statsOut = new Float64Array(6);
  #offloadOut = new Float64Array(3);
  #gso: Uint32Array | undefined;
  #segments: Buffer | undefined;
  #segOffsets: Uint32Array | undefined;
  #segLengths: Uint32Array | undefined;
  #segmentsCut = 0;

  /** Creates, configures (MTU, addresses, txqueuelen) and brings up the device. Needs CAP_NET_ADMIN. */
  static open(opts: TunOptions): TunDevice {
    validate(opts);
    const [v4, v4prefix] = parseCidr('ipv4', opts.ipv4, 32);
    const [v6, v6prefix] = parseCidr('ipv6', opts.ipv6, 128);
    const native = loadAddon();
    const offload = opts.offload ?? process.env.TSTIER_TUN_OFFLOAD !== 'off';
    try {
      const [handle, name, refused] = native.open(
        opts.name ?? null,
        opts.mtu,
        opts.txQueueLen ?? 32768,
        v4,
        v4prefix,
        v6,
        v6prefix,
        offload,
      );
      return new TunDevice(native, handle, name, opts.mtu, offload && refused === null, refused);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'EUNKNOWN';
      throw tunError(`cannot open TUN ${opts.name ?? '(kernel-named)'}: ${(e as Error).message} (${code})`, e);
    }
  }

  private constructor(native: NativeTun, handle: Handle, name: string, mtu: number, offload: boolean, refused: string | null) {
    super();
    this.#native = native;
    this.#handle = handle;
    this.name = name;
    this.mtu = mtu;
    this.offload = offload;
    this.offloadRefused = refused;
  }

  /**
   * Sets the receiver and starts reading. Reading starts only here, so packets wait in the kernel
   * queue until someone consumes them. Calling again replaces the receiver.
   */
  onPackets(cb: PacketBatchHandler): void {
    if (this.#closed) throw new TstierError('TSTIER_E_CLOSED', `TUN ${this.name} is closed`);
    const first = this.#handler === undefined;
    this.#handler = cb;
    if (!first) return;
    const max = this.#native.BATCH_MAX;
    // allocUnsafeSlow: a buffer of its own (not a pool slice), so the addon may hold its ArrayBuffer.
    const batch = Buffer.allocUnsafeSlow(max * this.#native.slotSize(this.mtu, this.offload));
    this.#batch = batch;
    this.#offsets = new Uint32Array(max);
    this.#lengths = new Uint32Array(max);
    this.#gso = new Uint32Array(max);
    this.#native.start(this.#handle, batch.buffer as ArrayBuffer, this.#offsets, this.#lengths, this.#onBatch, this.#onError,
      this.#gso);
  }

  #onBatch = (count: number): void => {
    this.#handler!(this.#batch!, this.#offsets!, this.#lengths!, count, this.#gso!);
  };

  /**
   * Cuts a super-packet into ordinary packets (full checksums) and hands them to `each` in order.
   * Returns false (nothing handed) for bytes that are no TCP super-packet.
   */
  segment(superPacket: Buffer, mss: number, each: SegmentHandler): boolean {
    if (!this.#segments) {
      this.#segments = Buffer.allocUnsafeSlow(SEGMENT_ROOM);
      this.#segOffsets = new Uint32Array(SEGMENTS_MAX);
      this.#segLengths = new Uint32Array(SEGMENTS_MAX);
    }
    const out = this.#segments, offsets = this.#segOffsets!, lengths = this.#segLengths!;
    const n = this.#native.segment(superPacket, mss, out, offsets, lengths);
    if (n < 0) return false;
    this.#segmentsCut += n;
    for (let i = 0; i < n; i++) each(out.subarray(offsets[i]!, offsets[i]! + lengths[i]!));
    return true;
  }

  #onError = (code: string, message: string): void => {
    if (this.#closed) return;
    const err = tunError(`TUN ${this.name}: ${message} (${code})`);
    this.close();
    this.emit('error', err);
  };

  /** Sends one IPv4/IPv6 packet to the kernel. False (and counted in writeErrors) if the kernel refused it. */
  write(packet: Uint8Array): boolean {
    return this.#native.write(this.#handle, packet) >= 0;
  }

  /**
   * Hands a super-packet of the current batch back to the kernel whole, its virtio header kept: the
   * receiving socket takes it as one GRO'd packet. Only addresses and ports may have been rewritten,
   * with the partial checksum adjusted as a non-complemented sum (packet/rewrite.ts, `partial`).
   */
  writeWhole(superPacket: Buffer): boolean {
    return this.#native.writeWhole(this.#handle, superPacket) >= 0;
  }

  /** Stops reading, then closes the fd (which removes the device). Idempotent; emits 'close' once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(this.#handle);
    this.#handler = undefined;
    process.nextTick(() => this.emit('close'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get stats(): TunStats {
    const s = this.#statsOut;
    this.#native.stats(this.#handle, s);
    return {
      rxPackets: s[0]!,
      rxBytes: s[1]!,
      txPackets: s[2]!,
      txBytes: s[3]!,
      rxDropsTruncated: s[4]!,
      writeErrors: s[5]!,
      ...this.#offloadStats(),
    };
  }

  #offloadStats(): Pick<TunStats, 'superPackets' | 'wholeWrites' | 'segmentsCut' | 'rxDropsBadHeader'> {
    const o = this.#offloadOut;
    this.#native.offloadStats(this.#handle, o);
    return { superPackets: o[0]!, wholeWrites: o[1]!, segmentsCut: this.#segmentsCut, rxDropsBadHeader: o[2]! };
  }
}
