// SPDX-License-Identifier: GPL-2.0

//! Kernel mappings of a buffer (`vmap`, or a reserved region's own
//! `memremap`), for in-kernel CPU access by importers (`dma_buf_vmap`).

use super::{c_int_len, ffi_helpers, pages::PageRuns, reserved_mem::Chunk};
use core::ptr::NonNull;
use kernel::{bindings, ffi, page::PAGE_SIZE, prelude::*};

/// A kernel mapping of a whole buffer.
///
/// # Invariants
///
/// `addr` maps every byte of a buffer's memory (kept alive by whoever made
/// the mapping) until drop: a `vmap` of its pages (`Pages`), unmapped in
/// `Drop`, or the region's write-combined mapping of a chunk (`Chunk`).
pub(crate) struct KernelMap {
    addr: NonNull<ffi::c_void>,
    len: usize,
    memory: Mapped,
}

/// How the memory is mapped.
enum Mapped {
    /// A `vmap` of pages, write-combined or cached.
    Pages { write_combined: bool },
    /// The region's own write-combined mapping.
    Chunk,
}

// SAFETY: the mapping is a kernel address range, usable from any thread.
unsafe impl Send for KernelMap {}
// SAFETY: shared access only hands out the address and does cache upkeep.
unsafe impl Sync for KernelMap {}

impl KernelMap {
    /// Maps all pages of `runs` into the kernel's vmalloc space
    /// (write-combined if the runs are).
    ///
    /// # Safety
    ///
    /// `runs` must stay alive, unchanged, for as long as the mapping does.
    pub(crate) unsafe fn pages(runs: &PageRuns) -> Result<Self> {
        let count = runs.len() / PAGE_SIZE;
        let mut pages = KVVec::<*mut bindings::page>::with_capacity(count, GFP_KERNEL)?;
        runs.for_each_page(|p| {
            pages.push(p, GFP_KERNEL)?;
            Ok(())
        })?;
        let count = ffi::c_uint::try_from(count).map_err(|_| ENOMEM)?;
        let write_combined = runs.write_combined();
        // SAFETY: `pages` holds `count` valid pages of `runs`, which the
        // caller keeps alive for as long as this mapping exists.
        let addr = unsafe { ffi_helpers::rdh_vmap(pages.as_mut_ptr(), count, write_combined) };
        Ok(Self {
            addr: NonNull::new(addr).ok_or(ENOMEM)?,
            len: runs.len(),
            memory: Mapped::Pages { write_combined },
        })
    }

    /// The region's own mapping of a chunk of a no-map region (`EINVAL`
    /// for a chunk with pages: map those as pages).
    ///
    /// # Safety
    ///
    /// `chunk` must stay alive for as long as the mapping does.
    pub(crate) unsafe fn chunk(chunk: &Chunk) -> Result<Self> {
        let addr = chunk.kernel_addr().ok_or(EINVAL)?;
        Ok(Self {
            addr: addr.cast(),
            len: chunk.len(),
            memory: Mapped::Chunk,
        })
    }

    /// Bytes mapped.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The kernel virtual address of the mapping.
    pub(super) fn addr(&self) -> *mut ffi::c_void {
        self.addr.as_ptr()
    }

    /// Runs `f` over a `vmap` in chunks the C helpers' `int` size takes;
    /// write-combined mappings need no cache upkeep.
    fn for_each_chunk(&self, f: unsafe extern "C" fn(*mut ffi::c_void, ffi::c_int)) {
        if let Mapped::Chunk
        | Mapped::Pages {
            write_combined: true,
        } = self.memory
        {
            return;
        }
        const CHUNK: usize = 1 << 30;
        let mut off = 0;
        while off < self.len {
            let len = core::cmp::min(CHUNK, self.len - off);
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
    pub(super) fn flush(&self) {
        self.for_each_chunk(ffi_helpers::rdh_flush_kernel_vmap_range);
    }

    /// Discards stale cache lines of this mapping before the CPU reads.
    pub(super) fn invalidate(&self) {
        self.for_each_chunk(ffi_helpers::rdh_invalidate_kernel_vmap_range);
    }
}

impl Drop for KernelMap {
    fn drop(&mut self) {
        if let Mapped::Pages { .. } = self.memory {
            // SAFETY: `addr` came from `vmap` and is unmapped only here.
            unsafe { ffi_helpers::rdh_vunmap(self.addr.as_ptr()) };
        }
    }
}
