// SPDX-License-Identifier: GPL-2.0

//! Exporting dma-bufs: the `struct dma_buf_ops` vtable, generic over an
//! [`Exporter`] implemented in safe Rust.

use super::{sgtable::dir_from_raw, DeviceRef};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    dma::DataDirection,
    error::from_err_ptr,
    ffi,
    fs::file::FileDescriptorReservation,
    mm::virt::{flags as vm_flags, VmaNew},
    prelude::*,
    str::CStr,
    sync::Arc,
    ThisModule,
};

/// What a dma-buf's private data implements: the buffer side of every
/// `dma_buf_ops` callback. `Drop` of the last `Arc` is `release`.
pub(crate) trait Exporter: Send + Sync + Sized {
    /// Per-attachment state.
    type Attachment: Send + Sync;

    /// The exporter name shown in debugfs and fdinfo.
    fn exp_name(&self) -> &CStr;

    /// A device attaches.
    fn attach(&self, dev: DeviceRef) -> Result<Arc<Self::Attachment>>;

    /// A device detaches (mapped or not).
    fn detach(&self, att: &Arc<Self::Attachment>);

    /// Maps an attachment for DMA; returns its scatter-gather table, which
    /// must stay valid until `unmap` or `detach`.
    fn map(&self, att: &Self::Attachment, dir: DataDirection) -> Result<*mut bindings::sg_table>;

    /// Undoes `map`.
    fn unmap(&self, att: &Self::Attachment);

    /// `DMA_BUF_IOCTL_SYNC` start (and in-kernel CPU access).
    fn begin_cpu_access(&self, dir: DataDirection) -> Result;

    /// `DMA_BUF_IOCTL_SYNC` end.
    fn end_cpu_access(&self, dir: DataDirection) -> Result;

    /// Maps the buffer into a user address space.
    fn mmap(&self, vma: &UserMapping<'_>) -> Result;

    /// Returns the kernel virtual address of the whole buffer (refcounted).
    fn vmap(&self) -> Result<*mut ffi::c_void>;

    /// Drops one `vmap` reference.
    fn vunmap(&self);
}

/// A user mapping being created by `mmap` on a dma-buf.
///
/// Exists only inside the dma-buf `mmap` callback, where the VMA holds a
/// reference on the dma-buf's file: whatever memory the buffer owns stays
/// alive for as long as the VMA can reach it.
pub(crate) struct UserMapping<'a> {
    vma: &'a VmaNew,
}

impl UserMapping<'_> {
    /// Offset into the buffer, in pages, of the mapping's start.
    pub(crate) fn pgoff(&self) -> usize {
        // SAFETY: the VMA is valid for the callback's duration.
        unsafe { (*self.vma.as_ptr()).vm_pgoff }
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.vma.end() - self.vma.start()
    }

    /// Prepares the mapping for [`Self::insert_pfns`]: `VM_MIXEDMAP`, so
    /// that `/proc/<pid>/pagemap` can show the pfns, with `VM_IO` so that
    /// slow-path `get_user_pages` refuses them (fast-path GUP refuses the
    /// special PTEs `insert_pfns` makes), never expanded, never dumped.
    /// Nobody can pin the buffer's pages beyond its lifetime.
    pub(crate) fn set_pfn_mapping(&self) {
        self.vma.set_mixedmap();
        self.vma.set_io();
        self.vma.set_dontexpand();
        self.vma.set_dontdump();
    }

    /// Makes the mapping write-combined (for memory the kernel maps
    /// write-combined too: a no-map carveout).
    pub(crate) fn set_writecombine(&self) {
        // SAFETY: the VMA is being set up by mmap; nothing is mapped yet.
        unsafe { super::ffi_helpers::rdh_vma_set_writecombine(self.vma.as_ptr()) };
    }

    /// Maps `count` pages of RAM with `struct page`, physically contiguous
    /// from page frame `pfn`, at byte offset `offset` of the mapping, as
    /// [`Self::insert_pfns`] does. A shared writable mapping gets its PTEs
    /// young and dirty, as `vmf_insert_mixed_mkwrite()` (not exported)
    /// would make them: the first write to each page then takes no fault on
    /// CPUs that do not set those bits in hardware (Arm v8.0). Needs
    /// [`Self::set_pfn_mapping`].
    ///
    /// Only memory the buffer owns may be passed (the buffer is the only
    /// caller, with its own pfns): the VMA keeps the buffer alive.
    pub(crate) fn insert_pages(&self, offset: usize, pfn: usize, count: usize) -> Result {
        let flags = self.vma.flags();
        if flags & vm_flags::SHARED == 0 || flags & vm_flags::WRITE == 0 {
            return self.insert_pfns(offset, pfn, count);
        }
        let vma = self.vma.as_ptr();
        // SAFETY: the VMA is being set up by mmap (mmap lock held for
        // writing): its page protection is ours to change until mmap
        // returns. It is put back below, before anything else reads it.
        let saved = unsafe { (*vma).vm_page_prot };
        // SAFETY: as above; the helper only computes a value.
        unsafe { (*vma).vm_page_prot = super::ffi_helpers::rdh_pgprot_young_dirty(saved) };
        let ret = self.insert_pfns(offset, pfn, count);
        // SAFETY: as above.
        unsafe { (*vma).vm_page_prot = saved };
        ret
    }

    /// The user address `offset` bytes into the mapping, when `count` pages
    /// from there fit in it.
    fn checked_start(&self, offset: usize, count: usize) -> Result<usize> {
        let len = count.checked_mul(kernel::page::PAGE_SIZE).ok_or(EINVAL)?;
        if count == 0 || offset.checked_add(len).is_none_or(|end| end > self.len()) {
            return Err(EINVAL);
        }
        Ok(self.vma.start() + offset)
    }

    /// Maps `count` pages of physically contiguous memory from page frame
    /// `pfn` at byte offset `offset` of the mapping, as special PTEs, one
    /// `vmf_insert_mixed` each (which also does the architecture's memory
    /// type tracking, for memory mapped write-combined).
    /// Needs [`Self::set_pfn_mapping`].
    ///
    /// Only memory the buffer owns may be passed (the buffer is the only
    /// caller, with its own pfns): the VMA keeps the buffer alive.
    pub(crate) fn insert_pfns(&self, offset: usize, pfn: usize, count: usize) -> Result {
        let start = self.checked_start(offset, count)?;
        for i in 0..count {
            // SAFETY: the VMA is being set up by mmap (mmap lock held for
            // writing) and has `VM_MIXEDMAP`; the address lies inside it
            // (checked above); the pfn is the buffer's own memory, kept
            // alive by the VMA's file reference.
            let ret = unsafe {
                bindings::vmf_insert_mixed(
                    self.vma.as_ptr(),
                    (start + i * kernel::page::PAGE_SIZE) as ffi::c_ulong,
                    (pfn + i) as ffi::c_ulong,
                )
            };
            // VM_FAULT_NOPAGE: mapped.
            match ret {
                bindings::vm_fault_reason_VM_FAULT_NOPAGE => {}
                bindings::vm_fault_reason_VM_FAULT_OOM => return Err(ENOMEM),
                _ => return Err(EFAULT),
            }
        }
        Ok(())
    }
}

