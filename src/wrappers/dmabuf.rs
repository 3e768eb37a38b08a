// SPDX-License-Identifier: GPL-2.0

//! Exporting dma-bufs: the `struct dma_buf_ops` vtable over an [`Exporter`]
//! implemented in safe Rust.
//!
//! This layer owns what the dma-buf core keeps pointers to: each
//! attachment's scatter-gather table (built at its first map, valid until
//! detach) and the kernel mapping of `vmap` (valid until the last
//! `vunmap`). The exporter only says how to describe and map its memory,
//! with types that can only be made from memory it owns. Both are guarded
//! by the dma-buf's own reservation lock, which the core holds around map,
//! unmap, vmap and vunmap and while it changes its list of attachments
//! (see [`Resv`]): no lock of this layer's on those paths.

use super::{
    device::Devices,
    dma_dir_from_raw, err_ptr, ffi_helpers,
    pages::PageRuns,
    reserved_mem::Chunk,
    sgtable::SgTable,
    slab::Slab,
    vma::{Fault, UserMapping},
    vmalloc::KernelMap,
};
use core::{cell::UnsafeCell, fmt, marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};
use kernel::{
    bindings, container_of,
    dma::DataDirection,
    ffi,
    fs::file::FileDescriptorReservation,
    mm::virt::VmaNew,
    new_spinlock,
    prelude::*,
    str::{CStr, CStrExt, CString},
    sync::{Arc, SpinLock},
    types::Opaque,
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
    /// The buffer's size in bytes (fixed: the dma-buf's size).
    fn len(&self) -> usize;

    /// The buffer's memory, `None` while it has none yet (see
    /// [`Self::populate`]). Once `Some`, always the same memory: this
    /// layer builds every table and mapping from it and drops them all
    /// before the exporter.
    fn memory(&self) -> Option<MemoryRef<'_>>;

    /// Gives a buffer without memory its memory, chosen for `devices`: the
    /// devices attached at its first DMA map, none when the CPU uses it
    /// first (mmap, vmap, CPU access). Called under the dma-buf's
    /// reservation lock, only while [`Self::memory`] is `None`; afterwards
    /// it must be `Some` (or this fail). For buffers that have memory from the start: never.
    fn populate(&self, _devices: &Devices<'_>) -> Result {
        Err(EINVAL)
    }

    /// Whether each device's first map asks [`Self::admit`]: for memory
    /// chosen for other devices than the one mapping.
    fn checks_devices(&self) -> bool {
        false
    }

    /// Whether `device` (one, mapping the buffer of heap `heap` for the
    /// first time) may use `memory`, chosen for others; the error its map
    /// fails with otherwise. Asked only when [`Self::checks_devices`].
    fn admit(&self, _heap: &CStr, _device: &Devices<'_>, _memory: MemoryRef<'_>) -> Result {
        Ok(())
    }
}

/// One device's attachment: the attachment's `priv` from `attach` to
/// `detach`, an object of its exporter's [`Slabs`].
pub(crate) struct Attachment {
    /// The importer's device: live until detach (the importer's contract
    /// with the dma-buf core; upstream's heaps keep it the same way).
    dev: NonNull<bindings::device>,
    /// The dma-buf it is attached to.
    dmabuf: NonNull<bindings::dma_buf>,
    /// The importer takes tables without `struct page`s (it declared
    /// `allow_peer2peer`: it uses only the DMA addresses).
    peer2peer: bool,
    /// Built at the first map, kept until detach: the dma-buf core holds a
    /// pointer to it while mapped. Only touched through [`Resv`] (and by
    /// `detach`, once the core has taken the attachment off its list).
    table: UnsafeCell<Option<SgTable>>,
}

/// The reservation lock of a dma-buf (`dmabuf->resv`), held. It guards
/// the buffer's [`State`] and its attachments' tables: the dma-buf core
/// holds it around `map_dma_buf`, `unmap_dma_buf`, `vmap` and `vunmap` and
/// while it adds an attachment to its list or takes one off; this layer
/// takes it for CPU access, for a first `mmap` and for reports.
///
/// # Invariants
///
/// `dmabuf` is a live dma-buf exported by [`DmaBuf::export`] whose
/// reservation lock is held for the guard's lifetime, by the guard itself
/// (which releases it) when `owned`. At most one guard exists per holding
/// of the lock.
struct Resv {
    dmabuf: NonNull<bindings::dma_buf>,
    owned: bool,
}

impl Resv {
    /// Takes the lock (may sleep).
    ///
    /// # Safety
    ///
    /// `dmabuf` must be a live dma-buf of [`DmaBuf::export`] for the
    /// guard's lifetime, whose reservation lock this thread does not hold.
    unsafe fn lock(dmabuf: NonNull<bindings::dma_buf>) -> Self {
        // SAFETY: a live dma-buf (caller), so its `resv` is valid; the lock
        // is not ours yet (caller). Without an acquire context the lock
        // cannot fail (`-EDEADLK` needs one, `-EINTR` the interruptible
        // variant).
        unsafe { bindings::dma_resv_lock((*dmabuf.as_ptr()).resv, core::ptr::null_mut()) };
        // INVARIANT: taken here, released in `drop`.
        Self {
            dmabuf,
            owned: true,
        }
    }

