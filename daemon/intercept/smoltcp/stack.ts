/**
 * SmoltcpStack: the userspace TCP endpoint behind `--use-smoltcp`, as a sans-IO object.
 *
 * IP packets from the TUN go in with `input`; packets for the TUN come out of `pollTransmit`;
 * `pollTimeout`/`poll` drive the stack's timers; `pollEvent` reports new flows (a SYN to any
 * destination, held unanswered until `accept` or `reject`) and per-flow readiness. The stack
 * never touches sockets, timers or the clock: `now` is milliseconds from the caller.
 *
 * The stack runs in WebAssembly. A Rust panic traps; the binding then reports an `error`
 * event for every flow the dead instance held and continues on a fresh instance.
 */
import { randomBytes } from 'node:crypto';

import { TstierError, badConfig } from '../../errors.js';
import { parseIpv4Address, parseIpv6Address } from '../../packet/address.js';
import { readU32 } from '../../packet/bytes.js';
import type { SocketAddr } from '../../packet/flow-key.js';
import { FlowStateCode, InputOutcome as Outcome, StackError, StackEvent, StackStat } from '../../wasm/abi/stack.js';
import { type WasmModule, loadWasmModule } from '../../wasm/loader.js';
import type { WasmMemory } from '../../wasm/memory.js';
import { checkIntegerOptions, definedOnly } from '../../wasm/options.js';
import { TrapSupervisor } from '../../wasm/supervisor.js';
import { STACK_CRATE, type StackExports } from './wasm.js';

export interface SmoltcpOptions {
  /** The stack's own IPv4 address (the gateway of its any-IP default route). */
  ipv4?: string;
  /** The stack's own IPv6 address. */
  ipv6?: string;
  /** Largest IP packet the stack emits; sets the MSS it advertises. */
  mtu?: number;
  /** Per-flow receive buffer (bytes); also bounds the advertised window. */
  rxBuffer?: number;
  /** Per-flow send buffer (bytes). */
  txBuffer?: number;
  /** Flows (open + pending) beyond which a SYN is answered with RST. */
  maxFlows?: number;
  /** Held SYNs beyond which a SYN is answered with RST. */
  maxPending?: number;
  /**
   * Abort a flow whose peer has sent nothing for this long; 0: never. smoltcp counts this on idle
   * flows too, so keep `keepAliveMs` well below it: a live peer answers the probes.
   */
  timeoutMs?: number;
  /** Send a keep-alive probe on a flow idle this long; 0: never. */
  keepAliveMs?: number;
  /** Path of tstier_stack.wasm; default: the build output. */
  wasmPath?: string;
}

/** EasyTier's smoltcp address, MTU and buffer sizes (docs/userspace-stack.md). */
export const SMOLTCP_DEFAULTS = {
  ipv4: '192.88.99.254',
  ipv6: 'fd00:5e:99::fe',
  mtu: 1280,
  rxBuffer: 16 * 1024,
  txBuffer: 16 * 1024,
  maxFlows: 65536,
  maxPending: 4096,
  // EasyTier sets no timeout; we add dead-peer detection that spares idle but live clients.
  timeoutMs: 180_000,
  keepAliveMs: 60_000,
} as const;

export type SmoltcpEvent =
  /** A SYN for a flow nobody handles yet. Answer with accept (SYN-ACK) or reject (RST). */
  | { type: 'new'; id: number; family: 4 | 6; src: SocketAddr; dst: SocketAddr }
  /** Data arrived after the last recv drained the flow: read until recv returns null. */
  | { type: 'readable'; id: number }
  /** The flow became established, or half the send buffer is free again after a short send. */
  | { type: 'writable'; id: number }
  /** The peer half-closed and all its data has been read. */
  | { type: 'fin'; id: number }
  /** Both directions finished; the flow id is no longer valid. */
  | { type: 'closed'; id: number }
  /** The peer reset the flow (or it timed out); the id is no longer valid. */
  | { type: 'reset'; id: number }
  /** The stack instance holding the flow crashed; the flow is gone. */
  | { type: 'error'; id: number; error: TstierError };

export type FlowState =
  | 'closed'
  | 'listen'
  | 'syn-sent'
  | 'syn-received'
  | 'established'
  | 'fin-wait-1'
  | 'fin-wait-2'
  | 'close-wait'
  | 'closing'
  | 'last-ack'
  | 'time-wait'
  | 'pending';

