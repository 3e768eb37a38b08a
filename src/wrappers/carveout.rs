// SPDX-License-Identifier: GPL-2.0

//! Carve-out regions: `/reserved-memory` nodes with `compatible =
//! "carved-out"`, their kernel mappings, and device mappings of physical
//! ranges that have no `struct page`.

use super::{ffi_helpers, DeviceRef};
use core::ptr::NonNull;
#[cfg(CONFIG_OF_RESERVED_MEM)]
use kernel::str::{CStr, CString};
use kernel::{bindings, dma::DataDirection, error::to_result, ffi, prelude::*, types::Opaque};

/// A reserved-memory region for a carveout heap.
#[cfg(CONFIG_OF_RESERVED_MEM)]
pub(crate) struct Region {
    /// The node's name (`carveout@b0000000`).
    pub(crate) name: CString,
    /// Physical base and size.
    pub(crate) base: u64,
    pub(crate) size: u64,
    /// `no-map`: not in the kernel's linear map, no `struct page` use.
    pub(crate) no_map: bool,
}

/// Every available `/reserved-memory` child compatible with `carved-out`.
#[cfg(CONFIG_OF_RESERVED_MEM)]
pub(crate) fn carved_out_regions() -> Result<KVec<Region>> {
    let mut regions = KVec::new();
    // SAFETY: a NUL-terminated path; no options wanted.
    let root = unsafe {
        bindings::of_find_node_opts_by_path(
            c"/reserved-memory".as_char_ptr(),
            core::ptr::null_mut(),
        )
    };
    if root.is_null() {
        return Ok(regions);
    }
    let mut child = core::ptr::null_mut();
    let result = loop {
        // SAFETY: `root` is held; `child` is NULL or the node the previous
        // call returned (whose reference this call drops).
        child = unsafe { bindings::of_get_next_available_child(root, child) };
        if child.is_null() {
            break Ok(());
        }
        // SAFETY: `child` is a held node.
        if unsafe { bindings::of_device_is_compatible(child, c"carved-out".as_char_ptr()) } <= 0 {
            continue;
        }
        let (mut base, mut size) = (0, 0);
        // SAFETY: `child` is a held node; the out-pointers are valid.
        if unsafe { ffi_helpers::rdh_reserved_mem_lookup(child, &mut base, &mut size) } != 0 {
            continue;
        }
        // SAFETY: a held node's `full_name` is a NUL-terminated string.
        let name = unsafe { CStr::from_char_ptr((*child).full_name) };
        // SAFETY: `child` is a held node; the property name is NUL-terminated.
        let no_map = !unsafe {
            bindings::of_find_property(child, c"no-map".as_char_ptr(), core::ptr::null_mut())
        }
        .is_null();
        match CString::try_from_fmt(fmt!("{name}")) {
            Ok(name) => {
                if let Err(e) = regions.push(
                    Region {
                        name,
                        base,
                        size,
                        no_map,
                    },
                    GFP_KERNEL,
                ) {
                    break Err(e.into());
                }
            }
            Err(e) => break Err(e),
        }
    };
    // SAFETY: drop the references we hold (`of_node_put(NULL)` is a no-op).
    unsafe {
        ffi_helpers::rdh_of_node_put(child);
        ffi_helpers::rdh_of_node_put(root);
    }
    result.map(|()| regions)
}

/// Whether any page of `[base, base + size)` is ordinary RAM the kernel
/// manages (a range a carveout must never take).
pub(crate) fn range_is_system_ram(base: u64, size: u64) -> bool {
    // SAFETY: a query over the resource tree.
    let r = unsafe {
        bindings::region_intersects(
            base,
            size as usize,
            bindings::IORESOURCE_SYSTEM_RAM as ffi::c_ulong,
            bindings::IORES_DESC_NONE as ffi::c_ulong,
        )
    };
    r != bindings::REGION_DISJOINT as ffi::c_int
}

/// Whether the page frame has a `struct page`.
pub(crate) fn pfn_valid(pfn: u64) -> bool {
    // SAFETY: a lookup in the memory map.
    unsafe { ffi_helpers::rdh_pfn_valid(pfn as ffi::c_ulong) }
}

/// A kernel mapping of a whole region (`memremap`).
///
/// # Invariants
///
/// `addr` maps `len` bytes from the region's base until `Drop`.
pub(crate) struct RegionMapping {
    addr: NonNull<ffi::c_void>,
    len: usize,
}

// SAFETY: a kernel address range, usable from any thread.
unsafe impl Send for RegionMapping {}
// SAFETY: shared access writes only through `zero`, on ranges the caller
// owns exclusively (a freshly allocated buffer).
unsafe impl Sync for RegionMapping {}

impl RegionMapping {
    /// Maps `[base, base + len)` write-back (`write_combine == false`) or
    /// write-combined.
    pub(crate) fn new(base: u64, len: usize, write_combine: bool) -> Result<Self> {
        let flags = if write_combine {
            bindings::MEMREMAP_WC
        } else {
            bindings::MEMREMAP_WB
        };
        // SAFETY: mapping a physical range the caller reserved for us.
        let addr = unsafe { bindings::memremap(base, len, flags as ffi::c_ulong) };
        let addr = NonNull::new(addr).ok_or(ENOMEM)?;
        Ok(Self { addr, len })
    }

