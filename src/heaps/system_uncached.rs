// SPDX-License-Identifier: GPL-2.0

//! The `system-uncached` heap (Android's name, what Rockchip MPP and
//! libdmabufheap look for): the system heap's pages, cleaned out of the CPU
//! caches once at allocation and from then on mapped write-combined by
//! every CPU mapping (mmap, vmap). Importers map them with
//! `DMA_ATTR_SKIP_CPU_SYNC` and `DMA_BUF_IOCTL_SYNC` does no cache
//! maintenance: for buffers the CPU writes once and devices read, or that
//! the CPU hardly touches.

#![forbid(unsafe_code)]

use super::{system::SystemHeap, Heap, Usage};
use crate::{
    buffer::{Filled, MemorySlot},
    pool::Pool,
    wrappers::{
        cache::CacheCleaner,
        fs::{Read, Source},
    },
};
use kernel::{prelude::*, str::CStr, sync::Arc};

/// The `system-uncached` heap: pages (and the pool, and the memory
/// cgroup charge) of the system heap.
pub(crate) struct UncachedHeap {
    system: Arc<SystemHeap>,
    usage: Arc<Usage>,
    cleaner: CacheCleaner,
}

impl UncachedHeap {
    /// The heap, drawing its pages from `system`.
    pub(crate) fn new(system: Arc<SystemHeap>) -> Result<Self> {
        Ok(Self {
            usage: Arc::new(Usage::new(system.usage().size()), GFP_KERNEL)?,
            system,
            cleaner: CacheCleaner::new(c"rust-dma-heap-uncached")?,
        })
    }
}

impl Heap for UncachedHeap {
    fn name(&self) -> &CStr {
        c"system-uncached"
    }

    fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    fn draws_from(&self) -> Option<&Arc<Pool>> {
        Some(self.system.shared_pool())
    }

    fn allocate(
        &self,
        len: usize,
        _fd_flags: u32,
        _heap_flags: u64,
        slot: MemorySlot<'_>,
    ) -> Result<Filled> {
        let runs = self.cleaner.write_combined(self.system.pages(len)?)?;
        Ok(slot.pages(runs, self.system.charge()))
    }

    /// The file's bytes written through the cache (a buffered read) or by
    /// the device: the cleaner writes back and invalidates every line once,
    /// after the whole read.
    fn load(
        &self,
        len: usize,
        source: &Source,
        pos: u64,
        slot: MemorySlot<'_>,
    ) -> Result<(Filled, Read)> {
        let (runs, read) = source.load_pieces(len, pos, |n| self.system.dirty_pages(n))?;
        let runs = self.cleaner.write_combined(runs)?;
        Ok((slot.loaded(runs, self.system.charge()), read))
    }

    fn loads(&self) -> bool {
        true
    }

    fn contiguous(&self) -> bool {
        false
    }

    fn cached(&self) -> bool {
        false
    }
}
