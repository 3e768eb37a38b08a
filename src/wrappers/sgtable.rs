// SPDX-License-Identifier: GPL-2.0

//! Scatter-gather tables (`sg_table`) of a buffer's memory for one device,
//! with their DMA mapping state: over pages with `struct page`
//! (`dma_map_sgtable`), or over a reserved chunk without them
//! (`dma_map_phys` with `DMA_ATTR_MMIO`, entries without pages as 7.3's
//! `dma_buf_phys_vec_to_sgt` builds them).

use super::{device, errno, ffi_helpers, pages::PageRuns, reserved_mem::Chunk};
use core::ptr::NonNull;
use kernel::{bindings, dma::DataDirection, ffi, page::PAGE_SIZE, prelude::*, types::Opaque};

/// The longest scatterlist entry built (`length` is an `unsigned int`).
const MAX_SEGMENT: usize = 1 << 30;

/// Entries kept in the table itself: a table of one entry (every CMA or
/// carve-out buffer up to [`MAX_SEGMENT`], a system buffer of one block)
/// allocates nothing but its owner (as `sg_alloc_table_chained()`'s first
/// chunk, without the SG pool).
const INLINE: usize = 1;

/// The memory a table describes (kept alive by whoever built the table).
enum Memory {
    /// Pages with `struct page`: the entries point at them. Mapped with
    /// `DMA_ATTR_SKIP_CPU_SYNC` and never synced when no CPU cache holds
    /// them (write-combined).
    Pages { write_combined: bool },
    /// A no-map chunk at physical address `phys`.
    Chunk { phys: u64 },
}

/// A scatter-gather table describing all of one buffer's memory for one
/// device.
///
/// # Invariants
///
/// - With more than [`INLINE`] entries, `table` was initialized by
///   `sg_alloc_table` with `entries` entries and is freed in `Drop`; or,
///   only inside [`SgTable::pages_in`] while it is built, it is all zero
///   with `entries == 0` (nothing allocated, nothing freed). With at most
///   [`INLINE`], its entries are `inline` (ended by `SG_END`, nothing
///   allocated or freed) and `table.sgl` points at them whenever the
///   table is read: set where it is built and again by [`SgTable::map`]
///   (it may dangle only while the table is unmapped and has moved, when
///   nothing reads it). The header is inline (no allocation of its own):
///   a table may move until it is mapped; the dma-buf layer maps a table
///   only where it stays until unmapped (its attachment's slot), since the
///   importer holds a pointer to the header in between.
///   For `Memory::Pages` its entries point at the pages of the runs, in
///   order; for `Memory::Chunk` it has one entry per [`MAX_SEGMENT`] of
///   the `len` bytes at `phys`, with no page, whose DMA address and length
///   are set while mapped (`orig_nents == 0`: no CPU list). That memory
///   stays allocated for as long as the table lives.
/// - `mapped` is `Some(dir)` exactly while `table` is DMA-mapped for `dev`
///   in direction `dir`.
pub(crate) struct SgTable {
    table: Opaque<bindings::sg_table>,
    /// The entries of a table of at most [`INLINE`].
    inline: Opaque<[bindings::scatterlist; INLINE]>,
    /// Live for as long as the table (the constructors' contract).
    dev: NonNull<bindings::device>,
    mapped: Option<DataDirection>,
    memory: Memory,
    /// Bytes described.
    len: usize,
    /// Entries allocated (`orig_nents` at allocation).
    entries: ffi::c_uint,
}

// The header does not rely on being pinned: it may move while unmapped, and
// the dma-buf layer keeps a mapped table in place (see the invariants).
impl Unpin for SgTable {}

// SAFETY: the table is owned memory; DMA API calls on it may come from any
// thread.
unsafe impl Send for SgTable {}
// SAFETY: shared access is read-only (syncs).
unsafe impl Sync for SgTable {}

