// SPDX-License-Identifier: GPL-2.0

//! CMA heaps: physically contiguous buffers from a Contiguous Memory
//! Allocator area, one heap per area under upstream 7.3's names.

#![forbid(unsafe_code)]

use super::{Heap, Usage};
use crate::{
    buffer::{Charge, Filled, Memory, MemorySlot},
    wrappers::{
        cgroup::DmemRegion,
        cma::CmaArea,
        device::Devices,
        fs::{Read, Source},
        pages::{PageRun, PageRuns},
        Dirty, Zeroed,
    },
};
use kernel::{
    bindings,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CString},
    sync::Arc,
};

/// Name of the heap of the default area, as upstream.
pub(crate) const DEFAULT_NAME: &CStr = c"default_cma_region";

/// A heap over one CMA area.
pub(crate) struct CmaHeap {
    name: &'static CStr,
    area: CmaArea,
    /// The area's dmem region (`cma/<area name>`), shared by every heap
    /// over the area; `None` without the dmem controller (or with it
    /// disabled), or with `mem_accounting=0`.
    dmem: Option<Arc<DmemRegion>>,
    usage: Arc<Usage>,
}

impl CmaHeap {
    /// Every heap upstream's CMA heap would register: the default area as
    /// `default_cma_region`, then each area under its own name. When
    /// `charged` (`mem_accounting`), one dmem region per area, whatever the
    /// number of names it has.
    pub(crate) fn all(charged: bool) -> Result<KVec<Self>> {
        let mut areas = KVec::new();
        if let Some(area) = CmaArea::default_area() {
            areas.push((DEFAULT_NAME, area), GFP_KERNEL)?;
        }
        let mut idx = 0;
        while let Some(area) = CmaArea::by_index(idx) {
            areas.push((area.name(), area), GFP_KERNEL)?;
            idx += 1;
        }
        let mut heaps: KVec<Self> = KVec::with_capacity(areas.len(), GFP_KERNEL)?;
        for (name, area) in areas {
            let dmem = match heaps.iter().find(|h| h.area == area) {
                Some(h) => h.dmem.clone(),
                None if !charged => None,
                None => {
                    let region = CString::try_from_fmt(fmt!("cma/{}", area.name()))?;
                    DmemRegion::register(&region, area.size())?
                }
            };
            heaps.push(
                Self {
                    name,
                    area,
                    dmem,
                    usage: Arc::new(Usage::new(area.size()), GFP_KERNEL)?,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(heaps)
    }
}

impl CmaHeap {
    /// `len` bytes of zeroed contiguous pages, charged to nobody yet
    /// (inlined: the allocation's one call, 90 instructions).
    #[inline(always)]
    fn run(&self, len: usize) -> Result<Zeroed<PageRun>> {
        // A killed caller stops zeroing; the run is released then.
        self.dirty_run(len)?.zero()
    }

    /// `len` bytes of contiguous memory, not zeroed yet.
    fn dirty_run(&self, len: usize) -> Result<Dirty<PageRun>> {
        // (More than the area holds fails at once in `cma_alloc`: no page
        // of the area is touched.)
        // Aligned to the buffer's own order, capped as upstream.
        let align = order_of(len).min(bindings::CONFIG_CMA_ALIGNMENT);
        PageRun::alloc_cma(self.area, len / PAGE_SIZE, align).ok_or(ENOMEM)
    }

    /// `len` bytes of zeroed contiguous memory carrying a charge made
    /// earlier, taken out of `reserved` only when the memory is there
    /// (nobody is charged when it holds none).
    pub(crate) fn allocate_reserved(
        &self,
        len: usize,
        reserved: &mut Option<Charge>,
    ) -> Result<Memory> {
        let run = self.run(len)?;
        Ok(Memory::pages(
            PageRuns::one(run),
            reserved.take().unwrap_or(Charge::None),
        ))
    }

    /// The area's dmem region, if the kernel has the dmem controller.
    pub(crate) fn dmem(&self) -> Option<&Arc<DmemRegion>> {
        self.dmem.as_ref()
    }

    /// Whether the heap's area lies where every device of `devices`
    /// reaches it.
    pub(crate) fn reachable_by(&self, devices: &Devices<'_>) -> bool {
        self.area.reachable_by(devices)
    }

    /// The heap's name, for as long as the module lives.
    pub(crate) fn static_name(&self) -> &'static CStr {
        self.name
    }

    /// Whether `other` draws from the same area.
    pub(crate) fn same_area(&self, other: &CmaHeap) -> bool {
        self.area == other.area
    }
}

/// `get_order()`: the order of the smallest power-of-two page count that
/// holds `len` bytes.
fn order_of(len: usize) -> u32 {
    len.div_ceil(PAGE_SIZE).next_power_of_two().trailing_zeros()
}

impl Heap for CmaHeap {
    fn name(&self) -> &CStr {
        self.name
    }

    fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    fn allocate(
        &self,
        len: usize,
        _fd_flags: u32,
        _heap_flags: u64,
        slot: MemorySlot<'_>,
    ) -> Result<Filled> {
        // Charged before any page is taken; dropped (uncharged) on every
        // failure below.
        let charge = Charge::dmem(self.dmem.as_ref(), len)?;
        Ok(slot.pages(PageRuns::one(self.run(len)?), charge))
    }

    fn load(
        &self,
        len: usize,
        source: &Source,
        pos: u64,
        slot: MemorySlot<'_>,
    ) -> Result<(Filled, Read)> {
        let charge = Charge::dmem(self.dmem.as_ref(), len)?;
        let (runs, read) = source.load(PageRuns::one(self.dirty_run(len)?), pos)?;
        Ok((slot.loaded(runs, charge), read))
    }

    fn loads(&self) -> bool {
        true
    }

    fn charges_dmem(&self) -> bool {
        self.dmem().is_some()
    }

    fn contiguous(&self) -> bool {
        true
    }

    fn cached(&self) -> bool {
        true
    }
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kunit_tests(rust_dma_heap_cma_order)]
mod tests {
    use super::*;

    #[test]
    fn order_as_get_order() {
        assert_eq!(order_of(1), 0);
        assert_eq!(order_of(PAGE_SIZE), 0);
        assert_eq!(order_of(PAGE_SIZE + 1), 1);
        assert_eq!(order_of(3 * PAGE_SIZE), 2);
        assert_eq!(order_of(4 * PAGE_SIZE), 2);
        assert_eq!(order_of(256 * PAGE_SIZE), 8);
        assert_eq!(order_of(257 * PAGE_SIZE), 9);
    }
}
