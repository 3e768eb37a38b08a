// SPDX-License-Identifier: GPL-2.0

//! Carveout heaps: memory the firmware or device tree set aside
//! (`/reserved-memory` nodes with `compatible = "carved-out"`, or the
//! `carveout=` module parameter), handed out page by page, first fit, by
//! the region's own allocator.

#![forbid(unsafe_code)]

use super::{Heap, Usage};
use crate::{
    buffer::{Charge, Filled, MemorySlot},
    wrappers::{
        cgroup::DmemRegion,
        fs::{Read, Source},
        pages::{PageRun, PageRuns},
        reserved_mem::{carveout_param, Region},
    },
};
use kernel::{
    prelude::*,
    str::{CStr, CString},
    sync::Arc,
};

/// A heap over one carve-out region, named after it.
pub(crate) struct CarveoutHeap {
    region: Arc<Region>,
    /// Its dmem region (`carveout/<heap name>`); `None` without the dmem
    /// controller (or with it disabled), or with `mem_accounting=0`.
    dmem: Option<Arc<DmemRegion>>,
    usage: Arc<Usage>,
}

impl CarveoutHeap {
    /// The heap over `region`, with its dmem region when `charged`
    /// (`mem_accounting`).
    fn new(region: Arc<Region>, charged: bool) -> Result<Self> {
        let size = region.size() as u64;
        let dmem = if charged {
            let name = CString::try_from_fmt(fmt!("carveout/{}", region.name()))?;
            DmemRegion::register(&name, size)?
        } else {
            None
        };
        Ok(Self {
            dmem,
            region,
            usage: Arc::new(Usage::new(size), GFP_KERNEL)?,
        })
    }

    /// Every `carved-out` region of the device tree (a region that cannot
    /// be set up is logged and skipped); charged to the dmem controller
    /// when `charged`.
    #[cfg(CONFIG_OF_RESERVED_MEM)]
    pub(crate) fn from_device_tree(charged: bool) -> Result<KVec<Self>> {
        let mut heaps = KVec::new();
        for region in Region::from_device_tree()? {
            heaps.push(Self::new(region, charged)?, GFP_KERNEL)?;
        }
        Ok(heaps)
    }

    /// The heap of the `carveout=<size>@<base>` parameter, if set;
    /// charged to the dmem controller when `charged`.
    pub(crate) fn from_param(charged: bool) -> Result<Option<Self>> {
        match Region::from_param(carveout_param())? {
            Some(region) => Ok(Some(Self::new(region, charged)?)),
            None => Ok(None),
        }
    }
}

impl Heap for CarveoutHeap {
    fn name(&self) -> &CStr {
        self.region.name()
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
        // Charged first; the charge and the chunk go back when dropped, on
        // every path.
        let charge = Charge::dmem(self.dmem.as_ref(), len)?;
        let chunk = self.region.alloc(len)?;
        if chunk.has_pages() {
            let run = PageRun::from_chunk(chunk)?.zero()?;
            Ok(slot.pages(PageRuns::one(run), charge))
        } else {
            Ok(slot.chunk(chunk.zero()?, charge))
        }
    }

    /// Carve-outs left in the linear map only (`no-map` memory has no
    /// `struct page` a read could name): `EOPNOTSUPP` there.
    fn load(
        &self,
        len: usize,
        source: &Source,
        pos: u64,
        slot: MemorySlot<'_>,
    ) -> Result<(Filled, Read)> {
        if !self.region.has_pages() {
            return Err(EOPNOTSUPP);
        }
        let charge = Charge::dmem(self.dmem.as_ref(), len)?;
        let run = PageRun::from_chunk(self.region.alloc(len)?)?;
        let (runs, read) = source.load(PageRuns::one(run), pos)?;
        Ok((slot.loaded(runs, charge), read))
    }

    fn loads(&self) -> bool {
        self.region.has_pages()
    }

    fn charges_dmem(&self) -> bool {
        self.dmem.is_some()
    }

    fn contiguous(&self) -> bool {
        true
    }

    fn cached(&self) -> bool {
        self.region.has_pages()
    }
}
