// SPDX-License-Identifier: GPL-2.0

//! One exported buffer: its memory, and how that memory is described to
//! devices, mapped for users and for the kernel. The dma-buf operations
//! themselves (attachments, their tables, syncs, vmap counting) live in
//! [`crate::wrappers::dmabuf`], once, for every heap.

use crate::wrappers::{
    cgroup::{DmemCharge, DmemRegion, Owner},
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

    /// The heap's size and allocation limit.
    fn usage(&self) -> &Usage;
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

impl Charge {
    /// `len` bytes charged to the current task's dmem cgroup in `region`
    /// (nobody without the dmem controller): `ENOMEM` over a limit.
    pub(crate) fn dmem(region: Option<&Arc<DmemRegion>>, len: usize) -> Result<Self> {
        Ok(match region {
            Some(region) => Charge::Dmem {
                _charge: region.try_charge(len as u64)?,
            },
            None => Charge::None,
        })
    }
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

    /// Whether a dmem cgroup is charged for it.
    fn dmem_charged(&self) -> bool {
        matches!(self.charge, Charge::Dmem { .. })
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
    owner: Owner,
}

impl Buffer {
    /// A buffer of `memory`, allocated and zeroed by `origin` for the
    /// current task.
    pub(crate) fn new(origin: Arc<dyn Origin>, memory: Memory) -> Self {
        let owner = Owner::current(memory.dmem_charged());
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

    /// The path of the cgroup its memory is charged to, written into
    /// `buf`; `None` when nobody is charged.
    pub(crate) fn cgroup_path<'b>(&self, buf: &'b mut [u8]) -> Option<&'b str> {
        match (&self.memory.charge, &self.memory.backing) {
            // The pages carry their memory cgroup.
            (Charge::Memcg, Backing::Pages(runs)) => runs.memcg_path(buf),
            (Charge::Dmem { .. }, _) => self.owner.cgroup_path(buf),
            _ => None,
        }
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
