// SPDX-License-Identifier: GPL-2.0

//! A device class with its own `/dev/<class>/` directory, a char device
//! number region, and one char device node per heap.
//!
//! `rust/kernel`'s `miscdevice` in 7.3 cannot set a node's directory or
//! mode, and udev rules match heaps by `SUBSYSTEM=="dma_heap"`, so heaps get
//! a class of their own, as upstream's `dma-heap.c` does.

use core::{pin::Pin, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi,
    prelude::*,
    str::{CStr, CStrExt},
    sync::Arc,
    types::Opaque,
    ThisModule,
};

/// A device class whose devices appear as `/dev/<class name>/<device name>`.
///
/// # Invariants
///
/// `ptr` is a class made by `class_create` and destroyed in `Drop`.
pub(crate) struct Class {
    ptr: NonNull<bindings::class>,
}

// SAFETY: the driver core serializes class operations internally.
unsafe impl Send for Class {}
// SAFETY: see `Send`.
unsafe impl Sync for Class {}

impl Class {
    /// Registers class `name` (`EEXIST` when the name is taken).
    pub(crate) fn new(name: &'static CStr) -> Result<Arc<Self>> {
        // SAFETY: `name` is NUL-terminated and outlives the class.
        let ptr = from_err_ptr(unsafe { bindings::class_create(name.as_char_ptr()) })?;
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: the class has no devices yet, so nobody reads `devnode`.
        unsafe { (*ptr.as_ptr()).devnode = Some(devnode) };
        Ok(Arc::new(Self { ptr }, GFP_KERNEL)?)
    }
}

impl Drop for Class {
    fn drop(&mut self) {
        // SAFETY: made by `class_create`, destroyed only here.
        unsafe { bindings::class_destroy(self.ptr.as_ptr()) };
    }
}

/// `class->devnode`: place every node in a directory named after the class.
///
/// # Safety
///
/// Called only by the driver core, with a registered device of a [`Class`].
unsafe extern "C" fn devnode(
    dev: *const bindings::device,
    _mode: *mut bindings::umode_t,
) -> *mut ffi::c_char {
    // SAFETY: the driver core passes a registered device of our class; its
    // class name and device name are NUL-terminated strings.
    unsafe {
        bindings::kasprintf(
            bindings::GFP_KERNEL,
            c"%s/%s".as_char_ptr(),
            (*(*dev).class).name,
            bindings::dev_name(dev),
        )
    }
}

/// A region of char device numbers.
///
/// # Invariants
///
/// `base..base + count` were allocated by `alloc_chrdev_region`.
pub(crate) struct ChrdevRegion {
    base: bindings::dev_t,
    count: u32,
}

impl ChrdevRegion {
    /// Allocates `count` numbers under a dynamic major, shown as `name` in
    /// `/proc/devices`.
    pub(crate) fn new(count: u32, name: &'static CStr) -> Result<Self> {
        let mut base: bindings::dev_t = 0;
        // SAFETY: `base` is a valid out-pointer; `name` outlives the region.
        to_result(unsafe {
            bindings::alloc_chrdev_region(&mut base, 0, count, name.as_char_ptr())
        })?;
        Ok(Self { base, count })
    }

    /// The device number of `minor` (which must be below `count`).
    pub(crate) fn devt(&self, minor: u32) -> Option<bindings::dev_t> {
        // The region starts at minor 0 of its major, so adding works.
        (minor < self.count).then(|| self.base + minor)
    }
}

impl Drop for ChrdevRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, released only here.
        unsafe { bindings::unregister_chrdev_region(self.base, self.count) };
    }
}

/// What a node does with its files.
pub(crate) trait NodeOps: Send + Sync + Sized {
    /// An ioctl on an open file of the node.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;
}

/// One char device node `/dev/<class>/<name>` dispatching to `T`.
///
/// # Invariants
///
/// - `cdev` was initialized with `fops` and, once `added`, is live in the
///   char device map for `devt`; `device` is the class device made for it,
///   if any. Both are torn down in `Drop`, device first.
/// - Open files of the node hold a reference on the owning module (the
///   cdev's and fops' owner), so the node, which lives until module exit,
///   outlives every file.
#[pin_data(PinnedDrop)]
pub(crate) struct Node<T: NodeOps> {
    #[pin]
    cdev: Opaque<bindings::cdev>,
    #[pin]
    fops: Opaque<bindings::file_operations>,
    devt: bindings::dev_t,
    class: Arc<Class>,
    added: bool,
    device: *mut bindings::device,
    data: T,
}

