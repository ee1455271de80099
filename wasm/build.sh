#!/usr/bin/env bash
# Builds the userspace TCP stack (smoltcp wrapper) to wasm/build/tstier_stack.wasm.
# Debian's toolchain only (rustc-web + cargo-web + rust-web-src, wasm-ld from lld-14, wasm-opt
# from binaryen): rustup has no wasm32 target or std sources here, and mixing compilers breaks
# core. std is rebuilt with -Zbuild-std, which is why RUSTC_BOOTSTRAP is set and versions pinned.
# Skips the build when the output is newer than every source.
set -euo pipefail
cd "$(dirname "$0")"

out=build/tstier_stack.wasm
if [ -f "$out" ] && [ -z "$(find src Cargo.toml Cargo.lock build.sh -newer "$out" 2>/dev/null)" ]; then
  exit 0
fi

export PATH=/usr/bin:$PATH
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/bin/wasm-ld-14
export CARGO_TARGET_DIR="$PWD/target"
# rust-web-src carries std's sources; build-std looks for them in the sysroot.
/usr/bin/rustc --print sysroot >/dev/null

echo "wasm: building tstier_stack (smoltcp) for wasm32-unknown-unknown"
/usr/bin/cargo build --locked --release \
  --target wasm32-unknown-unknown \
  -Zbuild-std=std,panic_abort

mkdir -p build
wasm-opt -O3 --strip-debug \
  target/wasm32-unknown-unknown/release/tstier_stack.wasm -o "$out.tmp"
mv "$out.tmp" "$out"
echo "wasm: $out ($(stat -c %s "$out") bytes)"
