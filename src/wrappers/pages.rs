// SPDX-License-Identifier: GPL-2.0

//! Owned runs of physically contiguous pages, their kernel mappings and
//! their user mappings.

#[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
use super::cma::{self, CmaArea};
use super::{c_int_len, dmabuf::UserMapping, ffi_helpers};
use core::ptr::NonNull;
use kernel::{bindings, ffi, page::PAGE_SIZE, prelude::*, sync::Arc};

/// How hard the page allocator should try for a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Effort {
    /// Ordinary allocation: may reclaim, fails quietly rather than invoking
    /// the OOM killer (`GFP_HIGHUSER | __GFP_ZERO | __GFP_RETRY_MAYFAIL |
    /// __GFP_NOWARN`).
    Normal,
    /// Opportunistic: no reclaim, no retry, no warning; for high orders that
    /// have a smaller fallback (upstream system heap's `HIGH_ORDER_GFP`).
    Opportunistic,
}

/// The owner of a reserved physical range that lends parts of it out as
/// page runs, and takes them back when a run is dropped.
pub(crate) trait RangeOwner: Send + Sync {
    /// Takes back `[base, base + len)`, lent out earlier.
    fn give_back(&self, base: u64, len: usize);
}

/// Where a run of pages came from, and so how it goes back.
enum Source {
    /// Lent by the owner of a reserved range (a carveout with `struct
    /// page`), from physical address `base`.
    Reserved {
        owner: Arc<dyn RangeOwner>,
        base: u64,
    },
    /// `alloc_pages(_, order)`: one (compound) buddy block.
    Buddy { order: u32 },
    /// `cma_alloc()` from this area.
    #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
    Cma(CmaArea),
}

/// An owned run of physically contiguous pages with `struct page`.
///
/// # Invariants
///
/// `first` is the first of `count` physically contiguous pages whose
/// `struct page`s are contiguous too, owned by this object and returned to
/// `source` in `Drop`.
pub(crate) struct PageRun {
    first: NonNull<bindings::page>,
    count: usize,
    source: Source,
}

// SAFETY: a page run is plain memory owned by this object; it may be freed
// from any thread.
unsafe impl Send for PageRun {}
// SAFETY: shared access only reads the pointer and length.
unsafe impl Sync for PageRun {}

impl PageRun {
    /// Allocates a zeroed buddy block of `2^order` pages, charged to the
    /// caller's memory cgroup when `account`; `None` when the allocator has
    /// none.
    pub(crate) fn alloc_buddy(order: u32, effort: Effort, account: bool) -> Option<Self> {
        // SAFETY: reading constant data defined in helpers.c.
        let mut gfp = unsafe {
            match effort {
                Effort::Normal => ffi_helpers::rdh_gfp_zeroed_user,
                Effort::Opportunistic => ffi_helpers::rdh_gfp_zeroed_user_opportunistic,
            }
        };
        if account {
            // SAFETY: as above.
            gfp |= unsafe { ffi_helpers::rdh_gfp_account };
        }
        // SAFETY: `alloc_pages` may be called with any flags and order in
        // process context; it returns NULL or an owned block.
        let page = unsafe { bindings::alloc_pages(gfp, order) };
        // INVARIANT: a non-NULL result is a block of `2^order` pages we own
        // (a buddy block never spans memory sections, so its `struct page`s
        // are contiguous); `__GFP_ZERO` zeroed it, highmem included.
        NonNull::new(page).map(|first| Self {
            first,
            count: 1 << order,
            source: Source::Buddy { order },
        })
    }

    #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
    /// Allocates `count` contiguous pages from a CMA area, aligned to
    /// `2^align_order` pages; not zeroed yet (see [`Self::zero`]).
    pub(crate) fn alloc_cma(area: CmaArea, count: usize, align_order: u32) -> Option<Self> {
        // SAFETY: `area` is a live CMA area (type invariant of `CmaArea`);
        // `cma_alloc` returns NULL or `count` pages we own. `no_warn`:
        // exhaustion is an expected answer (ENOMEM), not a kernel event.
        let page =
            unsafe { cma::cma_alloc(area.as_raw(), count as ffi::c_ulong, align_order, true) };
        // INVARIANT: CMA hands out a contiguous pfn range; its `struct
        // page`s are contiguous in the memory map (as upstream's CMA heap
        // relies on).
        NonNull::new(page).map(|first| Self {
            first,
            count,
            source: Source::Cma(area),
        })
    }