/// A reference on an exported dma-buf, not yet given to userspace.
///
/// # Invariants
///
/// `ptr` is a dma-buf on which this object owns one file reference.
pub(crate) struct DmaBuf {
    ptr: NonNull<bindings::dma_buf>,
}

impl DmaBuf {
    /// Exports `data` as a dma-buf of `size` bytes whose file gets
    /// `fd_flags`. `module` owns the dma-buf: it cannot be unloaded while
    /// the buffer lives.
    pub(crate) fn export<T: Exporter>(
        data: Arc<T>,
        size: usize,
        fd_flags: u32,
        module: &'static ThisModule,
    ) -> Result<Self> {
        let name = data.exp_name().as_char_ptr();
        let priv_ = Arc::into_raw(data);
        let info = bindings::dma_buf_export_info {
            exp_name: name,
            owner: module.as_ptr(),
            ops: &VTable::<T>::OPS,
            size,
            flags: fd_flags as ffi::c_int,
            resv: core::ptr::null_mut(),
            priv_: priv_.cast_mut().cast(),
        };
        // SAFETY: `info` is fully initialized; `exp_name` lives in `data`,
        // which the dma-buf owns until release; the ops table is static.
        let ptr = unsafe { bindings::dma_buf_export(&info) };
        match from_err_ptr(ptr) {
            // INVARIANT: a successful export returns one file reference.
            Ok(ptr) => Ok(Self {
                ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            }),
            Err(e) => {
                // SAFETY: the export failed, so the core never took `priv_`;
                // it is still the reference `into_raw` gave us.
                drop(unsafe { Arc::from_raw(priv_) });
                Err(e)
            }
        }
    }

    /// Installs the dma-buf at the reserved fd, handing our reference to
    /// the fd table.
    pub(crate) fn install(self, fd: FileDescriptorReservation) {
        // SAFETY: `fd` was reserved by this task and is unused; our file
        // reference moves into the fd table.
        unsafe { bindings::dma_buf_fd_install(self.ptr.as_ptr(), fd.reserved_fd() as ffi::c_int) };
        core::mem::forget(fd);
        core::mem::forget(self);
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant).
        unsafe { bindings::dma_buf_put(self.ptr.as_ptr()) };
    }
}

/// The `dma_buf_ops` of exporter `T`.
struct VTable<T>(PhantomData<T>);

