// SPDX-License-Identifier: GPL-2.0

//! User mappings of a buffer (`mmap` on a dma-buf): its memory inserted as
//! special PTEs (`vmf_insert_mixed`) that `/proc/<pid>/pagemap` shows but
//! nobody can pin, all at `mmap`, and again page by page at a fault when
//! something zapped them (`MADV_DONTNEED`, a split, reclaim of page
//! tables): the mapping always shows the buffer's own memory.

use super::{ffi_helpers, pages::PageRuns, reserved_mem::Chunk};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings, ffi,
    mm::virt::{flags as vm_flags, VmaNew},
    page::PAGE_SIZE,
    prelude::*,
};

/// A user mapping being created by `mmap` on a dma-buf.
///
/// # Invariants
///
/// Exists only inside the dma-buf `mmap` callback, on a VMA under initial
/// set-up (mmap lock held for writing) whose file is the dma-buf's.
/// Whatever lives for `'m` (the exporter's borrow: its own memory) lives
/// until the dma-buf is released, after the last mapping of it is gone:
/// only such memory may be mapped (a local buffer cannot be borrowed for
/// `'m`).
pub(crate) struct UserMapping<'v, 'm> {
    vma: &'v VmaNew,
    /// The mapping's operations: its fault handler maps the page asked
    /// for again (see [`Fault`]).
    ops: &'static bindings::vm_operations_struct,
    /// Invariant in `'m`: it cannot be shortened to a local's lifetime.
    _memory: PhantomData<fn(&'m ()) -> &'m ()>,
}

impl<'v, 'm> UserMapping<'v, 'm> {
    /// # Safety
    ///
    /// `vma` is being set up by the `mmap` callback of a dma-buf whose
    /// private data is borrowed for `'m` and outlives every mapping of it.
    /// `ops` handles faults in it by mapping the same memory again, through
    /// [`Fault`] only.
    pub(super) unsafe fn new(
        vma: &'v VmaNew,
        ops: &'static bindings::vm_operations_struct,
    ) -> Self {
        Self {
            vma,
            ops,
            _memory: PhantomData,
        }
    }

    /// Refuses a writable mapping of a dma-buf whose file was not opened for
    /// writing (`EACCES`), and keeps a read-only one from becoming writable
    /// (`mprotect`): the VFS checks this for a mapping of the dma-buf's own
    /// fd, but an importer that maps the buffer for its own file
    /// (`dma_buf_mmap()`) passes the flags of that file.
    pub(crate) fn check_write_access(&self, file_writable: bool) -> Result {
        if file_writable {
            return Ok(());
        }
        self.vma.try_clear_maywrite().map_err(|_| EACCES)
    }

    /// Offset into the buffer, in pages, of the mapping's start.
    pub(crate) fn pgoff(&self) -> usize {
        // SAFETY: the VMA is valid for the callback's duration.
        unsafe { (*self.vma.as_ptr()).vm_pgoff }
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.vma.end() - self.vma.start()
    }

    /// Whether the mapping is shared (`MAP_SHARED`): a private copy of a
    /// device buffer would never see the device's writes.
    pub(crate) fn is_shared(&self) -> bool {
        self.vma.flags() & (vm_flags::SHARED | vm_flags::MAYSHARE) != 0
    }

    /// The page range `[pgoff, pgoff + pages)` of memory of `total` pages
    /// this mapping covers; `EINVAL` when it does not fit.
    fn window(&self, total: usize) -> Result<(usize, usize)> {
        let pgoff = self.pgoff();
        let pages = self.len().div_ceil(PAGE_SIZE);
        match pgoff.checked_add(pages) {
            Some(end) if pages > 0 && end <= total => Ok((pgoff, pages)),
            _ => Err(EINVAL),
        }
    }

