// SPDX-License-Identifier: GPL-2.0

//! Carveout heaps: memory the firmware or device tree set aside
//! (`/reserved-memory` nodes with `compatible = "carved-out"`, or the
//! `carveout=` module parameter), handed out page by page, first fit, by
//! the region's own allocator.

#![forbid(unsafe_code)]

use super::{Heap, Usage};
use crate::{
    buffer::{Charge, Memory},
    wrappers::{
        cgroup::DmemRegion,
        pages::{PageRun, PageRuns},
        reserved_mem::Region,
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
    /// controller.
    dmem: Option<Arc<DmemRegion>>,
    usage: Usage,
}

impl CarveoutHeap {
    /// The heap over `region`, with its dmem region.
    fn new(region: Arc<Region>) -> Result<Self> {
        let size = region.size() as u64;
        let name = CString::try_from_fmt(fmt!("carveout/{}", region.name()))?;
        Ok(Self {
            dmem: DmemRegion::register(&name, size)?,
            region,
            usage: Usage::new(size),
        })
    }

    /// Every `carved-out` region of the device tree (a region that cannot
    /// be set up is logged and skipped).
    #[cfg(CONFIG_OF_RESERVED_MEM)]
    pub(crate) fn from_device_tree() -> Result<KVec<Self>> {
        let mut heaps = KVec::new();
        for region in Region::from_device_tree()? {
            heaps.push(Self::new(region)?, GFP_KERNEL)?;
        }
        Ok(heaps)
    }

    /// The heap of the `carveout=<size>@<base>` parameter, if set.
    pub(crate) fn from_param(param: &CStr) -> Result<Option<Self>> {
        let text = param.to_str().map_err(|_| EINVAL)?.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let (size, base) = text.split_once('@').ok_or(EINVAL)?;
        let (size, base) = (parse_size(size)?, parse_size(base)?);
        if size == 0 || base.checked_add(size).is_none() {
            return Err(EINVAL);
        }
        let name = CString::try_from_fmt(fmt!("carveout@{:x}", base))?;
        let region = Region::from_param(name, text, base, size)?;
        Ok(Some(Self::new(region)?))
    }
}

/// `memparse()`-like: decimal or `0x` hex, optional K/M/G suffix.
fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse::<u64>(),
    }
    .map_err(|_| EINVAL)?;
    v.checked_mul(1 << shift).ok_or(EINVAL)
}

impl Heap for CarveoutHeap {
    fn name(&self) -> &CStr {
        self.region.name()
    }

    fn usage(&self) -> &Usage {
        &self.usage
    }

    fn allocate(&self, len: usize, _fd_flags: u32, _heap_flags: u64) -> Result<Memory> {
        // Charged first; the charge and the chunk go back when dropped, on
        // every path.
        let charge = Charge::dmem(self.dmem.as_ref(), len)?;
        let chunk = self.region.alloc(len)?;
        if chunk.has_pages() {
            let run = PageRun::from_chunk(chunk)?.zero()?;
            Ok(Memory::pages(PageRuns::one(run), charge))
        } else {
            Ok(Memory::chunk(chunk.zero()?, charge))
        }
    }

    fn contiguous(&self) -> bool {
        true
    }

    fn cached(&self) -> bool {
        self.region.has_pages()
    }
}
