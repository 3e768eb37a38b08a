// SPDX-License-Identifier: GPL-2.0

//! Reserved memory (`of_reserved_mem`, `memremap`): regions set aside for
//! this module, the allocator that lends parts of them out, and the
//! [`Chunk`]s it lends.
//!
//! A region is created only from what the kernel says is reserved memory
//! (a `/reserved-memory` node) or from a range the `carveout=` parameter
//! names and that the kernel does not use as RAM. Chunks are created only by
//! the region's own allocator: whoever holds one owns that memory until it
//! is dropped, so every operation that maps, zeroes or DMA-maps physical
//! memory without `struct page` takes a `Chunk`, never an address.

use super::{ffi_helpers, Dirty, Zeroed};
use core::ptr::NonNull;
#[cfg(CONFIG_OF_RESERVED_MEM)]
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    bindings,
    bitmap::{Bitmap, BitmapVec},
    ffi, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CString},
    sync::{Arc, Mutex},
};

/// Whether the page frame has a `struct page`.
fn pfn_valid(pfn: u64) -> bool {
    let Ok(pfn) = ffi::c_ulong::try_from(pfn) else {
        return false;
    };
    // SAFETY: a lookup in the memory map, for any pfn.
    unsafe { ffi_helpers::rdh_pfn_valid(pfn) }
}

/// Whether any page of `[base, base + size)` is ordinary RAM the kernel
/// manages.
fn range_is_system_ram(base: u64, size: usize) -> bool {
    // SAFETY: a query over the resource tree.
    let r = unsafe {
        bindings::region_intersects(
            base,
            size,
            bindings::IORESOURCE_SYSTEM_RAM as ffi::c_ulong,
            bindings::IORES_DESC_NONE as ffi::c_ulong,
        )
    };
    r != bindings::REGION_DISJOINT as ffi::c_int
}

/// One reserved region and its page allocator.
///
/// # Invariants
///
/// - `[base, base + size)` is reserved memory the kernel does not use (a
///   `carved-out` `/reserved-memory` node, which the kernel set aside for
///   this module at boot, or a `carveout=` range outside System RAM that
///   overlaps no memory the device tree gave a driver) and that this
///   object alone hands out (a no-map range is claimed in the iomem tree
///   for as long as the region lives, so no second region can cover any
///   of it); `base` and `size` are page-aligned,
///   `size > 0`, and the range fits `phys_addr_t`.
/// - `no_map`: the range is outside the kernel's linear map and `wc` maps
///   it (write-combined) until drop. Otherwise every page of the range has
///   a `struct page` in a virtually contiguous memory map (checked at
///   creation), and `wc` is `None`.
/// - A set bit of `used` is a page lent out as part of exactly one live
///   [`Chunk`].
#[pin_data]
pub(crate) struct Region {
    /// Dropped first: unmapped before the range is given up.
    wc: Option<WcMap>,
    /// The range claimed in the iomem resource tree (no-map regions, which
    /// lie outside System RAM): nobody else, this module included, can
    /// claim it again while the region lives. Dropped before `name`, which
    /// it points to.
    _claim: Option<Claim>,
    name: CString,
    base: u64,
    size: usize,
    no_map: bool,
    #[pin]
    used: Mutex<BitmapVec>,
}

/// A physical range claimed in the iomem resource tree
/// (`request_mem_region`), released in `Drop`.
///
/// # Invariants
///
/// `[base, base + size)` was claimed under a name that outlives this
/// object (the caller's), and is released only here.
struct Claim {
    base: u64,
    size: u64,
}

impl Claim {
    /// Claims `[base, base + size)` as `name`; `EBUSY` when any part of it
    /// is claimed already (by a driver, another region, or busy RAM).
    ///
    /// # Safety
    ///
    /// `name` must outlive the claim.
    unsafe fn new(base: u64, size: u64, name: &CStr) -> Result<Self> {
        let start = bindings::phys_addr_t::try_from(base).map_err(|_| EINVAL)?;
        // SAFETY: a query-and-insert on the resource tree; `name` outlives
        // the claim (caller).
        let ret = unsafe { ffi_helpers::rdh_request_mem_region(start, size, name.as_char_ptr()) };
        kernel::error::to_result(ret)?;
        // INVARIANT: claimed just now.
        Ok(Self { base, size })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // SAFETY: claimed in `new` (type invariant), released only here.
        unsafe {
            ffi_helpers::rdh_release_mem_region(self.base as bindings::phys_addr_t, self.size)
        };
    }
}

