// SPDX-License-Identifier: GPL-2.0

//! One exported buffer: its memory, and how that memory is described to
//! devices, mapped for users and for the kernel. The dma-buf operations
//! themselves (attachments, their tables, syncs, vmap counting) live in
//! [`crate::wrappers::dmabuf`], once, for every heap.

use crate::wrappers::{
    cgroup::{Controller, DmemCharge, Owner},
    dmabuf::Exporter,
    pages::PageRuns,
    reserved_mem::Chunk,
    sgtable::SgTable,
    vma::UserMapping,
    vmalloc::KernelMap,
};
use kernel::{
    device::Device,
    prelude::*,
    str::CStr,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc,
    },
};

/// Where a buffer comes from: the heap, kept alive by its buffers (its
/// name is the buffers' exporter name).
pub(crate) trait Origin: Send + Sync {
    /// The heap's name.
    fn name(&self) -> &CStr;

    /// The heap's live buffers and limit.
    fn usage(&self) -> &Usage;
}

/// A heap's live buffers (what its sysfs attributes show) and the
/// largest allocation it allows.
pub(crate) struct Usage {
    /// Bytes the heap can ever hold.
    size: u64,
    used: Atomic<u64>,
    buffers: Atomic<u64>,
    peak: Atomic<u64>,
    max_alloc: Atomic<u64>,
}

impl Usage {
    /// No buffer yet; allocations up to `size` bytes allowed.
    pub(crate) fn new(size: u64) -> Self {
        Self {
            size,
            used: Atomic::new(0),
            buffers: Atomic::new(0),
            peak: Atomic::new(0),
            max_alloc: Atomic::new(size),
        }
    }

    fn add(&self, len: u64) {
        let used = self.used.fetch_add(len, Relaxed) + len;
        self.buffers.add(1, Relaxed);
        let mut peak = self.peak.load(Relaxed);
        while used > peak {
            match self.peak.cmpxchg(peak, used, Relaxed) {
                Ok(_) => break,
                Err(now) => peak = now,
            }
        }
    }

    fn sub(&self, len: u64) {
        self.used.fetch_sub(len, Relaxed);
        self.buffers.fetch_sub(1, Relaxed);
    }

    /// Bytes the heap can ever hold.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes in live buffers.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Relaxed)
    }

    /// Live buffers.
    pub(crate) fn buffers(&self) -> u64 {
        self.buffers.load(Relaxed)
    }

    /// The most bytes live at once since load or the last reset.
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }

    /// Starts the high-water mark again from what is live now.
    pub(crate) fn reset_peak(&self) {
        self.peak.store(self.used(), Relaxed);
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

/// What a buffer's memory is charged to.
pub(crate) enum Charge {
    /// Nobody.
    None,
    /// The allocating task's memory cgroup (pages allocated with
    /// `__GFP_ACCOUNT`: they carry the charge themselves).
    Memcg,
    /// The allocating task's dmem cgroup (uncharged when dropped).
    Dmem {
        /// Held for its `Drop`.
        _charge: DmemCharge,
    },
}

/// How the memory is held.
enum Backing {
    /// Runs of pages with `struct page` (system heap, CMA, carveouts
    /// without `no-map`).
    Pages(Arc<PageRuns>),
    /// A chunk of a reserved region without `struct page` (`no-map`
    /// carveouts), mapped write-combined everywhere.
    Chunk(Arc<Chunk>),
}

/// The memory of one buffer, zeroed by the heap that allocated it, and its
/// charge (dropped after the memory is freed).
pub(crate) struct Memory {
    backing: Backing,
    charge: Charge,
}

impl Memory {
    /// Memory of zeroed page runs.
    pub(crate) fn pages(runs: PageRuns, charge: Charge) -> Result<Self> {
        Ok(Self {
            backing: Backing::Pages(Arc::new(runs, GFP_KERNEL)?),
            charge,
        })
    }

    /// Memory of a zeroed chunk of a no-map region.
    pub(crate) fn chunk(chunk: Chunk, charge: Charge) -> Result<Self> {
        Ok(Self {
            backing: Backing::Chunk(Arc::new(chunk, GFP_KERNEL)?),
            charge,
        })
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        match &self.backing {
            Backing::Pages(runs) => runs.len(),
            Backing::Chunk(chunk) => chunk.len(),
        }
    }

    /// The controller charged for this memory, if any.
    pub(crate) fn controller(&self) -> Option<Controller> {
        match self.charge {
            Charge::None => None,
            Charge::Memcg => Some(Controller::Memory),
            Charge::Dmem { .. } => Some(Controller::Dmem),
        }
    }
}

/// A buffer exported as a dma-buf, counted in its heap's [`Usage`] while
/// it lives.
///
/// # Invariants
///
/// Every byte of `memory` was zeroed after its previous user freed it.
pub(crate) struct Buffer {
    origin: Arc<dyn Origin>,
    memory: Memory,
    owner: Owner,
}

impl Buffer {
    /// A buffer of `memory`, allocated and zeroed by `origin` for the
    /// current task.
    pub(crate) fn new(origin: Arc<dyn Origin>, memory: Memory) -> Self {
        origin.usage().add(memory.len() as u64);
        let owner = Owner::current(memory.controller());
        Self {
            origin,
            memory,
            owner,
        }
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.memory.len()
    }

    /// Who allocated it.
    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.origin.usage().sub(self.memory.len() as u64);
    }
}

impl Exporter for Buffer {
    fn exp_name(&self) -> &CStr {
        self.origin.name()
    }

    fn sg_table(&self, dev: ARef<Device>) -> Result<SgTable> {
        match &self.memory.backing {
            Backing::Pages(runs) => SgTable::pages(runs, dev),
            Backing::Chunk(chunk) => SgTable::chunk(chunk, dev),
        }
    }

    fn mmap<'a>(&'a self, vma: &UserMapping<'_, 'a>) -> Result {
        match &self.memory.backing {
            Backing::Pages(runs) => vma.map_pages(runs),
            Backing::Chunk(chunk) => vma.map_chunk(chunk),
        }
    }

    fn kernel_map(&self) -> Result<KernelMap> {
        match &self.memory.backing {
            Backing::Pages(runs) => KernelMap::pages(runs),
            Backing::Chunk(chunk) => KernelMap::chunk(chunk),
        }
    }
}
