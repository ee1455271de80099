/**
 * Loads the userspace TCP stack module (wasm/build/tstier_stack.wasm, built by wasm/build.sh)
 * and describes its exports. The module has no imports; each instance is one stack.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { TstierError } from '../../errors.js';

/**
 * The slice of the WebAssembly JS API used here. Node has it globally, but this project's
 * `lib` (ES2022, no DOM) carries no types for it, so they are declared locally.
 */
export interface WasmModule {
  readonly __wasmModule: unique symbol;
}
interface WasmJsApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
  RuntimeError: new (...args: never[]) => Error;
}
const WasmJs = (globalThis as unknown as { WebAssembly: WasmJsApi }).WebAssembly;

/** A trap (e.g. a Rust panic, "unreachable") rather than an error thrown by JS code. */
export function isWasmTrap(e: unknown): boolean {
  return e instanceof WasmJs.RuntimeError;
}

/** The crate's `extern "C"` exports (wasm/src/lib.rs). u32 results arrive as signed i32. */
export interface StackExports {
  memory: { readonly buffer: ArrayBuffer };
  buf_alloc(len: number): number;
  buf_free(ptr: number, len: number): void;
  stack_init(
    ipv4: number,
    ipv6Ptr: number,
    mtu: number,
    rxBuffer: number,
    txBuffer: number,
    maxFlows: number,
    maxPending: number,
    timeoutMs: number,
    keepAliveMs: number,
    seedLo: number,
    seedHi: number,
    firstId: number,
    nowMs: number,
  ): number;
  stack_input(ptr: number, len: number, nowMs: number): number;
  stack_poll(nowMs: number): number;
  stack_poll_at(): number;
  stack_stat(index: number): number;
  transmit_next(): number;
  transmit_ptr(): number;
  event_next(): number;
  event_flow(): number;
  flow_info(id: number, out: number): number;
  flow_accept(id: number): number;
  flow_reject(id: number): number;
  flow_forget(id: number): number;
  flow_send(id: number, ptr: number, len: number): number;
  flow_recv(id: number, ptr: number, cap: number): number;
  flow_shutdown(id: number): number;
  flow_abort(id: number): number;
  flow_state(id: number): number;
  debug_panic(): void;
}

const MODULE_FILE = 'wasm/build/tstier_stack.wasm';

/**
 * TSTIER_SMOLTCP_WASM if set, else the build output: the repo root seen from this file, in source
 * (daemon/...) and in the build (dist/daemon/...).
 */
function defaultModulePath(): string {
  const override = process.env.TSTIER_SMOLTCP_WASM;
  if (override) return override;
  const candidates = ['../../../', '../../../../'].map((up) => fileURLToPath(new URL(up + MODULE_FILE, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

const compiled = new Map<string, Promise<WasmModule>>();

/** Compiles the module once per path; instances are then created synchronously. */
export function loadStackModule(path = defaultModulePath()): Promise<WasmModule> {
  let module = compiled.get(path);
  if (!module) {
    module = readFile(path).then(
      (bytes) => WasmJs.compile(bytes).catch((cause: unknown) => {
        compiled.delete(path);
        throw new TstierError('TSTIER_E_ADDON', `smoltcp module ${path}: cannot load: ${(cause as Error).message}`, { cause });
      }),
      (cause: unknown) => {
        compiled.delete(path);
        throw new TstierError('TSTIER_E_BAD_CONFIG', `smoltcp module ${path} not found: run wasm/build.sh (bin/setup does)`, {
          cause,
        });
      },
    );
    compiled.set(path, module);
  }
  return module;
}

export function instantiateStack(module: WasmModule): StackExports {
  return new WasmJs.Instance(module, {}).exports as unknown as StackExports;
}
