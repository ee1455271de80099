/**
 * Crash recovery for a wasm crate instance. A Rust panic aborts, which traps; the instance's state
 * is then unusable. The supervisor owns the current instance and its memory view: `guard` runs an
 * export and, on a trap, counts it (metrics), lets the owner report what the dead instance held
 * (its flows or connections end with an error), and starts a fresh instance in its place. A throw
 * that is not a trap is a bug in JS and propagates untouched.
 */
import { TstierError } from '../errors.js';
import { wasmTraps } from '../metrics/wasm-traps.js';
import { instantiate, isWasmTrap, type WasmBaseExports, type WasmModule } from './loader.js';
import { WasmMemory } from './memory.js';

export interface SupervisedCrate<E extends WasmBaseExports> {
  /** The process-wide trap counter this crate counts in. */
  readonly metric: keyof typeof wasmTraps;
  /**
   * Sets up a fresh instance (allocations, init call), through the arguments: the supervisor is not
   * yet assigned to its owner when the first one starts. `crashes`: how many died before it.
   */
  start(wasm: E, memory: WasmMemory, crashes: number): void;
  /** The instance died: report what it held (before the fresh one starts). */
  lost(cause: unknown): void;
  /** What a caller whose call died sees, e.g. "userspace TCP stack crashed; its flows were reset". */
  readonly crashMessage: string;
}

export class TrapSupervisor<E extends WasmBaseExports> {
  wasm!: E;
  readonly memory: WasmMemory;
  private crashCount = 0;

  constructor(private readonly module: WasmModule, private readonly crate: SupervisedCrate<E>) {
    this.memory = new WasmMemory({ buffer: new ArrayBuffer(0) });
    this.restart();
  }

  /** Instances lost to a trap so far. */
  get crashes(): number {
    return this.crashCount;
  }

  /**
   * For a caught throw: a trap is recovered from (and returns), anything else is rethrown. Hot
   * paths call this from their own try/catch, so they allocate no closure per call.
   */
  crashed(e: unknown): void {
    if (!isWasmTrap(e)) throw e;
    this.crashCount++;
    wasmTraps[this.crate.metric]++;
    this.crate.lost(e);
    this.restart();
  }

  /** Runs one export; a trap becomes recovery plus a TSTIER_E_CLOSED for the caller. */
  call<R>(fn: () => R): R {
    try {
      return fn();
    } catch (e) {
      this.fail(e);
    }
  }

  /** A trap in a call the caller must see fail: recover, then throw TSTIER_E_CLOSED. */
  fail(e: unknown): never {
    this.crashed(e);
    throw new TstierError('TSTIER_E_CLOSED', this.crate.crashMessage, { cause: e });
  }

  /** Makes the instance panic, to exercise crash recovery. */
  debugPanic(): void {
    this.call(() => this.wasm.debug_panic());
  }

  private restart(): void {
    this.wasm = instantiate<E>(this.module);
    this.memory.rebind(this.wasm.memory);
    this.crate.start(this.wasm, this.memory, this.crashCount);
  }
}
