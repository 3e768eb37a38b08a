// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the kernel C APIs that `rust/kernel` lacks in 7.3.
//!
//! This is the only place in the module with `unsafe` code. Each type here
//! states its invariants; each `unsafe` block says why it holds. Everything
//! above this layer (registry, buffer, heaps) is safe Rust.
//!
//! Files are named after the kernel API they wrap. Files, each using only
//! those before it (and this one): `slab`, `device`, `cgroup`, `cma`,
//! `reserved_mem`, `pages`, `fs`, `cache`, `shrinker`, `workqueue`, `vmalloc`,
//! `sgtable`, `vma`, `dmabuf`, `chrdev`, `dma_heap`, `kobject`, `kapi`.

pub(crate) mod cache;
pub(crate) mod cgroup;
pub(crate) mod chrdev;
#[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
pub(crate) mod cma;
pub(crate) mod device;
#[cfg(CONFIG_DMABUF_HEAPS)]
pub(crate) mod dma_heap;
pub(crate) mod dmabuf;
pub(crate) mod fs;
pub(crate) mod kapi;
pub(crate) mod kobject;
pub(crate) mod pages;
pub(crate) mod reserved_mem;
pub(crate) mod sgtable;
pub(crate) mod shrinker;
pub(crate) mod slab;
pub(crate) mod vma;
pub(crate) mod vmalloc;
pub(crate) mod workqueue;

use kernel::{
    bindings, ffi,
    str::{CStr, CStrExt},
};

/// Declarations of `helpers.c`: thin wrappers for inline kernel functions.
mod ffi_helpers {
    use kernel::{bindings, ffi};

    /// `struct dmem_cgroup_region`, opaque (no bindings).
    #[repr(C)]
    pub(super) struct DmemRegion {
        _opaque: [u8; 0],
    }

    /// `struct dmem_cgroup_pool_state`, opaque (no bindings).
    #[repr(C)]
    pub(super) struct DmemPool {
        _opaque: [u8; 0],
    }

