/**
 * The QUIC core crate (wasm/quic/build/tstier_quic.wasm, built by wasm/build.sh): where it is and
 * what it exports. Loading, crash recovery and the memory view are daemon/wasm/'s; the numeric ABI
 * (events, lost reasons, errors, stats) is generated into daemon/wasm/abi/quic.ts.
 */
import { type WasmBaseExports, type WasmCrate, type WasmModule, instantiate, loadWasmModule } from '../../wasm/loader.js';

export { isWasmTrap, type WasmModule } from '../../wasm/loader.js';
export { OpError } from '../../wasm/abi/quic.js';

export const QUIC_CRATE: WasmCrate = { file: 'wasm/quic/build/tstier_quic.wasm', what: 'QUIC module', env: 'TSTIER_QUIC_WASM' };

/**
 * The crate's `extern "C"` exports (wasm/quic/src/lib.rs). u32 results arrive as signed i32;
 * stream ids, codes and times are f64.
 */
export interface QuicExports extends WasmBaseExports {
  io_ptr(): number;
  io_capacity(): number;
  endpoint_create(
    maxUdpPayload: number,
    congestion: number,
    crypto: number,
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
}

/** Compiles the module once per path; instances are then created synchronously. */
export function loadQuicModule(path?: string): Promise<WasmModule> {
  return loadWasmModule(QUIC_CRATE, path);
}

export function instantiateQuic(module: WasmModule): QuicExports {
  return instantiate<QuicExports>(module);
}