/** The crate's FlowState codes as names: "finWait1" is 'fin-wait-1'. */
const FLOW_STATES: readonly FlowState[] = Object.entries(FlowStateCode)
  .sort(([, x], [, y]) => x - y).map(([name]) => name.replace(/[A-Z0-9]/g, (c) => `-${c.toLowerCase()}`) as FlowState);

/** What `input` did with a packet (the crate's InputOutcome). */
export const InputOutcome = {
  ...Outcome,
  /** Too large for any IP packet, or the stack crashed on it. */
  dropped: -1,
} as const;

export interface SmoltcpStats {
  packetsIn: number;
  malformed: number;
  notTcp: number;
  /** IP fragments received; complete datagrams (up to 9216 bytes of payload) are reassembled. */
  fragments: number;
  /** Segments of no known flow, answered with RST. */
  noFlow: number;
  /** SYNs refused (RST) because maxFlows or maxPending was reached. */
  overLimit: number;
  /** Outbound packets dropped because 4096 were waiting for pollTransmit. */
  txDropped: number;
  openFlows: number;
  pendingFlows: number;
  /** Instances lost to a trap since this object was created. */
  crashes: number;
}

/** Accepted ranges of the numeric options (buffers: smoltcp scales windows up to 1 GiB). */
const LIMITS = {
  mtu: [576, 65535],
  rxBuffer: [1024, 1 << 30],
  txBuffer: [1024, 1 << 30],
  maxFlows: [1, 1 << 24],
  maxPending: [1, 1 << 24],
  timeoutMs: [0, 0xffff_ffff],
  keepAliveMs: [0, 0xffff_ffff],
} as const;

/** The crate's event codes as event types, indexed by code. */
const EVENT_TYPES: readonly (Exclude<SmoltcpEvent['type'], 'error'> | undefined)[] = (() => {
  const types: (Exclude<SmoltcpEvent['type'], 'error'> | undefined)[] = [];
  types[StackEvent.newFlow] = 'new';
  types[StackEvent.readable] = 'readable';
  types[StackEvent.writable] = 'writable';
  types[StackEvent.fin] = 'fin';
  types[StackEvent.closed] = 'closed';
  types[StackEvent.reset] = 'reset';
  return types;
})();
const MAX_PACKET = 65535;
const IO_CHUNK = 64 * 1024;
const FLOW_INFO_LEN = 38;

export class SmoltcpStack {
  private readonly settings: Required<Omit<SmoltcpOptions, 'wasmPath'>>;
  private readonly ipv4: number;
  private readonly ipv6: Uint8Array;
  private readonly sup: TrapSupervisor<StackExports>;
  private inPtr = 0;
  private ioPtr = 0;
  private infoPtr = 0;
  /** Flows JS has been told about and not yet seen end: they get an error if the instance dies. */
  private readonly held = new Set<number>();
  private crashEvents: SmoltcpEvent[] = [];
  private crashEventsRead = 0;
  private nextFirstId = 1;
  private lastNow = 0;

  /** Compiles (once) and instantiates the module. */
  static async create(options: SmoltcpOptions = {}): Promise<SmoltcpStack> {
    return new SmoltcpStack(await loadWasmModule(STACK_CRATE, options.wasmPath), options);
  }

  constructor(module: WasmModule, options: SmoltcpOptions = {}) {
    const { wasmPath: _unused, ...rest } = options;
    this.settings = { ...SMOLTCP_DEFAULTS, ...definedOnly(rest) };
    const v4 = parseIpv4Address(this.settings.ipv4);
    if (!v4) throw badConfig('smoltcp.ipv4', `not an IPv4 address: ${this.settings.ipv4}`);
    const v6 = parseIpv6Address(this.settings.ipv6);
    if (!v6) throw badConfig('smoltcp.ipv6', `not an IPv6 address: ${this.settings.ipv6}`);
    checkIntegerOptions('smoltcp', this.settings, LIMITS);
    this.ipv4 = readU32(v4, 0);
    this.ipv6 = v6;
    this.sup = new TrapSupervisor(module, {
      metric: 'smoltcp',
      crashMessage: 'userspace TCP stack crashed; its flows were reset',
      // Fresh ids after a crash, so a late call with an id of the dead instance cannot hit a new flow.
      start: (wasm, memory) => this.start(wasm, memory, this.nextFirstId),
      lost: (cause) => this.lost(cause),
    });
  }

  private get wasm(): StackExports {
    return this.sup.wasm;
  }