    /// Takes the lock if it is free, without waiting.
    ///
    /// # Safety
    ///
    /// As for [`Self::lock`].
    unsafe fn try_lock(dmabuf: NonNull<bindings::dma_buf>) -> Option<Self> {
        // SAFETY: a live dma-buf (caller), so its `resv` is valid;
        // `dma_resv_trylock()`: the lock's `ww_mutex`, without an acquire
        // context.
        let taken = unsafe {
            bindings::ww_mutex_trylock(
                &raw mut (*(*dmabuf.as_ptr()).resv).lock,
                core::ptr::null_mut(),
            )
        } != 0;
        // INVARIANT: taken here, released in `drop`.
        taken.then_some(Self {
            dmabuf,
            owned: true,
        })
    }

    /// The lock the dma-buf core holds around a callback.
    ///
    /// # Safety
    ///
    /// `dmabuf` must be a live dma-buf of [`DmaBuf::export`] whose
    /// reservation lock the caller holds for the guard's lifetime, with no
    /// other guard for it.
    unsafe fn held(dmabuf: NonNull<bindings::dma_buf>) -> Self {
        // INVARIANT: held by the caller.
        Self {
            dmabuf,
            owned: false,
        }
    }

    /// The state of `e`, if `e` is this dma-buf's (`EINVAL` otherwise).
    fn state<'g, T: Exporter>(&'g mut self, e: &'g Exported<T>) -> Result<&'g mut State> {
        // SAFETY: a live dma-buf (type invariant); `priv` is set at export
        // and never changes.
        let priv_ = unsafe { (*self.dmabuf.as_ptr()).priv_ };
        if !core::ptr::eq(priv_.cast_const().cast::<Exported<T>>(), e) {
            return Err(EINVAL);
        }
        // SAFETY: `e` is this dma-buf's, whose lock we hold, and `self` is
        // borrowed mutably for as long as the reference lives: no other
        // reference to the state exists meanwhile.
        Ok(unsafe { &mut *e.state.get() })
    }

    /// The table slot of `att`, if `att` is attached to this dma-buf
    /// (`EINVAL` otherwise).
    fn table<'g>(&'g mut self, att: &'g Attachment) -> Result<&'g mut Option<SgTable>> {
        if att.dmabuf != self.dmabuf {
            return Err(EINVAL);
        }
        // SAFETY: attached to this dma-buf, whose lock we hold; `self` is
        // borrowed mutably for as long as the reference lives.
        Ok(unsafe { &mut *att.table.get() })
    }

    /// The table of `att`, if it has one and `att` is attached to this
    /// dma-buf.
    fn table_ref<'g>(&'g self, att: &'g Attachment) -> Option<&'g SgTable> {
        if att.dmabuf != self.dmabuf {
            return None;
        }
        // SAFETY: attached to this dma-buf, whose lock we hold; `self` is
        // borrowed (shared) for as long as the reference lives, so no
        // mutable reference exists meanwhile.
        unsafe { (*att.table.get()).as_ref() }
    }

    /// Calls `f` on every attachment on the core's list: every live one,
    /// but one being attached or detached right now.
    fn attachments<'g>(&'g self, mut f: impl FnMut(&'g Attachment)) {
        // SAFETY: under the lock (type invariant) the core's list of
        // attachments does not change; each entry is a live attachment of
        // this dma-buf whose `priv` is the `Attachment` our `attach` made
        // (the core lists an attachment only after `attach` succeeded, and
        // takes it off, under this lock, before `detach`).
        unsafe {
            let head = &raw mut (*self.dmabuf.as_ptr()).attachments;
            let mut pos = (*head).next;
            while pos != head {
                let att = container_of!(pos, bindings::dma_buf_attachment, node);
                f(&*(*att).priv_.cast::<Attachment>());
                pos = (*pos).next;
            }
        }
    }
}

impl Drop for Resv {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: taken by this guard (type invariant).
            unsafe { bindings::dma_resv_unlock((*self.dmabuf.as_ptr()).resv) };
        }
    }
}

/// The mutable state of an exported buffer, under its dma-buf's
/// reservation lock (see [`Resv`]).
///
/// # Invariants
///
/// `vmaps` counts vmaps not yet vunmapped; `kmap` is `Some` exactly while
/// it is non-zero.
struct State {
    vmaps: usize,
    kmap: Option<KernelMap>,
}