    /// The kernel address of byte `offset` of the region (`offset <= len`).
    pub(crate) fn addr(&self, offset: usize) -> *mut ffi::c_void {
        self.addr
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(offset.min(self.len))
            .cast()
    }

    /// Zeroes `[offset, offset + len)` of the region; callers zero only
    /// ranges they were just handed by the region's allocator.
    pub(crate) fn zero(&self, offset: usize, len: usize) -> Result {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(EINVAL);
        }
        // SAFETY: the range lies inside the live mapping (checked above);
        // the caller owns it exclusively.
        unsafe { core::ptr::write_bytes(self.addr.as_ptr().cast::<u8>().add(offset), 0, len) };
        Ok(())
    }
}

impl Drop for RegionMapping {
    fn drop(&mut self) {
        // SAFETY: `addr` came from `memremap` and is unmapped only here.
        unsafe { bindings::memunmap(self.addr.as_ptr()) };
    }
}

/// A one-entry scatter-gather table for a physical range without `struct
/// page`, DMA-mapped for one device with `dma_map_resource`.
///
/// # Invariants
///
/// `table` was allocated by `sg_alloc_table(1)` and is freed in `Drop`;
/// `mapped` is `Some((addr, dir))` exactly while `[phys, phys + len)` is
/// mapped for `dev` at `addr`.
pub(crate) struct PhysSgTable {
    table: KBox<Opaque<bindings::sg_table>>,
    dev: DeviceRef,
    phys: u64,
    len: usize,
    mapped: Option<(bindings::dma_addr_t, DataDirection)>,
}

// SAFETY: owned memory and DMA API calls, fine from any thread.
unsafe impl Send for PhysSgTable {}
// SAFETY: shared access only reads.
unsafe impl Sync for PhysSgTable {}

impl PhysSgTable {
    /// A table for `[phys, phys + len)` and `dev`.
    pub(crate) fn new(phys: u64, len: usize, dev: DeviceRef) -> Result<Self> {
        let len32 = u32::try_from(len).map_err(|_| EINVAL)?;
        let table = KBox::new(Opaque::<bindings::sg_table>::zeroed(), GFP_KERNEL)?;
        // SAFETY: `table` is zeroed memory for a `struct sg_table`.
        to_result(unsafe { bindings::sg_alloc_table(table.get(), 1, bindings::GFP_KERNEL) })?;
        // SAFETY: one entry, allocated above; no page behind it, only a
        // length (importers of such buffers use DMA addresses only).
        unsafe { (*(*table.get()).sgl).length = len32 };
        Ok(Self {
            table,
            dev,
            phys,
            len,
            mapped: None,
        })
    }

    /// The raw table, for the importer (valid as long as `self`).
    pub(crate) fn as_raw(&self) -> *mut bindings::sg_table {
        self.table.get()
    }

    /// Maps the range for the device.
    pub(crate) fn map(&mut self, dir: DataDirection) -> Result {
        if self.mapped.is_some() {
            return Err(EBUSY);
        }
        // A device that cannot reach the range gets EIO here, not a
        // warning from the DMA core (direct mapping does not bounce
        // resources).
        // SAFETY: the device is live.
        if !unsafe { ffi_helpers::rdh_dma_capable(self.dev.as_raw(), self.phys, self.len) } {
            return Err(EIO);
        }
        // SAFETY: the device is live; the range is ours (a carveout).
        let addr = unsafe {
            bindings::dma_map_resource(self.dev.as_raw(), self.phys, self.len, dir.into(), 0)
        };
        // SAFETY: `addr` was just returned for this device.
        if unsafe { ffi_helpers::rdh_dma_mapping_error(self.dev.as_raw(), addr) } != 0 {
            return Err(EIO);
        }
        // SAFETY: the table has one entry; `len` fits `u32` (checked in
        // `new`).
        unsafe {
            ffi_helpers::rdh_sg_set_dma((*self.table.get()).sgl, addr, self.len as u32);
            (*self.table.get()).nents = 1;
        }
        self.mapped = Some((addr, dir));
        Ok(())
    }

    /// Undoes `map`; does nothing when not mapped.
    pub(crate) fn unmap(&mut self) {
        if let Some((addr, dir)) = self.mapped.take() {
            // SAFETY: mapped for this device, address and direction.
            unsafe {
                bindings::dma_unmap_resource(self.dev.as_raw(), addr, self.len, dir.into(), 0);
                (*self.table.get()).nents = 0;
            }
        }
    }
}

impl Drop for PhysSgTable {
    fn drop(&mut self) {
        self.unmap();
        // SAFETY: allocated by `sg_alloc_table`, freed only here.
        unsafe { bindings::sg_free_table(self.table.get()) };
    }
}
