// SPDX-License-Identifier: GPL-2.0

//! Directories of our own under `/sys/kernel/` (`kobject_create_and_add`)
//! and files in them (`kobj_attribute`): one read-only file, where
//! Android's dma-heap framework reports `total_pools_kb`, and a node's
//! attributes in a directory of their own (the heaps' properties in both
//! modes, `/sys/kernel/rust_dma_heap/heaps/<heap>/`).

use super::chrdev::NodeOps;
use core::{fmt, pin::Pin, ptr::NonNull};
use kernel::{bindings, ffi, page::PAGE_SIZE, prelude::*, str::CStr, sync::Arc, types::Opaque};

/// What the file shows.
pub(crate) trait Show: Send + Sync + 'static {
    /// Writes the file's contents (at most a page).
    fn show(&self, f: &mut dyn fmt::Write) -> fmt::Result;
}

/// The attribute and the data it shows, together (the callback finds the
/// data from the attribute).
#[pin_data]
struct Attr<T: Show> {
    #[pin]
    kattr: Opaque<bindings::kobj_attribute>,
    data: T,
}

/// `<dir>/<file>` (`dir` one of our [`KernelDir`]s), removed when dropped.
///
/// # Invariants
///
/// `attr`'s attribute is a file of `dir`, removed in `Drop` before `attr`
/// goes.
pub(crate) struct KernelFile<T: Show> {
    dir: Arc<KernelDir>,
    attr: Pin<KBox<Attr<T>>>,
}

// SAFETY: the attribute is only read by sysfs and removed once, in `Drop`;
// `T: Send + Sync`.
unsafe impl<T: Show> Send for KernelFile<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Show> Sync for KernelFile<T> {}

impl<T: Show> KernelFile<T> {
    /// Creates `<dir>/<file>` (mode 0444) showing `data`.
    pub(crate) fn new(dir: &Arc<KernelDir>, file: &'static CStr, data: T) -> Result<Self> {
        let attr = KBox::pin_init(
            pin_init!(Attr {
                kattr <- Opaque::ffi_init(|slot: *mut bindings::kobj_attribute| {
                    // SAFETY: `slot` is valid for writing; zeroed, then the
                    // name (static), mode and `show` are set, and, as
                    // `sysfs_attr_init()` does for an attribute not in static
                    // memory, a static lockdep key.
                    unsafe {
                        slot.write(pin_init::zeroed());
                        (*slot).attr.name = file.as_char_ptr();
                        (*slot).attr.mode = 0o444;
                        (*slot).__bindgen_anon_1.show = Some(Self::show);
                        #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
                        {
                            (*slot).attr.key = kernel::static_lock_class!().as_ptr();
                        }
                    }
                }),
                data,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: a live directory we hold; the attribute is pinned and
        // lives until the file is removed (`Drop`).
        let ret = unsafe {
            bindings::sysfs_create_file_ns(
                dir.kobj.as_ptr(),
                &raw const (*attr.kattr.get()).attr,
                core::ptr::null(),
            )
        };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: created.
        Ok(Self {
            dir: dir.clone(),
            attr,
        })
    }

    /// # Safety
    ///
    /// Called by sysfs on the attribute of a live [`KernelFile`], with a
    /// page to fill.
    unsafe extern "C" fn show(
        _kobj: *mut bindings::kobject,
        kattr: *mut bindings::kobj_attribute,
        buf: *mut ffi::c_char,
    ) -> isize {
        // SAFETY: `kattr` is the `kattr` field of an `Attr<T>` (an `Opaque`
        // is a transparent wrapper), live while its file exists.
        let attr = unsafe {
            &*kattr
                .cast::<u8>()
                .sub(core::mem::offset_of!(Attr<T>, kattr))
                .cast::<Attr<T>>()
        };
        // SAFETY: sysfs hands `show` a zeroed page.
        let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE) };
        let mut f = kernel::str::Formatter::new(page);
        match attr.data.show(&mut f) {
            Ok(()) => f.bytes_written() as isize,
            Err(_) => EINVAL.to_errno() as isize,
        }
    }
}

impl<T: Show> Drop for KernelFile<T> {
    fn drop(&mut self) {
        // SAFETY: created in `new`; removing the file waits for running
        // `show`s, so `attr` may go afterwards (and the directory, after
        // its other holders).
        unsafe {
            bindings::sysfs_remove_file_ns(
                self.dir.kobj.as_ptr(),
                &raw const (*self.attr.kattr.get()).attr,
                core::ptr::null(),
            );
        }
    }
}

/// A directory of its own under `/sys/kernel/` or under another such
/// directory (`kobject_create_and_add`), removed when dropped.
///
/// # Invariants
///
/// `kobj` is a kobject from `kobject_create_and_add` whose reference we
/// hold; it leaves sysfs in `Drop` (its children, dropped first, have left
/// already).
pub(crate) struct KernelDir {
    kobj: NonNull<bindings::kobject>,
}

// SAFETY: the kobject is only removed (once, in `Drop`).
unsafe impl Send for KernelDir {}
// SAFETY: see `Send`.
unsafe impl Sync for KernelDir {}

impl KernelDir {
    /// Creates `/sys/kernel/<name>`, or `<parent>/<name>`.
    pub(crate) fn new(name: &CStr, parent: Option<&KernelDir>) -> Result<Self> {
        let parent = match parent {
            Some(dir) => dir.kobj.as_ptr(),
            // SAFETY: `kernel_kobj` is the kernel's `/sys/kernel` kobject,
            // set up at boot and never freed.
            None => unsafe { bindings::kernel_kobj },
        };
        // SAFETY: `parent` is live (above, or a directory the caller
        // holds); the name is copied. NULL when the name is taken.
        let kobj = unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), parent) };
        // INVARIANT: created.
        Ok(Self {
            kobj: NonNull::new(kobj).ok_or(EEXIST)?,
        })
    }
}