/// A dma-buf's private data: the exporter and what this layer keeps for it,
/// an object of `exports`' [`Slabs`].
///
/// # Invariants
///
/// Once exported, the dma-buf owns it (its `priv` points to it) until
/// `release`, which frees it; meanwhile it is linked by `links` on
/// `exports`' list (and on no other), with `published` holding its dma-buf
/// and that dma-buf's inode number. `exports` is dropped only by
/// [`Exported::destroy`], after the object is freed.
pub(crate) struct Exported<T: Exporter> {
    /// Only through [`Resv::state`]. Declared (so dropped) before `data`:
    /// a kernel mapping left by an importer goes before the memory.
    state: UnsafeCell<State>,
    data: T,
    /// The dma-buf's size: every table and kernel mapping handed out
    /// covers exactly this many bytes (importers rely on it).
    size: usize,
    exports: ManuallyDrop<Arc<Exports<T>>>,
    /// Set at export, under the ledger's lock, before the buffer goes on
    /// the list; read only under that lock.
    published: UnsafeCell<Published>,
    /// On `exports`' list (under the ledger's lock) while exported.
    links: Opaque<bindings::list_head>,
}

/// What a buffer's ledger knows of its dma-buf.
struct Published {
    dmabuf: *mut bindings::dma_buf,
    ino: u64,
}

// SAFETY: `published` is only touched under the ledger's lock, `state`
// only under the dma-buf's reservation lock (see the fields); everything
// else is `Send + Sync` or the exporter's (`T: Send + Sync`).
unsafe impl<T: Exporter> Send for Exported<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Exporter> Sync for Exported<T> {}

/// The slab caches of this layer: every exported buffer's private data
/// and every attachment come from these (one pair for the module, shared
/// by its heaps).
pub(crate) struct Slabs<T: Exporter> {
    buffers: Slab<Exported<T>>,
    attachments: Slab<Attachment>,
}

impl<T: Exporter> Slabs<T> {
    /// The caches (`rust_dma_heap_buffer` and `rust_dma_heap_attachment`
    /// in `/proc/slabinfo`).
    pub(crate) fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                buffers: Slab::new(c"rust_dma_heap_buffer")?,
                attachments: Slab::new(c"rust_dma_heap_attachment")?,
            },
            GFP_KERNEL,
        )?)
    }
}

/// The live dma-bufs of one source (a heap), and their totals: export
/// adds a buffer, release removes it, under one lock (no atomic counter
/// on the hot path).
///
/// # Invariants
///
/// `head` is the head of a circular list of the `links` of the live
/// [`Exported`] of this source; it and the entries' links change only
/// under `ledger`'s lock. Every buffer holds a reference on its `Exports`,
/// so the caches in `slabs` outlive their objects.
#[pin_data]
pub(crate) struct Exports<T: Exporter> {
    /// The exporter name of every buffer (the dma-buf core keeps a
    /// pointer to it: each buffer holds its `Exports`).
    name: CString,
    slabs: Arc<Slabs<T>>,
    #[pin]
    /// A spinlock: held for a few stores at export and release (a mutex
    /// costs an atomic and a call more per buffer), and by reports, which
    /// only format (nothing under it sleeps).
    ledger: SpinLock<Ledger>,
    #[pin]
    head: Opaque<bindings::list_head>,
}

// SAFETY: the list (`head`) is only touched under the ledger's lock;
// everything else is `Send + Sync`.
unsafe impl<T: Exporter> Send for Exports<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Exporter> Sync for Exports<T> {}

/// The totals of an [`Exports`].
///
/// # Invariants
///
/// `count` and `used` are the number and total size of the buffers on
/// the list; `peak >= used`.
struct Ledger {
    count: u64,
    used: u64,
    peak: u64,
}

/// What the dma-buf side knows of a live buffer, for reports.
pub(crate) struct Info<'a> {
    /// The inode number of the dma-buf's file (as in `bufinfo`).
    pub(crate) ino: u64,
    /// Devices attached; `None` while someone else holds the buffer's
    /// reservation lock (a report does not wait for it).
    pub(crate) attachments: Option<usize>,
    /// Kernel mappings (`vmap`s not yet undone); `None` as above.
    pub(crate) vmaps: Option<usize>,
    /// The name userspace gave it (`DMA_BUF_SET_NAME`: any bytes; escape
    /// them to print), if any.
    pub(crate) name: Option<&'a [u8]>,
}

/// `DMA_BUF_NAME_LEN`.
const NAME_LEN: usize = 32;

impl<T: Exporter> Exports<T> {
    /// No buffer yet; the buffers' exporter name will be `name`, their
    /// objects from `slabs`.
    pub(crate) fn new(name: &CStr, slabs: &Arc<Slabs<T>>) -> Result<Arc<Self>> {
        let name = CString::try_from(name)?;
        Arc::pin_init(
            pin_init!(Self {
                name,
                slabs: slabs.clone(),
                ledger <- new_spinlock!(Ledger {
                    count: 0,
                    used: 0,
                    peak: 0,
                }),
                // INVARIANT: an empty circular list.
                // SAFETY: `slot` is the pinned head, ours to initialize.
                head <- unsafe {
                    Opaque::ffi_init(|slot: *mut bindings::list_head| {
                        (*slot).next = slot;
                        (*slot).prev = slot;
                    })
                },
            }),
            GFP_KERNEL,
        )
    }