  /** Feeds one inbound IP packet; returns an `InputOutcome` value (for counters). */
  input(packet: Uint8Array, now: number): number {
    this.lastNow = now;
    if (packet.length > MAX_PACKET) return InputOutcome.dropped;
    try {
      this.bytes().set(packet, this.inPtr);
      return this.wasm.stack_input(this.inPtr, packet.length, now);
    } catch (e) {
      this.sup.crashed(e);
      return InputOutcome.dropped;
    }
  }

  /** The flow the last `input` went to: for InputOutcome.newFlow, the id of the flow it opened; 0: none. */
  inputFlow(): number {
    return this.sup.call(() => this.wasm.input_flow());
  }

  /**
   * Runs due timers and flushes flows touched by send/recv/shutdown since the last poll.
   * Returns how many flows it serviced: idle flows are never among them.
   */
  poll(now: number): number {
    this.lastNow = now;
    try {
      return this.wasm.stack_poll(now);
    } catch (e) {
      this.sup.crashed(e);
      return 0;
    }
  }

  /** When `poll` must run next (absolute ms, `now`'s clock); Infinity when nothing is due. */
  pollTimeout(): number {
    try {
      const at = this.wasm.stack_poll_at();
      return at < 0 ? Infinity : at;
    } catch (e) {
      this.sup.crashed(e);
      return Infinity;
    }
  }

  /**
   * The next outbound IP packet, or null. The bytes are a view into the stack's memory, valid
   * only until the next call on this object: write it out at once, or copy it.
   */
  pollTransmit(): Uint8Array | null {
    try {
      const len = this.wasm.transmit_next();
      if (len === 0) return null;
      const ptr = this.wasm.transmit_ptr();
      return this.bytes().subarray(ptr, ptr + len);
    } catch (e) {
      this.sup.crashed(e);
      return null;
    }
  }

  pollEvent(): SmoltcpEvent | null {
    const reported = this.nextCrashEvent();
    if (reported) return reported;
    try {
      const kind = EVENT_TYPES[this.wasm.event_next()];
      if (!kind) return null;
      const id = this.wasm.event_flow() >>> 0;
      switch (kind) {
        case 'new':
          return this.newFlowEvent(id);
        case 'closed':
        case 'reset':
          this.held.delete(id);
          return { type: kind, id };
        default:
          return { type: kind, id };
      }
    } catch (e) {
      this.sup.crashed(e);
      return this.nextCrashEvent();
    }
  }

  /** The remote dial succeeded: answer the held SYN with a SYN-ACK. */
  accept(id: number): void {
    this.check(id, this.call(() => this.wasm.flow_accept(id)));
  }

  /** The remote dial failed: answer the held SYN with an RST and forget the flow. */
  reject(id: number): void {
    this.check(id, this.call(() => this.wasm.flow_reject(id)));
    this.held.delete(id);
  }

  /**
   * The remote destination is unreachable: forget the held SYN without answering, so the client's
   * connect times out as it would without the proxy. A retransmitted SYN then starts a new flow.
   */
  drop(id: number): void {
    this.check(id, this.call(() => this.wasm.flow_forget(id)));
    this.held.delete(id);
  }

  /** Queues bytes for the client; returns how many were taken (the rest: retry on 'writable'). */
  send(id: number, data: Uint8Array): number {
    let sent = 0;
    try {
      while (sent < data.length) {
        const chunk = Math.min(data.length - sent, IO_CHUNK);
        this.bytes().set(data.subarray(sent, sent + chunk), this.ioPtr);
        const n = this.wasm.flow_send(id, this.ioPtr, chunk);
        this.check(id, n);
        sent += n;
        if (n < chunk) break;
      }
    } catch (e) {
      this.sup.crashed(e);
      throw closedError(id);
    }
    return sent;
  }

  /**
   * Bytes from the client, or null when none are waiting (before establishment too; the end of
   * the stream comes as a 'fin' event).
   */
  recv(id: number): Uint8Array | null {
    let n: number;
    try {
      n = this.wasm.flow_recv(id, this.ioPtr, IO_CHUNK);
    } catch (e) {
      this.sup.crashed(e);
      throw closedError(id);
    }
    if (n > 0) return this.bytes().slice(this.ioPtr, this.ioPtr + n);
    // Not readable yet (handshake), or at end of stream: nothing now either way.
    if (n === 0 || n === StackError.eof || n === StackError.invalidState) return null;
    this.check(id, n);
    return null;
  }