impl SgTable {
    /// An empty table of `entries` entries for `dev` (see the invariants):
    /// zeroed, and for 1 to [`INLINE`] entries complete but for
    /// `table.sgl` (set where the table stays: [`Self::point_inline`]);
    /// the caller records `entries` once the table is complete.
    #[inline]
    fn empty(
        dev: NonNull<bindings::device>,
        memory: Memory,
        len: usize,
        entries: ffi::c_uint,
    ) -> Self {
        let t = Self {
            table: Opaque::zeroed(),
            inline: Opaque::zeroed(),
            dev,
            mapped: None,
            memory,
            len,
            entries: 0,
        };
        if (1..=INLINE).contains(&(entries as usize)) {
            // SAFETY: the header and `entries` (> 0, at most `INLINE`)
            // zeroed entries are ours; the last one ends the list, as
            // `sg_init_table()` marks it.
            unsafe {
                let last = t
                    .inline
                    .get()
                    .cast::<bindings::scatterlist>()
                    .add(entries as usize - 1);
                (*last).page_link = bindings::SG_END as ffi::c_ulong;
                (*t.table.get()).nents = entries;
                (*t.table.get()).orig_nents = entries;
            }
        }
        t
    }

    /// Whether the entries are [`Self::inline`].
    fn is_inline(&self) -> bool {
        self.entries as usize <= INLINE
    }

    /// Points an inline table's header at its entries, where the table is
    /// now (see the invariants).
    #[inline]
    fn point_inline(&mut self) {
        if self.is_inline() {
            // SAFETY: our header; only `sgl` is written.
            unsafe { (*self.table.get()).sgl = self.inline.get().cast() };
        }
    }