    // The kernel's structs contain zero-sized lockdep fields that rustc
    // flags; these are only ever passed by pointer, as in `bindings`.
    #[allow(improper_ctypes)]
    extern "C" {
        pub(super) fn rdh_class_name() -> *const ffi::c_char;
        pub(super) fn rdh_mode() -> *const ffi::c_char;
        #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
        pub(super) fn rdh_cma_pages(cma: *const super::cma::Cma) -> ffi::c_ulong;
        #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
        pub(super) fn rdh_cma_span(
            cma: *const super::cma::Cma,
            base: *mut bindings::phys_addr_t,
            end: *mut bindings::phys_addr_t,
        );
        pub(super) fn rdh_warn_ratelimited(msg: *const ffi::c_char);
        pub(super) fn rdh_dmem_register(name: *const ffi::c_char, size: u64) -> *mut DmemRegion;
        pub(super) fn rdh_dmem_unregister(region: *mut DmemRegion);
        pub(super) fn rdh_dmem_try_charge(
            region: *mut DmemRegion,
            size: u64,
            pool: *mut *mut DmemPool,
            css: *mut *mut bindings::cgroup_subsys_state,
        ) -> ffi::c_int;
        pub(super) fn rdh_dmem_uncharge(
            pool: *mut DmemPool,
            size: u64,
            css: *mut bindings::cgroup_subsys_state,
        );
        pub(super) fn rdh_page_memcg_css(
            page: *mut bindings::page,
        ) -> *mut bindings::cgroup_subsys_state;
        pub(super) fn rdh_css_put(css: *mut bindings::cgroup_subsys_state);
        pub(super) fn rdh_css_path(
            css: *mut bindings::cgroup_subsys_state,
            buf: *mut ffi::c_char,
            len: usize,
        ) -> ffi::c_int;
        pub(super) fn rdh_mem_accounting() -> bool;
        pub(super) fn rdh_pool_max_kb() -> ffi::c_ulong;
        pub(super) fn rdh_pool_zeroing() -> bool;
        pub(super) fn rdh_mod_reclaimable(page: *mut bindings::page, nr: ffi::c_long);
        pub(super) fn rdh_memcg_charges_current() -> bool;
        pub(super) fn rdh_totalram_pages() -> ffi::c_ulong;
        pub(super) fn rdh_fatal_signal_pending() -> bool;
        pub(super) fn rdh_page_highmem(page: *mut bindings::page) -> bool;
        pub(super) fn rdh_clear_highpage(page: *mut bindings::page);
        pub(super) fn rdh_clear_pages(page: *mut bindings::page, npages: ffi::c_uint);
        pub(super) fn rdh_page_to_pfn(page: *mut bindings::page) -> ffi::c_ulong;
        pub(super) fn rdh_pfn_to_page(pfn: ffi::c_ulong) -> *mut bindings::page;
        pub(super) fn rdh_pfn_valid(pfn: ffi::c_ulong) -> bool;
        pub(super) fn rdh_phys_to_dma(
            dev: *mut bindings::device,
            phys: bindings::phys_addr_t,
        ) -> bindings::dma_addr_t;
        #[cfg(CONFIG_OF_RESERVED_MEM)]
        pub(super) fn rdh_of_node_put(np: *mut bindings::device_node);
        #[cfg(CONFIG_OF_RESERVED_MEM)]
        pub(super) fn rdh_reserved_mem_lookup(
            np: *mut bindings::device_node,
            base: *mut bindings::phys_addr_t,
            size: *mut bindings::phys_addr_t,
        ) -> ffi::c_int;
        pub(super) fn rdh_dma_mapping_error(
            dev: *mut bindings::device,
            addr: bindings::dma_addr_t,
        ) -> ffi::c_int;
        pub(super) fn rdh_dma_coerce_mask_and_coherent(
            dev: *mut bindings::device,
            mask: u64,
        ) -> ffi::c_int;
        pub(super) fn rdh_sg_set_dma(
            sg: *mut bindings::scatterlist,
            addr: bindings::dma_addr_t,
            len: ffi::c_uint,
        );
        pub(super) fn rdh_pgprot_writecombine(prot: bindings::pgprot_t) -> bindings::pgprot_t;
        pub(super) fn rdh_pfn_pte(pfn: ffi::c_ulong, prot: bindings::pgprot_t) -> bindings::pte_t;
        pub(super) fn rdh_pte_mkyoung(pte: bindings::pte_t) -> bindings::pte_t;
        pub(super) fn rdh_pte_mkdirty(pte: bindings::pte_t) -> bindings::pte_t;
        pub(super) fn rdh_pte_pgprot(pte: bindings::pte_t) -> bindings::pgprot_t;
        pub(super) fn rdh_carveout_param() -> *const ffi::c_char;
        pub(super) fn rdh_vmap(
            pages: *mut *mut bindings::page,
            count: ffi::c_uint,
            wc: bool,
        ) -> *mut ffi::c_void;
        pub(super) fn rdh_vunmap(addr: *const ffi::c_void);
        pub(super) fn rdh_flush_kernel_vmap_range(addr: *mut ffi::c_void, size: ffi::c_int);
        pub(super) fn rdh_invalidate_kernel_vmap_range(addr: *mut ffi::c_void, size: ffi::c_int);
        pub(super) fn rdh_file_writable(file: *const bindings::file) -> bool;
        pub(super) fn rdh_dev_translates(dev: *mut bindings::device) -> bool;
        pub(super) fn rdh_dev_force_bounce(dev: *mut bindings::device) -> bool;
        pub(super) fn rdh_cc_guest() -> bool;
        pub(super) fn rdh_cond_resched();
        pub(super) fn rdh_current_memcg() -> *mut bindings::mem_cgroup;
        pub(super) fn rdh_pidfd_charge(
            fd: ffi::c_int,
            dmem: bool,
            memcg: *mut *mut bindings::mem_cgroup,
            tgid: *mut bindings::pid_t,
            comm: *mut ffi::c_char,
        ) -> ffi::c_int;
        pub(super) fn rdh_memcg_put(memcg: *mut bindings::mem_cgroup);
        pub(super) fn rdh_memcg_unscope(
            old: *mut bindings::mem_cgroup,
            memcg: *mut bindings::mem_cgroup,
        );
        pub(super) fn rdh_set_active_memcg(
            memcg: *mut bindings::mem_cgroup,
        ) -> *mut bindings::mem_cgroup;
        pub(super) fn rdh_memcg_margin(memcg: *mut bindings::mem_cgroup) -> ffi::c_ulong;
        pub(super) fn rdh_request_mem_region(
            base: bindings::phys_addr_t,
            size: u64,
            name: *const ffi::c_char,
        ) -> ffi::c_int;
        pub(super) fn rdh_release_mem_region(base: bindings::phys_addr_t, size: u64);
        pub(super) fn rdh_device_lock(dev: *mut bindings::device);
        pub(super) fn rdh_device_unlock(dev: *mut bindings::device);
        pub(super) fn rdh_file_for_read(
            file: *mut bindings::file,
            size: *mut u64,
            direct: *mut bool,
        ) -> ffi::c_int;
        pub(super) fn rdh_read_bvec(
            file: *mut bindings::file,
            iocb: *mut bindings::kiocb,
            complete: Option<unsafe extern "C" fn(*mut bindings::kiocb, ffi::c_long)>,
            bv: *mut bindings::bio_vec,
            nr: ffi::c_ulong,
            skip: usize,
            count: usize,
            pos: i64,
            direct: bool,
        ) -> isize;
        pub(super) fn rdh_memzero_page(page: *mut bindings::page, offset: usize, len: usize);
    }
}

