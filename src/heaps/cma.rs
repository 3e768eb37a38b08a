// SPDX-License-Identifier: GPL-2.0

//! CMA heaps: physically contiguous buffers from a Contiguous Memory
//! Allocator area, one heap per area under upstream 7.3's names.

use super::Heap;
use crate::{
    buffer::{Memory, Origin},
    wrappers::{
        cma::CmaArea,
        pages::{PageRun, PageRuns},
    },
};
use kernel::{bindings, page::PAGE_SIZE, prelude::*, str::CStr};

/// Name of the heap of the default area, as upstream.
pub(crate) const DEFAULT_NAME: &CStr = c"default_cma_region";

/// A heap over one CMA area.
pub(crate) struct CmaHeap {
    name: &'static CStr,
    area: CmaArea,
}

impl CmaHeap {
    /// A heap named `name` over `area`.
    pub(crate) fn new(name: &'static CStr, area: CmaArea) -> Self {
        Self { name, area }
    }

    /// Every heap upstream's CMA heap would register: the default area as
    /// `default_cma_region`, then each area under its own name.
    pub(crate) fn all() -> Result<KVec<Self>> {
        let mut heaps = KVec::new();
        if let Some(area) = CmaArea::default_area() {
            heaps.push(Self::new(DEFAULT_NAME, area), GFP_KERNEL)?;
        }
        let mut idx = 0;
        while let Some(area) = CmaArea::by_index(idx) {
            heaps.push(Self::new(area.name(), area), GFP_KERNEL)?;
            idx += 1;
        }
        Ok(heaps)
    }
}

/// `get_order()`: the order of the smallest power-of-two page count that
/// holds `len` bytes.
fn order_of(len: usize) -> u32 {
    len.div_ceil(PAGE_SIZE).next_power_of_two().trailing_zeros()
}

impl Origin for CmaHeap {
    fn name(&self) -> &CStr {
        self.name
    }
}

impl Heap for CmaHeap {
    fn allocate(&self, len: usize, _fd_flags: u32, _heap_flags: u64) -> Result<Memory> {
        // (More than the area holds fails at once in `cma_alloc`: no page
        // of the area is touched.)
        // Aligned to the buffer's own order, capped as upstream.
        let align = order_of(len).min(bindings::CONFIG_CMA_ALIGNMENT);
        let run = PageRun::alloc_cma(self.area, len / PAGE_SIZE, align).ok_or(ENOMEM)?;
        // A killed caller stops zeroing; dropping `run` releases it.
        run.zero()?;
        Memory::pages(PageRuns::one(run))
    }
}
