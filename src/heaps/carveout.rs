// SPDX-License-Identifier: GPL-2.0

//! Carveout heaps: memory the firmware or device tree set aside
//! (`/reserved-memory` nodes with `compatible = "carved-out"`, or the
//! `carveout=` module parameter), handed out page by page, first fit.

use crate::{
    buffer::{Backing, PhysOwner, PhysRange},
    registry::Heap,
    wrappers::{
        carveout::{range_is_system_ram, RegionMapping},
        pages::{PageRun, PageRuns, RangeOwner},
    },
};
use kernel::{
    ffi, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CString},
    sync::{Arc, Mutex},
};

/// A first-fit page allocator over `pages` pages: one bit per page, so
/// freeing never allocates, neighbours coalesce by construction, and a
/// page is never handed out twice.
pub(crate) struct PageBitmap {
    words: KVVec<u64>,
    pages: usize,
}

impl PageBitmap {
    /// All `pages` free.
    pub(crate) fn new(pages: usize) -> Result<Self> {
        let mut words = KVVec::new();
        words.resize(pages.div_ceil(64), 0, GFP_KERNEL)?;
        Ok(Self { words, pages })
    }

    fn is_used(&self, page: usize) -> bool {
        self.words[page / 64] & (1 << (page % 64)) != 0
    }

    fn set(&mut self, start: usize, count: usize, used: bool) {
        for page in start..start + count {
            if used {
                self.words[page / 64] |= 1 << (page % 64);
            } else {
                self.words[page / 64] &= !(1 << (page % 64));
            }
        }
    }

    /// The lowest run of `count` free pages, now taken.
    pub(crate) fn alloc(&mut self, count: usize) -> Option<usize> {
        if count == 0 || count > self.pages {
            return None;
        }
        let mut start = 0;
        while start + count <= self.pages {
            // Skip whole used words quickly.
            if start % 64 == 0 && self.words[start / 64] == u64::MAX {
                start += 64;
                continue;
            }
            match (start..start + count).rev().find(|&p| self.is_used(p)) {
                None => {
                    self.set(start, count, true);
                    return Some(start);
                }
                Some(used) => start = used + 1,
            }
        }
        None
    }

    /// Gives back `count` pages from `start`; `EINVAL` (and nothing
    /// changes) unless all of them were taken.
    pub(crate) fn free(&mut self, start: usize, count: usize) -> Result {
        let end = start.checked_add(count).ok_or(EINVAL)?;
        if end > self.pages || !(start..end).all(|p| self.is_used(p)) {
            return Err(EINVAL);
        }
        self.set(start, count, false);
        Ok(())
    }
}

/// A carve-out region and its allocator.
#[pin_data]
pub(crate) struct Pool {
    base: u64,
    size: usize,
    /// No `struct page`: mapped write-combined here, for zeroing and vmap.
    wc_map: Option<RegionMapping>,
    #[pin]
    bitmap: Mutex<PageBitmap>,
}

impl Pool {
    fn give_back_range(&self, base: u64, len: usize) {
        let start = (base - self.base) as usize / PAGE_SIZE;
        if self.bitmap.lock().free(start, len / PAGE_SIZE).is_err() {
            pr_err!(
                "carveout: freeing a range that was not allocated: {:#x}+{:#x}\n",
                base,
                len
            );
        }
    }
}

impl RangeOwner for Pool {
    fn give_back(&self, base: u64, len: usize) {
        self.give_back_range(base, len);
    }
}

impl PhysOwner for Pool {
    fn give_back(&self, base: u64, len: usize) {
        self.give_back_range(base, len);
    }

    fn kernel_addr(&self, base: u64) -> *mut ffi::c_void {
        match &self.wc_map {
            Some(map) => map.addr((base - self.base) as usize),
            None => core::ptr::null_mut(),
        }
    }
}

/// A heap over one carve-out region.
pub(crate) struct CarveoutHeap {
    name: CString,
    pool: Arc<Pool>,
}

impl CarveoutHeap {
    /// A heap named `name` over `[base, base + size)`; `no_map` regions
    /// have no `struct page` (or none the heap may use).
    pub(crate) fn new(name: CString, base: u64, size: u64, no_map: bool) -> Result<Self> {
        let size = usize::try_from(size).map_err(|_| EINVAL)?;
        if size == 0 || base % PAGE_SIZE as u64 != 0 || size % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        let wc_map = if no_map {
            Some(RegionMapping::new(base, size, true)?)
        } else {
            None
        };
        let bitmap = PageBitmap::new(size / PAGE_SIZE)?;
        let pool = Arc::pin_init(
            try_pin_init!(Pool {
                base,
                size,
                wc_map,
                bitmap <- new_mutex!(bitmap),
            }? Error),
            GFP_KERNEL,
        )?;
        Ok(Self { name, pool })
    }

    /// Every `carved-out` region of the device tree.
    #[cfg(CONFIG_OF_RESERVED_MEM)]
    pub(crate) fn from_device_tree() -> Result<KVec<Self>> {
        let mut heaps = KVec::new();
        for r in crate::wrappers::carveout::carved_out_regions()? {
            match Self::new(r.name, r.base, r.size, r.no_map) {
                Ok(heap) => heaps.push(heap, GFP_KERNEL)?,
                Err(e) => pr_err!("carveout at {:#x}: {:?}\n", r.base, e),
            }
        }
        Ok(heaps)
    }

    /// The heap of the `carveout=<size>@<base>` parameter, if set. A range
    /// with any ordinary RAM in it is refused: the kernel owns that memory.
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
        if range_is_system_ram(base, size) {
            pr_err!(
                "carveout={}: the range holds ordinary RAM the kernel uses; refused\n",
                text
            );
            return Err(EINVAL);
        }
        // Memory the kernel describes (it has a memory map) but does not
        // use: reserved, no-map RAM. Device registers have no memory map.
        let pfn_valid = crate::wrappers::carveout::pfn_valid;
        let (first, last) = (
            base / PAGE_SIZE as u64,
            (base + size - 1) / PAGE_SIZE as u64,
        );
        if !pfn_valid(first) || !pfn_valid(last) {
            pr_err!("carveout={}: the range is not memory; refused\n", text);
            return Err(EINVAL);
        }
        let name = CString::try_from_fmt(fmt!("carveout@{:x}", base))?;
        // Not System RAM means not in the kernel's linear map: no-map.
        Self::new(name, base, size, true).map(Some)
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
        &self.name
    }

    fn allocate(&self, len: usize, _fd_flags: u32, _heap_flags: u64) -> Result<Backing> {
        if len > self.pool.size {
            return Err(ENOMEM);
        }
        let count = len / PAGE_SIZE;
        let start = self.pool.bitmap.lock().alloc(count).ok_or(ENOMEM)?;
        let base = self.pool.base + (start * PAGE_SIZE) as u64;
        match &self.pool.wc_map {
            Some(map) => {
                // The range goes back to the pool when `range` drops, on
                // every path below.
                let range = PhysRange {
                    base,
                    len,
                    owner: self.pool.clone(),
                };
                map.zero(start * PAGE_SIZE, len)?;
                Ok(Backing::Phys(range))
            }
            None => {
                let owner: Arc<dyn RangeOwner> = self.pool.clone();
                let run = match PageRun::from_reserved(base, count, owner) {
                    Ok(run) => run,
                    Err(e) => {
                        self.pool.give_back_range(base, len);
                        return Err(e);
                    }
                };
                run.zero()?;
                Ok(Backing::Pages(PageRuns::one(run)))
            }
        }
    }
}
