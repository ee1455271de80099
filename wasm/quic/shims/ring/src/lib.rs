//! Empty stand-in for `ring`. quinn-proto lists ring as an unconditional dependency on
//! wasm32-unknown-unknown, but uses it only with its `ring`/`rustls` features, which tstier
//! leaves off (QUIC runs with null protection inside the peer layer's AEAD). Building the real
//! ring for wasm needs a C cross-compiler (clang) that this toolchain does not have.
