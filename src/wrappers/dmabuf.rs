// SPDX-License-Identifier: GPL-2.0

//! Exporting dma-bufs: the `struct dma_buf_ops` vtable over an [`Exporter`]
//! implemented in safe Rust.
//!
//! This layer owns what the dma-buf core keeps pointers to: each
//! attachment's scatter-gather table (built at its first map, valid until
//! detach) and the kernel mapping of `vmap` (valid until the last
//! `vunmap`). The exporter only says how to describe and map its memory,
//! with types that can only be made from memory it owns.

use super::{
    device::Devices, dma_dir_from_raw, pages::PageRuns, reserved_mem::Chunk, sgtable::SgTable,
    vma::UserMapping, vmalloc::KernelMap,
};
use core::{cell::UnsafeCell, fmt, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    dma::DataDirection,
    error::from_err_ptr,
    ffi,
    fs::file::FileDescriptorReservation,
    list::{List, ListArc, ListLinks},
    mm::virt::VmaNew,
    new_mutex,
    prelude::*,
    str::{CStr, CStrExt, CString},
    sync::{Arc, Mutex},
};

/// A buffer's memory, borrowed from its exporter.
#[derive(Clone, Copy)]
pub(crate) enum MemoryRef<'a> {
    /// Runs of pages with `struct page`.
    Pages(&'a PageRuns),
    /// A chunk of a reserved region without `struct page`.
    Chunk(&'a Chunk),
}

/// What a dma-buf's private data implements: it owns the buffer's memory.
/// Dropping it (with the last reference) is `release`.
pub(crate) trait Exporter: Send + Sync + Sized + 'static {
    /// The buffer's memory, `None` while it has none yet (see
    /// [`Self::populate`]). Once `Some`, always the same memory: this
    /// layer builds every table and mapping from it and drops them all
    /// before the exporter.
    fn memory(&self) -> Option<MemoryRef<'_>>;

    /// Gives a buffer without memory its memory, chosen for `devices`: the
    /// devices attached at its first DMA map, none when the CPU uses it
    /// first (mmap, vmap, CPU access). Called under the buffer's lock, only
    /// while [`Self::memory`] is `None`; afterwards it must be `Some` (or
    /// this fail). For buffers that have memory from the start: never.
    fn populate(&self, _devices: &Devices<'_>) -> Result {
        Err(EINVAL)
    }

    /// Whether each device's first map checks that the memory suits it
    /// (contiguous if it needs that, reachable under its DMA mask): for
    /// memory chosen for other devices than the one mapping.
    fn checks_devices(&self) -> bool {
        false
    }
}

/// One device's attachment.
#[pin_data]
struct Attachment {
    /// The importer's device: live until detach (the importer's contract
    /// with the dma-buf core; upstream's heaps keep it the same way).
    dev: NonNull<bindings::device>,
    /// Built at the first map, kept until detach: the dma-buf core holds a
    /// pointer to it while mapped.
    #[pin]
    table: Mutex<Option<SgTable>>,
    /// In its buffer's list of attachments.
    #[pin]
    links: ListLinks,
}

// SAFETY: the device pointer is only passed to the DMA API, which may be
// called from any thread; the table is behind its mutex.
unsafe impl Send for Attachment {}
// SAFETY: see `Send`.
unsafe impl Sync for Attachment {}

kernel::list::impl_list_arc_safe! {
    impl ListArcSafe<0> for Attachment { untracked; }
}
kernel::list::impl_list_item! {
    impl ListItem<0> for Attachment { using ListLinks { self.links }; }
}

/// The mutable state of an exported buffer.
///
/// # Invariants
///
/// `vmaps` counts vmaps not yet vunmapped; `kmap` is `Some` exactly while
/// it is non-zero.
struct State {
    /// Every live attachment (intrusive: attaching allocates no list
    /// node); CPU-access syncs visit the mapped ones.
    attachments: List<Attachment>,
    vmaps: usize,
    kmap: Option<KernelMap>,
}