impl Drop for KernelDir {
    fn drop(&mut self) {
        // SAFETY: created in `new`: it leaves sysfs now (its name is free
        // for the next load even while a reference delays its release),
        // then our reference is put.
        unsafe {
            bindings::kobject_del(self.kobj.as_ptr());
            bindings::kobject_put(self.kobj.as_ptr());
        }
    }
}

/// One attribute of a [`NodeDir`], with what it shows (the callbacks find
/// both from the attribute).
#[pin_data]
struct NodeAttr<T: NodeOps> {
    #[pin]
    kattr: Opaque<bindings::kobj_attribute>,
    idx: usize,
    data: Arc<T>,
}

/// The attributes of a node (`T::ATTRS`, those it has) in a directory of
/// their own under `parent`: `<parent>/<name>/<attribute>`, removed when
/// dropped.
///
/// # Invariants
///
/// Each attribute of `attrs` is a file of `dir` until `Drop` removes it,
/// before the attribute goes.
pub(crate) struct NodeDir<T: NodeOps> {
    attrs: KVec<Pin<KBox<NodeAttr<T>>>>,
    dir: KernelDir,
}

// SAFETY: the attributes are only read by sysfs and removed once, in
// `Drop`; `T: Send + Sync`.
unsafe impl<T: NodeOps> Send for NodeDir<T> {}
// SAFETY: see `Send`.
unsafe impl<T: NodeOps> Sync for NodeDir<T> {}