// SAFETY: the C parts are only touched in construction and drop; `T` is
// `Send`.
unsafe impl<T: NodeOps> Send for Node<T> {}
// SAFETY: shared access only reads `data` (`T: Sync`).
unsafe impl<T: NodeOps> Sync for Node<T> {}

impl<T: NodeOps> Node<T> {
    /// Creates and registers the node `name` for `devt` in `class`; it is
    /// visible to userspace when this returns.
    pub(crate) fn new(
        class: &Arc<Class>,
        devt: bindings::dev_t,
        name: &CStr,
        data: T,
        module: &'static ThisModule,
    ) -> Result<Pin<KBox<Self>>> {
        let mut node = KBox::pin_init(
            try_pin_init!(Self {
                cdev <- Opaque::ffi_init(|slot| {
                    // SAFETY: `slot` is valid for writing; `cdev_init` zeroes
                    // it fully before filling it in.
                    unsafe { bindings::cdev_init(slot, core::ptr::null()) }
                }),
                fops <- Opaque::ffi_init(|slot: *mut bindings::file_operations| {
                    // SAFETY: `slot` is valid for writing a whole struct.
                    unsafe { slot.write(Self::fops(module)) }
                }),
                devt,
                class: class.clone(),
                added: false,
                device: core::ptr::null_mut(),
                data,
            }? Error),
            GFP_KERNEL,
        )?;
        node.as_mut().register(name, module)?;
        Ok(node)
    }

    /// The node's data.
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    fn fops(module: &'static ThisModule) -> bindings::file_operations {
        bindings::file_operations {
            owner: module.as_ptr(),
            open: Some(Self::open),
            unlocked_ioctl: Some(Self::ioctl),
            #[cfg(CONFIG_COMPAT)]
            compat_ioctl: Some(Self::ioctl),
            // SAFETY: all-zero is a valid `file_operations` (every hook
            // absent).
            ..unsafe { core::mem::zeroed() }
        }
    }

    fn register(self: Pin<&mut Self>, name: &CStr, module: &'static ThisModule) -> Result {
        // SAFETY: we do not move out of `this`; the C side keeps pointers to
        // the pinned `cdev` and `fops`.
        let this = unsafe { self.get_unchecked_mut() };
        let cdev = this.cdev.get();
        // SAFETY: `cdev` was initialized in `new` and is not yet added;
        // `fops` is pinned next to it and lives as long.
        to_result(unsafe {
            (*cdev).ops = this.fops.get();
            (*cdev).owner = module.as_ptr();
            bindings::cdev_add(cdev, this.devt, 1)
        })?;
        this.added = true;
        // SAFETY: the class is live (we hold it); `name` is NUL-terminated
        // and formatted through "%s".
        let dev = unsafe {
            bindings::device_create(
                this.class.ptr.as_ptr(),
                core::ptr::null_mut(),
                this.devt,
                core::ptr::null_mut(),
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        this.device = from_err_ptr(dev)?;
        Ok(())
    }

    /// # Safety
    ///
    /// Called by the VFS for an inode of one of our nodes.
    unsafe extern "C" fn open(
        inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `i_cdev` is the cdev embedded in a live `Node<T>` (the
        // open holds a module reference; see the type invariants).
        let node = unsafe {
            kernel::container_of!(
                (*inode)
                    .__bindgen_anon_5
                    .i_cdev
                    .cast::<Opaque<bindings::cdev>>(),
                Self,
                cdev
            )
        };
        // SAFETY: `file` is being opened; its private data is ours.
        unsafe { (*file).private_data = node.cast() };
        // SAFETY: valid inode and file being opened.
        unsafe { bindings::nonseekable_open(inode, file) }
    }

    /// # Safety
    ///
    /// Called by the VFS on an open file of one of our nodes.
    unsafe extern "C" fn ioctl(
        file: *mut bindings::file,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_long {
        // SAFETY: `open` stored the node, which outlives the file.
        let node = unsafe { &*(*file).private_data.cast::<Self>() };
        match node.data.ioctl(cmd, arg) {
            Ok(v) => v as ffi::c_long,
            Err(e) => e.to_errno() as ffi::c_long,
        }
    }
}

#[pinned_drop]
impl<T: NodeOps> PinnedDrop for Node<T> {
    fn drop(self: Pin<&mut Self>) {
        if !self.device.is_null() {
            // SAFETY: the device was created for `devt` in our live class.
            unsafe { bindings::device_destroy(self.class.ptr.as_ptr(), self.devt) };
        }
        if self.added {
            // SAFETY: the cdev was added; no file is open (module exit).
            unsafe { bindings::cdev_del(self.cdev.get()) };
        }
    }
}
