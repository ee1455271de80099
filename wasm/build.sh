#!/usr/bin/env bash
# Builds the userspace TCP stack (smoltcp wrapper) to wasm/build/tstier_stack.wasm.
# Toolchain (Debian's rustc-web with build-std): toolchain.sh, shared with the other crates.
# Skips the build when the output is newer than every source.
set -euo pipefail
cd "$(dirname "$0")"
. ./toolchain.sh

# The TypeScript ABI constants of both crates (daemon/wasm/abi/), from their Rust enums: cheap, so always.
node gen-abi.mjs

# Other crates build themselves, each skipping when up to date.
bash quic/build.sh

out=build/tstier_stack.wasm
if wasm_up_to_date "$out" src Cargo.toml Cargo.lock build.sh toolchain.sh; then
  exit 0
fi

export CARGO_TARGET_DIR="$PWD/target"

echo "wasm: building tstier_stack (smoltcp) for wasm32-unknown-unknown"
wasm_cargo_build
wasm_optimize target/wasm32-unknown-unknown/release/tstier_stack.wasm "$out"
