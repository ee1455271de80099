# Sourced by each wasm crate's build script: Debian's toolchain for wasm32-unknown-unknown.
# rustc-web + cargo-web + rust-web-src, wasm-ld from lld-14, wasm-opt from binaryen: rustup has no
# wasm32 target or std sources here, and mixing compilers breaks core. std is rebuilt with
# -Zbuild-std, which is why RUSTC_BOOTSTRAP is set and every crate pins its dependencies.
export PATH=/usr/bin:$PATH
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/bin/wasm-ld-14
# rust-web-src carries std's sources; build-std looks for them in the sysroot.
/usr/bin/rustc --print sysroot >/dev/null

# wasm_up_to_date OUT PATH...: true when OUT exists and is newer than every PATH.
wasm_up_to_date() {
  local out=$1
  shift
  [ -f "$out" ] && [ -z "$(find "$@" -newer "$out" 2>/dev/null)" ]
}

# wasm_cargo_build [cargo args...]: release build of the crate in the current directory.
wasm_cargo_build() {
  /usr/bin/cargo build --locked --release \
    --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort "$@"
}

# wasm_optimize IN OUT: shrink with wasm-opt; OUT appears only when complete.
wasm_optimize() {
  mkdir -p "$(dirname "$2")"
  wasm-opt -O3 --strip-debug "$1" -o "$2.tmp"
  mv "$2.tmp" "$2"
  echo "wasm: $2 ($(stat -c %s "$2") bytes)"
}
