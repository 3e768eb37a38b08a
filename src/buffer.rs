// SPDX-License-Identifier: GPL-2.0

//! One exported buffer: its memory, and how that memory is described to
//! devices, mapped for users and for the kernel. The dma-buf operations
//! themselves (attachments, their tables, syncs, vmap counting) live in
//! [`crate::wrappers::dmabuf`], once, for every heap.

#![forbid(unsafe_code)]

use crate::wrappers::{
    cgroup::{DmemCharge, DmemRegion, MemCgroup, Process},
    device::Devices,
    dmabuf::{Exporter, MemoryRef},
    fs::{Read, Source},
    pages::PageRuns,
    reserved_mem::Chunk,
    warn_ratelimited, Loaded, Zeroed,
};
use core::mem::ManuallyDrop;
use kernel::{
    new_mutex,
    prelude::*,
    str::CStr,
    sync::{Arc, Mutex, SetOnce},
    try_init,
};

/// What a buffer's memory is charged to.
pub(crate) enum Charge {
    /// Nobody.
    None,
    /// The allocating task's memory cgroup (pages allocated with
    /// `__GFP_ACCOUNT`: they carry the charge themselves).
    Memcg,
    /// The allocating task's dmem cgroup (uncharged when dropped).
    Dmem(DmemCharge),
}