    /// A table with one entry per run of `runs` (runs longer than
    /// [`MAX_SEGMENT`] take several), for `dev`, built in `slot` (where it
    /// stays: a table built and moved would be copied by a call to
    /// `memcpy`). On failure `slot` is empty.
    ///
    /// # Safety
    ///
    /// `runs` must stay alive, unchanged, and `dev` must stay a live
    /// device, for as long as the table does.
    #[inline]
    pub(crate) unsafe fn pages_in<'s>(
        slot: &'s mut Option<Self>,
        runs: &PageRuns,
        dev: NonNull<bindings::device>,
    ) -> Result<&'s mut Self> {
        let nents: usize = runs
            .runs()
            .iter()
            .map(|r| r.size().div_ceil(MAX_SEGMENT))
            .sum();
        let entries = ffi::c_uint::try_from(nents).map_err(|_| ENOMEM)?;
        if entries == 0 {
            return Err(EINVAL);
        }
        let memory = Memory::Pages {
            write_combined: runs.write_combined(),
        };
        // INVARIANT: empty (zeroed, no entries) until allocated below, or
        // inline and complete once pointed at its entries where it stays.
        let header = slot
            .insert(Self::empty(dev, memory, runs.len(), entries))
            .table
            .get();
        if entries as usize > INLINE {
            // SAFETY: the header is zeroed memory for a `struct sg_table`;
            // on failure `sg_alloc_table` frees what it took and leaves no
            // list.
            let allocated =
                unsafe { bindings::sg_alloc_table(header, entries, bindings::GFP_KERNEL) };
            if let Err(e) = errno(allocated) {
                // An empty table: its drop frees nothing.
                *slot = None;
                return Err(e);
            }
        }
        let t = slot.as_mut().ok_or(EINVAL)?;
        t.entries = entries;
        t.point_inline();
        // SAFETY: the table has `nents` entries, just allocated or inline
        // (its header pointed at them above).
        let mut sg = unsafe { (*t.table.get()).sgl };
        for run in runs.runs() {
            let mut off = 0;
            while off < run.size() {
                let len = core::cmp::min(MAX_SEGMENT, run.size() - off);
                // SAFETY: `sg` is one of the `nents` entries (counted above
                // the same way); the page lies in a live run with `len`
                // bytes from it (`MAX_SEGMENT` fits `u32`).
                unsafe {
                    sg_set_page(sg, run.page(off / PAGE_SIZE), len as u32);
                    sg = bindings::sg_next(sg);
                }
                off += len;
            }
        }
        // INVARIANT: every entry set above; not mapped; the caller keeps
        // the runs alive.
        Ok(t)
    }

    /// A table for a chunk of a reserved region without `struct page`, for
    /// `dev`. `EINVAL` for a chunk with pages (describe those as pages).
    ///
    /// # Safety
    ///
    /// `chunk` must stay alive, and `dev` a live device, for as long as the
    /// table does.
    pub(crate) unsafe fn chunk(chunk: &Chunk, dev: NonNull<bindings::device>) -> Result<Self> {
        if chunk.has_pages() {
            return Err(EINVAL);
        }
        let entries =
            ffi::c_uint::try_from(chunk.len().div_ceil(MAX_SEGMENT)).map_err(|_| ENOMEM)?;
        if entries == 0 {
            return Err(EINVAL);
        }
        let memory = Memory::Chunk { phys: chunk.phys() };
        let mut t = Self::empty(dev, memory, chunk.len(), entries);
        if entries as usize > INLINE {
            // SAFETY: the header is zeroed memory for a `struct sg_table`;
            // on failure `sg_alloc_table` frees what it took.
            errno(unsafe {
                bindings::sg_alloc_table(t.table.get(), entries, bindings::GFP_KERNEL)
            })?;
        }
        t.entries = entries;
        // SAFETY: a table of our own, no CPU list (see the invariants).
        unsafe { (*t.table.get()).orig_nents = 0 };
        // INVARIANT: entries are zeroed (no page); addresses come at map,
        // which points an inline table at its entries; the caller keeps
        // the chunk alive.
        Ok(t)
    }

    /// The device.
    fn raw_dev(&self) -> *mut bindings::device {
        self.dev.as_ptr()
    }

    /// The raw table, for the importer (valid as long as `self`).
    pub(super) fn as_raw(&self) -> *mut bindings::sg_table {
        self.table.get()
    }

    /// Maps the table for DMA by its device; `EBUSY` when mapped already
    /// (a mapping is undone before the next: a second map of the same
    /// attachment would lose the first's IOMMU mapping), `EIO` when the
    /// device cannot reach the memory.
    pub(super) fn map(&mut self, dir: DataDirection) -> Result {
        if self.mapped.is_some() {
            return Err(EBUSY);
        }
        // Where it stays until unmapped (see the invariants).
        self.point_inline();
        let dev = self.raw_dev();
        match &self.memory {
            // SAFETY: the device is live (constructors' contract) and the
            // table is valid and not mapped (type invariant).
            Memory::Pages { write_combined } => errno(unsafe {
                bindings::dma_map_sgtable(
                    dev,
                    self.table.get(),
                    dir.into(),
                    skip_sync(*write_combined),
                )
            })?,
            Memory::Chunk { phys } => {
                let (phys, len) = (*phys, self.len);
                // SAFETY: a live device (constructors' contract).
                if !unsafe { device::reaches(self.dev, phys, len as u64) } {
                    return Err(EIO);
                }
                // SAFETY: the table has one entry per segment (type
                // invariant); each is mapped for the live device, in
                // order; on failure the ones before are unmapped again.
                unsafe {
                    let mut sg = (*self.table.get()).sgl;
                    let mut off = 0;
                    let mut n = 0;
                    while off < len {
                        let seg = core::cmp::min(MAX_SEGMENT, len - off);
                        let addr = bindings::dma_map_phys(
                            dev,
                            phys + off as u64,
                            seg,
                            dir.into(),
                            bindings::DMA_ATTR_MMIO as ffi::c_ulong,
                        );
                        if ffi_helpers::rdh_dma_mapping_error(dev, addr) != 0 {
                            (*self.table.get()).nents = n;
                            self.unmap_chunk(dir);
                            return Err(EIO);
                        }
                        ffi_helpers::rdh_sg_set_dma(sg, addr, seg as u32);
                        sg = bindings::sg_next(sg);
                        n += 1;
                        off += seg;
                    }
                    (*self.table.get()).nents = n;
                }
            }
        }
        // INVARIANT: the mapping succeeded.
        self.mapped = Some(dir);
        Ok(())
    }

    /// Unmaps the first `nents` entries of a chunk's table.
    fn unmap_chunk(&mut self, dir: DataDirection) {
        let dev = self.raw_dev();
        // SAFETY: the first `nents` entries were mapped for this device
        // and direction by `map`.
        unsafe {
            let nents = (*self.table.get()).nents;
            let mut sg = (*self.table.get()).sgl;
            for _ in 0..nents {
                bindings::dma_unmap_phys(
                    dev,
                    bindings::sg_dma_address(sg),
                    bindings::sg_dma_len(sg) as usize,
                    dir.into(),
                    bindings::DMA_ATTR_MMIO as ffi::c_ulong,
                );
                ffi_helpers::rdh_sg_set_dma(sg, 0, 0);
                sg = bindings::sg_next(sg);
            }
            (*self.table.get()).nents = 0;
        }
    }

    /// Undoes `map`; does nothing when not mapped.
    #[inline]
    pub(super) fn unmap(&mut self) {
        let Some(dir) = self.mapped.take() else {
            return;
        };
        match self.memory {
            // SAFETY: the table is mapped for this device and direction
            // (type invariant).
            Memory::Pages { write_combined } => unsafe {
                bindings::dma_unmap_sgtable(
                    self.raw_dev(),
                    self.table.get(),
                    dir.into(),
                    skip_sync(write_combined),
                )
            },
            Memory::Chunk { .. } => self.unmap_chunk(dir),
        }
    }

    /// Whether the memory may be in CPU caches: pages not write-combined.
    fn cached(&self) -> bool {
        matches!(
            self.memory,
            Memory::Pages {
                write_combined: false
            }
        )
    }

    /// Gives the CPU ownership of a mapped table's memory; no-op when not
    /// mapped or not cached (no CPU cache holds that memory).
    pub(super) fn sync_for_cpu(&self, dir: DataDirection) {
        self.sync(dir, true);
    }

    /// Gives the device back ownership of a mapped table's memory; no-op
    /// when not mapped or not cached.
    pub(super) fn sync_for_device(&self, dir: DataDirection) {
        self.sync(dir, false);
    }

    /// `dma_sync_sgtable_for_{cpu,device}()` (inline in C): nothing for a
    /// device whose syncs the DMA layer skips (`dma_dev_need_sync()`).
    #[inline]
    fn sync(&self, dir: DataDirection, for_cpu: bool) {
        if self.mapped.is_none() || !self.cached() {
            return;
        }
        #[cfg(CONFIG_DMA_NEED_SYNC)]
        {
            let dev = self.raw_dev();
            let skip = 1 << bindings::struct_device_flags_DEV_FLAG_DMA_SKIP_SYNC;
            // SAFETY: the device is live (type invariant); `flags` is read
            // once, as `test_bit()` reads it.
            let flags = unsafe { core::ptr::read_volatile(&raw const (*dev).flags[0]) };
            if flags & skip != 0 && !cfg!(CONFIG_DMA_API_DEBUG) {
                return;
            }
            let table = self.table.get();
            // SAFETY: the table is mapped for this live device; its CPU
            // list and `orig_nents` are the ones it was mapped with.
            unsafe {
                let (sgl, nents) = ((*table).sgl, (*table).orig_nents as ffi::c_int);
                if for_cpu {
                    bindings::__dma_sync_sg_for_cpu(dev, sgl, nents, dir.into());
                } else {
                    bindings::__dma_sync_sg_for_device(dev, sgl, nents, dir.into());
                }
            }
        }
        #[cfg(not(CONFIG_DMA_NEED_SYNC))]
        let _ = (dir, for_cpu);
    }
}