// SAFETY: the region is physical memory plus a kernel mapping of it; the
// allocator is behind a mutex. Usable from any thread.
unsafe impl Send for Region {}
// SAFETY: see `Send`; shared access allocates under the mutex and writes
// memory only through chunks, which are exclusive.
unsafe impl Sync for Region {}

/// What a `/reserved-memory` node or the parameter describes.
struct Description {
    name: CString,
    base: u64,
    size: u64,
    no_map: bool,
}

impl Region {
    /// Sets up a region from a checked description.
    fn new(d: Description) -> Result<Arc<Self>> {
        let size = usize::try_from(d.size).map_err(|_| EINVAL)?;
        let page = PAGE_SIZE as u64;
        if size == 0 || d.base % page != 0 || d.size % page != 0 {
            return Err(EINVAL);
        }
        let end = d.base.checked_add(d.size).ok_or(EINVAL)?;
        if bindings::phys_addr_t::try_from(end - 1).is_err() {
            return Err(EINVAL);
        }
        let claim = if d.no_map {
            // SAFETY: the name moves into the region with the claim, which
            // is dropped first (field order); its heap buffer does not move.
            Some(
                unsafe { Claim::new(d.base, d.size, &d.name) }.inspect_err(|_| {
                    pr_err!(
                        "{}: [{:#x}, {:#x}) is claimed already (by this module or a driver)\n",
                        &*d.name,
                        d.base,
                        end
                    )
                })?,
            )
        } else {
            None
        };
        let wc = if d.no_map {
            // SAFETY: a reserved range the kernel does not use as RAM
            // (checked above) and that this region alone claimed, mapped
            // write-combined for this region alone.
            let addr =
                unsafe { bindings::memremap(d.base, size, bindings::MEMREMAP_WC as ffi::c_ulong) };
            // INVARIANT: `memremap` mapped `size` bytes, or failed.
            Some(WcMap {
                addr: NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?,
            })
        } else {
            // Pages are used through `struct page`: each must have one,
            // and `page + i` must be the page of `pfn + i`.
            if !cfg!(CONFIG_SPARSEMEM_VMEMMAP) && cfg!(CONFIG_SPARSEMEM) {
                return Err(EINVAL);
            }
            let first = d.base / page;
            if !(first..end / page).all(pfn_valid) {
                return Err(EINVAL);
            }
            None
        };
        let used = BitmapVec::new(size / PAGE_SIZE, GFP_KERNEL)?;
        // INVARIANT: checked and mapped above; no page is lent out yet.
        Arc::pin_init(
            try_pin_init!(Self {
                wc,
                _claim: claim,
                name: d.name,
                base: d.base,
                size,
                no_map: d.no_map,
                used <- new_mutex!(used),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// Every available `/reserved-memory` child compatible with
    /// `carved-out`, set up; a node that cannot be is logged and skipped.
    /// Once per load of the module (`EBUSY` after): a region with pages
    /// lies in System RAM, where no claim in the iomem tree can keep a
    /// second region off its pages.
    #[cfg(CONFIG_OF_RESERVED_MEM)]
    pub(crate) fn from_device_tree() -> Result<KVec<Arc<Self>>> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        if TAKEN.swap(true, Ordering::Relaxed) {
            return Err(EBUSY);
        }
        let mut regions = KVec::new();
        for node in reserved_nodes()? {
            if !node.carved_out {
                continue;
            }
            let base = node.base;
            let d = Description {
                name: node.name,
                base,
                size: node.size,
                no_map: node.no_map,
            };
            match Self::new(d) {
                Ok(region) => regions.push(region, GFP_KERNEL)?,
                Err(e) => pr_err!("carveout at {:#x}: {:?}; skipped\n", base, e),
            }
        }
        Ok(regions)
    }

    /// The region `carveout=<size>@<base>` names (`None` when the
    /// parameter is empty): memory the kernel describes (it has a memory
    /// map) but does not use as RAM (reserved, no-map). Sizes and addresses
    /// as the kernel's command line takes them (`memparse()`: K, M, G
    /// suffixes; `0x` hex). A malformed parameter, device registers and
    /// ordinary RAM are refused (`EINVAL`), memory the device tree gave a
    /// driver or a range claimed already (`EBUSY`). Root vouches, as with
    /// `mem=`, that nothing else uses the range; no other physical range
    /// can be named.
    pub(crate) fn from_param(param: CarveoutParam) -> Result<Option<Arc<Self>>> {
        let text = param.0.to_str().map_err(|_| EINVAL)?;
        let param = text.trim();
        let Some((size, base)) = parse_carveout(param)? else {
            return Ok(None);
        };
        let name = CString::try_from_fmt(fmt!("carveout@{:x}", base))?;
        let last = base + (size - 1);
        let len = usize::try_from(size).map_err(|_| EINVAL)?;
        if range_is_system_ram(base, len) {
            pr_err!(
                "carveout={}: the range holds ordinary RAM the kernel uses; refused\n",
                param
            );
            return Err(EINVAL);
        }
        // Every page, not only the ends: a hole of device registers inside
        // the range is not memory either.
        let page = PAGE_SIZE as u64;
        if !(base / page..=last / page).all(pfn_valid) {
            pr_err!("carveout={}: the range is not memory; refused\n", param);
            return Err(EINVAL);
        }
        // Memory the device tree reserved for a driver (a node with a
        // `compatible`: a carve-out heap of ours, a CMA area, a firmware
        // region) is that driver's; a node without one only reserves, and
        // the range may lie inside one.
        #[cfg(CONFIG_OF_RESERVED_MEM)]
        for node in reserved_nodes()? {
            let (nb, ne) = (node.base, node.base.saturating_add(node.size));
            let overlaps = base < ne && nb <= last;
            let inside = nb <= base && last < ne;
            if overlaps && (node.compatible || !inside) {
                pr_err!(
                    "carveout={}: overlaps reserved memory {} [{:#x}, {:#x}); refused\n",
                    param,
                    &*node.name,
                    nb,
                    ne
                );
                return Err(EBUSY);
            }
        }
        // Not System RAM means not in the kernel's linear map: no-map.
        Self::new(Description {
            name,
            base,
            size,
            no_map: true,
        })
        .map(Some)
    }

    /// The region's name (the device tree node's, or `carveout@<base>`).
    pub(crate) fn name(&self) -> &kernel::str::CStr {
        &self.name
    }

    /// Size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether the region's memory has `struct page`s and is mapped
    /// cacheable (not `no-map`, which is mapped write-combined).
    pub(crate) fn has_pages(&self) -> bool {
        !self.no_map
    }

    /// Takes the lowest run of `len` bytes (page-aligned, non-zero) of free
    /// pages; `ENOMEM` when there is none. Not zeroed yet: its previous
    /// user's bytes may still be there.
    pub(crate) fn alloc(self: &Arc<Self>, len: usize) -> Result<Dirty<Chunk>> {
        if len == 0 || len % PAGE_SIZE != 0 || len > self.size {
            return Err(if len > self.size { ENOMEM } else { EINVAL });
        }
        let count = len / PAGE_SIZE;
        let mut used = self.used.lock();
        let start = first_fit(&used, count).ok_or(ENOMEM)?;
        for p in start..start + count {
            used.set_bit(p);
        }
        drop(used);
        // INVARIANT: the pages were free and are now marked lent to this
        // chunk alone.
        Ok(Dirty(Chunk {
            region: self.clone(),
            offset: start * PAGE_SIZE,
            len,
        }))
    }
}

/// The first run of `count` (non-zero) clear bits of `used`, lowest first.
fn first_fit(used: &Bitmap, count: usize) -> Option<usize> {
    let bits = used.len();
    let mut start = 0;
    loop {
        // (`next_zero_bit` wants a start inside the bitmap.)
        if start >= bits {
            return None;
        }
        start = used.next_zero_bit(start)?;
        if start.checked_add(count)? > bits {
            return None;
        }
        match used.next_bit(start) {
            Some(b) if b < start + count => start = b + 1,
            _ => return Some(start),
        }
    }
}

/// `carveout=<size>@<base>` (trimmed) as `(size, base)`: `None` for an
/// empty parameter, `EINVAL` for anything malformed, a size of 0 or a
/// range that wraps the address space.
fn parse_carveout(text: &str) -> Result<Option<(u64, u64)>> {
    if text.is_empty() {
        return Ok(None);
    }
    let (size, base) = text.split_once('@').ok_or(EINVAL)?;
    let (size, base) = (memparse(size)?, memparse(base)?);
    if size == 0 || base.checked_add(size - 1).is_none() {
        return Err(EINVAL);
    }
    Ok(Some((size, base)))
}

/// The `carveout` module parameter (declared in `helpers.c`), as root wrote
/// it: the only way to name a physical range for a [`Region`] outside the
/// device tree.
pub(crate) struct CarveoutParam(&'static CStr);

/// The `carveout` module parameter.
pub(crate) fn carveout_param() -> CarveoutParam {
    // SAFETY: `rdh_carveout_param` returns the parameter's static,
    // NUL-terminated buffer; it is read-only (0444) once the module is
    // loaded, so it neither changes nor goes away while the module lives.
    CarveoutParam(unsafe { CStr::from_char_ptr(ffi_helpers::rdh_carveout_param()) })
}

/// A size or address as the kernel's command line writes it (`memparse()`:
/// decimal, `0x` hex or `0` octal, with an optional K, M, G, T, P or E
/// suffix), the whole of `text`; `EINVAL` otherwise.
fn memparse(text: &str) -> Result<u64> {
    let mut buf = [0u8; 32];
    let text = text.trim().as_bytes();
    if text.is_empty() || text.len() >= buf.len() {
        return Err(EINVAL);
    }
    buf[..text.len()].copy_from_slice(text);
    let start = buf.as_ptr().cast::<ffi::c_char>();
    let mut end = start.cast_mut();
    // SAFETY: `buf` is NUL-terminated (zeroed past the text); `memparse`
    // reads up to the first byte that is not part of a number and stores
    // where it stopped, inside `buf`.
    let v = unsafe { bindings::memparse(start, &mut end) };
    // CAST: both point into `buf`; `end` is at or after `start`.
    let used = (end as usize).wrapping_sub(start as usize);
    if used != text.len() {
        return Err(EINVAL);
    }
    Ok(v)
}

/// A write-combined kernel mapping of a whole no-map region.
///
/// # Invariants
///
/// `addr` is the start of a `memremap` of the region, unmapped in `Drop`.
struct WcMap {
    addr: NonNull<u8>,
}

impl Drop for WcMap {
    fn drop(&mut self) {
        // SAFETY: mapped by `memremap`, unmapped only here; no chunk is
        // alive (each holds its region, which holds this mapping).
        unsafe { bindings::memunmap(self.addr.as_ptr().cast()) };
    }
}

/// Pages of a [`Region`] lent to one owner until dropped.
///
/// # Invariants
///
/// `[offset, offset + len)` of `region` (page-aligned, non-empty) is marked
/// used in its allocator for this chunk alone.
pub(crate) struct Chunk {
    region: Arc<Region>,
    offset: usize,
    len: usize,
}

impl Chunk {
    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the memory has `struct page`s (a region without `no-map`).
    pub(crate) fn has_pages(&self) -> bool {
        !self.region.no_map
    }

    /// Physical address of the first byte.
    pub(super) fn phys(&self) -> u64 {
        self.region.base + self.offset as u64
    }

    /// Page frame number of the first page.
    pub(super) fn pfn(&self) -> u64 {
        self.phys() / PAGE_SIZE as u64
    }

    /// The region's kernel mapping of this chunk (no-map regions only).
    pub(super) fn kernel_addr(&self) -> Option<NonNull<u8>> {
        // SAFETY: the chunk lies inside the region (type invariant), which
        // `wc` maps whole.
        self.region
            .wc
            .as_ref()
            .map(|m| unsafe { NonNull::new_unchecked(m.addr.as_ptr().add(self.offset)) })
    }

    /// Zeroes a chunk of a no-map region through the region's
    /// write-combined mapping (chunks with pages are zeroed as a
    /// [`super::pages::PageRun`]). `EINVAL` for a chunk with pages.
    /// 2 MiB at a time, yielding the CPU between them and stopping with
    /// `EINTR` when the caller gets a fatal signal. Only for a chunk nobody
    /// has seen yet (see [`Dirty::zero`]).
    fn zero(&self) -> Result {
        const STEP: usize = 2 << 20;
        let addr = self.kernel_addr().ok_or(EINVAL)?;
        let mut done = 0;
        while done < self.len {
            if done > 0 {
                if super::fatal_signal_pending() {
                    return Err(EINTR);
                }
                super::cond_resched();
            }
            let n = STEP.min(self.len - done);
            // SAFETY: bytes `done .. done + n` of the chunk are mapped
            // (above) and ours alone.
            unsafe { core::ptr::write_bytes(addr.as_ptr().add(done), 0, n) };
            done += n;
        }
        Ok(())
    }
}

impl Dirty<Chunk> {
    /// Zeroes a chunk of a no-map region (see [`Chunk::zero`]); on failure
    /// the chunk is given back.
    pub(crate) fn zero(self) -> Result<Zeroed<Chunk>> {
        self.0.zero()?;
        // SAFETY: every byte was just zeroed; nobody else has the chunk.
        Ok(unsafe { Zeroed::new_unchecked(self.0) })
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let mut used = self.region.used.lock();
        let first = self.offset / PAGE_SIZE;
        for p in first..first + self.len / PAGE_SIZE {
            used.clear_bit(p);
        }
    }
}

/// A `/reserved-memory` node as the kernel set it up at boot.
#[cfg(CONFIG_OF_RESERVED_MEM)]
struct ReservedNode {
    name: CString,
    base: u64,
    size: u64,
    /// It has a `compatible`: some driver (or this module) owns it.
    compatible: bool,
    /// It is `compatible = "carved-out"`: a heap of this module.
    carved_out: bool,
    no_map: bool,
}

/// Every available `/reserved-memory` child the kernel reserved memory
/// for, in device tree order.
#[cfg(CONFIG_OF_RESERVED_MEM)]
fn reserved_nodes() -> Result<KVec<ReservedNode>> {
    let mut nodes = KVec::new();
    // SAFETY: a NUL-terminated path; no options wanted.
    let root = unsafe {
        bindings::of_find_node_opts_by_path(
            c"/reserved-memory".as_char_ptr(),
            core::ptr::null_mut(),
        )
    };
    if root.is_null() {
        return Ok(nodes);
    }
    let mut child = core::ptr::null_mut();
    let result = loop {
        // SAFETY: `root` is held; `child` is NULL or the node the previous
        // call returned (whose reference this call drops).
        child = unsafe { bindings::of_get_next_available_child(root, child) };
        if child.is_null() {
            break Ok(());
        }
        let (mut base, mut size) = (0, 0);
        // SAFETY: `child` is a held node; the out-pointers are valid.
        if unsafe { ffi_helpers::rdh_reserved_mem_lookup(child, &mut base, &mut size) } != 0 {
            continue;
        }
        // SAFETY: `child` is a held node; the names are NUL-terminated.
        let (compatible, carved_out, no_map) = unsafe {
            (
                !bindings::of_find_property(
                    child,
                    c"compatible".as_char_ptr(),
                    core::ptr::null_mut(),
                )
                .is_null(),
                bindings::of_device_is_compatible(child, c"carved-out".as_char_ptr()) > 0,
                !bindings::of_find_property(child, c"no-map".as_char_ptr(), core::ptr::null_mut())
                    .is_null(),
            )
        };
        // SAFETY: a held node's `full_name` is a NUL-terminated string.
        let name = unsafe { CStr::from_char_ptr((*child).full_name) };
        let name = match CString::try_from_fmt(fmt!("{name}")) {
            Ok(name) => name,
            Err(e) => break Err(e),
        };
        let node = ReservedNode {
            name,
            base,
            size,
            compatible,
            carved_out,
            no_map,
        };
        if let Err(e) = nodes.push(node, GFP_KERNEL) {
            break Err(e.into());
        }
    };
    // SAFETY: drop the references we hold (`of_node_put(NULL)` is a no-op).
    unsafe {
        ffi_helpers::rdh_of_node_put(child);
        ffi_helpers::rdh_of_node_put(root);
    }
    result.map(|()| nodes)
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kunit_tests(rust_dma_heap_carveout)]
mod tests {
    use super::*;

    #[test]
    fn memparse_suffixes_and_bases() {
        assert_eq!(memparse("4096"), Ok(4096));
        assert_eq!(memparse("4K"), Ok(4096));
        assert_eq!(memparse("16M"), Ok(16 << 20));
        assert_eq!(memparse("1G"), Ok(1 << 30));
        assert_eq!(memparse("0xb4000000"), Ok(0xb400_0000));
        assert_eq!(memparse(" 0x10 "), Ok(16));
    }

    #[test]
    fn memparse_rejects_junk() {
        assert_eq!(memparse(""), Err(EINVAL));
        assert_eq!(memparse("16Q"), Err(EINVAL));
        assert_eq!(memparse("abc"), Err(EINVAL));
        assert_eq!(memparse("1M2"), Err(EINVAL));
        // 32 bytes or more: longer than any number.
        assert_eq!(memparse("00000000000000000000000000000001"), Err(EINVAL));
    }

    #[test]
    fn carveout_empty_is_none() {
        assert_eq!(parse_carveout(""), Ok(None));
    }

    #[test]
    fn carveout_size_at_base() {
        assert_eq!(
            parse_carveout("16M@0xb4000000"),
            Ok(Some((16 << 20, 0xb400_0000)))
        );
        assert_eq!(parse_carveout("4K@3G"), Ok(Some((4096, 3 << 30))));
    }

    #[test]
    fn carveout_malformed() {
        assert_eq!(parse_carveout("16M"), Err(EINVAL));
        assert_eq!(parse_carveout("16M@"), Err(EINVAL));
        assert_eq!(parse_carveout("@0x1000"), Err(EINVAL));
        assert_eq!(parse_carveout("16M@0x1000@0x2000"), Err(EINVAL));
    }

    #[test]
    fn carveout_zero_size() {
        assert_eq!(parse_carveout("0@0xb4000000"), Err(EINVAL));
    }

    #[test]
    fn carveout_range_wraps() {
        assert_eq!(parse_carveout("8K@0xfffffffffffff000"), Err(EINVAL));
        // The last page of the address space is a range.
        assert_eq!(
            parse_carveout("4K@0xfffffffffffff000"),
            Ok(Some((4096, 0xffff_ffff_ffff_f000)))
        );
    }

    fn bitmap(bits: usize, set: &[usize]) -> Result<BitmapVec> {
        let mut b = BitmapVec::new(bits, GFP_KERNEL)?;
        for &i in set {
            b.set_bit(i);
        }
        Ok(b)
    }

    #[test]
    fn first_fit_empty_region() -> Result {
        let b = bitmap(16, &[])?;
        assert_eq!(first_fit(&b, 1), Some(0));
        assert_eq!(first_fit(&b, 16), Some(0));
        assert_eq!(first_fit(&b, 17), None);
        Ok(())
    }

    #[test]
    fn first_fit_skips_short_holes() -> Result {
        // Free: 2, 5..8, 12..16.
        let b = bitmap(16, &[0, 1, 3, 4, 8, 9, 10, 11])?;
        assert_eq!(first_fit(&b, 1), Some(2));
        assert_eq!(first_fit(&b, 2), Some(5));
        assert_eq!(first_fit(&b, 3), Some(5));
        assert_eq!(first_fit(&b, 4), Some(12));
        assert_eq!(first_fit(&b, 5), None);
        Ok(())
    }

    #[test]
    fn first_fit_full_region() -> Result {
        let b = bitmap(4, &[0, 1, 2, 3])?;
        assert_eq!(first_fit(&b, 1), None);
        Ok(())
    }

    #[test]
    fn first_fit_at_the_end() -> Result {
        let b = bitmap(8, &[0, 1, 2, 3, 4])?;
        assert_eq!(first_fit(&b, 3), Some(5));
        assert_eq!(first_fit(&b, 4), None);
        // A huge count does not wrap.
        assert_eq!(first_fit(&b, usize::MAX), None);
        Ok(())
    }
}
