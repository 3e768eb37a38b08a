// SPDX-License-Identifier: GPL-2.0

//! Heap backends: each turns a length into zeroed
//! [`Memory`](crate::buffer::Memory), written in place into the new
//! buffer. A new kind of heap is a new file here.

#![forbid(unsafe_code)]

use crate::{
    buffer::{Choose, Filled, MemorySlot},
    pool::Pool,
    wrappers::fs::{Read, Source},
};
use kernel::{
    prelude::*,
    str::CStr,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
};

#[cfg(CONFIG_RUST_DMA_HEAP_AUTO)]
pub(crate) mod auto;
#[cfg(CONFIG_RUST_DMA_HEAP_CARVEOUT)]
pub(crate) mod carveout;
#[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
pub(crate) mod cma;
#[cfg(CONFIG_RUST_DMA_HEAP_SYSTEM)]
pub(crate) mod system;
#[cfg(CONFIG_RUST_DMA_HEAP_SYSTEM_UNCACHED)]
pub(crate) mod system_uncached;

/// A memory backend. The registry calls it; it never looks inside the
/// memory it returns.
pub(crate) trait Heap: Send + Sync {
    /// The heap's name: its node's (`/dev/<class>/<name>`) and its
    /// buffers' exporter name.
    fn name(&self) -> &CStr;

    /// The heap's size and allocation limit (shared: the registry keeps a
    /// reference, to check each allocation without a call).
    fn usage(&self) -> &Arc<Usage>;

    /// Allocates `len` bytes (page-aligned, non-zero, at most
    /// [`Usage::max_alloc`]), zeroed, into `slot` (the new buffer's own
    /// object). `fd_flags` and `heap_flags` are validated already.
    fn allocate(
        &self,
        len: usize,
        fd_flags: u32,
        heap_flags: u64,
        slot: MemorySlot<'_>,
    ) -> Result<Filled>;

    /// As [`Heap::allocate`], the memory then read from `source` at `pos`
    /// (zero past the file's end): returns how many bytes were read. Only
    /// heaps whose memory has `struct page`s (a `bio_vec` names pages);
    /// the others refuse, `EOPNOTSUPP`.
    fn load(
        &self,
        _len: usize,
        _source: &Source,
        _pos: u64,
        _slot: MemorySlot<'_>,
    ) -> Result<(Filled, Read)> {
        Err(EOPNOTSUPP)
    }

    /// Whether its buffers are charged to the dmem controller (a CMA area
    /// or carve-out with a registered region), which charges only the
    /// current task's cgroup. Fixed once the heap is built (asked once).
    fn charges_dmem(&self) -> bool {
        false
    }

    /// Whether [`Heap::load`] fills (its memory has `struct page`s).
    fn loads(&self) -> bool {
        false
    }

    /// Whether each buffer is one physically contiguous range.
    fn contiguous(&self) -> bool;

    /// Whether CPU mappings of its buffers are cached (not write-combined).
    fn cached(&self) -> bool;

    /// Bytes of freed memory kept for reuse, for a heap with a pool.
    fn pool(&self) -> Option<usize> {
        None
    }

    /// The pool its buffers' pages come from and go back to: its own, or
    /// the system heap's it draws from (`system-uncached`, `auto`), which
    /// holds pages whether or not the system heap itself is registered.
    fn draws_from(&self) -> Option<&Arc<Pool>> {
        None
    }

    /// For a heap whose buffers get memory only at their first use: what
    /// chooses it then ([`Heap::allocate`] is not called for its buffers).
    fn deferred(&self) -> Option<Arc<dyn Choose>> {
        None
    }
}

/// A heap's size and the largest allocation it allows (its live buffers
/// are counted where they are exported, see
/// [`crate::wrappers::dmabuf::Exports`]).
pub(crate) struct Usage {
    /// Bytes the heap can ever hold.
    size: u64,
    max_alloc: Atomic<u64>,
}

impl Usage {
    /// Allocations up to `size` bytes allowed.
    pub(crate) fn new(size: u64) -> Self {
        Self {
            size,
            max_alloc: Atomic::new(size),
        }
    }

    /// Bytes the heap can ever hold.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The largest allocation allowed.
    pub(crate) fn max_alloc(&self) -> u64 {
        self.max_alloc.load(Relaxed)
    }

    /// Sets the largest allocation allowed: `EINVAL` above the heap's
    /// size.
    pub(crate) fn set_max_alloc(&self, max: u64) -> Result {
        if max > self.size {
            return Err(EINVAL);
        }
        self.max_alloc.store(max, Relaxed);
        Ok(())
    }
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kunit_tests(rust_dma_heap_limits)]
mod tests {
    use super::*;

    #[test]
    fn max_alloc_starts_at_the_size() {
        let usage = Usage::new(1 << 30);
        assert_eq!(usage.size(), 1 << 30);
        assert_eq!(usage.max_alloc(), 1 << 30);
    }

    #[test]
    fn max_alloc_up_to_the_size() {
        let usage = Usage::new(1 << 30);
        assert_eq!(usage.set_max_alloc(1 << 20), Ok(()));
        assert_eq!(usage.max_alloc(), 1 << 20);
        assert_eq!(usage.set_max_alloc(1 << 30), Ok(()));
        assert_eq!(usage.max_alloc(), 1 << 30);
        // 0: every allocation refused.
        assert_eq!(usage.set_max_alloc(0), Ok(()));
        assert_eq!(usage.max_alloc(), 0);
    }

    #[test]
    fn max_alloc_above_the_size_is_einval() {
        let usage = Usage::new(1 << 30);
        assert_eq!(usage.set_max_alloc(1 << 20), Ok(()));
        assert_eq!(usage.set_max_alloc((1 << 30) + 1), Err(EINVAL));
        assert_eq!(usage.set_max_alloc(u64::MAX), Err(EINVAL));
        // Unchanged by a refused write.
        assert_eq!(usage.max_alloc(), 1 << 20);
    }
}
