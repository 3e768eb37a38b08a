// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the kernel C APIs that `rust/kernel` lacks in 7.3.
//!
//! This is the only place in the module with `unsafe` code.

use kernel::ffi::c_ulong;

mod ffi {
    use super::c_ulong;

    extern "C" {
        /// `totalram_pages()`, see `helpers.c`.
        pub(super) fn rdh_totalram_pages() -> c_ulong;
    }
}

/// The number of pages of RAM the kernel manages (`totalram_pages()`).
pub(crate) fn totalram_pages() -> usize {
    // SAFETY: `rdh_totalram_pages` only reads an atomic counter; it has no
    // preconditions and may be called from any context.
    unsafe { ffi::rdh_totalram_pages() as usize }
}
