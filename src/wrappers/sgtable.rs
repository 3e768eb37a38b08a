// SPDX-License-Identifier: GPL-2.0

//! A per-attachment scatter-gather table over a buffer's pages, with its
//! DMA mapping state.

use super::{dma_dir_from_raw, ffi_helpers, pages::PageRuns, DeviceRef};
use kernel::{
    bindings, dma::DataDirection, error::to_result, page::PAGE_SIZE, prelude::*, sync::Arc,
    types::Opaque,
};

/// The longest scatterlist entry built (`length` is an `unsigned int`).
const MAX_SEGMENT: usize = 1 << 30;

/// A scatter-gather table describing all pages of one buffer for one device.
///
/// # Invariants
///
/// - `table` was initialized by `sg_alloc_table` and is freed in `Drop`;
///   its entries point at the pages of `runs`, which it keeps alive.
/// - `mapped` is `Some(dir)` exactly while `table` is DMA-mapped for `dev`
///   in direction `dir`.
pub(crate) struct SgTable {
    table: KBox<Opaque<bindings::sg_table>>,
    dev: DeviceRef,
    mapped: Option<DataDirection>,
    _runs: Arc<PageRuns>,
}

// SAFETY: the table is owned memory; DMA API calls on it may come from any
// thread.
unsafe impl Send for SgTable {}
// SAFETY: shared access is read-only (`as_raw` for the importer, syncs).
unsafe impl Sync for SgTable {}

impl SgTable {
    /// Builds a table with one entry per run of `runs` (runs longer than
    /// [`MAX_SEGMENT`] take several), for `dev`.
    pub(crate) fn new(runs: &Arc<PageRuns>, dev: DeviceRef) -> Result<Self> {
        let nents: usize = runs
            .runs()
            .iter()
            .map(|r| r.size().div_ceil(MAX_SEGMENT))
            .sum();
        let nents = u32::try_from(nents).map_err(|_| ENOMEM)?;
        if nents == 0 {
            return Err(EINVAL);
        }
        let table = KBox::new(Opaque::<bindings::sg_table>::zeroed(), GFP_KERNEL)?;
        // SAFETY: `table` is zeroed memory for a `struct sg_table`.
        to_result(unsafe { bindings::sg_alloc_table(table.get(), nents, bindings::GFP_KERNEL) })?;
        // INVARIANT: the table is allocated; entries are set below, before
        // anyone else sees it.
        let this = Self {
            table,
            dev,
            mapped: None,
            _runs: runs.clone(),
        };
        // SAFETY: the table was just allocated with `nents` entries.
        let mut sg = unsafe { (*this.table.get()).sgl };
        for run in runs.runs() {
            let mut off = 0;
            while off < run.size() {
                let len = core::cmp::min(MAX_SEGMENT, run.size() - off);
                // SAFETY: `sg` is one of the `nents` entries (counted above
                // the same way); the page lies in a live run with `len`
                // bytes from it (`MAX_SEGMENT` fits `u32`).
                unsafe {
                    let page = run.first_page().wrapping_add(off / PAGE_SIZE);
                    ffi_helpers::rdh_sg_set_page(sg, page, len as u32, 0);
                    sg = ffi_helpers::rdh_sg_next(sg);
                }
                off += len;
            }
        }
        Ok(this)
    }

    /// The raw table, for the importer (valid as long as `self`).
    pub(crate) fn as_raw(&self) -> *mut bindings::sg_table {
        self.table.get()
    }

    /// Maps the table for DMA by its device (`dma_map_sgtable`).
    pub(crate) fn map(&mut self, dir: DataDirection) -> Result {
        if self.mapped.is_some() {
            return Err(EBUSY);
        }
        // SAFETY: the device is live (we hold a reference) and the table is
        // valid and not mapped (type invariant).
        to_result(unsafe {
            bindings::dma_map_sgtable(self.dev.as_raw(), self.table.get(), dir.into(), 0)
        })?;
        // INVARIANT: the mapping succeeded.
        self.mapped = Some(dir);
        Ok(())
    }

    /// Undoes `map`; does nothing when not mapped.
    pub(crate) fn unmap(&mut self) {
        if let Some(dir) = self.mapped.take() {
            // SAFETY: the table is mapped for this device and direction
            // (type invariant).
            unsafe {
                bindings::dma_unmap_sgtable(self.dev.as_raw(), self.table.get(), dir.into(), 0)
            };
        }
    }

    /// Gives the CPU ownership of a mapped table's memory; no-op when not
    /// mapped.
    pub(crate) fn sync_for_cpu(&self, dir: DataDirection) {
        if self.mapped.is_some() {
            // SAFETY: the table is mapped for this live device.
            unsafe {
                ffi_helpers::rdh_dma_sync_sgtable_for_cpu(
                    self.dev.as_raw(),
                    self.table.get(),
                    dir.into(),
                )
            };
        }
    }

    /// Gives the device back ownership of a mapped table's memory; no-op
    /// when not mapped.
    pub(crate) fn sync_for_device(&self, dir: DataDirection) {
        if self.mapped.is_some() {
            // SAFETY: the table is mapped for this live device.
            unsafe {
                ffi_helpers::rdh_dma_sync_sgtable_for_device(
                    self.dev.as_raw(),
                    self.table.get(),
                    dir.into(),
                )
            };
        }
    }
}

impl Drop for SgTable {
    fn drop(&mut self) {
        // An importer that detaches without unmapping leaves no mapping.
        self.unmap();
        // SAFETY: the table was allocated by `sg_alloc_table` and is freed
        // only here.
        unsafe { bindings::sg_free_table(self.table.get()) };
    }
}

/// Converts the C direction the dma-buf core passes.
pub(crate) fn dir_from_raw(dir: bindings::dma_data_direction) -> DataDirection {
    dma_dir_from_raw(dir)
}