    /// Links `e` at the tail of the list.
    ///
    /// # Safety
    ///
    /// The caller holds the ledger's lock; `e` is a live buffer of this
    /// source on no list, which stays live until [`Self::unlink`].
    unsafe fn link(&self, e: &Exported<T>) {
        let head = self.head.get();
        let new = e.links.get();
        // SAFETY: under the ledger's lock (caller), the head and every
        // entry's links are ours to change and valid (type invariant).
        unsafe {
            let last = (*head).prev;
            (*new).next = head;
            (*new).prev = last;
            (*last).next = new;
            (*head).prev = new;
        }
    }

    /// Takes `e` off the list.
    ///
    /// # Safety
    ///
    /// The caller holds the ledger's lock; `e` is on this list.
    unsafe fn unlink(&self, e: &Exported<T>) {
        let entry = e.links.get();
        // SAFETY: under the ledger's lock (caller), `e` and its neighbours
        // are valid entries of the list (type invariant).
        unsafe {
            let (prev, next) = ((*entry).prev, (*entry).next);
            (*prev).next = next;
            (*next).prev = prev;
        }
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
    /// Exports and releases wait meanwhile: `f` only formats, and a buffer
    /// whose reservation lock is busy is not waited for.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T, &Info<'_>) -> fmt::Result) -> fmt::Result {
        let _ledger = self.ledger.lock();
        let head = self.head.get();
        // SAFETY: under the ledger's lock the list does not change and
        // every entry is the `links` of a live `Exported` of this source
        // (type invariant).
        let mut pos = unsafe { (*head).next };
        while pos != head {
            // SAFETY: as above.
            let e =
                unsafe { &*container_of!(Opaque::cast_from(pos).cast_mut(), Exported<T>, links) };
            // SAFETY: as above.
            pos = unsafe { (*pos).next };
            let mut name = [0u8; NAME_LEN];
            // SAFETY: read under the ledger's lock, which we hold.
            let Published { dmabuf, ino } = unsafe { &*e.published.get() };
            let (dmabuf, ino) = (*dmabuf, *ino);
            let Some(live) = NonNull::new(dmabuf) else {
                continue;
            };
            // SAFETY: on the list, the dma-buf is live (type invariant of
            // `Exported`).
            let (attachments, vmaps) = match unsafe { Resv::try_lock(live) } {
                Some(mut resv) => {
                    let mut n = 0;
                    resv.attachments(|_| n += 1);
                    (Some(n), resv.state(e).ok().map(|s| s.vmaps))
                }
                None => (None, None),
            };
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
                    _ => Some(&name[..len]),
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
    /// Exports the buffer `data` initializes, in place in its object (a
    /// buffer built and moved would be copied by a call to `memcpy`), as a
    /// dma-buf of its size whose file gets `fd_flags`. This module owns
    /// the dma-buf: it cannot be unloaded while the buffer lives.
    pub(crate) fn export<T: Exporter>(
        exports: &Arc<Exports<T>>,
        data: impl Init<T, Error>,
        fd_flags: u32,
    ) -> Result<Self> {
        let priv_ = exports.slabs.buffers.alloc_uninit()?;
        let p = priv_.as_ptr();
        // SAFETY: a new object, ours, uninitialized: `data` is written in
        // place; on failure the initializer leaves it uninitialized, and
        // the object goes back unused.
        if let Err(e) = unsafe { data.__init(&raw mut (*p).data) } {
            // SAFETY: from this cache, nothing in it to drop.
            unsafe { exports.slabs.buffers.free_uninit(priv_) };
            return Err(e);
        }
        // SAFETY: `data` is initialized (above).
        let size = unsafe { (*p).data.len() };
        // SAFETY: each other field but `links` (opaque, set when linked)
        // is written once, in place. The reference on `exports` is taken
        // only now that the object is there (`destroy` gives it back).
        unsafe {
            (&raw mut (*p).size).write(size);
            (&raw mut (*p).state).write(UnsafeCell::new(State {
                vmaps: 0,
                kmap: None,
            }));
            (&raw mut (*p).exports).write(ManuallyDrop::new(exports.clone()));
            (&raw mut (*p).published).write(UnsafeCell::new(Published {
                dmabuf: core::ptr::null_mut(),
                ino: 0,
            }));
        }
        let name = exports.name.as_char_ptr();
        // Ours until the export succeeds, the dma-buf's afterwards.
        let info = bindings::dma_buf_export_info {
            exp_name: name,
            owner: super::this_module().as_ptr(),
            ops: &VTable::<T>::OPS,
            size,
            flags: fd_flags as ffi::c_int,
            resv: core::ptr::null_mut(),
            priv_: priv_.as_ptr().cast(),
        };
        // SAFETY: `info` is fully initialized; `exp_name` lives in
        // `exports`, which the object holds and the dma-buf owns until
        // release; the ops table is static.
        let ptr = unsafe { bindings::dma_buf_export(&info) };
        match err_ptr(ptr) {
            // INVARIANT: a successful export returns one file reference.
            Ok(ptr) => {
                let this = Self { ptr };
                // SAFETY: the dma-buf owns `priv_` now, until release, which
                // cannot run before we drop our file reference.
                let e = unsafe { priv_.as_ref() };
                // SAFETY: we hold a file reference on the new dma-buf, so
                // its file and inode are live.
                let ino = unsafe { (*(*(*ptr.as_ptr()).file).f_inode).i_ino };
                let mut ledger = exports.ledger.lock();
                // SAFETY: under the ledger's lock; `e` is live until release,
                // which unlinks it under this lock.
                unsafe {
                    *e.published.get() = Published {
                        dmabuf: ptr.as_ptr(),
                        ino,
                    };
                    exports.link(e);
                }
                // INVARIANT: counted and on its list, with its dma-buf, until
                // release. The sums cannot wrap: they count live objects
                // and the bytes of their dma-bufs (`size` fits the address
                // space).
                ledger.count = ledger.count.wrapping_add(1);
                ledger.used = ledger.used.wrapping_add(size as u64);
                ledger.peak = ledger.peak.max(ledger.used);
                Ok(this)
            }
            // The core never took `priv_`: still ours to free.
            Err(e) => {
                // SAFETY: from `alloc` above, on no list, used by nobody.
                unsafe { Exported::destroy(priv_) };
                Err(e)
            }
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
    /// Drops and frees `this`, then its reference on its source (which may
    /// be the last: the caches go after the object).
    ///
    /// # Safety
    ///
    /// `this` comes from its source's `slabs.buffers` and is on no list;
    /// nothing uses it afterwards.
    unsafe fn destroy(this: NonNull<Self>) {
        // SAFETY: a live object of ours (caller); `exports` is taken once,
        // here, and not touched again (type invariant).
        let exports = unsafe { ManuallyDrop::take(&mut (*this.as_ptr()).exports) };
        // SAFETY: from this cache, unused from now on (caller).
        unsafe { exports.slabs.buffers.free(this) };
        drop(exports);
    }

    /// The buffer's memory; if it has none yet, chosen now (under the
    /// dma-buf's reservation lock, `resv`) for the attached devices (`dma`)
    /// or for the CPU.
    #[inline]
    fn choose<'s>(&'s self, resv: &Resv, dma: bool) -> Result<MemoryRef<'s>> {
        match self.data.memory() {
            Some(memory) => Ok(memory),
            None => self.populate(resv, dma),
        }
    }

    /// The buffer's memory, chosen now (see [`Self::choose`]); out of line:
    /// once per buffer at most.
    #[inline(never)]
    fn populate<'s>(&'s self, resv: &Resv, dma: bool) -> Result<MemoryRef<'s>> {
        let mut devices = Devices::none();
        if dma {
            let mut pushed = Ok(());
            resv.attachments(|a| {
                if pushed.is_ok() {
                    // SAFETY: listed, so attached until the core takes it
                    // off the list under the lock `resv` holds, for as long
                    // as `devices` lives.
                    pushed = unsafe { devices.push(a.dev) };
                }
            });
            pushed?;
        }
        self.data.populate(&devices)?;
        self.data.memory().ok_or(ENOMEM)
    }

