/**
 * Traps of the wasm modules in this process (a Rust panic in the QUIC core or in smoltcp), counted
 * where each module recovers from one, for metrics. Process-wide: every instance counts here.
 */
export const wasmTraps = { quic: 0, smoltcp: 0 };