    /// Wraps `count` pages of reserved memory with `struct page` from
    /// physical address `base`, lent by `owner`; not zeroed yet (see
    /// [`Self::zero`]). `EINVAL` when the range has no `struct page`.
    pub(crate) fn from_reserved(
        base: u64,
        count: usize,
        owner: Arc<dyn RangeOwner>,
    ) -> Result<Self> {
        let pfn = base / PAGE_SIZE as u64;
        let last = pfn + count as u64 - 1;
        if count == 0 || !super::carveout::pfn_valid(pfn) || !super::carveout::pfn_valid(last) {
            return Err(EINVAL);
        }
        // SAFETY: the pfn has a `struct page` (checked above).
        let first = unsafe { ffi_helpers::rdh_pfn_to_page(pfn as ffi::c_ulong) };
        // INVARIANT: the owner lent us this range until `give_back`; with
        // a virtually mapped memory map (arm64, x86_64), the `struct page`s
        // of a physically contiguous range are contiguous.
        Ok(Self {
            first: NonNull::new(first).ok_or(EINVAL)?,
            count,
            source: Source::Reserved { owner, base },
        })
    }

    /// Zeroes every page (highmem-safe), 2 MiB at a time, stopping with
    /// `EINTR` when the caller gets a fatal signal.
    pub(crate) fn zero(&self) -> Result {
        const CHUNK: usize = 512;
        let mut i = 0;
        while i < self.count {
            if super::fatal_signal_pending() {
                return Err(EINTR);
            }
            let n = CHUNK.min(self.count - i);
            // SAFETY: pages `i .. i + n` belong to this run, which we own;
            // their `struct page`s are contiguous (type invariant).
            unsafe { ffi_helpers::rdh_clear_pages(self.page(i), n as ffi::c_ulong) };
            i += n;
        }
        Ok(())
    }

    /// The page frame number of the run's first page.
    pub(crate) fn pfn(&self) -> usize {
        // SAFETY: `self.first` is a valid page by the type invariant.
        unsafe { ffi_helpers::rdh_page_to_pfn(self.first.as_ptr()) as usize }
    }

    /// The run's size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.count * PAGE_SIZE
    }

    /// The run's first `struct page`.
    pub(super) fn first_page(&self) -> *mut bindings::page {
        self.first.as_ptr()
    }

    /// The `struct page` of page `i` of the run (`i < count`).
    fn page(&self, i: usize) -> *mut bindings::page {
        self.first.as_ptr().wrapping_add(i)
    }
}

impl Drop for PageRun {
    fn drop(&mut self) {
        match &self.source {
            // SAFETY: by the type invariant we own this block of this order.
            Source::Buddy { order } => unsafe {
                bindings::__free_pages(self.first.as_ptr(), *order)
            },
            Source::Reserved { owner, base } => owner.give_back(*base, self.count * PAGE_SIZE),
            #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
            Source::Cma(area) => {
                // SAFETY: these `count` pages came from `cma_alloc` on `area`.
                unsafe {
                    cma::cma_release(
                        area.as_raw(),
                        self.first.as_ptr(),
                        self.count as ffi::c_ulong,
                    )
                };
            }
        }
    }
}

/// The runs of a buffer: one (every contiguous heap, and small system-heap
/// buffers) is kept inline, saving an allocation on the hot path.
enum RunList {
    One(PageRun),
    Many(KVVec<PageRun>),
}

/// The memory of one buffer: an ordered list of page runs.
///
/// Immutable once built; shared (`Arc`) by everything that points into the
/// pages (scatter lists, kernel mappings), so the pages outlive them.
pub(crate) struct PageRuns {
    runs: RunList,
    len: usize,
}

impl PageRuns {
    /// Wraps runs allocated (and zeroed) by a heap.
    pub(crate) fn new(runs: KVVec<PageRun>) -> Self {
        let len = runs.iter().map(PageRun::size).sum();
        Self {
            runs: RunList::Many(runs),
            len,
        }
    }

    /// Wraps a single run allocated (and zeroed) by a heap.
    pub(crate) fn one(run: PageRun) -> Self {
        Self {
            len: run.size(),
            runs: RunList::One(run),
        }
    }

