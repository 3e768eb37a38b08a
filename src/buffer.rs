// SPDX-License-Identifier: GPL-2.0

//! One exported buffer: its memory, and how that memory is described to
//! devices, mapped for users and for the kernel. The dma-buf operations
//! themselves (attachments, their tables, syncs, vmap counting) live in
//! [`crate::wrappers::dmabuf`], once, for every heap.

use crate::wrappers::{
    cgroup::{DmemCharge, DmemRegion, Owner},
    dmabuf::{Exporter, MemoryRef},
    pages::PageRuns,
    reserved_mem::Chunk,
};
use kernel::{prelude::*, sync::Arc};

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

/// How the memory is held (inline: tables and mappings borrow it from the
/// exported buffer, which owns it).
enum Backing {
    /// Runs of pages with `struct page` (system heap, CMA, carveouts
    /// without `no-map`).
    Pages(PageRuns),
    /// A chunk of a reserved region without `struct page` (`no-map`
    /// carveouts), mapped write-combined everywhere.
    Chunk(Chunk),
}

/// The memory of one buffer, zeroed by the heap that allocated it, and its
/// charge (dropped after the memory is freed).
pub(crate) struct Memory {
    backing: Backing,
    charge: Charge,
}

impl Memory {
    /// Memory of zeroed page runs.
    pub(crate) fn pages(runs: PageRuns, charge: Charge) -> Self {
        Self {
            backing: Backing::Pages(runs),
            charge,
        }
    }

    /// Memory of a zeroed chunk of a no-map region.
    pub(crate) fn chunk(chunk: Chunk, charge: Charge) -> Self {
        Self {
            backing: Backing::Chunk(chunk),
            charge,
        }
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
    memory: Memory,
    owner: Owner,
}

impl Buffer {
    /// A buffer of `memory`, allocated and zeroed by a heap for the
    /// current task.
    pub(crate) fn new(memory: Memory) -> Self {
        let owner = Owner::current(memory.dmem_charged());
        Self { memory, owner }
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
    fn memory(&self) -> MemoryRef<'_> {
        match &self.memory.backing {
            Backing::Pages(runs) => MemoryRef::Pages(runs),
            Backing::Chunk(chunk) => MemoryRef::Chunk(chunk),
        }
    }
}
