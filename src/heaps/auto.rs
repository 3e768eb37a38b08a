// SPDX-License-Identifier: GPL-2.0

//! The `auto` heap: a buffer gets no memory when it is allocated, but at
//! its first use, chosen for what uses it (the idea of the 2016 SMAF
//! proposal):
//!
//! - the first DMA map: memory every device attached at that moment can
//!   use. If one of them has no IOMMU that merges segments into one DMA
//!   range, one physically contiguous range from a CMA area that every
//!   device reaches under its DMA mask; otherwise (all behind merging
//!   IOMMUs, which reach any page) scattered system-heap pages;
//! - the first mmap, vmap or CPU access: system-heap pages.
//!
//! Memory is zeroed and charged to the task that allocated the buffer,
//! whoever uses it first (a buffer passed to another process does not
//! escape its allocator's limits), unless `mem_accounting=0` (nobody is
//! charged then):
//!
//! - at allocation, its size is reserved in the allocator's dmem cgroup on
//!   the default CMA area's region (`cma/<area>`, `ENOMEM` over its
//!   `dmem.max`), and refused when the allocator's memory cgroup has less
//!   room than that under its `memory.max`;
//! - contiguous memory, from whichever area, keeps that reservation as its
//!   charge;
//! - system pages give it back and are charged to the allocator's memory
//!   cgroup (`set_active_memcg()`), within its `memory.max`.
//!
//! A device that maps the buffer later and cannot use what was chosen is
//! refused (see [`crate::wrappers::dmabuf`]).

#![forbid(unsafe_code)]

use super::{cma::CmaHeap, system::SystemHeap, Heap, Usage};
use crate::{
    buffer::{Charge, Choose, Filled, Memory, MemorySlot},
    pool::Pool,
    wrappers::{
        device::Devices,
        fs::{Read, Source},
        warn_ratelimited,
    },
};
use kernel::{prelude::*, str::CStr, sync::Arc};

/// Where `auto` buffers get their memory.
struct Sources {
    system: Arc<SystemHeap>,
    /// One heap per CMA area, the default area first.
    cma: KVec<Arc<CmaHeap>>,
}

/// The `auto` heap.
pub(crate) struct AutoHeap {
    sources: Arc<Sources>,
    usage: Arc<Usage>,
}

impl AutoHeap {
    /// The heap, drawing from `system` and from the areas of `cma` (heaps
    /// over an area already listed are skipped).
    pub(crate) fn new(system: Arc<SystemHeap>, cma: &[Arc<CmaHeap>]) -> Result<Self> {
        let mut areas: KVec<Arc<CmaHeap>> = KVec::new();
        for heap in cma {
            if !areas.iter().any(|h| h.same_area(heap)) {
                areas.push(heap.clone(), GFP_KERNEL)?;
            }
        }
        Ok(Self {
            usage: Arc::new(Usage::new(system.usage().size()), GFP_KERNEL)?,
            sources: Arc::new(Sources { system, cma: areas }, GFP_KERNEL)?,
        })
    }
}

impl Choose for Sources {
    fn reserve(&self, len: usize) -> Result<Charge> {
        Charge::dmem(self.cma.first().and_then(|h| h.dmem()), len)
    }

    fn choose(
        &self,
        len: usize,
        devices: &Devices<'_>,
        reserved: &mut Option<Charge>,
    ) -> Result<(Memory, &'static CStr)> {
        if !devices.need_contiguous() {
            // The CPU first, or every device behind a merging IOMMU.
            return Ok((self.system.memory(len)?, c"system"));
        }
        let err = match first_area(
            &self.cma,
            // CAST: usize is at most 64 bits.
            |heap| heap.reachable_by(devices) && len as u64 <= heap.usage().max_alloc(),
            |heap| heap.allocate_reserved(len, reserved),
        ) {
            Ok((memory, heap)) => return Ok((memory, heap.static_name())),
            Err(e) if e == EINTR => return Err(e),
            Err(e) => e,
        };
        warn_ratelimited(fmt!(
            "rust_dma_heap: auto: no CMA area holds {} contiguous bytes {} reach\n",
            len,
            devices.names()
        ));
        Err(err)
    }

