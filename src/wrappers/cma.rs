// SPDX-License-Identifier: GPL-2.0

//! Contiguous Memory Allocator areas (`include/linux/cma.h`), which 7.3's
//! bindings do not cover.

use core::ptr::NonNull;
use kernel::{bindings, ffi, prelude::*, str::CStr};

/// `struct cma`, opaque.
#[repr(C)]
pub(super) struct Cma {
    _opaque: [u8; 0],
}

#[allow(improper_ctypes)]
extern "C" {
    pub(super) fn cma_alloc(
        cma: *mut Cma,
        count: ffi::c_ulong,
        align: ffi::c_uint,
        no_warn: bool,
    ) -> *mut bindings::page;
    pub(super) fn cma_release(
        cma: *mut Cma,
        pages: *const bindings::page,
        count: ffi::c_ulong,
    ) -> bool;
    fn cma_get_name(cma: *const Cma) -> *const ffi::c_char;
    fn dev_get_cma_area(dev: *mut bindings::device) -> *mut Cma;
    fn dma_contiguous_get_area_by_idx(idx: ffi::c_uint) -> *mut Cma;
}

/// A CMA area.
///
/// # Invariants
///
/// `0` points to a CMA area set up at boot; areas are never torn down, so
/// the pointer is valid for the kernel's lifetime.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct CmaArea(NonNull<Cma>);

// SAFETY: CMA areas are global and do their own locking.
unsafe impl Send for CmaArea {}
// SAFETY: see `Send`.
unsafe impl Sync for CmaArea {}

impl CmaArea {
    /// The default area (`dev_get_cma_area(NULL)`), if there is one.
    pub(crate) fn default_area() -> Option<Self> {
        // SAFETY: a NULL device asks for the global default area.
        NonNull::new(unsafe { dev_get_cma_area(core::ptr::null_mut()) }).map(Self)
    }

    /// The `idx`th area declared (device tree, `cma=`), if any.
    pub(crate) fn by_index(idx: u32) -> Option<Self> {
        // SAFETY: any index may be asked; out of range gives NULL.
        NonNull::new(unsafe { dma_contiguous_get_area_by_idx(idx) }).map(Self)
    }

    /// The area's name (`linux,cma`, `reserved`, a device tree node's).
    pub(crate) fn name(&self) -> &'static CStr {
        // SAFETY: the area is live forever (type invariant) and its name is
        // a NUL-terminated string stored in it.
        unsafe { CStr::from_char_ptr(cma_get_name(self.0.as_ptr())) }
    }

    /// The area's size in bytes.
    ///
    /// Built against a headers package (no `mm/cma.h`), the size of every
    /// CMA area together: exact where there is one area.
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: the area is live forever (type invariant); its page
        // count is fixed at boot.
        let pages = unsafe { super::ffi_helpers::rdh_cma_pages(self.0.as_ptr()) };
        pages as u64 * kernel::page::PAGE_SIZE as u64
    }

    /// Whether every device of `devices` reaches all of the area.
    ///
    /// Built against a headers package, all of the zones holding CMA pages
    /// must be in reach: never a yes that is wrong, sometimes a no.
    pub(crate) fn reachable_by(&self, devices: &super::device::Devices<'_>) -> bool {
        let (mut base, mut end) = (0, 0);
        // SAFETY: the area is live forever (type invariant); its ranges are
        // fixed at boot.
        unsafe { super::ffi_helpers::rdh_cma_span(self.0.as_ptr(), &mut base, &mut end) };
        end > base && devices.reach(base, end - base)
    }

    pub(super) fn as_raw(&self) -> *mut Cma {
        self.0.as_ptr()
    }
}
