/**
 * A Linux TUN device for the daemon: the thin adapter between the kernel and the packet code.
 *
 * Reads arrive in batches: one reused buffer plus offsets/lengths, valid ONLY during the callback
 * (copy what you keep). This is what keeps the receive path free of per-packet allocation; see
 * docs/tun.md for the measurements behind it. Writes go one packet per call.
 * Device failures (e.g. EBADFD after `ip link del`) arrive as an 'error' event followed by 'close'.
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
}

export interface TunStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Packets that did not fit a receive slot (larger than the MTU plus headroom), dropped. */
  rxDropsTruncated: number;
  writeErrors: number;
}

/** Called once per batch; `batch` and the arrays are reused and valid only during the call. */
export type PacketBatchHandler = (batch: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number) => void;

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
  ): [Handle, string];
  start(
    h: Handle,
    batch: ArrayBuffer,
    offsets: Uint32Array,
    lengths: Uint32Array,
    onBatch: (count: number) => void,
    onError: (code: string, message: string) => void,
  ): void;
  write(h: Handle, packet: Uint8Array): number;
  stats(h: Handle, out: Float64Array): void;
  close(h: Handle): void;
  slotSize(mtu: number): number;
}

const ADDON_FILE = 'daemon/tun/native/build/Release/tstier_tun.node';
let addon: NativeTun | undefined;

/**
 * Loads the addon on first use, so importing this module never fails on a machine without it.
 * TSTIER_TUN_ADDON names another file to load instead (a build elsewhere, or a test's broken one).
 */
function loadAddon(): NativeTun {
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

export class TunDevice extends EventEmitter {
  readonly name: string;
  readonly mtu: number;
  #native: NativeTun;
  #handle: Handle;
  #closed = false;
  #handler: PacketBatchHandler | undefined;
  #batch: Buffer | undefined;
  #offsets: Uint32Array | undefined;
  #lengths: Uint32Array | undefined;
  #statsOut = new Float64Array(6);

  /** Creates, configures (MTU, addresses, txqueuelen) and brings up the device. Needs CAP_NET_ADMIN. */
  static open(opts: TunOptions): TunDevice {
    validate(opts);
    const [v4, v4prefix] = parseCidr('ipv4', opts.ipv4, 32);
    const [v6, v6prefix] = parseCidr('ipv6', opts.ipv6, 128);
    const native = loadAddon();
    try {
      const [handle, name] = native.open(
        opts.name ?? null,
        opts.mtu,
        opts.txQueueLen ?? 32768,
        v4,
        v4prefix,
        v6,
        v6prefix,
      );
      return new TunDevice(native, handle, name, opts.mtu);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'EUNKNOWN';
      throw tunError(`cannot open TUN ${opts.name ?? '(kernel-named)'}: ${(e as Error).message} (${code})`, e);
    }
  }

  private constructor(native: NativeTun, handle: Handle, name: string, mtu: number) {
    super();
    this.#native = native;
    this.#handle = handle;
    this.name = name;
    this.mtu = mtu;
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
    const batch = Buffer.allocUnsafeSlow(max * this.#native.slotSize(this.mtu));
    this.#batch = batch;
    this.#offsets = new Uint32Array(max);
    this.#lengths = new Uint32Array(max);
    this.#native.start(this.#handle, batch.buffer as ArrayBuffer, this.#offsets, this.#lengths, this.#onBatch, this.#onError);
  }

  #onBatch = (count: number): void => {
    this.#handler!(this.#batch!, this.#offsets!, this.#lengths!, count);
  };

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
    };
  }
}
