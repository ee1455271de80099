//! Randomness for quinn-proto, seeded by the embedder: wasm32-unknown-unknown has no entropy
//! source without JS imports, so JS passes a seed when it creates the endpoint and everything
//! random (connection ids, the endpoint's RNG, rand's thread RNG) is drawn from this stream.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(0x853c_49e6_748f_ea9b) };
}

pub fn seed(seed: u64) {
    STATE.with(|s| s.set(seed));
}

/// splitmix64: small, fast, and every seed gives a full-period stream.
pub fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

pub fn fill(dest: &mut [u8]) {
    for chunk in dest.chunks_mut(8) {
        let word = next_u64().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// The randomness source of the getrandom stand-in (shims/getrandom).
///
/// # Safety
/// The stand-in passes a writable region of `len` bytes.
#[no_mangle]
unsafe extern "Rust" fn tstier_random_fill(dest: *mut u8, len: usize) {
    fill(std::slice::from_raw_parts_mut(dest, len));
}
