/**
 * The QUIC core's numeric ABI, named: what `event_next`, `event_code`, `conn_stats` and the settings
 * arguments of wasm/quic mean. Generated from the Rust enums (wasm/quic/src/abi.rs) into
 * daemon/wasm/abi/quic.ts; the carrier imports them from here.
 */
export * from '../../wasm/abi/quic.js';