    /// `VM_MIXEDMAP`, so that `/proc/<pid>/pagemap` can show the pfns, with
    /// `VM_IO` so that slow-path `get_user_pages` refuses them (fast-path
    /// GUP refuses the special PTEs `insert` makes); never expanded, never
    /// dumped. Nobody can pin the buffer's memory beyond its lifetime.
    fn set_pfn_mapping(&self) {
        self.vma.set_mixedmap();
        self.vma.set_io();
        self.vma.set_dontexpand();
        self.vma.set_dontdump();
        // SAFETY: the VMA is being set up by mmap (type invariant): its
        // operations are ours to set; the table is static and its fault
        // handler maps only this buffer's memory (`new`'s contract).
        unsafe { (*self.vma.as_ptr()).vm_ops = self.ops };
    }

    /// Maps the pages of `runs` the mapping's offset and length select,
    /// write-combined if the runs are.
    /// A shared writable mapping gets its PTEs young and dirty, as
    /// `vmf_insert_mixed_mkwrite()` (not exported) would make them: the
    /// first write to each page then takes no fault on CPUs that do not
    /// set those bits in hardware (Arm v8.0).
    pub(crate) fn map_pages(&self, runs: &'m PageRuns) -> Result {
        let (mut pgoff, total) = self.window(runs.len() / PAGE_SIZE)?;
        self.set_pfn_mapping();
        let vma = self.vma.as_ptr();
        let flags = self.vma.flags();
        let dirty = flags & vm_flags::SHARED != 0 && flags & vm_flags::WRITE != 0;
        // SAFETY: the VMA is being set up by mmap (type invariant): its
        // page protection is ours to change until mmap returns. It is set
        // to `saved` below, before anything else reads it.
        let saved = unsafe {
            if runs.write_combined() {
                (*vma).vm_page_prot = ffi_helpers::rdh_pgprot_writecombine((*vma).vm_page_prot);
            }
            (*vma).vm_page_prot
        };
        if dirty {
            // SAFETY: pure computations on a value; stored as above.
            unsafe {
                let pte = ffi_helpers::rdh_pfn_pte(0, saved);
                let pte = ffi_helpers::rdh_pte_mkdirty(ffi_helpers::rdh_pte_mkyoung(pte));
                (*vma).vm_page_prot = ffi_helpers::rdh_pte_pgprot(pte);
            }
        }
        let mut done = 0;
        let mut ret = Ok(());
        for run in runs.runs() {
            if done == total {
                break;
            }
            if pgoff >= run.count() {
                pgoff -= run.count();
                continue;
            }
            let n = (run.count() - pgoff).min(total - done);
            // The pages `pgoff..pgoff + n` of a run the buffer owns.
            ret = self.insert(done, run.pfn() + pgoff, n);
            if ret.is_err() {
                break;
            }
            done += n;
            pgoff = 0;
        }
        // SAFETY: as above.
        unsafe { (*vma).vm_page_prot = saved };
        ret
    }

    /// Maps the part of a chunk of a no-map region the mapping's offset
    /// and length select, write-combined as the kernel maps it. `EINVAL`
    /// for a chunk with pages (map those as pages).
    pub(crate) fn map_chunk(&self, chunk: &'m Chunk) -> Result {
        if chunk.has_pages() {
            return Err(EINVAL);
        }
        let (pgoff, pages) = self.window(chunk.len() / PAGE_SIZE)?;
        self.set_pfn_mapping();
        let vma = self.vma.as_ptr();
        // SAFETY: the VMA is being set up by mmap (type invariant): its
        // page protection is ours to set; nothing is mapped yet.
        unsafe { (*vma).vm_page_prot = ffi_helpers::rdh_pgprot_writecombine((*vma).vm_page_prot) };
        let pfn = usize::try_from(chunk.pfn()).map_err(|_| EINVAL)?;
        self.insert(0, pfn + pgoff, pages)
    }