    /// Whether `att`'s device may map `memory` at all (its first map):
    /// memory chosen for other devices ([`Exporter::admit`]),
    /// write-combined memory, memory without `struct page`. Out of line:
    /// the common case (the buffer's own cached pages) skips it.
    #[inline(never)]
    fn first_map_checks(&self, att: &Attachment, memory: MemoryRef<'_>) -> Result {
        if self.data.checks_devices() {
            let mut dev = Devices::none();
            // SAFETY: `att` is attached (it is being mapped): live until
            // detach, after this call.
            unsafe { dev.push(att.dev)? };
            self.data.admit(&self.exports.name, &dev, memory)?;
        }
        match memory {
            MemoryRef::Pages(runs) if runs.write_combined() => self.refuse_bouncing(att),
            MemoryRef::Chunk(_) if !att.peer2peer => Err(self.refuse_pageless(att)),
            _ => Ok(()),
        }
    }

    /// `EIO` when `att`'s device bounces every mapping through a software
    /// buffer: memory no CPU cache holds would be written there and never
    /// copied back (the bounce copies are cache maintenance points, which
    /// write-combined memory skips).
    fn refuse_bouncing(&self, att: &Attachment) -> Result {
        let mut dev = Devices::none();
        // SAFETY: `att` is attached (it is being mapped): live until
        // detach, after this call.
        unsafe { dev.push(att.dev)? };
        if !dev.bounce() {
            return Ok(());
        }
        super::warn_ratelimited(fmt!(
            "rust_dma_heap: {}: {} bounces DMA through swiotlb: write-combined buffers refused\n",
            self.exports.name.to_str().unwrap_or("?"),
            dev.names(),
        ));
        Err(EIO)
    }