/// Memory that may still hold its previous user's bytes (pages from CMA, a
/// reserved region or a pool's freed blocks): nothing can be made of it that
/// a buffer accepts until [`Dirty::zero`] (on [`pages::PageRun`] and
/// [`reserved_mem::Chunk`]) turns it into [`Zeroed`] memory.
pub(crate) struct Dirty<T>(T);

impl<T> Dirty<T> {
    /// The memory, still not zeroed: to free it or to keep it among other
    /// memory not zeroed (a pool's freed blocks).
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T> core::ops::Deref for Dirty<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Memory every byte of which is zero since its previous user freed it (or
/// that nobody used): made only by this layer, by zeroing [`Dirty`] memory
/// or by an allocator that zeroes (`__GFP_ZERO`, a pool's cleaned blocks).
/// The only form in which heaps can give memory to a buffer.
///
/// # Invariants
///
/// Every byte of the wrapped memory is zero and no user has seen it since.
pub(crate) struct Zeroed<T>(T);

impl<T> Zeroed<T> {
    /// The memory, no longer promised zeroed (for a buffer to own).
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.0
    }

    /// Promises `value` is zeroed.
    ///
    /// # Safety
    ///
    /// Every byte of `value`'s memory is zero and no user has seen it since
    /// it was zeroed.
    #[inline]
    unsafe fn new_unchecked(value: T) -> Self {
        // INVARIANT: the caller's promise.
        Self(value)
    }
}

impl<T> core::ops::Deref for Zeroed<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Memory that holds nothing of a previous user: zeroed memory into which
/// bytes of a file were read, for a caller that may read that file (made
/// only by [`fs::Source::load`]). Past what was read, still zero.
///
/// # Invariants
///
/// Every byte of the wrapped memory is zero or a byte read from a file
/// open for reading by the task the memory is for, and no other user has
/// seen it since it was zeroed.
pub(crate) struct Loaded<T>(T);

impl<T> Loaded<T> {
    /// The memory (for a buffer to own).
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T> core::ops::Deref for Loaded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A kernel log warning, rate-limited (`pr_warn_ratelimited`), of at most
/// 191 bytes (longer ones are cut).
pub(crate) fn warn_ratelimited(args: core::fmt::Arguments<'_>) {
    struct Buf {
        b: [u8; 192],
        n: usize,
    }
    impl core::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &c in s.as_bytes() {
                if self.n + 1 < self.b.len() && c != 0 {
                    self.b[self.n] = c;
                    self.n += 1;
                }
            }
            Ok(())
        }
    }
    let mut buf = Buf { b: [0; 192], n: 0 };
    let _ = core::fmt::write(&mut buf, args);
    // SAFETY: `buf.b` is NUL-terminated (the writer leaves the last byte
    // 0 and never copies a NUL).
    unsafe { ffi_helpers::rdh_warn_ratelimited(buf.b.as_ptr().cast()) };
}

