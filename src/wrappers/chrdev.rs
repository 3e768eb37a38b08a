// SPDX-License-Identifier: GPL-2.0

//! A device class with its own `/dev/<class>/` directory, a char device
//! number region, and one char device node per heap.
//!
//! `rust/kernel`'s `miscdevice` in 7.3 cannot set a node's directory or
//! mode, and udev rules match heaps by `SUBSYSTEM=="dma_heap"`, so heaps get
//! a class of their own, as upstream's `dma-heap.c` does.

use super::this_module;
use core::{fmt, mem::ManuallyDrop, pin::Pin, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CStrExt},
    sync::Arc,
    types::Opaque,
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

/// The most attributes a node's class device can have.
pub(crate) const MAX_ATTRS: usize = 10;

/// What a node does with its files, and the attributes of its class
/// device (`/sys/class/<class>/<name>/`).
pub(crate) trait NodeOps: Send + Sync + 'static {
    /// An ioctl on an open file of the node.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;

    /// The class device's attributes (at most [`MAX_ATTRS`]): each name,
    /// and whether root may write it (mode 0644; 0444 otherwise).
    const ATTRS: &'static [(&'static CStr, bool)];

    /// Writes the value of attribute `ATTRS[idx]` (a sysfs page).
    fn show(&self, idx: usize, f: &mut dyn fmt::Write) -> fmt::Result;

    /// Stores `text` (one line, trimmed) into writable attribute
    /// `ATTRS[idx]`.
    fn store(&self, idx: usize, text: &str) -> Result;

    /// Whether this node has attribute `ATTRS[idx]` (asked once, when the
    /// class device is created).
    fn has_attr(&self, _idx: usize) -> bool {
        true
    }
}

/// The part of a node open files can reach: the cdev the VFS keeps
/// pointers to, and the node's data, which each open file holds a
/// reference on.
///
/// # Invariants
///
/// `cdev` was initialized with [`Node::<T>::FOPS`] and this module as owner;
/// this memory is freed only once the cdev's kobject has no reference left
/// (no open file, no open in flight, no inode pointing at it).
#[pin_data]
struct Shared<T: NodeOps> {
    #[pin]
    cdev: Opaque<bindings::cdev>,
    data: Arc<T>,
}

/// One char device node `/dev/<class>/<name>` dispatching to `T`.
///
/// # Invariants
///
/// - Once `added`, `shared.cdev` is live in the char device map for
///   `devt`; `device` is the class device made for it, if any. Both are
///   torn down in `Drop`, device first.
/// - Open files reach only their own reference on the data (their private
///   data) and the cdev, whose memory outlives them (see [`Shared`]): a
///   node may be dropped while files are open. Each open file holds a
///   reference on this module (the cdev's and the fops' owner).
pub(crate) struct Node<T: NodeOps> {
    /// Dropped in `Drop`, unless a file still holds the cdev.
    shared: ManuallyDrop<Pin<KBox<Shared<T>>>>,
    devt: bindings::dev_t,
    class: Arc<Class>,
    added: bool,
    device: *mut bindings::device,
}

// SAFETY: the C parts are only touched in construction and drop; `T` is
// `Send + Sync`.
unsafe impl<T: NodeOps> Send for Node<T> {}
// SAFETY: shared access only reads `data` (`T: Sync`).
unsafe impl<T: NodeOps> Sync for Node<T> {}