    /// `EIO` for an importer that did not declare it takes tables without
    /// `struct page`s (`allow_peer2peer`): memory outside the kernel's
    /// memory map has none, and an importer that calls `sg_page()` on its
    /// table would get NULL. A log line names the device.
    fn refuse_pageless(&self, att: &Attachment) -> Error {
        let mut dev = Devices::none();
        // SAFETY: `att` is attached (it is being mapped): live until
        // detach, after this call.
        if unsafe { dev.push(att.dev) }.is_ok() {
            super::warn_ratelimited(fmt!(
                "rust_dma_heap: {}: {} is not a peer2peer importer: memory without struct page refused\n",
                self.exports.name.to_str().unwrap_or("?"),
                dev.names(),
            ));
        }
        EIO
    }

    /// A table of `memory`, the buffer's, for `att`'s device, built in
    /// `slot` (empty, `att`'s) and kept there; `EINVAL` when the memory is
    /// not the dma-buf's size.
    #[inline]
    fn table_in<'t>(
        &self,
        slot: &'t mut Option<SgTable>,
        att: &Attachment,
        memory: MemoryRef<'_>,
    ) -> Result<&'t mut SgTable> {
        let dev = att.dev;
        // SAFETY: the memory is borrowed from `data`, which never changes
        // once set and is dropped after every table (type invariant): the
        // table is kept in the attachment, and the core detaches every
        // attachment before release. The device is live until detach,
        // which drops the attachment and its table.
        unsafe {
            match memory {
                MemoryRef::Pages(runs) if runs.len() == self.size => {
                    SgTable::pages_in(slot, runs, dev)
                }
                MemoryRef::Chunk(chunk) if chunk.len() == self.size => {
                    Ok(slot.insert(SgTable::chunk(chunk, dev)?))
                }
                _ => Err(EINVAL),
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

    /// Maps an attachment: its table is built at the first map (a failure
    /// leaves the attachment as it was, so a later map can succeed), then
    /// DMA-mapped. The table stays where it is until detach.
    fn map(
        &self,
        resv: &mut Resv,
        att: &Attachment,
        dir: DataDirection,
    ) -> Result<*mut bindings::sg_table> {
        let memory = self.choose(resv, true)?;
        let table = match resv.table(att)? {
            Some(t) => t,
            empty => {
                // Cached pages of the buffer's own: nothing to check.
                let plain = matches!(memory, MemoryRef::Pages(runs) if !runs.write_combined());
                if !plain || self.data.checks_devices() {
                    self.first_map_checks(att, memory)?;
                }
                self.table_in(empty, att, memory)?
            }
        };
        table.map(dir)?;
        Ok(table.as_raw())
    }

    fn unmap(resv: &mut Resv, att: &Attachment) {
        if let Ok(Some(t)) = resv.table(att) {
            t.unmap();
        }
    }

    /// Syncs the kernel mapping and every mapped attachment for the CPU
    /// (`begin`) or back for the devices. Nothing to do, whatever the
    /// size, for memory no CPU cache holds (write-combined everywhere).
    ///
    /// # Safety
    ///
    /// `dmabuf` must be this buffer's live dma-buf, whose reservation lock
    /// this thread does not hold.
    #[inline]
    unsafe fn cpu_access(
        &self,
        dmabuf: NonNull<bindings::dma_buf>,
        dir: DataDirection,
        begin: bool,
    ) -> Result {
        let memory = self.data.memory();
        match memory {
            Some(MemoryRef::Pages(runs)) if runs.write_combined() => return Ok(()),
            Some(MemoryRef::Chunk(_)) => return Ok(()),
            _ => {}
        }
        // SAFETY: as the caller promises.
        let mut resv = unsafe { Resv::lock(dmabuf) };
        // The first CPU use of a buffer without memory: chosen now (unless
        // another use came first: once set, memory never changes), nothing
        // mapped yet to sync.
        if memory.is_none() && self.data.memory().is_none() {
            return self.choose(&resv, false).map(|_| ());
        }
        if let Some(km) = &resv.state(self)?.kmap {
            if begin {
                km.invalidate();
            } else {
                km.flush();
            }
        }
        resv.attachments(|a| {
            if let Some(t) = resv.table_ref(a) {
                if begin {
                    t.sync_for_cpu(dir);
                } else {
                    t.sync_for_device(dir);
                }
            }
        });
        Ok(())
    }

    /// Only shared mappings: a private copy of a device buffer would never
    /// see the device's writes (as upstream's CMA heap).
    ///
    /// # Safety
    ///
    /// `dmabuf` must be this buffer's live dma-buf, whose reservation lock
    /// this thread does not hold.
    unsafe fn mmap<'a>(
        &'a self,
        dmabuf: NonNull<bindings::dma_buf>,
        vma: &UserMapping<'_, 'a>,
    ) -> Result {
        if !vma.is_shared() {
            return Err(EINVAL);
        }
        // SAFETY: a live dma-buf (caller): its file is live with it.
        vma.check_write_access(unsafe { ffi_helpers::rdh_file_writable((*dmabuf.as_ptr()).file) })?;
        let memory = match self.data.memory() {
            Some(memory) => memory,
            // SAFETY: as the caller promises (the mmap lock comes before a
            // reservation lock, as `dma_resv_lockdep()` teaches lockdep).
            None => self.choose(&unsafe { Resv::lock(dmabuf) }, false)?,
        };
        match memory {
            MemoryRef::Pages(runs) => vma.map_pages(runs),
            MemoryRef::Chunk(chunk) => vma.map_chunk(chunk),
        }
    }

    /// Maps the page a fault in a mapping of `mmap` asks for, again.
    fn fault<'a>(&'a self, fault: &Fault<'a>) -> bindings::vm_fault_t {
        match self.data.memory() {
            Some(MemoryRef::Pages(runs)) => fault.map_pages(runs),
            Some(MemoryRef::Chunk(chunk)) => fault.map_chunk(chunk),
            // A mapping exists only once the memory does.
            None => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }

    fn vmap(&self, resv: &mut Resv) -> Result<*mut ffi::c_void> {
        if resv.state(self)?.kmap.is_none() {
            self.choose(resv, false)?;
            let km = self.kernel_map()?;
            if km.len() != self.size {
                return Err(EINVAL);
            }
            resv.state(self)?.kmap = Some(km);
        }
        let state = resv.state(self)?;
        let addr = state.kmap.as_ref().ok_or(EINVAL)?.addr();
        // INVARIANT: `kmap` is `Some` and counted.
        state.vmaps += 1;
        Ok(addr)
    }

    fn vunmap(&self, resv: &mut Resv) {
        let Ok(state) = resv.state(self) else {
            return;
        };
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

    /// The operations of every user mapping of `mmap`.
    const VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// `dmabuf` must be a live dma-buf exported by [`DmaBuf::export::<T>`].
    unsafe fn exported<'a>(dmabuf: *mut bindings::dma_buf) -> &'a Exported<T> {
        // SAFETY: `priv` points to the `Exported<T>` of `export`, owned by
        // the dma-buf until `release`, which runs after every other callback.
        unsafe { &*(*dmabuf).priv_.cast::<Exported<T>>() }
    }

    /// # Safety
    ///
    /// `att` must be an attachment that `attach` below accepted and
    /// `detach` has not yet seen.
    unsafe fn attachment<'a>(att: *mut bindings::dma_buf_attachment) -> &'a Attachment {
        // SAFETY: `priv` is the attachment set in `attach`, owned by the
        // core's attachment until `detach`.
        unsafe { &*(*att).priv_.cast::<Attachment>() }
    }

    /// The dma-buf of a callback, non-NULL.
    ///
    /// # Safety
    ///
    /// `dmabuf` must be a dma-buf the core passed to a callback.
    unsafe fn live(dmabuf: *mut bindings::dma_buf) -> NonNull<bindings::dma_buf> {
        // SAFETY: the core passes live dma-bufs (caller).
        unsafe { NonNull::new_unchecked(dmabuf) }
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
        // SAFETY: the core hands us the new attachment, whose device is
        // live until detach.
        let Some(dev) = NonNull::new(unsafe { (*att).dev }) else {
            return EINVAL.to_errno();
        };
        let a = Attachment {
            dev,
            // SAFETY: called by the dma-buf core on our live dma-buf.
            dmabuf: unsafe { Self::live(dmabuf) },
            // SAFETY: the new attachment, filled in by the core before
            // `attach`.
            peer2peer: unsafe { (*att).peer2peer },
            table: UnsafeCell::new(None),
        };
        // SAFETY: called by the dma-buf core on our live dma-buf.
        let slabs = unsafe { &Self::exported(dmabuf).exports.slabs };
        match slabs.attachments.alloc(|| a) {
            Ok(a) => {
                // SAFETY: the core hands us the new attachment to fill in;
                // it owns `a` until `detach` (not yet listed: nothing else
                // reads `priv` before this returns).
                unsafe { (*att).priv_ = a.as_ptr().cast() };
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
        // SAFETY: `priv` is the object `attach` made from the caches of
        // this live dma-buf's source; detach is the last callback for it,
        // and the core took the attachment off its list (under the
        // reservation lock) before: nothing else can reach it. Its table
        // goes with it.
        unsafe {
            let slabs = &Self::exported(dmabuf).exports.slabs;
            if let Some(a) = NonNull::new((*att).priv_.cast::<Attachment>()) {
                slabs.attachments.free(a);
            }
        }
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn map_dma_buf(
        att: *mut bindings::dma_buf_attachment,
        dir: bindings::dma_data_direction,
    ) -> *mut bindings::sg_table {
        // SAFETY: called by the core on a live attachment of our dma-buf,
        // with the dma-buf's reservation lock held (`dma_buf_map_attachment`
        // asserts it).
        let (this, a, mut resv) = unsafe {
            (
                Self::exported((*att).dmabuf),
                Self::attachment(att),
                Resv::held(Self::live((*att).dmabuf)),
            )
        };
        match dma_dir_from_raw(dir).and_then(|dir| this.map(&mut resv, a, dir)) {
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
        // SAFETY: called by the core on a live attachment of our dma-buf,
        // with the dma-buf's reservation lock held
        // (`dma_buf_unmap_attachment` asserts it).
        let (a, mut resv) =
            unsafe { (Self::attachment(att), Resv::held(Self::live((*att).dmabuf))) };
        Exported::<T>::unmap(&mut resv, a);
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn release(dmabuf: *mut bindings::dma_buf) {
        // SAFETY: the last callback on our live dma-buf, which owns its
        // private data (type invariant of `Exported`).
        let ptr = unsafe { NonNull::new_unchecked((*dmabuf).priv_.cast::<Exported<T>>()) };
        {
            // SAFETY: as above.
            let this = unsafe { ptr.as_ref() };
            let mut ledger = this.exports.ledger.lock();
            // SAFETY: under the ledger's lock; an exported buffer is on its
            // own source's list (type invariant of `Exported`).
            unsafe { this.exports.unlink(this) };
            // INVARIANT: uncounted as it leaves the list (counted at
            // export: the sums cannot wrap).
            ledger.count = ledger.count.wrapping_sub(1);
            ledger.used = ledger.used.wrapping_sub(this.size as u64);
        }
        // SAFETY: off the list; the core calls nothing on the dma-buf after
        // release.
        unsafe { Exported::destroy(ptr) };
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn begin_cpu_access(
        dmabuf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf, without
        // its reservation lock (`dma_buf_begin_cpu_access` may take it).
        let done = unsafe {
            let Ok(dir) = dma_dir_from_raw(dir) else {
                return EINVAL.to_errno();
            };
            Self::exported(dmabuf).cpu_access(Self::live(dmabuf), dir, true)
        };
        match done {
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
        // SAFETY: as in `begin_cpu_access`.
        let done = unsafe {
            let Ok(dir) = dma_dir_from_raw(dir) else {
                return EINVAL.to_errno();
            };
            Self::exported(dmabuf).cpu_access(Self::live(dmabuf), dir, false)
        };
        match done {
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
        // until release, after the VMA (which holds the file) is gone. The
        // fault handler maps the buffer's memory through `Fault`.
        let mapping = unsafe { UserMapping::new(vma, &Self::VM_OPS) };
        // SAFETY: our live dma-buf; the core's mmap paths do not hold its
        // reservation lock.
        match unsafe { this.mmap(Self::live(dmabuf), &mapping) } {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called only by the fault handler of the memory manager, through
    /// [`Self::VM_OPS`], on a VMA that `mmap` set up.
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: a fault being handled on a VMA of `mmap`, whose file is
        // (`dma_buf_mmap()` sets it so for importers too) the dma-buf's,
        // held by the VMA: the dma-buf is live, its private data ours.
        let (this, vmf) = unsafe {
            let vmf = NonNull::new_unchecked(vmf);
            let file = (*(*vmf.as_ptr()).__bindgen_anon_1.vma).vm_file;
            (
                Self::exported((*file).private_data.cast::<bindings::dma_buf>()),
                vmf,
            )
        };
        // SAFETY: as above: the VMA holds the dma-buf, so `this` outlives
        // the fault.
        let fault = unsafe { Fault::new(vmf) };
        this.fault(&fault)
    }

    /// # Safety
    ///
    /// As for [`Self::attach`].
    unsafe extern "C" fn vmap(
        dmabuf: *mut bindings::dma_buf,
        map: *mut bindings::iosys_map,
    ) -> ffi::c_int {
        // SAFETY: called by the dma-buf core on our live dma-buf, with its
        // reservation lock held (`dma_buf_vmap` asserts it).
        let (this, mut resv) = unsafe { (Self::exported(dmabuf), Resv::held(Self::live(dmabuf))) };
        match this.vmap(&mut resv) {
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
        // SAFETY: called by the dma-buf core on our live dma-buf, with its
        // reservation lock held (`dma_buf_vunmap` asserts it).
        let (this, mut resv) = unsafe { (Self::exported(dmabuf), Resv::held(Self::live(dmabuf))) };
        this.vunmap(&mut resv);
        // SAFETY: `map` is the caller's map (`iosys_map_clear`).
        unsafe {
            (*map).__bindgen_anon_1.vaddr = core::ptr::null_mut();
            (*map).is_iomem = false;
        }
    }
}
