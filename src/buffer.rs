// SPDX-License-Identifier: GPL-2.0

//! One exported buffer: its memory, and how that memory is described to
//! devices, mapped for users and for the kernel. The dma-buf operations
//! themselves (attachments, their tables, syncs, vmap counting) live in
//! [`crate::wrappers::dmabuf`], once, for every heap.

use crate::wrappers::{
    cgroup::{DmemCharge, DmemRegion, Owner},
    device::Devices,
    dmabuf::{Exporter, MemoryRef},
    pages::PageRuns,
    reserved_mem::Chunk,
};
use kernel::{
    prelude::*,
    str::CStr,
    sync::{Arc, SetOnce},
};

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

/// Chooses and allocates a buffer's memory at its first use (the `auto`
/// heap), for the devices that will use it.
pub(crate) trait Choose: Send + Sync {
    /// `len` bytes of zeroed memory that every device of `devices` can use
    /// (no device: the CPU uses the buffer first), charged to the current
    /// task; and the heap it came from.
    fn choose(&self, len: usize, devices: &Devices<'_>) -> Result<(Memory, &'static CStr)>;
}

/// What a deferred buffer got at its first use.
struct Chosen {
    memory: Memory,
    /// The heap the memory came from.
    from: &'static CStr,
    /// Who was charged for it (the task that used the buffer first).
    charged: Owner,
}

/// A buffer's memory: allocated with it, or at its first use (boxed: the
/// common case stays small, and moving a buffer copies only what it holds).
enum Contents {
    Now(Memory),
    Deferred(KBox<Deferred>),
}

/// The memory of a buffer that gets it at its first use.
struct Deferred {
    len: usize,
    chooser: Arc<dyn Choose>,
    chosen: SetOnce<Chosen>,
}

/// A buffer exported as a dma-buf.
///
/// # Invariants
///
/// Every byte of its memory was zeroed after its previous user freed it;
/// memory chosen at first use is exactly `len` bytes and never changes.
pub(crate) struct Buffer {
    contents: Contents,
    owner: Owner,
}

impl Buffer {
    /// A buffer of `memory`, allocated and zeroed by a heap for the
    /// current task.
    pub(crate) fn new(memory: Memory) -> Self {
        let owner = Owner::current(memory.dmem_charged());
        Self {
            contents: Contents::Now(memory),
            owner,
        }
    }

    /// A buffer of `len` bytes (page-aligned, non-zero) for the current
    /// task, without memory until its first use, when `chooser` picks it.
    pub(crate) fn deferred(len: usize, chooser: Arc<dyn Choose>) -> Result<Self> {
        Ok(Self {
            contents: Contents::Deferred(KBox::new(
                Deferred {
                    len,
                    chooser,
                    chosen: SetOnce::new(),
                },
                GFP_KERNEL,
            )?),
            owner: Owner::current(false),
        })
    }

    /// Its memory and who is charged for it, if it has memory yet.
    fn memory_and_charged(&self) -> Option<(&Memory, &Owner)> {
        match &self.contents {
            Contents::Now(memory) => Some((memory, &self.owner)),
            Contents::Deferred(d) => d.chosen.as_ref().map(|c| (&c.memory, &c.charged)),
        }
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        match &self.contents {
            Contents::Now(memory) => memory.len(),
            Contents::Deferred(d) => d.len,
        }
    }

    /// Who allocated it.
    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
    }

    /// For a buffer whose memory is chosen at first use: the heap it came
    /// from, `-` before.
    pub(crate) fn chosen_from(&self) -> Option<&str> {
        match &self.contents {
            Contents::Now(_) => None,
            Contents::Deferred(d) => Some(
                d.chosen
                    .as_ref()
                    .map_or("-", |c| c.from.to_str().unwrap_or("?")),
            ),
        }
    }

    /// The path of the cgroup its memory is charged to, written into
    /// `buf`; `None` when nobody is charged.
    pub(crate) fn cgroup_path<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let (memory, charged) = self.memory_and_charged()?;
        match (&memory.charge, &memory.backing) {
            // The pages carry their memory cgroup.
            (Charge::Memcg, Backing::Pages(runs)) => runs.memcg_path(buf),
            (Charge::Dmem { .. }, _) => charged.cgroup_path(buf),
            _ => None,
        }
    }
}

impl Exporter for Buffer {
    fn memory(&self) -> Option<MemoryRef<'_>> {
        let (memory, _) = self.memory_and_charged()?;
        Some(match &memory.backing {
            Backing::Pages(runs) => MemoryRef::Pages(runs),
            Backing::Chunk(chunk) => MemoryRef::Chunk(chunk),
        })
    }

    fn populate(&self, devices: &Devices<'_>) -> Result {
        let Contents::Deferred(d) = &self.contents else {
            return Err(EINVAL);
        };
        let (memory, from) = d.chooser.choose(d.len, devices)?;
        // INVARIANT: exactly `len` bytes, or refused (and freed).
        if memory.len() != d.len {
            return Err(EINVAL);
        }
        let charged = Owner::current(memory.dmem_charged());
        // Under the dma-buf's reservation lock (the caller's): not populated
        // yet.
        d.chosen.populate(Chosen {
            memory,
            from,
            charged,
        });
        Ok(())
    }

    fn checks_devices(&self) -> bool {
        matches!(self.contents, Contents::Deferred(_))
    }
}