/// A dma-buf's private data: the exporter and what this layer keeps for it.
///
/// # Invariants
///
/// Once exported, it is owned by `exports`' list (and on no other) until
/// `release` takes it off, with `published` holding its dma-buf and that
/// dma-buf's inode number; the dma-buf's `priv` points to it meanwhile.
#[pin_data]
struct Exported<T: Exporter> {
    data: T,
    /// The dma-buf's size: every table and kernel mapping handed out
    /// covers exactly this many bytes (importers rely on it).
    size: usize,
    #[pin]
    state: Mutex<State>,
    exports: Arc<Exports<T>>,
    /// Set at export, under the ledger's lock, before the buffer goes on
    /// the list; read only under that lock.
    published: UnsafeCell<Published>,
    #[pin]
    links: ListLinks,
}

kernel::list::impl_list_arc_safe! {
    impl{T: Exporter} ListArcSafe<0> for Exported<T> { untracked; }
}
kernel::list::impl_list_item! {
    impl{T: Exporter} ListItem<0> for Exported<T> { using ListLinks { self.links }; }
}

/// What a buffer's ledger knows of its dma-buf.
struct Published {
    dmabuf: *mut bindings::dma_buf,
    ino: u64,
}

// SAFETY: `published` is only touched under the ledger's lock (see its
// field); everything else is `Send + Sync` or the exporter's (`T: Send +
// Sync`).
unsafe impl<T: Exporter> Send for Exported<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Exporter> Sync for Exported<T> {}

/// The live dma-bufs of one source (a heap), and their totals: export
/// adds a buffer, release removes it, under one lock (no atomic counter
/// on the hot path).
#[pin_data]
pub(crate) struct Exports<T: Exporter> {
    /// The exporter name of every buffer (the dma-buf core keeps a
    /// pointer to it: each buffer holds its `Exports`).
    name: CString,
    #[pin]
    ledger: Mutex<Ledger<T>>,
}

/// The list and totals of an [`Exports`].
///
/// # Invariants
///
/// `count` and `used` are the number and total size of the buffers on
/// `list`; `peak >= used`.
struct Ledger<T: Exporter> {
    list: List<Exported<T>>,
    count: u64,
    used: u64,
    peak: u64,
}

/// What the dma-buf side knows of a live buffer, for reports.
pub(crate) struct Info<'a> {
    /// The inode number of the dma-buf's file (as in `bufinfo`).
    pub(crate) ino: u64,
    /// Devices attached.
    pub(crate) attachments: usize,
    /// Kernel mappings (`vmap`s not yet undone).
    pub(crate) vmaps: usize,
    /// The name userspace gave it (`DMA_BUF_SET_NAME`), if any.
    pub(crate) name: Option<&'a str>,
}

/// `DMA_BUF_NAME_LEN`.
const NAME_LEN: usize = 32;

