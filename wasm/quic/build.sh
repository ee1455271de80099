#!/usr/bin/env bash
# Builds the QUIC core (quinn-proto behind plain exports) to wasm/quic/build/tstier_quic.wasm.
# Toolchain: ../toolchain.sh. Skips the build when the output is newer than every source.
set -euo pipefail
cd "$(dirname "$0")"
. ../toolchain.sh

# Its TypeScript ABI constants (daemon/wasm/abi/quic.ts), from the Rust enums: cheap, so always.
node ../gen-abi.mjs

out=build/tstier_quic.wasm
if wasm_up_to_date "$out" src shims Cargo.toml Cargo.lock build.sh ../toolchain.sh; then
  exit 0
fi

export CARGO_TARGET_DIR="$PWD/target"

echo "wasm: building tstier_quic (quinn-proto) for wasm32-unknown-unknown"
wasm_cargo_build
wasm_optimize target/wasm32-unknown-unknown/release/tstier_quic.wasm "$out"
