/**
 * The userspace TCP stack crate (wasm/build/tstier_stack.wasm, built by wasm/build.sh): where it is
 * and what it exports. Loading, crash recovery and the memory view are daemon/wasm/'s; the numeric
 * ABI (events, outcomes, errors, states, stats) is generated into daemon/wasm/abi/stack.ts.
 */
import type { WasmBaseExports, WasmCrate } from '../../wasm/loader.js';

export const STACK_CRATE: WasmCrate = { file: 'wasm/build/tstier_stack.wasm', what: 'smoltcp module', env: 'TSTIER_SMOLTCP_WASM' };

/** The crate's `extern "C"` exports (wasm/src/lib.rs). u32 results arrive as signed i32. */
export interface StackExports extends WasmBaseExports {
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
  /** The flow the last stack_input went to (the one it opened, for InputOutcome.newFlow); 0: none. */
  input_flow(): number;
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
}