    /// Inserts `count` pfns from `pfn` at page `first` of the mapping.
    /// Only called with memory the buffer owns, inside the mapping (the
    /// callers' `window`).
    fn insert(&self, first: usize, pfn: usize, count: usize) -> Result {
        let start = self.vma.start() + first * PAGE_SIZE;
        for i in 0..count {
            // SAFETY: the VMA is being set up by mmap and has
            // `VM_MIXEDMAP`; the address lies inside it and the pfn in the
            // buffer's own memory (callers), kept alive by the VMA's file.
            let ret = unsafe {
                bindings::vmf_insert_mixed(
                    self.vma.as_ptr(),
                    (start + i * PAGE_SIZE) as ffi::c_ulong,
                    (pfn + i) as ffi::c_ulong,
                )
            };
            match ret {
                bindings::vm_fault_reason_VM_FAULT_NOPAGE => {}
                bindings::vm_fault_reason_VM_FAULT_OOM => return Err(ENOMEM),
                _ => return Err(EFAULT),
            }
        }
        Ok(())
    }
}

/// A page fault in a user mapping made by [`UserMapping`] (`vm_ops->fault`),
/// on a page whose PTE was zapped since `mmap` inserted it.
///
/// # Invariants
///
/// `vmf` is the fault being handled (mmap or VMA lock held) on a VMA that
/// [`UserMapping`] set up for a dma-buf whose private data is borrowed for
/// `'m`, which outlives the VMA (it holds the dma-buf's file).
pub(crate) struct Fault<'m> {
    vmf: NonNull<bindings::vm_fault>,
    /// Invariant in `'m`, as in [`UserMapping`].
    _memory: PhantomData<fn(&'m ()) -> &'m ()>,
}

impl<'m> Fault<'m> {
    /// # Safety
    ///
    /// `vmf` is a fault being handled by the `vm_ops` a [`UserMapping`] set,
    /// on a dma-buf whose private data is borrowed for `'m`.
    pub(super) unsafe fn new(vmf: NonNull<bindings::vm_fault>) -> Self {
        Self {
            vmf,
            _memory: PhantomData,
        }
    }

    /// The faulting page's offset into the buffer, in pages (the mapping's
    /// offset plus the page's place in it).
    pub(crate) fn pgoff(&self) -> usize {
        // SAFETY: the fault is being handled (type invariant).
        unsafe { (*self.vmf.as_ptr()).__bindgen_anon_1.pgoff }
    }

    /// Maps page `pgoff` of `runs` (the buffer's memory) at the faulting
    /// address, as `mmap` did.
    pub(crate) fn map_pages(&self, runs: &'m PageRuns) -> bindings::vm_fault_t {
        let mut pgoff = self.pgoff();
        for run in runs.runs() {
            if pgoff < run.count() {
                return self.insert(run.pfn() + pgoff);
            }
            pgoff -= run.count();
        }
        bindings::vm_fault_reason_VM_FAULT_SIGBUS
    }

    /// Maps page `pgoff` of `chunk` (the buffer's memory) at the faulting
    /// address, as `mmap` did.
    pub(crate) fn map_chunk(&self, chunk: &'m Chunk) -> bindings::vm_fault_t {
        let pgoff = self.pgoff();
        match usize::try_from(chunk.pfn()) {
            Ok(pfn) if pgoff < chunk.len() / PAGE_SIZE => self.insert(pfn + pgoff),
            _ => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }

    /// Inserts `pfn`, a page of the buffer's own memory (callers), at the
    /// faulting address.
    fn insert(&self, pfn: usize) -> bindings::vm_fault_t {
        let vmf = self.vmf.as_ptr();
        // SAFETY: the fault is being handled on a VMA of ours with
        // `VM_MIXEDMAP` and the protection `mmap` left (write-combined
        // where the memory is); the address is the fault's, inside the VMA;
        // the pfn is in the buffer's memory, kept alive by the VMA's file.
        unsafe {
            let f = &(*vmf).__bindgen_anon_1;
            bindings::vmf_insert_mixed(
                f.vma,
                f.address & !(PAGE_SIZE as ffi::c_ulong - 1),
                pfn as ffi::c_ulong,
            )
        }
    }
}