impl<T: NodeOps> NodeDir<T> {
    /// `<parent>/<name>/` with `data`'s attributes (0444, 0644 for the
    /// writable ones).
    pub(crate) fn new(parent: &KernelDir, name: &CStr, data: Arc<T>) -> Result<Self> {
        let mut this = Self {
            attrs: KVec::new(),
            dir: KernelDir::new(name, Some(parent))?,
        };
        for (idx, &(file, writable)) in T::ATTRS.iter().enumerate() {
            if !data.has_attr(idx) {
                continue;
            }
            let owner = data.clone();
            let attr = KBox::pin_init(
                pin_init!(NodeAttr {
                    kattr <- Opaque::ffi_init(|slot: *mut bindings::kobj_attribute| {
                        // SAFETY: `slot` is valid for writing; zeroed, then
                        // the name (static), mode and callbacks are set,
                        // and, as `sysfs_attr_init()` does for an attribute
                        // not in static memory, a static lockdep key.
                        unsafe {
                            slot.write(pin_init::zeroed());
                            (*slot).attr.name = file.as_char_ptr();
                            (*slot).attr.mode = if writable { 0o644 } else { 0o444 };
                            (*slot).__bindgen_anon_1.show = Some(Self::show);
                            if writable {
                                (*slot).__bindgen_anon_2.store = Some(Self::store);
                            }
                            #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
                            {
                                (*slot).attr.key = kernel::static_lock_class!().as_ptr();
                            }
                        }
                    }),
                    idx,
                    data: owner,
                }),
                GFP_KERNEL,
            )?;
            this.attrs.reserve(1, GFP_KERNEL)?;
            // SAFETY: a live directory of ours; the attribute is pinned and
            // lives until its file is removed (`Drop`).
            let ret = unsafe {
                bindings::sysfs_create_file_ns(
                    this.dir.kobj.as_ptr(),
                    &raw const (*attr.kattr.get()).attr,
                    core::ptr::null(),
                )
            };
            if ret != 0 {
                // The files made so far go with `this`.
                return Err(Error::from_errno(ret));
            }
            // INVARIANT: a file now; room reserved above.
            this.attrs.push(attr, GFP_KERNEL)?;
        }
        Ok(this)
    }

    /// # Safety
    ///
    /// `kattr` is the attribute of a live [`NodeAttr<T>`].
    unsafe fn attr<'a>(kattr: *mut bindings::kobj_attribute) -> &'a NodeAttr<T> {
        // SAFETY: `kattr` is the `kattr` field of a `NodeAttr<T>` (an
        // `Opaque` is a transparent wrapper), live while its file exists.
        unsafe {
            &*kattr
                .cast::<u8>()
                .sub(core::mem::offset_of!(NodeAttr<T>, kattr))
                .cast::<NodeAttr<T>>()
        }
    }

    /// # Safety
    ///
    /// Called by sysfs on the attribute of a live [`NodeDir`], with a page
    /// to fill.
    unsafe extern "C" fn show(
        _kobj: *mut bindings::kobject,
        kattr: *mut bindings::kobj_attribute,
        buf: *mut ffi::c_char,
    ) -> isize {
        // SAFETY: as the caller promises.
        let attr = unsafe { Self::attr(kattr) };
        // SAFETY: sysfs hands `show` a zeroed page.
        let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE) };
        let mut f = kernel::str::Formatter::new(page);
        match attr.data.show(attr.idx, &mut f) {
            Ok(()) => f.bytes_written() as isize,
            Err(_) => EINVAL.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by sysfs on a writable attribute of a live [`NodeDir`], with
    /// `count` bytes at `buf`.
    unsafe extern "C" fn store(
        _kobj: *mut bindings::kobject,
        kattr: *mut bindings::kobj_attribute,
        buf: *const ffi::c_char,
        count: usize,
    ) -> isize {
        // SAFETY: as the caller promises.
        let attr = unsafe { Self::attr(kattr) };
        // SAFETY: sysfs passes `count` readable bytes.
        let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        let done = core::str::from_utf8(bytes)
            .map_err(|_| EINVAL)
            .and_then(|text| attr.data.store(attr.idx, text.trim()));
        match done {
            Ok(()) => count as isize,
            Err(e) => e.to_errno() as isize,
        }
    }
}

impl<T: NodeOps> Drop for NodeDir<T> {
    fn drop(&mut self) {
        for attr in &self.attrs {
            // SAFETY: a file of our directory (type invariant); removing it
            // waits for running callbacks, so the attribute may go after.
            unsafe {
                bindings::sysfs_remove_file_ns(
                    self.dir.kobj.as_ptr(),
                    &raw const (*attr.kattr.get()).attr,
                    core::ptr::null(),
                )
            };
        }
        // `dir` goes after (declared last).
    }
}