    /// Total size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The runs, in buffer order.
    pub(crate) fn runs(&self) -> &[PageRun] {
        match &self.runs {
            RunList::One(run) => core::slice::from_ref(run),
            RunList::Many(runs) => runs,
        }
    }

    /// Maps the buffer into a user mapping, starting `pgoff` pages in, run
    /// by run, with PTEs nobody can pin and `/proc/<pid>/pagemap` can show.
    pub(crate) fn map_user(&self, vma: &UserMapping<'_>, mut pgoff: usize) -> Result {
        let total = vma.len() / PAGE_SIZE;
        let mut done = 0;
        vma.set_pfn_mapping();
        for run in self.runs() {
            if done == total {
                break;
            }
            if pgoff >= run.count {
                pgoff -= run.count;
                continue;
            }
            let n = (run.count - pgoff).min(total - done);
            vma.insert_pages(done * PAGE_SIZE, run.pfn() + pgoff, n)?;
            done += n;
            pgoff = 0;
        }
        Ok(())
    }

    /// Calls `f(page)` for every page of the buffer, in order.
    fn for_each_page(&self, mut f: impl FnMut(*mut bindings::page) -> Result) -> Result {
        for run in self.runs() {
            for i in 0..run.count {
                f(run.page(i))?;
            }
        }
        Ok(())
    }
}

/// A virtually contiguous kernel mapping (`vmap`) of a buffer's pages.
///
/// # Invariants
///
/// `addr` is the start of a `vmap` of all pages of `runs`, `runs.len()`
/// bytes long, unmapped in `Drop`; `runs` keeps those pages alive.
pub(crate) struct KernelMapping {
    addr: NonNull<ffi::c_void>,
    runs: Arc<PageRuns>,
}

// SAFETY: the mapping is a kernel address range, usable from any thread.
unsafe impl Send for KernelMapping {}
// SAFETY: shared access only hands out the address and does cache upkeep.
unsafe impl Sync for KernelMapping {}

impl KernelMapping {
    /// Maps all pages of `runs` into the kernel's vmalloc space.
    pub(crate) fn new(runs: Arc<PageRuns>) -> Result<Self> {
        let count = runs.len() / PAGE_SIZE;
        let mut pages = KVVec::<*mut bindings::page>::with_capacity(count, GFP_KERNEL)?;
        runs.for_each_page(|p| {
            pages.push(p, GFP_KERNEL)?;
            Ok(())
        })?;
        let count = ffi::c_uint::try_from(count).map_err(|_| ENOMEM)?;
        // SAFETY: `pages` holds `count` valid pages, kept alive by `runs`,
        // which this mapping owns for as long as it exists.
        let addr = unsafe { ffi_helpers::rdh_vmap(pages.as_mut_ptr(), count) };
        let addr = NonNull::new(addr).ok_or(ENOMEM)?;
        Ok(Self { addr, runs })
    }

    /// The kernel virtual address of the mapping.
    pub(crate) fn addr(&self) -> *mut ffi::c_void {
        self.addr.as_ptr()
    }

    /// Runs `f` over the mapping in chunks the C helpers' `int` size takes.
    fn for_each_chunk(&self, f: unsafe extern "C" fn(*mut ffi::c_void, ffi::c_int)) {
        const CHUNK: usize = 1 << 30;
        let mut off = 0;
        while off < self.runs.len() {
            let len = core::cmp::min(CHUNK, self.runs.len() - off);
            // SAFETY: `addr + off .. + len` lies inside the live mapping
            // (type invariant).
            unsafe {
                f(
                    self.addr.as_ptr().cast::<u8>().add(off).cast(),
                    c_int_len(len),
                )
            };
            off += len;
        }
    }

    /// Makes CPU writes through this mapping visible to devices.
    pub(crate) fn flush(&self) {
        self.for_each_chunk(ffi_helpers::rdh_flush_kernel_vmap_range);
    }

    /// Discards stale cache lines of this mapping before the CPU reads.
    pub(crate) fn invalidate(&self) {
        self.for_each_chunk(ffi_helpers::rdh_invalidate_kernel_vmap_range);
    }
}

impl Drop for KernelMapping {
    fn drop(&mut self) {
        // SAFETY: `addr` came from `vmap` and is unmapped only here.
        unsafe { ffi_helpers::rdh_vunmap(self.addr.as_ptr()) };
    }
}
