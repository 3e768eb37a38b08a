// SPDX-License-Identifier: GPL-2.0

//! A directory of its own under `/sys/kernel/` with one read-only file
//! (`kobject_create_and_add`, a `kobj_attribute`): where Android's dma-heap
//! framework reports `total_pools_kb`.

use core::{fmt, pin::Pin, ptr::NonNull};
use kernel::{bindings, ffi, page::PAGE_SIZE, prelude::*, str::CStr, types::Opaque};

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

/// `/sys/kernel/<dir>/<file>`, removed when dropped.
///
/// # Invariants
///
/// `dir` is a kobject from `kobject_create_and_add` (we hold its reference)
/// with `attr`'s attribute as a file, removed in `Drop` before `attr` goes.
pub(crate) struct KernelFile<T: Show> {
    dir: NonNull<bindings::kobject>,
    attr: Pin<KBox<Attr<T>>>,
}

// SAFETY: the kobject is only removed (once, in `Drop`); `T: Send + Sync`.
unsafe impl<T: Show> Send for KernelFile<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Show> Sync for KernelFile<T> {}

impl<T: Show> KernelFile<T> {
    /// Creates `/sys/kernel/<dir>/<file>` (mode 0444) showing `data`.
    pub(crate) fn new(dir: &CStr, file: &'static CStr, data: T) -> Result<Self> {
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
        // SAFETY: `kernel_kobj` is the kernel's `/sys/kernel` kobject, set
        // up at boot and never freed; the name is copied.
        let dir =
            unsafe { bindings::kobject_create_and_add(dir.as_char_ptr(), bindings::kernel_kobj) };
        let dir = NonNull::new(dir).ok_or(ENOMEM)?;
        // SAFETY: a live kobject we hold; the attribute is pinned and lives
        // until the file is removed (`Drop`).
        let ret = unsafe {
            bindings::sysfs_create_file_ns(
                dir.as_ptr(),
                &raw const (*attr.kattr.get()).attr,
                core::ptr::null(),
            )
        };
        if ret != 0 {
            // SAFETY: the reference `kobject_create_and_add` gave us; the
            // directory leaves sysfs before its (maybe late) release.
            unsafe {
                bindings::kobject_del(dir.as_ptr());
                bindings::kobject_put(dir.as_ptr());
            }
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: created, with the file.
        Ok(Self { dir, attr })
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
        // `show`s, so `attr` may go afterwards; the directory leaves sysfs
        // now (its name is free for the next load even while a reference
        // delays its release), then our reference is put.
        unsafe {
            bindings::sysfs_remove_file_ns(
                self.dir.as_ptr(),
                &raw const (*self.attr.kattr.get()).attr,
                core::ptr::null(),
            );
            bindings::kobject_del(self.dir.as_ptr());
            bindings::kobject_put(self.dir.as_ptr());
        }
    }
}
