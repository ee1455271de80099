/**
 * The one loader for our wasm crates (the smoltcp stack, the QUIC core): finds the build output,
 * compiles each module once per path, and instantiates it. The modules have no imports; each
 * instance is one stack or endpoint, which the trap supervisor (supervisor.ts) replaces when it dies.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { TstierError } from '../errors.js';

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

/** What every crate exports besides its own calls. */
export interface WasmBaseExports {
  memory: { readonly buffer: ArrayBuffer };
  /** Panics on purpose, so tests can prove a trap is survived. */
  debug_panic(): void;
}

/** A trap (e.g. a Rust panic, "unreachable") rather than an error thrown by JS code. */
export function isWasmTrap(e: unknown): boolean {
  return e instanceof WasmJs.RuntimeError;
}

/** A crate's build output: its path under the repo root, and what logs and errors call it. */
export interface WasmCrate {
  /** e.g. "wasm/build/tstier_stack.wasm". */
  readonly file: string;
  /** e.g. "smoltcp module". */
  readonly what: string;
  /** The variable that, when set, names another file to load (tests of a broken module). */
  readonly env: string;
}

/**
 * The crate's env override if set, else its build output: the repo root seen from this file, in
 * source (daemon/...) and in the build (dist/daemon/...).
 */
export function defaultModulePath(crate: WasmCrate): string {
  const override = process.env[crate.env];
  if (override) return override;
  const candidates = ['../../', '../../../'].map((up) => fileURLToPath(new URL(up + crate.file, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

const compiled = new Map<string, Promise<WasmModule>>();

/** Compiles the module at `path` once; instances are then created synchronously. */
export function loadWasmModule(crate: WasmCrate, path = defaultModulePath(crate)): Promise<WasmModule> {
  let module = compiled.get(path);
  if (!module) {
    module = readFile(path).then(
      (bytes) => WasmJs.compile(bytes).catch((cause: unknown) => {
        compiled.delete(path);
        throw new TstierError('TSTIER_E_ADDON', `${crate.what} ${path}: cannot load: ${(cause as Error).message}`, { cause });
      }),
      (cause: unknown) => {
        compiled.delete(path);
        throw new TstierError('TSTIER_E_BAD_CONFIG', `${crate.what} ${path} not found: run wasm/build.sh (bin/setup does)`, { cause });
      },
    );
    compiled.set(path, module);
  }
  return module;
}

export function instantiate<E extends WasmBaseExports>(module: WasmModule): E {
  return new WasmJs.Instance(module, {}).exports as E;
}