    /// Filled at allocation, the buffer is used by the CPU first: system
    /// pages.
    fn load(&self, len: usize, source: &Source, pos: u64) -> Result<(Memory, &'static CStr, Read)> {
        let (memory, read) = self.system.loaded_memory(len, source, pos)?;
        Ok((memory, c"system", read))
    }
}

/// The memory `alloc` gives from the first of `areas` that `usable`
/// admits and can hold it, with that area. A killed caller (`EINTR`) stops
/// at the area it was killed in; otherwise the last failure's error is
/// returned (`ENOMEM` when no area was usable).
fn first_area<'a, A, M>(
    areas: &'a [A],
    mut usable: impl FnMut(&A) -> bool,
    mut alloc: impl FnMut(&A) -> Result<M>,
) -> Result<(M, &'a A)> {
    let mut err = ENOMEM;
    for area in areas.iter().filter(|&a| usable(a)) {
        match alloc(area) {
            Ok(memory) => return Ok((memory, area)),
            Err(e) if e == EINTR => return Err(e),
            Err(e) => err = e,
        }
    }
    Err(err)
}

impl Heap for AutoHeap {
    fn name(&self) -> &CStr {
        c"auto"
    }

    fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    fn draws_from(&self) -> Option<&Arc<Pool>> {
        Some(self.sources.system.shared_pool())
    }

    /// Not called for `auto` buffers (see [`Heap::deferred`]): memory as
    /// the system heap would give it.
    fn allocate(
        &self,
        len: usize,
        fd_flags: u32,
        heap_flags: u64,
        slot: MemorySlot<'_>,
    ) -> Result<Filled> {
        self.sources
            .system
            .allocate(len, fd_flags, heap_flags, slot)
    }

    fn loads(&self) -> bool {
        true
    }

    /// Its buffers' size is reserved in the default CMA area's region.
    fn charges_dmem(&self) -> bool {
        self.sources.cma.first().is_some_and(|h| h.dmem().is_some())
    }

    fn contiguous(&self) -> bool {
        false
    }

    fn cached(&self) -> bool {
        true
    }

    fn deferred(&self) -> Option<Arc<dyn Choose>> {
        Some(self.sources.clone())
    }
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kunit_tests(rust_dma_heap_auto)]
mod tests {
    use super::*;

    /// An area: whether the devices reach it, and what allocating from it
    /// gives.
    struct Area {
        reached: bool,
        gives: Result<u32>,
    }

    const fn area(reached: bool, gives: Result<u32>) -> Area {
        Area { reached, gives }
    }

    /// The index of the area chosen, or the error; `tried` counts the
    /// allocations asked for.
    fn pick(areas: &[Area], tried: &mut u32) -> Result<u32> {
        first_area(
            areas,
            |a| a.reached,
            |a| {
                *tried += 1;
                a.gives
            },
        )
        .map(|(m, _)| m)
    }

    #[test]
    fn first_reachable_area_wins() {
        let mut tried = 0;
        let areas = [area(false, Ok(0)), area(true, Ok(1)), area(true, Ok(2))];
        assert_eq!(pick(&areas, &mut tried), Ok(1));
        assert_eq!(tried, 1);
    }

    #[test]
    fn full_area_falls_through() {
        let mut tried = 0;
        let areas = [area(true, Err(ENOMEM)), area(true, Ok(1))];
        assert_eq!(pick(&areas, &mut tried), Ok(1));
        assert_eq!(tried, 2);
    }

    #[test]
    fn killed_stops_the_search() {
        let mut tried = 0;
        let areas = [area(true, Err(EINTR)), area(true, Ok(1))];
        assert_eq!(pick(&areas, &mut tried), Err(EINTR));
        assert_eq!(tried, 1);
    }

    #[test]
    fn last_error_when_all_fail() {
        let mut tried = 0;
        let areas = [area(true, Err(ENOMEM)), area(true, Err(EBUSY))];
        assert_eq!(pick(&areas, &mut tried), Err(EBUSY));
        assert_eq!(tried, 2);
    }

    #[test]
    fn no_reachable_area_is_enomem() {
        let mut tried = 0;
        let areas = [area(false, Ok(0)), area(false, Ok(1))];
        assert_eq!(pick(&areas, &mut tried), Err(ENOMEM));
        assert_eq!(pick(&[], &mut tried), Err(ENOMEM));
        assert_eq!(tried, 0);
    }
}