impl<T: Exporter> VTable<T> {
    const OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
        attach: Some(Self::attach),
        detach: Some(Self::detach),
        pin: None,
        unpin: None,
        map_dma_buf: Some(Self::map_dma_buf),
        unmap_dma_buf: Some(Self::unmap_dma_buf),
        release: Some(Self::release),
        begin_cpu_access: Some(Self::begin_cpu_access),
        end_cpu_access: Some(Self::end_cpu_access),
        mmap: Some(Self::mmap),
        vmap: Some(Self::vmap),
        vunmap: Some(Self::vunmap),
    };

    /// # Safety
    ///
    /// `dmabuf` must be a live dma-buf exported by [`DmaBuf::export::<T>`].
    unsafe fn exporter<'a>(dmabuf: *mut bindings::dma_buf) -> &'a T {
        // SAFETY: `priv` is the `Arc<T>` reference given in `export`,
        // released only in `release`, after every other callback.
        unsafe { &*(*dmabuf).priv_.cast::<T>() }
    }

    /// # Safety
    ///
    /// `att` must be an attachment that `attach` below accepted and
    /// `detach` has not yet seen.
    unsafe fn attachment<'a>(att: *mut bindings::dma_buf_attachment) -> &'a T::Attachment {
        // SAFETY: `priv` is the `Arc<T::Attachment>` set in `attach`.
        unsafe { &*(*att).priv_.cast::<T::Attachment>() }
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn attach(
        dmabuf: *mut bindings::dma_buf,
        att: *mut bindings::dma_buf_attachment,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exporter(dmabuf) };
        // SAFETY: the attachment's device is live for the attachment.
        let Some(dev) = (unsafe { DeviceRef::get((*att).dev) }) else {
            return ENODEV.to_errno();
        };
        match this.attach(dev) {
            Ok(a) => {
                // SAFETY: the core hands us the new attachment to fill in.
                unsafe { (*att).priv_ = Arc::into_raw(a).cast_mut().cast() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn detach(
        dmabuf: *mut bindings::dma_buf,
        att: *mut bindings::dma_buf_attachment,
    ) {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exporter(dmabuf) };
        // SAFETY: `priv` holds the reference `attach` made; detach is the
        // last callback for this attachment, so we take it back.
        let a = unsafe { Arc::from_raw((*att).priv_.cast::<T::Attachment>()) };
        this.detach(&a);
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn map_dma_buf(
        att: *mut bindings::dma_buf_attachment,
        dir: bindings::dma_data_direction,
    ) -> *mut bindings::sg_table {
        // SAFETY: called by the core on a live attachment of our dma-buf.
        let (this, a) = unsafe { (Self::exporter((*att).dmabuf), Self::attachment(att)) };
        match this.map(a, dir_from_raw(dir)) {
            Ok(sgt) => sgt,
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn unmap_dma_buf(
        att: *mut bindings::dma_buf_attachment,
        _sgt: *mut bindings::sg_table,
        _dir: bindings::dma_data_direction,
    ) {
        // SAFETY: called by the core on a live attachment of our dma-buf.
        let (this, a) = unsafe { (Self::exporter((*att).dmabuf), Self::attachment(att)) };
        this.unmap(a);
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn release(dmabuf: *mut bindings::dma_buf) {
        // SAFETY: the last callback: take back the reference `export` gave.
        drop(unsafe { Arc::from_raw((*dmabuf).priv_.cast::<T>()) });
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn begin_cpu_access(
        dmabuf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exporter(dmabuf) };
        match this.begin_cpu_access(dir_from_raw(dir)) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn end_cpu_access(
        dmabuf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exporter(dmabuf) };
        match this.end_cpu_access(dir_from_raw(dir)) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn mmap(
        dmabuf: *mut bindings::dma_buf,
        vma: *mut bindings::vm_area_struct,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exporter(dmabuf) };
        // SAFETY: the core calls `mmap` from the file's mmap hook, on a VMA
        // under initial set-up whose `vm_file` is this dma-buf's file.
        let vma = unsafe { VmaNew::from_raw(vma) };
        match this.mmap(&UserMapping { vma }) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn vmap(
        dmabuf: *mut bindings::dma_buf,
        map: *mut bindings::iosys_map,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exporter(dmabuf) };
        match this.vmap() {
            Ok(vaddr) => {
                // SAFETY: `map` is the caller's map to fill in
                // (`iosys_map_set_vaddr`).
                unsafe {
                    (*map).__bindgen_anon_1.vaddr = vaddr;
                    (*map).is_iomem = false;
                }
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called only by the dma-buf core, through [`Self::OPS`], on a dma-buf
    /// exported by [`DmaBuf::export::<T>`] (and its attachments), between
    /// export and release.
    unsafe extern "C" fn vunmap(dmabuf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exporter(dmabuf) };
        this.vunmap();
        // SAFETY: `map` is the caller's map (`iosys_map_clear`).
        unsafe {
            (*map).__bindgen_anon_1.vaddr = core::ptr::null_mut();
            (*map).is_iomem = false;
        }
    }
}
