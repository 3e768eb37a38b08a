// SPDX-License-Identifier: GPL-2.0

//! Heap backends: each turns a length into zeroed [`Memory`]. A new kind
//! of heap is a new file here.

use crate::buffer::{Memory, Origin};

#[cfg(CONFIG_RUST_DMA_HEAP_CARVEOUT)]
pub(crate) mod carveout;
#[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
pub(crate) mod cma;
#[cfg(CONFIG_RUST_DMA_HEAP_SYSTEM)]
pub(crate) mod system;

/// A memory backend. The registry calls it; it never looks inside the
/// memory it returns. Its [`Origin::name`] names its node
/// (`/dev/<class>/<name>`) and its buffers' exporter.
pub(crate) trait Heap: Origin {
    /// Allocates `len` bytes (page-aligned, non-zero), zeroed. `fd_flags`
    /// and `heap_flags` are validated already.
    fn allocate(&self, len: usize, fd_flags: u32, heap_flags: u64)
        -> kernel::error::Result<Memory>;

    /// Whether each buffer is one physically contiguous range.
    fn contiguous(&self) -> bool;

    /// Whether CPU mappings of its buffers are cached (not write-combined).
    fn cached(&self) -> bool;
}
