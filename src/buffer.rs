// SPDX-License-Identifier: GPL-2.0

//! One exported buffer: its memory, and how that memory is described to
//! devices, mapped for users and for the kernel. The dma-buf operations
//! themselves (attachments, their tables, syncs, vmap counting) live in
//! [`crate::wrappers::dmabuf`], once, for every heap.

use crate::wrappers::{
    dmabuf::Exporter, pages::PageRuns, reserved_mem::Chunk, sgtable::SgTable, vma::UserMapping,
    vmalloc::KernelMap,
};
use kernel::{
    device::Device,
    prelude::*,
    str::CStr,
    sync::{aref::ARef, Arc},
};

/// Where a buffer comes from: the heap, kept alive by its buffers (its
/// name is the buffers' exporter name).
pub(crate) trait Origin: Send + Sync {
    /// The heap's name.
    fn name(&self) -> &CStr;
}

/// The memory of one buffer, zeroed by the heap that allocated it.
pub(crate) enum Memory {
    /// Runs of pages with `struct page` (system heap, CMA, carveouts
    /// without `no-map`).
    Pages(Arc<PageRuns>),
    /// A chunk of a reserved region without `struct page` (`no-map`
    /// carveouts), mapped write-combined everywhere.
    Chunk(Arc<Chunk>),
}

impl Memory {
    /// Memory of zeroed page runs.
    pub(crate) fn pages(runs: PageRuns) -> Result<Self> {
        Ok(Memory::Pages(Arc::new(runs, GFP_KERNEL)?))
    }

    /// Memory of a zeroed chunk of a no-map region.
    pub(crate) fn chunk(chunk: Chunk) -> Result<Self> {
        Ok(Memory::Chunk(Arc::new(chunk, GFP_KERNEL)?))
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Memory::Pages(runs) => runs.len(),
            Memory::Chunk(chunk) => chunk.len(),
        }
    }
}

/// A buffer exported as a dma-buf.
///
/// # Invariants
///
/// Every byte of `memory` was zeroed after its previous user freed it.
pub(crate) struct Buffer {
    origin: Arc<dyn Origin>,
    memory: Memory,
}

impl Buffer {
    /// A buffer of `memory`, allocated and zeroed by `origin`.
    pub(crate) fn new(origin: Arc<dyn Origin>, memory: Memory) -> Self {
        Self { origin, memory }
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.memory.len()
    }
}

impl Exporter for Buffer {
    fn exp_name(&self) -> &CStr {
        self.origin.name()
    }

    fn sg_table(&self, dev: ARef<Device>) -> Result<SgTable> {
        match &self.memory {
            Memory::Pages(runs) => SgTable::pages(runs, dev),
            Memory::Chunk(chunk) => SgTable::chunk(chunk, dev),
        }
    }

    fn mmap<'a>(&'a self, vma: &UserMapping<'_, 'a>) -> Result {
        match &self.memory {
            Memory::Pages(runs) => vma.map_pages(runs),
            Memory::Chunk(chunk) => vma.map_chunk(chunk),
        }
    }

    fn kernel_map(&self) -> Result<KernelMap> {
        match &self.memory {
            Memory::Pages(runs) => KernelMap::pages(runs),
            Memory::Chunk(chunk) => KernelMap::chunk(chunk),
        }
    }
}