impl<T: Exporter> Exports<T> {
    /// No buffer yet; the buffers' exporter name will be `name`.
    pub(crate) fn new(name: &CStr) -> Result<Arc<Self>> {
        let name = CString::try_from(name)?;
        Arc::pin_init(
            pin_init!(Self {
                name,
                ledger <- new_mutex!(Ledger {
                    list: List::new(),
                    count: 0,
                    used: 0,
                    peak: 0,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// The buffers' exporter name.
    pub(crate) fn name(&self) -> &CStr {
        &self.name
    }

    /// Live buffers.
    pub(crate) fn count(&self) -> u64 {
        self.ledger.lock().count
    }

    /// Bytes in live buffers.
    pub(crate) fn used(&self) -> u64 {
        self.ledger.lock().used
    }

    /// The most bytes live at once since creation or the last reset.
    pub(crate) fn peak(&self) -> u64 {
        self.ledger.lock().peak
    }

    /// Starts the high-water mark again from what is live now.
    pub(crate) fn reset_peak(&self) {
        let mut ledger = self.ledger.lock();
        ledger.peak = ledger.used;
    }

    /// Calls `f` on every live buffer, in export order, until it fails.
    /// Exports and releases wait meanwhile: `f` only formats.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T, &Info<'_>) -> fmt::Result) -> fmt::Result {
        let ledger = self.ledger.lock();
        for e in ledger.list.iter() {
            let (attachments, vmaps) = {
                let state = e.state.lock();
                (state.attachments.iter().count(), state.vmaps)
            };
            let mut name = [0u8; NAME_LEN];
            // SAFETY: read under the ledger's lock, which we hold.
            let Published { dmabuf, ino } = unsafe { &*e.published.get() };
            let (dmabuf, ino) = (*dmabuf, *ino);
            // SAFETY: on the list, the dma-buf is live (type invariant of
            // `Exported`: `release` takes it off under this lock first);
            // its name is read under its `name_lock`, as the core does.
            unsafe {
                bindings::spin_lock(&raw mut (*dmabuf).name_lock);
                let src = (*dmabuf).name;
                if !src.is_null() {
                    let s = CStr::from_char_ptr(src).to_bytes();
                    let n = s.len().min(NAME_LEN);
                    name[..n].copy_from_slice(&s[..n]);
                }
                bindings::spin_unlock(&raw mut (*dmabuf).name_lock);
            }
            let len = name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
            let info = Info {
                ino,
                attachments,
                vmaps,
                name: match len {
                    0 => None,
                    _ => Some(core::str::from_utf8(&name[..len]).unwrap_or("?")),
                },
            };
            f(&e.data, &info)?;
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
    /// `fd_flags`. This module owns the dma-buf: it cannot be unloaded
    /// while the buffer lives.
    pub(crate) fn export<T: Exporter>(
        exports: &Arc<Exports<T>>,
        data: T,
        size: usize,
        fd_flags: u32,
    ) -> Result<Self> {
        let data = ListArc::pin_init::<Error>(
            try_pin_init!(Exported {
                state <- new_mutex!(State {
                    attachments: List::new(),
                    vmaps: 0,
                    kmap: None,
                }),
                data,
                size,
                exports: exports.clone(),
                published: UnsafeCell::new(Published {
                    dmabuf: core::ptr::null_mut(),
                    ino: 0,
                }),
                links <- ListLinks::new(),
            }),
            GFP_KERNEL,
        )?;
        let name = exports.name.as_char_ptr();
        // Owned by `data` until it is on the list, by the list afterwards.
        let priv_: *const Exported<T> = &*data;
        let info = bindings::dma_buf_export_info {
            exp_name: name,
            owner: super::this_module().as_ptr(),
            ops: &VTable::<T>::OPS,
            size,
            flags: fd_flags as ffi::c_int,
            resv: core::ptr::null_mut(),
            priv_: priv_.cast_mut().cast(),
        };
        // SAFETY: `info` is fully initialized; `exp_name` lives in
        // `exports`, which `data` holds and the dma-buf owns until release;
        // the ops table is static.
        let ptr = unsafe { bindings::dma_buf_export(&info) };
        match from_err_ptr(ptr) {
            // INVARIANT: a successful export returns one file reference.
            Ok(ptr) => {
                let this = Self {
                    ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
                };
                // SAFETY: we hold a file reference on the new dma-buf, so
                // its file and inode are live.
                let ino = unsafe { (*(*(*ptr).file).f_inode).i_ino };
                let mut ledger = exports.ledger.lock();
                // SAFETY: under the ledger's lock.
                unsafe { *data.published.get() = Published { dmabuf: ptr, ino } };
                // INVARIANT: counted and on its list, with its dma-buf, until
                // release.
                ledger.count += 1;
                ledger.used += size as u64;
                ledger.peak = ledger.peak.max(ledger.used);
                ledger.list.push_back(data);
                Ok(this)
            }
            // The core never took `priv_`; dropping `data` frees it.
            Err(e) => Err(e),
        }
    }

    /// Hands our reference to a C caller (the in-kernel API).
    pub(super) fn into_raw(self) -> *mut bindings::dma_buf {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
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

impl<T: Exporter> Exported<T> {
    /// The buffer's memory; if it has none yet, chosen now (under the
    /// buffer's lock, `state`) for the attached devices (`dma`) or for the
    /// CPU.
    fn choose<'s>(&'s self, state: &State, dma: bool) -> Result<MemoryRef<'s>> {
        if let Some(memory) = self.data.memory() {
            return Ok(memory);
        }
        let mut devices = Devices::none();
        if dma {
            for a in state.attachments.iter() {
                // SAFETY: attached, so live until detach, which takes the
                // lock `state` is borrowed from.
                unsafe { devices.push(a.dev)? };
            }
        }
        self.data.populate(&devices)?;
        self.data.memory().ok_or(ENOMEM)
    }

    /// Whether `att`'s device can use `memory` (chosen for others): `EINVAL`
    /// when it needs one contiguous range and the memory is scattered,
    /// `EIO` when it cannot reach the memory; a log line says which.
    fn admit(&self, att: &Attachment, memory: MemoryRef<'_>) -> Result {
        let MemoryRef::Pages(runs) = memory else {
            return Ok(());
        };
        let mut dev = Devices::none();
        // SAFETY: `att` is attached (it is being mapped): live until
        // detach, after this call.
        unsafe { dev.push(att.dev)? };
        let (err, why) = if dev.need_contiguous() && !runs.contiguous() {
            (EINVAL, "needs one contiguous range")
        } else if !runs.reachable_by(&dev) {
            (EIO, "cannot reach it under its DMA mask")
        } else {
            return Ok(());
        };
        super::warn_ratelimited(fmt!(
            "rust_dma_heap: {}: {} cannot map a buffer whose memory was chosen at its first use: it {}\n",
            self.exports.name.to_str().unwrap_or("?"),
            dev.names(),
            why
        ));
        Err(err)
    }

    /// A table of the buffer's memory (`EINVAL` while it has none) for
    /// `att`'s device, kept in `att`.
    fn table(&self, att: &Attachment) -> Result<SgTable> {
        let memory = self.data.memory().ok_or(EINVAL)?;
        let dev = att.dev;
        // SAFETY: the memory is borrowed from `data`, which never changes
        // once set and is dropped after every table (type invariant): the
        // table is kept in the attachment, and the core detaches every
        // attachment before release. The device is live until detach,
        // which drops the attachment and its table.
        unsafe {
            match memory {
                MemoryRef::Pages(runs) => SgTable::pages(runs, dev),
                MemoryRef::Chunk(chunk) => SgTable::chunk(chunk, dev),
            }
        }
    }

    /// A kernel mapping of the buffer's memory (`EINVAL` while it has
    /// none).
    fn kernel_map(&self) -> Result<KernelMap> {
        let memory = self.data.memory().ok_or(EINVAL)?;
        // SAFETY: the memory is borrowed from `data`, which never changes
        // once set and is dropped after `state`, where the mapping is kept
        // (type invariant).
        unsafe {
            match memory {
                MemoryRef::Pages(runs) => KernelMap::pages(runs),
                MemoryRef::Chunk(chunk) => KernelMap::chunk(chunk),
            }
        }
    }

    /// A new attachment of `dev`, owned by the list until detach; a
    /// pointer to it for the core.
    fn attach(&self, dev: NonNull<bindings::device>) -> Result<*const Attachment> {
        let att = ListArc::pin_init::<Error>(
            try_pin_init!(Attachment {
                dev,
                table <- new_mutex!(None),
                links <- ListLinks::new(),
            }),
            GFP_KERNEL,
        )?;
        let ptr: *const Attachment = &*att;
        self.state.lock().attachments.push_back(att);
        Ok(ptr)
    }

    /// Takes attachment `att` off the list and drops it (its table too).
    fn detach(&self, att: *const Attachment) {
        let mut state = self.state.lock();
        let mut cursor = state.attachments.cursor_front();
        while let Some(next) = cursor.peek_next() {
            if core::ptr::eq(&*next.arc(), att) {
                drop(next.remove());
                return;
            }
            cursor.move_next();
        }
    }

    /// Maps an attachment: its table is built at the first map (a failure
    /// leaves the attachment as it was, so a later map can succeed), then
    /// DMA-mapped. The table stays where it is until detach.
    fn map(&self, att: &Attachment, dir: DataDirection) -> Result<*mut bindings::sg_table> {
        // Before the table's lock: the buffer's lock comes first.
        let memory = match self.data.memory() {
            Some(memory) => memory,
            None => self.choose(&self.state.lock(), true)?,
        };
        let mut table = att.table.lock();
        let table = match &mut *table {
            Some(t) => t,
            empty => {
                if self.data.checks_devices() {
                    self.admit(att, memory)?;
                }
                let t = self.table(att)?;
                if t.len() != self.size {
                    return Err(EINVAL);
                }
                empty.insert(t)
            }
        };
        table.map(dir)?;
        Ok(table.as_raw())
    }

    fn unmap(&self, att: &Attachment) {
        if let Some(t) = &mut *att.table.lock() {
            t.unmap();
        }
    }

    /// Syncs the kernel mapping and every mapped attachment for the CPU
    /// (`begin`) or back for the devices. Nothing to do, whatever the
    /// size, for memory no CPU cache holds (write-combined everywhere).
    fn cpu_access(&self, dir: DataDirection, begin: bool) -> Result {
        match self.data.memory() {
            Some(MemoryRef::Pages(runs)) if !runs.write_combined() => {}
            // The first CPU use of a buffer without memory: chosen now,
            // nothing mapped yet to sync.
            None => return self.choose(&self.state.lock(), false).map(|_| ()),
            _ => return Ok(()),
        }
        let state = self.state.lock();
        if let Some(km) = &state.kmap {
            if begin {
                km.invalidate();
            } else {
                km.flush();
            }
        }
        for a in state.attachments.iter() {
            if let Some(t) = &*a.table.lock() {
                if begin {
                    t.sync_for_cpu(dir);
                } else {
                    t.sync_for_device(dir);
                }
            }
        }
        Ok(())
    }

    /// Only shared mappings: a private copy of a device buffer would never
    /// see the device's writes (as upstream's CMA heap).
    fn mmap<'a>(&'a self, vma: &UserMapping<'_, 'a>) -> Result {
        if !vma.is_shared() {
            return Err(EINVAL);
        }
        let memory = match self.data.memory() {
            Some(memory) => memory,
            None => self.choose(&self.state.lock(), false)?,
        };
        match memory {
            MemoryRef::Pages(runs) => vma.map_pages(runs),
            MemoryRef::Chunk(chunk) => vma.map_chunk(chunk),
        }
    }

    fn vmap(&self) -> Result<*mut ffi::c_void> {
        let mut state = self.state.lock();
        let addr = match &state.kmap {
            Some(km) => km.addr(),
            None => {
                self.choose(&state, false)?;
                let km = self.kernel_map()?;
                if km.len() != self.size {
                    return Err(EINVAL);
                }
                let addr = km.addr();
                state.kmap = Some(km);
                addr
            }
        };
        // INVARIANT: `kmap` is `Some` and counted.
        state.vmaps += 1;
        Ok(addr)
    }

    fn vunmap(&self) {
        let mut state = self.state.lock();
        if state.vmaps > 0 {
            state.vmaps -= 1;
            if state.vmaps == 0 {
                state.kmap = None;
            }
        }
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
    unsafe fn exported<'a>(dmabuf: *mut bindings::dma_buf) -> &'a Exported<T> {
        // SAFETY: `priv` points to the `Exported<T>` of `export`, owned by
        // its list until `release`, which runs after every other callback.
        unsafe { &*(*dmabuf).priv_.cast::<Exported<T>>() }
    }

    /// # Safety
    ///
    /// `att` must be an attachment that `attach` below accepted and
    /// `detach` has not yet seen.
    unsafe fn attachment<'a>(att: *mut bindings::dma_buf_attachment) -> &'a Attachment {
        // SAFETY: `priv` is the attachment set in `attach`, on our list
        // (owned by it) until `detach`.
        unsafe { &*(*att).priv_.cast::<Attachment>() }
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
        let this = unsafe { Self::exported(dmabuf) };
        // SAFETY: the core hands us the new attachment, whose device is
        // live until detach.
        let Some(dev) = NonNull::new(unsafe { (*att).dev }) else {
            return EINVAL.to_errno();
        };
        match this.attach(dev) {
            Ok(a) => {
                // SAFETY: the core hands us the new attachment to fill in;
                // `a` stays on our list until `detach`.
                unsafe { (*att).priv_ = a.cast_mut().cast() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn detach(
        dmabuf: *mut bindings::dma_buf,
        att: *mut bindings::dma_buf_attachment,
    ) {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exported(dmabuf) };
        // SAFETY: `priv` is the attachment `attach` put on our list; detach
        // is the last callback for it, so it comes off the list here.
        let a = unsafe { (*att).priv_.cast::<Attachment>() };
        this.detach(a);
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn map_dma_buf(
        att: *mut bindings::dma_buf_attachment,
        dir: bindings::dma_data_direction,
    ) -> *mut bindings::sg_table {
        // SAFETY: called by the core on a live attachment of our dma-buf.
        let (this, a) = unsafe { (Self::exported((*att).dmabuf), Self::attachment(att)) };
        match this.map(a, dma_dir_from_raw(dir)) {
            Ok(sgt) => sgt,
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn unmap_dma_buf(
        att: *mut bindings::dma_buf_attachment,
        _sgt: *mut bindings::sg_table,
        _dir: bindings::dma_data_direction,
    ) {
        // SAFETY: called by the core on a live attachment of our dma-buf.
        let (this, a) = unsafe { (Self::exported((*att).dmabuf), Self::attachment(att)) };
        this.unmap(a);
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn release(dmabuf: *mut bindings::dma_buf) {
        // SAFETY: the last callback on our live dma-buf.
        let this = unsafe { Self::exported(dmabuf) };
        let owned = {
            let mut ledger = this.exports.ledger.lock();
            // SAFETY: an exported buffer is on its own `exports`' list and
            // on no other (type invariant of `Exported`).
            let owned = unsafe { ledger.list.remove(this) };
            // INVARIANT: uncounted as it leaves the list.
            ledger.count -= 1;
            ledger.used -= this.size as u64;
            owned
        };
        // The list's ownership, dropped after the lock (held in `this`).
        drop(owned);
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn begin_cpu_access(
        dmabuf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        match unsafe { Self::exported(dmabuf) }.cpu_access(dma_dir_from_raw(dir), true) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn end_cpu_access(
        dmabuf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        match unsafe { Self::exported(dmabuf) }.cpu_access(dma_dir_from_raw(dir), false) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn mmap(
        dmabuf: *mut bindings::dma_buf,
        vma: *mut bindings::vm_area_struct,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exported(dmabuf) };
        // SAFETY: the core calls `mmap` from the file's mmap hook, on a VMA
        // under initial set-up whose `vm_file` is this dma-buf's file.
        let vma = unsafe { VmaNew::from_raw(vma) };
        // SAFETY: as above; `this` (the dma-buf's private data) lives
        // until release, after the VMA (which holds the file) is gone.
        let mapping = unsafe { UserMapping::new(vma) };
        match this.mmap(&mapping) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn vmap(
        dmabuf: *mut bindings::dma_buf,
        map: *mut bindings::iosys_map,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let this = unsafe { Self::exported(dmabuf) };
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
    /// As for [`Self::attach`].
    unsafe extern "C" fn vunmap(dmabuf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) {
        // SAFETY: called by the dma-buf core on our live dma-buf.
        unsafe { Self::exported(dmabuf) }.vunmap();
        // SAFETY: `map` is the caller's map (`iosys_map_clear`).
        unsafe {
            (*map).__bindgen_anon_1.vaddr = core::ptr::null_mut();
            (*map).is_iomem = false;
        }
    }
}