  /** Half-close: FIN after the queued data; the client's data keeps arriving. */
  shutdownWrite(id: number): void {
    this.check(id, this.call(() => this.wasm.flow_shutdown(id)));
  }

  /** Reset the flow (RST) and forget it; no further events for it. */
  abort(id: number): void {
    this.check(id, this.call(() => this.wasm.flow_abort(id)));
    this.held.delete(id);
  }

  state(id: number): FlowState | null {
    const code = this.call(() => this.wasm.flow_state(id));
    return code >= 0 ? (FLOW_STATES[code] ?? null) : null;
  }

  stats(): SmoltcpStats {
    const stat = (i: number): number => this.call(() => this.wasm.stack_stat(i));
    return {
      packetsIn: stat(StackStat.packetsIn),
      malformed: stat(StackStat.malformed),
      notTcp: stat(StackStat.notTcp),
      fragments: stat(StackStat.fragments),
      noFlow: stat(StackStat.noFlow),
      overLimit: stat(StackStat.overLimit),
      txDropped: stat(StackStat.txDropped),
      openFlows: stat(StackStat.openFlows),
      pendingFlows: stat(StackStat.pendingFlows),
      crashes: this.sup.crashes,
    };
  }

  /** Linear memory of the current instance, in bytes. */
  memoryBytes(): number {
    return this.sup.memory.byteLength;
  }

  /** Makes the instance panic, to exercise crash recovery. */
  debugPanic(): void {
    this.sup.debugPanic();
  }

  /** Sets up a fresh instance (the supervisor's, at creation and after each crash). */
  private start(wasm: StackExports, memory: WasmMemory, firstId: number): void {
    this.inPtr = wasm.buf_alloc(MAX_PACKET);
    this.ioPtr = wasm.buf_alloc(IO_CHUNK);
    this.infoPtr = wasm.buf_alloc(FLOW_INFO_LEN);
    memory.bytes().set(this.ipv6, this.infoPtr);
    const seed = randomBytes(8);
    const s = this.settings;
    wasm.stack_init(
      this.ipv4,
      this.infoPtr,
      s.mtu,
      s.rxBuffer,
      s.txBuffer,
      s.maxFlows,
      s.maxPending,
      s.timeoutMs,
      s.keepAliveMs,
      seed.readUInt32LE(0),
      seed.readUInt32LE(4),
      firstId,
      this.lastNow,
    );
  }

  private bytes(): Uint8Array {
    return this.sup.memory.bytes();
  }

  private nextCrashEvent(): SmoltcpEvent | null {
    if (this.crashEventsRead === this.crashEvents.length) return null;
    const event = this.crashEvents[this.crashEventsRead++]!;
    if (this.crashEventsRead === this.crashEvents.length) {
      this.crashEvents = [];
      this.crashEventsRead = 0;
    }
    return event;
  }

  private newFlowEvent(id: number): SmoltcpEvent {
    this.wasm.flow_info(id, this.infoPtr);
    const info = this.bytes().subarray(this.infoPtr, this.infoPtr + FLOW_INFO_LEN);
    const family = info[0] === 4 ? 4 : 6;
    const addrLen = family === 4 ? 4 : 16;
    this.held.add(id);
    this.nextFirstId = Math.max(this.nextFirstId, id + 1);
    return {
      type: 'new',
      id,
      family,
      src: { ip: info.slice(6, 6 + addrLen), port: (info[2]! << 8) | info[3]! },
      dst: { ip: info.slice(22, 22 + addrLen), port: (info[4]! << 8) | info[5]! },
    };
  }

  /** Runs one export; a trap becomes crash recovery plus a TSTIER_E_CLOSED for the caller. */
  private call<R>(fn: () => R): R {
    return this.sup.call(fn);
  }

  private check(id: number, code: number): void {
    if (code >= 0) return;
    if (code === StackError.unknownFlow) throw closedError(id);
    throw new TstierError('TSTIER_E_CLOSED', `smoltcp flow ${id}: not in a state for this operation (code ${code})`);
  }

  /** The instance trapped: every flow it held ends with an error (the supervisor then starts a fresh one). */
  private lost(cause: unknown): void {
    const error = new TstierError('TSTIER_E_CLOSED', 'userspace TCP stack crashed; flow reset', { cause });
    for (const id of this.held) this.crashEvents.push({ type: 'error', id, error });
    this.held.clear();
  }
}

function closedError(id: number): TstierError {
  return new TstierError('TSTIER_E_CLOSED', `smoltcp flow ${id} does not exist (closed, reset or rejected)`);
}
