//! Stand-in for getrandom 0.4, which quinn-proto pulls in (through rand) with its `wasm_js`
//! backend on wasm32-unknown-unknown. That backend imports Web Crypto through wasm-bindgen, and
//! getrandom 0.4.3 does not compile with the `custom` backend while `wasm_js` is on (its error
//! table names a constant only that backend defines). tstier's module must have no imports, so
//! randomness comes from the embedding crate: it defines `tstier_random_fill`, a stream seeded
//! from JS. Only the API rand 0.10 uses is provided.

use std::fmt;
use std::mem::MaybeUninit;
use std::num::NonZeroU32;

extern "Rust" {
    /// Fills `len` bytes at `dest`. Defined by the crate that links this one (tstier_quic).
    fn tstier_random_fill(dest: *mut u8, len: usize);
}

pub type RawOsError = i32;

/// Never produced: the embedder's stream cannot fail. Kept for API compatibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(NonZeroU32);

impl Error {
    pub const UNSUPPORTED: Error = Error(match NonZeroU32::new(1) {
        Some(code) => code,
        None => unreachable!(),
    });

    pub fn raw_os_error(self) -> Option<RawOsError> {
        None
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "getrandom error {}", self.0)
    }
}

impl std::error::Error for Error {}

pub fn fill(dest: &mut [u8]) -> Result<(), Error> {
    if !dest.is_empty() {
        // SAFETY: `dest` is a valid writable region of that length.
        unsafe { tstier_random_fill(dest.as_mut_ptr(), dest.len()) };
    }
    Ok(())
}

pub fn fill_uninit(dest: &mut [MaybeUninit<u8>]) -> Result<&mut [u8], Error> {
    if !dest.is_empty() {
        // SAFETY: as in `fill`; the callee writes every byte.
        unsafe { tstier_random_fill(dest.as_mut_ptr().cast(), dest.len()) };
    }
    // SAFETY: every byte was just initialised.
    Ok(unsafe { &mut *(dest as *mut [MaybeUninit<u8>] as *mut [u8]) })
}

pub fn u32() -> Result<u32, Error> {
    let mut b = [0u8; 4];
    fill(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

pub fn u64() -> Result<u64, Error> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

#[cfg(feature = "sys_rng")]
pub use rand_core;

#[cfg(feature = "sys_rng")]
mod sys_rng {
    use rand_core::{TryCryptoRng, TryRng};

    use crate::Error;

    #[derive(Clone, Copy, Debug, Default)]
    pub struct SysRng;

    impl TryRng for SysRng {
        type Error = Error;

        fn try_next_u32(&mut self) -> Result<u32, Error> {
            crate::u32()
        }

        fn try_next_u64(&mut self) -> Result<u64, Error> {
            crate::u64()
        }

        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
            crate::fill(dest)
        }
    }

    impl TryCryptoRng for SysRng {}
}

#[cfg(feature = "sys_rng")]
pub use sys_rng::SysRng;
