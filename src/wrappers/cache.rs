// SPDX-License-Identifier: GPL-2.0

//! Making pages safe to map write-combined: no CPU cache may hold a line of
//! them, or its write-back would later land over what a device or a
//! write-combined mapping wrote. The kernel cleans caches only through the
//! DMA API, for a device: a faux device of our own, non-coherent as every
//! device without firmware DMA configuration, maps and unmaps the pages
//! (as upstream's heap device and Android's uncached heap do).

use super::{ffi_helpers, pages::CleanRuns};
use kernel::{bindings, device, dma::DataDirection, faux, page::PAGE_SHIFT, prelude::*, str::CStr};

/// A device through which page caches are cleaned.
///
/// # Invariants
///
/// `dev` is the registered faux device's `struct device`, with a 64-bit
/// DMA mask, for as long as `_reg` lives.
pub(crate) struct CacheCleaner {
    _reg: faux::Registration,
    dev: *mut bindings::device,
}

// SAFETY: the device is only passed to the DMA API, which any thread may
// call; the registration is `Send + Sync`.
unsafe impl Send for CacheCleaner {}
// SAFETY: see `Send`.
unsafe impl Sync for CacheCleaner {}

impl CacheCleaner {
    /// A cleaner with a device named `name` (under `/sys/devices/faux/`);
    /// `EOPNOTSUPP` where the DMA API bounces every mapping through a
    /// software buffer (`swiotlb=force`), which cleans nothing.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        let reg = faux::Registration::new(name, None)?;
        let dev: &device::Device<device::Bound> = reg.as_ref().as_ref();
        // `device::Device` is `#[repr(transparent)]` over the C struct.
        let dev = core::ptr::from_ref(dev)
            .cast_mut()
            .cast::<bindings::device>();
        // SAFETY: a live device of our own (the registration), not used for
        // DMA by anyone yet: its mask is ours to set.
        kernel::error::to_result(unsafe {
            ffi_helpers::rdh_dma_coerce_mask_and_coherent(dev, u64::MAX)
        })?;
        // SAFETY: a live device of our own; a query of its DMA set-up.
        if unsafe { ffi_helpers::rdh_dev_force_bounce(dev) } {
            // Every mapping bounces (`swiotlb=force`): mapping the pages
            // would copy them, not clean the caches over them.
            return Err(EOPNOTSUPP);
        }
        // INVARIANT: registered, mask set.
        Ok(Self { _reg: reg, dev })
    }

    /// `runs`, written back and invalidated from every CPU cache, marked to
    /// be mapped write-combined from now on. `ENOMEM` (the runs freed) if
    /// the DMA API cannot map them.
    pub(crate) fn write_combined<R: CleanRuns>(&self, runs: R) -> Result<R> {
        runs.map(|runs| {
            let dir = DataDirection::Bidirectional.into();
            for run in runs.runs() {
                let phys = (run.pfn() as u64) << PAGE_SHIFT;
                // SAFETY: a live device with a mask (type invariant); the run is
                // memory we own, mapped and unmapped again at once: the map
                // cleans the caches over it, the unmap invalidates them.
                unsafe {
                    let addr = bindings::dma_map_phys(self.dev, phys, run.size(), dir, 0);
                    if ffi_helpers::rdh_dma_mapping_error(self.dev, addr) != 0 {
                        return Err(ENOMEM);
                    }
                    bindings::dma_unmap_phys(self.dev, addr, run.size(), dir, 0);
                }
            }
            runs.set_write_combined();
            Ok(())
        })
    }
}