/// Whether this kernel runs as a confidential-computing guest whose DMA
/// all bounces through shared memory (`CC_ATTR_MEM_ENCRYPT`).
pub(crate) fn cc_guest() -> bool {
    // SAFETY: a query of platform attributes, set at boot.
    unsafe { ffi_helpers::rdh_cc_guest() }
}

/// Gives the CPU away if a reschedule is due (`cond_resched()`); process
/// context.
pub(crate) fn cond_resched() {
    // SAFETY: called only from process context, where sleeping is allowed.
    unsafe { ffi_helpers::rdh_cond_resched() }
}

/// The number of pages of RAM the kernel manages (`totalram_pages()`).
pub(crate) fn totalram_pages() -> usize {
    // SAFETY: `rdh_totalram_pages` only reads an atomic counter; it has no
    // preconditions and may be called from any context.
    unsafe { ffi_helpers::rdh_totalram_pages() as usize }
}

/// Whether the current task has a fatal signal (SIGKILL) pending.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: reads `current`'s signal state; valid in any process context.
    unsafe { ffi_helpers::rdh_fatal_signal_pending() }
}

/// The `class_name` module parameter (declared in `helpers.c`).
pub(crate) fn class_name_param() -> &'static CStr {
    // SAFETY: `rdh_class_name` returns the module parameter's static,
    // NUL-terminated buffer. The parameter is read-only (0444) once the
    // module is loaded, so the string neither changes nor goes away while
    // the module is alive, which covers every user of this `'static`.
    unsafe { CStr::from_char_ptr(ffi_helpers::rdh_class_name()) }
}

/// The `mode` module parameter (declared in `helpers.c`).
pub(crate) fn mode_param() -> &'static CStr {
    // SAFETY: as for `class_name_param`: a static, NUL-terminated,
    // read-only (0444) parameter buffer.
    unsafe { CStr::from_char_ptr(ffi_helpers::rdh_mode()) }
}

/// The `mem_accounting` module parameter (declared in `helpers.c`, 0444
/// as upstream's, so `/sys/module/<module>/parameters/` shows it).
pub(crate) fn mem_accounting_param() -> bool {
    // SAFETY: reads a read-only parameter; no preconditions.
    unsafe { ffi_helpers::rdh_mem_accounting() }
}

/// The `pool_max_kb` module parameter (declared in `helpers.c`, 0444): the
/// most KiB the page pool keeps, 0 for the default.
pub(crate) fn pool_max_kb_param() -> usize {
    // SAFETY: reads a read-only parameter; no preconditions.
    unsafe { ffi_helpers::rdh_pool_max_kb() as usize }
}

/// The `pool_zeroing` module parameter (declared in `helpers.c`, 0644,
/// read at each use): whether the pool's worker zeroes freed blocks.
pub(crate) fn pool_zeroing_param() -> bool {
    // SAFETY: reads a parameter with `READ_ONCE`; no preconditions.
    unsafe { ffi_helpers::rdh_pool_zeroing() }
}

