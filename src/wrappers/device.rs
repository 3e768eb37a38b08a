// SPDX-License-Identifier: GPL-2.0

//! What importing devices can reach (`include/linux/dma-mapping.h`): their
//! DMA masks, bus limits and IOMMUs, for memory chosen to fit them.

use super::ffi_helpers;
use core::{fmt, ptr::NonNull};
use kernel::{bindings, prelude::*};

/// Whether `dev` reaches `[phys, phys + len)`: behind an IOMMU that
/// translates (a paging domain) any memory; otherwise (no IOMMU, or an
/// identity or blocked domain, which map nothing) what `phys_to_dma()`
/// gives must lie under its DMA mask and bus limit (what
/// `dma_direct_map_phys()` checks before it warns).
///
/// # Safety
///
/// `dev` must be a live device.
pub(super) unsafe fn reaches(dev: NonNull<bindings::device>, phys: u64, len: u64) -> bool {
    let dev = dev.as_ptr();
    // SAFETY: a live device (caller); reading its DMA configuration, which
    // its driver sets before it maps anything.
    let (iommu, mask, limit) = unsafe {
        (
            ffi_helpers::rdh_dev_translates(dev),
            (*dev).dma_mask,
            (*dev).bus_dma_limit,
        )
    };
    if iommu || mask.is_null() || len == 0 {
        return true;
    }
    // SAFETY: as above; `dma_mask` points into the live device.
    let mask = unsafe { *mask };
    // SAFETY: a live device; a pure address translation.
    let dma = unsafe { ffi_helpers::rdh_phys_to_dma(dev, phys) };
    within(dma, len, mask, limit)
}

/// Whether the `len` (non-zero) bytes of DMA addresses from `dma` lie under
/// a device's DMA `mask` and its bus limit (`bus_limit`, 0 for none).
fn within(dma: u64, len: u64, mask: u64, bus_limit: u64) -> bool {
    let limit = if bus_limit == 0 {
        mask
    } else {
        mask.min(bus_limit)
    };
    dma.checked_add(len - 1).is_some_and(|end| end <= limit)
}

/// The devices memory must suit: those attached to a buffer when its
/// memory is chosen (none when the CPU uses it first), or the one device
/// mapping it later.
///
/// # Invariants
///
/// Every device in `list` is live for `'a` (attached to the buffer whose
/// lock the borrow holds, or being mapped).
pub(crate) struct Devices<'a> {
    list: KVec<NonNull<bindings::device>>,
    _attached: core::marker::PhantomData<&'a ()>,
}

impl<'a> Devices<'a> {
    /// No device: the CPU comes first.
    pub(crate) fn none() -> Self {
        Self {
            list: KVec::new(),
            _attached: core::marker::PhantomData,
        }
    }

    /// Adds `dev`.
    ///
    /// # Safety
    ///
    /// `dev` must stay live for `'a`.
    pub(super) unsafe fn push(&mut self, dev: NonNull<bindings::device>) -> Result {
        self.list.push(dev, GFP_KERNEL)?;
        Ok(())
    }

    /// Whether some device needs the memory in one physically contiguous
    /// range: it has no IOMMU that merges segments into one DMA range
    /// (`dma_get_merge_boundary()` is 0).
    pub(crate) fn need_contiguous(&self) -> bool {
        self.list.iter().any(|dev| {
            // SAFETY: a live device (type invariant); a query.
            unsafe { bindings::dma_get_merge_boundary(dev.as_ptr()) == 0 }
        })
    }

    /// Whether some device has every DMA mapping bounced through a
    /// software buffer (`swiotlb=force`, a confidential-computing guest):
    /// CPU cache maintenance of the memory itself never reaches it.
    pub(crate) fn bounce(&self) -> bool {
        self.list.iter().any(|dev| {
            // SAFETY: a live device (type invariant); a query.
            unsafe { ffi_helpers::rdh_dev_force_bounce(dev.as_ptr()) }
        })
    }

    /// Whether every device reaches `[phys, phys + len)`.
    pub(super) fn reach(&self, phys: u64, len: u64) -> bool {
        self.list.iter().all(|&dev| {
            // SAFETY: a live device (type invariant).
            unsafe { reaches(dev, phys, len) }
        })
    }
}

/// The names of a [`Devices`], for a log line.
pub(crate) struct Names<'d, 'a>(&'d Devices<'a>);

impl Devices<'_> {
    /// The devices' names, space-separated, for a log line.
    pub(crate) fn names(&self) -> Names<'_, '_> {
        Names(self)
    }
}

impl kernel::fmt::Display for Names<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, dev) in self.0.list.iter().enumerate() {
            // SAFETY: a live device (type invariant of `Devices`) for as
            // long as the reference is used.
            let dev: &kernel::device::Device =
                unsafe { kernel::device::Device::from_raw(dev.as_ptr()) };
            let sep = if i > 0 { " " } else { "" };
            write!(f, "{sep}{}", dev.name().to_str().unwrap_or("?"))?;
        }
        Ok(())
    }
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kunit_tests(rust_dma_heap_reach)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    const MASK32: u64 = u32::MAX as u64;

    #[test]
    fn under_a_32_bit_mask() {
        assert!(within(0, 4096, MASK32, 0));
        assert!(within(4 * GIB - 4096, 4096, MASK32, 0));
        assert!(!within(4 * GIB - 4096, 4097, MASK32, 0));
        assert!(!within(4 * GIB, 4096, MASK32, 0));
    }

    #[test]
    fn bus_limit_below_the_mask() {
        assert!(within(GIB - 4096, 4096, u64::MAX, GIB - 1));
        assert!(!within(GIB, 4096, u64::MAX, GIB - 1));
        // A bus limit above the mask does not widen it.
        assert!(!within(4 * GIB, 4096, MASK32, u64::MAX));
    }

    #[test]
    fn end_of_the_address_space() {
        assert!(within(u64::MAX - 4095, 4096, u64::MAX, 0));
        assert!(!within(u64::MAX - 4095, 4097, u64::MAX, 0));
    }
}