impl<T: NodeOps> Node<T> {
    /// The node's file operations: static, read-only.
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: this_module().as_ptr(),
        open: Some(Self::open),
        release: Some(Self::release),
        unlocked_ioctl: Some(Self::ioctl),
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: Some(Self::ioctl),
        ..pin_init::zeroed()
    };

    /// The class device's attributes, built from `T::ATTRS` (unused
    /// slots zeroed).
    // `CStrExt::as_char_ptr` is not `const`.
    #[allow(clippy::disallowed_methods)]
    const ATTR_TABLE: &'static [bindings::device_attribute; MAX_ATTRS] = &{
        assert!(T::ATTRS.len() <= MAX_ATTRS);
        let mut table = [pin_init::zeroed::<bindings::device_attribute>(); MAX_ATTRS];
        let mut i = 0;
        while i < T::ATTRS.len() {
            let (name, writable) = T::ATTRS[i];
            table[i].attr.name = name.as_ptr();
            table[i].attr.mode = if writable { 0o644 } else { 0o444 };
            table[i].__bindgen_anon_1.show = Some(Self::show);
            if writable {
                table[i].__bindgen_anon_2.store = Some(Self::store);
            }
            i += 1;
        }
        table
    };

    /// `ATTR_TABLE`'s attributes, NULL-terminated.
    const ATTR_PTRS: &'static [*mut bindings::attribute; MAX_ATTRS + 1] = &{
        let mut ptrs = [core::ptr::null_mut(); MAX_ATTRS + 1];
        let mut i = 0;
        while i < T::ATTRS.len() {
            ptrs[i] = (&raw const Self::ATTR_TABLE[i].attr).cast_mut();
            i += 1;
        }
        ptrs
    };

    /// The attribute group of every node's class device.
    const GROUP: &'static bindings::attribute_group = &bindings::attribute_group {
        __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
            attrs: Self::ATTR_PTRS.as_ptr().cast_mut(),
        },
        __bindgen_anon_1: bindings::attribute_group__bindgen_ty_1 {
            is_visible: Some(Self::is_visible),
        },
        ..pin_init::zeroed()
    };

    /// The NULL-terminated groups `device_create_with_groups` takes.
    const GROUPS: &'static [*const bindings::attribute_group; 2] =
        &[Self::GROUP, core::ptr::null()];

    /// Creates the node for `devt` in `class`, not yet visible: see
    /// [`Self::publish`].
    pub(crate) fn new(class: &Arc<Class>, devt: bindings::dev_t, data: Arc<T>) -> Result<Self> {
        let shared = KBox::pin_init(
            try_pin_init!(Shared {
                cdev <- Opaque::ffi_init(|slot: *mut bindings::cdev| {
                    // SAFETY: `slot` is valid for writing; `cdev_init` zeroes
                    // it fully before filling it in. The table is static.
                    unsafe {
                        bindings::cdev_init(slot, &Self::FOPS);
                        (*slot).owner = this_module().as_ptr();
                    }
                }),
                data,
            }? Error),
            GFP_KERNEL,
        )?;
        Ok(Self {
            shared: ManuallyDrop::new(shared),
            devt,
            class: class.clone(),
            added: false,
            device: core::ptr::null_mut(),
        })
    }

    /// The node's data.
    pub(crate) fn data(&self) -> &T {
        &self.shared.data
    }

    /// Whether the node was added to the char device map (files may have
    /// been opened on it).
    pub(crate) fn is_live(&self) -> bool {
        self.added
    }

    /// Makes the node `/dev/<class>/<name>` visible to userspace.
    pub(crate) fn publish(&mut self, name: &CStr) -> Result {
        // SAFETY: `cdev` was initialized in `new` and is not yet added; it
        // is pinned and outlives its kobject references (see `Shared`).
        to_result(unsafe { bindings::cdev_add(self.shared.cdev.get(), self.devt, 1) })?;
        self.added = true;
        // The attributes' data: the node's, which outlives the device
        // (destroyed first in `Drop`, which removes its attributes and
        // waits for their callbacks).
        let drvdata = Arc::as_ptr(&self.shared.data).cast_mut();
        // SAFETY: the class is live (we hold it); `name` is NUL-terminated
        // and formatted through "%s"; the groups are static.
        let dev = unsafe {
            bindings::device_create_with_groups(
                self.class.ptr.as_ptr(),
                core::ptr::null_mut(),
                self.devt,
                drvdata.cast(),
                Self::GROUPS.as_ptr().cast_mut(),
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        self.device = from_err_ptr(dev)?;
        Ok(())
    }

    /// The index in `T::ATTRS` of the attribute `attr` of `ATTR_TABLE`.
    ///
    /// # Safety
    ///
    /// `attr` is one of `ATTR_TABLE`'s attributes.
    unsafe fn attr_index(attr: *const bindings::device_attribute) -> Option<usize> {
        // SAFETY: our attribute, named by a static NUL-terminated string.
        let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
        T::ATTRS.iter().position(|(n, _)| *n == name)
    }

    /// Whether the class device of `kobj` shows attribute `attr`.
    ///
    /// # Safety
    ///
    /// Called by sysfs on the class device of a node `publish` created
    /// (its kobject), for an attribute of `ATTR_TABLE`.
    unsafe extern "C" fn is_visible(
        kobj: *mut bindings::kobject,
        attr: *mut bindings::attribute,
        _n: ffi::c_int,
    ) -> bindings::umode_t {
        // SAFETY: the kobject is embedded in a class device (`kobj_to_dev`);
        // its driver data, set before its attributes are created, is the
        // node's data (see `publish`); `attr` is in a `device_attribute`.
        unsafe {
            let dev = kobj
                .cast::<u8>()
                .sub(core::mem::offset_of!(bindings::device, kobj))
                .cast::<bindings::device>();
            let data = &*(*dev).driver_data.cast::<T>();
            let dattr = attr
                .cast::<u8>()
                .sub(core::mem::offset_of!(bindings::device_attribute, attr))
                .cast::<bindings::device_attribute>();
            match Self::attr_index(dattr) {
                Some(idx) if data.has_attr(idx) => (*attr).mode,
                _ => 0,
            }
        }
    }

    /// `show` of every attribute.
    ///
    /// # Safety
    ///
    /// Called by sysfs on an attribute of `ATTR_TABLE` of a class device
    /// `publish` created, with its PAGE_SIZE buffer.
    unsafe extern "C" fn show(
        dev: *mut bindings::device,
        attr: *mut bindings::device_attribute,
        buf: *mut ffi::c_char,
    ) -> isize {
        // SAFETY: the device's driver data is the node's data, which
        // outlives its attributes (see `publish`).
        let data = unsafe { &*(*dev).driver_data.cast::<T>() };
        // SAFETY: one of our attributes.
        let Some(idx) = (unsafe { Self::attr_index(attr) }) else {
            return EINVAL.to_errno() as isize;
        };
        // SAFETY: sysfs hands `show` a zeroed page to fill.
        let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE) };
        let mut f = kernel::str::Formatter::new(page);
        match data.show(idx, &mut f) {
            Ok(()) => f.bytes_written() as isize,
            Err(_) => EINVAL.to_errno() as isize,
        }
    }

    /// `store` of every writable attribute.
    ///
    /// # Safety
    ///
    /// As for [`Self::show`], with `count` bytes written by userspace at
    /// `buf`.
    unsafe extern "C" fn store(
        dev: *mut bindings::device,
        attr: *mut bindings::device_attribute,
        buf: *const ffi::c_char,
        count: usize,
    ) -> isize {
        // SAFETY: as in `show`.
        let data = unsafe { &*(*dev).driver_data.cast::<T>() };
        // SAFETY: one of our attributes.
        let Some(idx) = (unsafe { Self::attr_index(attr) }) else {
            return EINVAL.to_errno() as isize;
        };
        // SAFETY: sysfs passes `count` readable bytes.
        let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        let Ok(text) = core::str::from_utf8(bytes) else {
            return EINVAL.to_errno() as isize;
        };
        match data.store(idx, text.trim()) {
            Ok(()) => count as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS for an inode of one of our nodes.
    unsafe extern "C" fn open(
        inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `i_cdev` is the cdev of a `Shared<T>`, whose memory lives
        // at least as long as the reference `chrdev_open` holds on it.
        let shared = unsafe {
            &*kernel::container_of!(
                (*inode)
                    .__bindgen_anon_5
                    .i_cdev
                    .cast::<Opaque<bindings::cdev>>(),
                Shared<T>,
                cdev
            )
        };
        // SAFETY: valid inode and file being opened.
        let ret = unsafe { bindings::nonseekable_open(inode, file) };
        if ret == 0 {
            // The file's own reference, given back in `release`.
            let data = Arc::into_raw(shared.data.clone());
            // SAFETY: `file` is being opened; its private data is ours.
            unsafe { (*file).private_data = data.cast_mut().cast() };
        }
        ret
    }

    /// # Safety
    ///
    /// Called by the VFS when the last reference to a file `open` set up
    /// goes.
    unsafe extern "C" fn release(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: the reference `open` stored; no other callback runs on
        // this file any more.
        drop(unsafe { Arc::from_raw((*file).private_data.cast::<T>()) });
        0
    }

    /// # Safety
    ///
    /// Called by the VFS on an open file of one of our nodes.
    unsafe extern "C" fn ioctl(
        file: *mut bindings::file,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_long {
        // SAFETY: `open` stored the file's reference on the data, released
        // only in `release`, after every other callback.
        let data = unsafe { &*(*file).private_data.cast::<T>() };
        match data.ioctl(cmd, arg) {
            Ok(v) => v as ffi::c_long,
            Err(e) => e.to_errno() as ffi::c_long,
        }
    }
}

impl<T: NodeOps> Drop for Node<T> {
    fn drop(&mut self) {
        if !self.device.is_null() {
            // SAFETY: the device was created for `devt` in our live class.
            unsafe { bindings::device_destroy(self.class.ptr.as_ptr(), self.devt) };
        }
        if !self.added {
            // SAFETY: dropped only here; nothing else refers to it.
            unsafe { ManuallyDrop::drop(&mut self.shared) };
            return;
        }
        let cdev = self.shared.cdev.get();
        // SAFETY: the cdev was added; afterwards no new open finds it.
        unsafe { bindings::cdev_del(cdev) };
        // An open file (or an open in flight) still holds the cdev: its
        // memory must outlive that reference, so it is left allocated (its
        // kobject's release only unlinks it). Never the case at module
        // exit: every open file holds a module reference.
        // SAFETY: the cdev's kobject is initialized; taking a reference
        // only succeeds while someone else holds one.
        let kobj = unsafe { bindings::kobject_get_unless_zero(&raw mut (*cdev).kobj) };
        if !kobj.is_null() {
            // SAFETY: the reference just taken.
            unsafe { bindings::kobject_put(kobj) };
            return;
        }
        // SAFETY: dropped only here; no reference to the cdev is left and
        // none can be taken (it is out of the char device map and its
        // inodes were unlinked by its kobject's release).
        unsafe { ManuallyDrop::drop(&mut self.shared) };
    }
}