impl Charge {
    /// `len` bytes charged to the current task's dmem cgroup in `region`
    /// (nobody without the dmem controller): `ENOMEM` over a limit.
    pub(crate) fn dmem(region: Option<&Arc<DmemRegion>>, len: usize) -> Result<Self> {
        Ok(match region {
            Some(region) => Charge::Dmem(region.try_charge(len as u64)?),
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
    #[inline]
    pub(crate) fn pages(runs: Zeroed<PageRuns>, charge: Charge) -> Self {
        Self {
            backing: Backing::Pages(runs.into_inner()),
            charge,
        }
    }

    /// Memory of page runs a file was read into.
    #[inline]
    pub(crate) fn loaded(runs: Loaded<PageRuns>, charge: Charge) -> Self {
        Self {
            backing: Backing::Pages(runs.into_inner()),
            charge,
        }
    }

    /// Memory of a zeroed chunk of a no-map region.
    pub(crate) fn chunk(chunk: Zeroed<Chunk>, charge: Charge) -> Self {
        Self {
            backing: Backing::Chunk(chunk.into_inner()),
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
}

/// Chooses and allocates a buffer's memory at its first use (the `auto`
/// heap), for the devices that will use it.
pub(crate) trait Choose: Send + Sync {
    /// Charges `len` bytes to the current task (the one allocating the
    /// buffer) ahead of the memory, where contiguous memory for it would be
    /// charged: `ENOMEM` over a limit.
    fn reserve(&self, len: usize) -> Result<Charge>;

    /// `len` bytes of zeroed memory that every device of `devices` can use
    /// (no device: the CPU uses the buffer first); and the heap it came
    /// from. Contiguous memory takes the charge `reserve` made out of
    /// `reserved`; pages are charged to the memory cgroup active when it is
    /// called (the buffer makes it the allocating task's).
    fn choose(
        &self,
        len: usize,
        devices: &Devices<'_>,
        reserved: &mut Option<Charge>,
    ) -> Result<(Memory, &'static CStr)>;

    /// `len` bytes of memory for the CPU (as [`Self::choose`] with no
    /// device), read from `source` at `pos` (zero past its end); and the
    /// heap it came from. Charged to the current task.
    fn load(&self, len: usize, source: &Source, pos: u64) -> Result<(Memory, &'static CStr, Read)>;
}

/// What a deferred buffer got at its first use.
struct Chosen {
    memory: Memory,
    /// The heap the memory came from.
    from: &'static CStr,
}

/// A buffer's memory: allocated with it, or at its first use (boxed: the
/// common case stays small).
enum Contents {
    /// Not written yet: only while the buffer is being built (see
    /// [`Buffer::now`]).
    Empty,
    Now(Memory),
    Deferred(Pin<KBox<Deferred>>),
}

/// Where a heap writes a new buffer's memory: in place, in the buffer's
/// own object (a [`Memory`] is larger than what the kernel's arm64 Rust
/// target moves without a call to `memcpy`).
///
/// # Invariants
///
/// The slot holds [`Contents::Empty`] (nothing to drop).
pub(crate) struct MemorySlot<'a>(&'a mut Contents);

/// Proof that a [`MemorySlot`] was written (only its methods make one).
pub(crate) struct Filled(());

impl MemorySlot<'_> {
    /// Writes `memory` over the empty slot: nothing to drop there (type
    /// invariant), so no call to drop it.
    #[inline(always)]
    fn fill(self, memory: Memory) -> Filled {
        let _empty = ManuallyDrop::new(core::mem::replace(self.0, Contents::Now(memory)));
        Filled(())
    }

    /// Writes zeroed page runs, charged as `charge` says.
    #[inline]
    pub(crate) fn pages(self, runs: Zeroed<PageRuns>, charge: Charge) -> Filled {
        self.fill(Memory::pages(runs, charge))
    }

    /// Writes page runs a file was read into, charged as `charge` says.
    #[inline]
    pub(crate) fn loaded(self, runs: Loaded<PageRuns>, charge: Charge) -> Filled {
        self.fill(Memory::loaded(runs, charge))
    }

    /// Writes a zeroed chunk of a no-map region, charged as `charge` says.
    pub(crate) fn chunk(self, chunk: Zeroed<Chunk>, charge: Charge) -> Filled {
        self.fill(Memory::chunk(chunk, charge))
    }
}

/// The memory of a buffer that gets it at its first use, charged to the
/// task that allocated the buffer, whoever uses it first.
#[pin_data]
struct Deferred {
    len: usize,
    chooser: Arc<dyn Choose>,
    /// The allocating task's memory cgroup: pages chosen later are charged
    /// to it, within its `memory.max`.
    memcg: Option<MemCgroup>,
    /// What [`Choose::reserve`] charged at allocation, until the memory
    /// takes it over or, memory chosen, it is given back.
    #[pin]
    reserved: Mutex<Option<Charge>>,
    chosen: SetOnce<Chosen>,
}

/// A buffer exported as a dma-buf.
///
/// # Invariants
///
/// Every byte of its memory was zeroed after its previous user freed it
/// (and may since hold bytes of a file the allocating task could read);
/// memory chosen at first use is exactly `len` bytes and never changes.
pub(crate) struct Buffer {
    contents: Contents,
    owner: Process,
    /// The process charged instead of the allocating one, when a service
    /// allocated for it (`charge_pid_fd`).
    charged: Option<Process>,
}

impl Buffer {
    /// A buffer for the current task whose memory `alloc` writes, in
    /// place, into the buffer's own object (allocated and zeroed by a
    /// heap).
    /// `charged`: the process a service allocates for (the memory is
    /// charged to it: `alloc` runs in its memory cgroup's scope).
    #[inline]
    pub(crate) fn now(
        alloc: impl FnOnce(MemorySlot<'_>) -> Result<Filled>,
        charged: Option<Process>,
    ) -> impl Init<Self, Error> {
        try_init!(Self {
            contents: Contents::Empty,
            _: {
                // INVARIANT: just emptied.
                let Filled(()) = alloc(MemorySlot(contents))?;
            },
            owner: Process::current(),
            charged,
        })
    }

    /// A buffer of `len` bytes (page-aligned, non-zero) for the current
    /// task, without memory until its first use, when `chooser` picks it.
    /// Refused (`ENOMEM`) when the task's memory cgroup has no room for
    /// `len` bytes now, or `chooser` cannot reserve them.
    /// `memcg`, `charged`: the memory cgroup charged instead of the task's
    /// and its process, when a service allocates for it.
    pub(crate) fn deferred(
        len: usize,
        chooser: Arc<dyn Choose>,
        memcg: Option<MemCgroup>,
        charged: Option<Process>,
    ) -> Result<Self> {
        let memcg = memcg.or_else(MemCgroup::current);
        if memcg.as_ref().is_some_and(|m| len > m.room()) {
            return Err(ENOMEM);
        }
        let reserved = chooser.reserve(len)?;
        let owner = Process::current();
        Ok(Self {
            contents: Contents::Deferred(KBox::pin_init(
                pin_init!(Deferred {
                    len,
                    chooser,
                    memcg,
                    reserved <- new_mutex!(Some(reserved)),
                    chosen: SetOnce::new(),
                }),
                GFP_KERNEL,
            )?),
            owner,
            charged,
        })
    }

    /// A buffer of the kind [`Self::deferred`] makes whose memory is
    /// placed already, for the CPU (a fill from a file writes it at
    /// allocation), charged to the current task as `chooser`'s choice for
    /// the CPU would be: devices that map it later are checked against it.
    pub(crate) fn placed(
        chooser: Arc<dyn Choose>,
        memory: Memory,
        from: &'static CStr,
    ) -> Result<Self> {
        let len = memory.len();
        let owner = Process::current();
        let chosen = SetOnce::new();
        // A new cell: populated here, once.
        chosen.populate(Chosen { memory, from });
        Ok(Self {
            contents: Contents::Deferred(KBox::pin_init(
                pin_init!(Deferred {
                    len,
                    chooser,
                    memcg: MemCgroup::current(),
                    reserved <- new_mutex!(None),
                    chosen,
                }),
                GFP_KERNEL,
            )?),
            owner,
            charged: None,
        })
    }

    /// Its memory, if it has memory yet.
    fn memory(&self) -> Option<&Memory> {
        match &self.contents {
            Contents::Empty => None,
            Contents::Now(memory) => Some(memory),
            Contents::Deferred(d) => d.chosen.as_ref().map(|c| &c.memory),
        }
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        match &self.contents {
            Contents::Empty => 0,
            Contents::Now(memory) => memory.len(),
            Contents::Deferred(d) => d.len,
        }
    }

    /// Who allocated it.
    pub(crate) fn owner(&self) -> &Process {
        &self.owner
    }

    /// Who it is charged to when another process allocated it for them.
    pub(crate) fn charged(&self) -> Option<&Process> {
        self.charged.as_ref()
    }

    /// For a buffer whose memory is chosen at first use: the heap it came
    /// from, `-` before.
    pub(crate) fn chosen_from(&self) -> Option<&str> {
        match &self.contents {
            Contents::Empty | Contents::Now(_) => None,
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
        let memory = self.memory()?;
        match (&memory.charge, &memory.backing) {
            // The pages carry their memory cgroup.
            (Charge::Memcg, Backing::Pages(runs)) => runs.memcg_path(buf),
            // The allocating task's when charged (an `auto` buffer's
            // reservation too).
            (Charge::Dmem(charge), _) => charge.cgroup_path(buf),
            _ => None,
        }
    }
}

impl Exporter for Buffer {
    fn len(&self) -> usize {
        Buffer::len(self)
    }

    fn memory(&self) -> Option<MemoryRef<'_>> {
        let memory = Buffer::memory(self)?;
        Some(match &memory.backing {
            Backing::Pages(runs) => MemoryRef::Pages(runs),
            Backing::Chunk(chunk) => MemoryRef::Chunk(chunk),
        })
    }

    fn populate(&self, devices: &Devices<'_>) -> Result {
        let Contents::Deferred(d) = &self.contents else {
            return Err(EINVAL);
        };
        let mut reserved = d.reserved.lock();
        let mut choose = || d.chooser.choose(d.len, devices, &mut reserved);
        // Pages charged to the allocating task's memory cgroup, whoever uses
        // the buffer first.
        let (memory, from) = match &d.memcg {
            Some(memcg) => memcg.charging(choose),
            None => choose(),
        }?;
        // INVARIANT: exactly `len` bytes, or refused (and freed).
        if memory.len() != d.len {
            return Err(EINVAL);
        }
        // A reservation the memory did not take is given back.
        *reserved = None;
        // Under the dma-buf's reservation lock (the caller's): not populated
        // yet.
        d.chosen.populate(Chosen { memory, from });
        Ok(())
    }

    fn checks_devices(&self) -> bool {
        matches!(self.contents, Contents::Deferred(_))
    }

    /// A device that maps memory chosen for others must be able to use it:
    /// `EINVAL` when it needs one contiguous range and the memory is
    /// scattered, `EIO` when it cannot reach it under its DMA mask and bus
    /// limit; a log line names the device and the reason.
    fn admit(&self, heap: &CStr, device: &Devices<'_>, memory: MemoryRef<'_>) -> Result {
        let MemoryRef::Pages(runs) = memory else {
            return Ok(());
        };
        let (err, why) = if device.need_contiguous() && !runs.contiguous() {
            (EINVAL, "needs one contiguous range")
        } else if !runs.reachable_by(device) {
            (EIO, "cannot reach it under its DMA mask")
        } else {
            return Ok(());
        };
        warn_ratelimited(fmt!(
            "rust_dma_heap: {}: {} cannot map a buffer whose memory was chosen at its first use: it {}\n",
            heap.to_str().unwrap_or("?"),
            device.names(),
            why
        ));
        Err(err)
    }
}