/// `sg_set_page(sg, page, len, 0)` (inline in C): points `sg` at `len`
/// bytes from the start of `page`, keeping the entry's chain and end marks.
///
/// # Safety
///
/// `sg` is a valid entry of a table being built, not a chain link; `page`
/// starts `len` bytes of physically contiguous pages.
#[inline]
unsafe fn sg_set_page(sg: *mut bindings::scatterlist, page: *mut bindings::page, len: u32) {
    let marks = (bindings::SG_CHAIN | bindings::SG_END) as ffi::c_ulong;
    // SAFETY: `sg` is valid (caller); a `struct page` is word-aligned, so
    // its address leaves the mark bits free, as `sg_assign_page()` checks.
    unsafe {
        (*sg).page_link = ((*sg).page_link & marks) | page as ffi::c_ulong;
        (*sg).offset = 0;
        (*sg).length = len;
    }
}

/// The DMA attributes of a mapping: no cache upkeep for memory no CPU
/// cache holds.
fn skip_sync(write_combined: bool) -> ffi::c_ulong {
    if write_combined {
        bindings::DMA_ATTR_SKIP_CPU_SYNC as ffi::c_ulong
    } else {
        0
    }
}

impl Drop for SgTable {
    fn drop(&mut self) {
        // An importer that detaches without unmapping leaves no mapping.
        self.unmap();
        if self.is_inline() {
            // Nothing allocated (an empty table has no entries either).
            return;
        }
        // SAFETY: the table was allocated by `sg_alloc_table` with
        // `entries` entries, which `sg_free_table` reads from `orig_nents`
        // (zero in a table without CPU list), and is freed only here.
        unsafe {
            (*self.table.get()).orig_nents = self.entries;
            bindings::sg_free_table(self.table.get());
        }
    }
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kernel::macros::kunit_tests(rust_dma_heap_sgtable)]
mod tests {
    use super::super::{
        pages::{Effort, Fresh, FreshRuns, PageRun},
        Zeroed,
    };
    use super::*;
    use kernel::faux;