/// Whether pages allocated now with `__GFP_ACCOUNT` would be charged to a
/// memory cgroup (the current task is in one other than the root, and
/// kernel memory accounting is on).
pub(crate) fn memcg_charges_current() -> bool {
    // SAFETY: reads `current`'s memory cgroup under RCU; process context.
    unsafe { ffi_helpers::rdh_memcg_charges_current() }
}

/// A DMA direction from C as the Rust enum: `EINVAL` for `DMA_NONE` and
/// any value that is no direction (mapping or syncing with either would
/// trip the DMA API's `BUG_ON(!valid_dma_direction(dir))`).
fn dma_dir_from_raw(
    dir: bindings::dma_data_direction,
) -> kernel::error::Result<kernel::dma::DataDirection> {
    use bindings::dma_data_direction as raw;
    use kernel::dma::DataDirection;
    use kernel::error::code::EINVAL;
    match dir {
        raw::DMA_BIDIRECTIONAL => Ok(DataDirection::Bidirectional),
        raw::DMA_TO_DEVICE => Ok(DataDirection::ToDevice),
        raw::DMA_FROM_DEVICE => Ok(DataDirection::FromDevice),
        _ => Err(EINVAL),
    }
}

/// `size` as the C `int` the cache-maintenance helpers take, saturated.
fn c_int_len(size: usize) -> ffi::c_int {
    ffi::c_int::try_from(size).unwrap_or(ffi::c_int::MAX)
}

/// This module's `THIS_MODULE` (the owner of its files, nodes and
/// dma-bufs), as C code names it in every file.
const fn this_module() -> &'static kernel::ThisModule {
    kernel::module::this_module::<crate::LocalModule>()
}

/// A pointer a kernel function returned that may encode an error
/// (`IS_ERR()`/`PTR_ERR()`, without a call into the kernel for each):
/// the pointer if valid, its error otherwise (`ENOMEM` for NULL). The
/// kernel crate's `from_err_ptr` is not `#[inline]` and calls two C
/// helpers: this one serves the allocation path (`dma_buf_export`) only;
/// elsewhere the module uses the kernel crate's.
fn err_ptr<T>(ptr: *mut T) -> kernel::error::Result<core::ptr::NonNull<T>> {
    let addr = ptr as usize;
    if addr >= (-(bindings::MAX_ERRNO as isize)) as usize {
        // A value in [-MAX_ERRNO, -1]: an errno.
        return Err(kernel::error::Error::from_errno(
            addr as isize as ffi::c_int,
        ));
    }
    core::ptr::NonNull::new(ptr).ok_or(kernel::error::code::ENOMEM)
}

/// A kernel function's `int` result: `Ok` unless negative (an errno).
/// As the kernel crate's `to_result`, inlined: that one is a call into
/// the kernel crate, on every DMA map. For the map path (table and
/// mapping) only; elsewhere the module uses `to_result`.
#[inline]
fn errno(ret: ffi::c_int) -> kernel::error::Result {
    if ret < 0 {
        return Err(kernel::error::Error::from_errno(ret));
    }
    Ok(())
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kernel::macros::kunit_tests(rust_dma_heap_dma_dir)]
mod tests {
    use super::*;
    use bindings::dma_data_direction as raw;
    use kernel::dma::DataDirection;
    use kernel::error::code::EINVAL;

    #[test]
    fn directions_map_one_to_one() {
        assert!(dma_dir_from_raw(raw::DMA_BIDIRECTIONAL) == Ok(DataDirection::Bidirectional));
        assert!(dma_dir_from_raw(raw::DMA_TO_DEVICE) == Ok(DataDirection::ToDevice));
        assert!(dma_dir_from_raw(raw::DMA_FROM_DEVICE) == Ok(DataDirection::FromDevice));
    }

    #[test]
    fn no_direction_is_einval() {
        assert!(dma_dir_from_raw(raw::DMA_NONE) == Err(EINVAL));
        // A value C could pass that is no direction.
        assert!(dma_dir_from_raw(raw(7)) == Err(EINVAL));
    }
}
