/**
 * Loads the QUIC core module (wasm/quic/build/tstier_quic.wasm, built by wasm/build.sh) and
 * describes its exports. The module has no imports; each instance is one QUIC endpoint.
 * Compiling and instantiating go through the smoltcp binding's loader, which is generic.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { TstierError } from '../../errors.js';
import { type WasmModule, instantiateStack, loadStackModule } from '../../intercept/smoltcp/wasm.js';

export { isWasmTrap, type WasmModule } from '../../intercept/smoltcp/wasm.js';

/**
 * The crate's `extern "C"` exports (wasm/quic/src/lib.rs). u32 results arrive as signed i32;
 * stream ids, codes and times are f64.
 */
export interface QuicExports {
  memory: { readonly buffer: ArrayBuffer };
  io_ptr(): number;
  io_capacity(): number;
  endpoint_create(
    maxUdpPayload: number,
    congestion: number,
    acceptIncoming: number,
    idleTimeoutMs: number,
    keepAliveMs: number,
    maxBidiStreams: number,
    streamWindow: number,
    connectionWindow: number,
    sendWindow: number,
    seedLo: number,
    seedHi: number,
    firstConn: number,
    resetKeyLen: number,
    nowMs: number,
  ): number;
  connect(peer: number, nowMs: number): number;
  input(peer: number, fromInitiator: number, len: number, nowMs: number): number;
  poll_transmit(): number;
  tx_ptr(): number;
  tx_peer(): number;
  tx_from_initiator(): number;
  poll_timeout(): number;
  handle_timeout(nowMs: number): number;
  event_next(): number;
  event_conn(): number;
  event_peer(): number;
  event_stream(): number;
  event_code(): number;
  stream_open(conn: number): number;
  stream_write(conn: number, stream: number, len: number): number;
  stream_read(conn: number, stream: number, max: number): number;
  stream_finish(conn: number, stream: number): number;
  stream_reset(conn: number, stream: number, code: number): number;
  stream_stop(conn: number, stream: number, code: number): number;
  last_code(): number;
  lost_detail(): number;
  conn_close(conn: number, code: number, nowMs: number): number;
  conn_stats(conn: number): number;
  stats_ptr(): number;
  conn_count(): number;
  debug_panic(): void;
}

/** Negative results of the exports (the crate's `OpError`). */
export const OpError = {
  unknownConnection: -1,
  streamsExhausted: -3,
  stopped: -4,
  reset: -5,
  closed: -6,
  blocked: -7,
  finished: -8,
  badArgument: -9,
  connectFailed: -10,
  noEndpoint: -100,
} as const;

const MODULE_FILE = 'wasm/quic/build/tstier_quic.wasm';

/** The repo root seen from this file, in source (daemon/...) and in the build (dist/daemon/...). */
function defaultModulePath(): string {
  const candidates = ['../../../', '../../../../'].map((up) => fileURLToPath(new URL(up + MODULE_FILE, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

/** Compiles the module once per path; instances are then created synchronously. */
export async function loadQuicModule(path = defaultModulePath()): Promise<WasmModule> {
  try {
    return await loadStackModule(path);
  } catch (cause) {
    throw new TstierError('TSTIER_E_BAD_CONFIG', `QUIC module ${path} not loadable: run wasm/build.sh (bin/setup does)`, { cause });
  }
}

export function instantiateQuic(module: WasmModule): QuicExports {
  return instantiateStack(module) as unknown as QuicExports;
}