    /// The device of `reg` (a `struct device`: `Device` is transparent).
    fn dev_of(reg: &faux::Registration) -> NonNull<bindings::device> {
        let dev: &kernel::device::Device<kernel::device::Bound> =
            AsRef::<faux::Device<kernel::device::Bound>>::as_ref(reg).as_ref();
        NonNull::from(dev).cast()
    }

    /// A buffer of one buddy block per order of `orders`.
    fn runs(orders: &[u32]) -> Result<PageRuns> {
        let mut fresh = FreshRuns::<Zeroed<PageRun>>::with_capacity(orders.len())?;
        for &order in orders {
            fresh.push(Zeroed::<PageRun>::buddy(order, Effort::Normal, false).ok_or(ENOMEM)?)?;
        }
        Ok(PageRuns::from_runs(fresh).into_inner())
    }

    /// The entries of `t`'s list, as (page, length) pairs, up to the one
    /// that ends it (`sg_next` returns NULL after it).
    fn entries(t: &SgTable) -> KVec<(*mut bindings::page, u32)> {
        let mut out = KVec::new();
        // SAFETY: a table just built, where it is: its list is valid.
        let mut sg = unsafe { (*t.table.get()).sgl };
        while !sg.is_null() {
            // SAFETY: an entry of the list; `sg_next` stops at `SG_END`.
            unsafe {
                let page = ((*sg).page_link
                    & !((bindings::SG_CHAIN | bindings::SG_END) as ffi::c_ulong))
                    as *mut bindings::page;
                let _ = out.push((page, (*sg).length), GFP_KERNEL);
                sg = bindings::sg_next(sg);
            }
        }
        out
    }

    #[test]
    fn one_run_is_inline() -> Result {
        let dev = faux::Registration::new(c"rdh-kunit-sg1", None)?;
        let raw = dev_of(&dev);
        let buffer = runs(&[4])?;
        let mut slot = None;
        // SAFETY: the runs and the device outlive the table (dropped first).
        let t = unsafe { SgTable::pages_in(&mut slot, &buffer, raw)? };
        assert!(t.is_inline());
        // SAFETY: reading the header of our table.
        let (sgl, nents, orig) = unsafe {
            let h = t.table.get();
            ((*h).sgl, (*h).nents, (*h).orig_nents)
        };
        assert_eq!(sgl, t.inline.get().cast::<bindings::scatterlist>());
        assert_eq!((nents, orig, t.entries), (1, 1, 1));
        let list = entries(t);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0], (buffer.runs()[0].page(0), 16 * PAGE_SIZE as u32));
        drop(slot);
        Ok(())
    }

    #[test]
    fn more_runs_are_allocated() -> Result {
        let dev = faux::Registration::new(c"rdh-kunit-sg2", None)?;
        let raw = dev_of(&dev);
        let buffer = runs(&[4, 0, 0])?;
        let mut slot = None;
        // SAFETY: as above.
        let t = unsafe { SgTable::pages_in(&mut slot, &buffer, raw)? };
        assert!(!t.is_inline());
        // SAFETY: reading the header of our table.
        let sgl = unsafe { (*t.table.get()).sgl };
        assert!(sgl != t.inline.get().cast::<bindings::scatterlist>());
        let list = entries(t);
        assert_eq!(list.len(), 3);
        for (i, run) in buffer.runs().iter().enumerate() {
            assert_eq!(list[i], (run.page(0), run.size() as u32));
        }
        drop(slot);
        Ok(())
    }

    #[test]
    fn moved_inline_table_is_pointed_again() -> Result {
        let dev = faux::Registration::new(c"rdh-kunit-sg3", None)?;
        let raw = dev_of(&dev);
        let buffer = runs(&[0])?;
        let mut slot = None;
        // SAFETY: as above.
        unsafe { SgTable::pages_in(&mut slot, &buffer, raw)? };
        let mut moved = KBox::new(slot.take().ok_or(EINVAL)?, GFP_KERNEL)?;
        moved.point_inline();
        // SAFETY: reading the header of our table.
        let sgl = unsafe { (*moved.table.get()).sgl };
        assert_eq!(sgl, moved.inline.get().cast::<bindings::scatterlist>());
        assert_eq!(entries(&moved).len(), 1);
        Ok(())
    }
}
