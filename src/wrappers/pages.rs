// SPDX-License-Identifier: GPL-2.0

//! Owned runs of physically contiguous pages, their kernel mappings and
//! their user mappings.

use super::{c_int_len, ffi_helpers};
use core::ptr::NonNull;
use kernel::{bindings, ffi, page::PAGE_SIZE, prelude::*, sync::Arc};

/// How hard the page allocator should try for a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Effort {
    /// Ordinary allocation: may reclaim, may warn on failure
    /// (`GFP_HIGHUSER | __GFP_ZERO`).
    Normal,
    /// Opportunistic: no reclaim, no retry, no warning; for high orders that
    /// have a smaller fallback (upstream system heap's `HIGH_ORDER_GFP`).
    Opportunistic,
}

/// An owned, zeroed block of `2^order` physically contiguous pages from the
/// buddy allocator.
///
/// # Invariants
///
/// `page` is the first page of a block allocated with `alloc_pages(_,
/// order)` (compound when `order > 0`), owned by this object and freed in
/// `Drop`.
pub(crate) struct PageBlock {
    page: NonNull<bindings::page>,
    order: u32,
}

// SAFETY: a page block is plain memory owned by this object; it may be freed
// from any thread.
unsafe impl Send for PageBlock {}
// SAFETY: shared access only reads the pointer and order.
unsafe impl Sync for PageBlock {}

impl PageBlock {
    /// Allocates a zeroed block of `2^order` pages; `None` when the
    /// allocator has none.
    pub(crate) fn alloc(order: u32, effort: Effort) -> Option<Self> {
        // SAFETY: reading constant data defined in helpers.c.
        let gfp = unsafe {
            match effort {
                Effort::Normal => ffi_helpers::rdh_gfp_zeroed_user,
                Effort::Opportunistic => ffi_helpers::rdh_gfp_zeroed_user_opportunistic,
            }
        };
        // SAFETY: `alloc_pages` may be called with any flags and order in
        // process context; it returns NULL or an owned block.
        let page = unsafe { bindings::alloc_pages(gfp, order) };
        // INVARIANT: a non-NULL result is a block of `2^order` pages we own;
        // `__GFP_ZERO` zeroed it (highmem included).
        NonNull::new(page).map(|page| Self { page, order })
    }

    /// The block's order.
    pub(crate) fn order(&self) -> u32 {
        self.order
    }

    /// The block's size in bytes.
    pub(crate) fn size(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// The page frame number of the block's first page.
    pub(crate) fn pfn(&self) -> usize {
        // SAFETY: `self.page` is a valid page by the type invariant.
        unsafe { ffi_helpers::rdh_page_to_pfn(self.page.as_ptr()) as usize }
    }

    /// The block's first `struct page`.
    pub(super) fn first_page(&self) -> *mut bindings::page {
        self.page.as_ptr()
    }

    /// The `struct page` of page `i` of the block.
    fn page(&self, i: usize) -> *mut bindings::page {
        // The block's `struct page`s are contiguous in the memory map (a
        // buddy block never spans memory sections), as upstream's
        // `sg_page(sg) + pgoff` relies on too.
        self.page.as_ptr().wrapping_add(i)
    }
}

impl Drop for PageBlock {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own this block of this order.
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order) };
    }
}

/// The memory of one buffer: an ordered list of page blocks.
///
/// Immutable once built; shared (`Arc`) by everything that points into the
/// pages (scatter lists, kernel mappings), so the pages outlive them.
pub(crate) struct PageRuns {
    blocks: KVVec<PageBlock>,
    len: usize,
}

impl PageRuns {
    /// Wraps blocks allocated by a heap.
    pub(crate) fn new(blocks: KVVec<PageBlock>) -> Self {
        let len = blocks.iter().map(PageBlock::size).sum();
        Self { blocks, len }
    }

    /// Total size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The blocks, in buffer order.
    pub(crate) fn blocks(&self) -> &[PageBlock] {
        &self.blocks
    }

    /// Calls `f(page)` for every page of the buffer, in order.
    fn for_each_page(&self, mut f: impl FnMut(*mut bindings::page) -> Result) -> Result {
        for block in self.blocks.iter() {
            for i in 0..(1usize << block.order) {
                f(block.page(i))?;
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
