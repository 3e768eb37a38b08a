// SPDX-License-Identifier: GPL-2.0

//! A device class with its own `/dev/<class>/` directory, a char device
//! number region, and one char device node per heap.
//!
//! `rust/kernel`'s `miscdevice` in 7.3 cannot set a node's directory or
//! mode, and udev rules match heaps by `SUBSYSTEM=="dma_heap"`, so heaps get
//! a class of their own, as upstream's `dma-heap.c` does.

use super::ffi_helpers;
use super::this_module;
use core::{
    fmt,
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CStrExt},
    sync::{Arc, ArcBorrow},
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

impl Class {
    /// Registers class `name` whose devices appear as `/dev/<device name>`,
    /// readable and writable by everyone (mode 0666): for a node that grants
    /// nothing by itself (`EEXIST` when the name is taken).
    pub(crate) fn new_flat(name: &'static CStr) -> Result<Arc<Self>> {
        // SAFETY: `name` is NUL-terminated and outlives the class.
        let ptr = from_err_ptr(unsafe { bindings::class_create(name.as_char_ptr()) })?;
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: the class has no devices yet, so nobody reads `devnode`.
        unsafe { (*ptr.as_ptr()).devnode = Some(devnode_flat) };
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

/// `class->devnode` of [`Class::new_flat`]: the device's own name, mode
/// 0666.
///
/// # Safety
///
/// Called only by the driver core, with a registered device of a [`Class`]
/// and `mode` NULL or valid for writes.
unsafe extern "C" fn devnode_flat(
    _dev: *const bindings::device,
    mode: *mut bindings::umode_t,
) -> *mut ffi::c_char {
    if !mode.is_null() {
        // SAFETY: valid for writes (the caller's contract).
        unsafe { *mode = 0o666 };
    }
    core::ptr::null_mut()
}

/// Which node a file was opened on: the private data an open file of a
/// node of this module's ([`Node`]) or of the kernel's dma-heap framework
/// holds. Compared, never dereferenced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeKey(usize);

impl NodeKey {
    /// A key of the framework's: its `struct dma_heap`, which its node's
    /// files hold as private data.
    pub(crate) fn from_ptr<P>(ptr: *const P) -> Self {
        Self(ptr as usize)
    }

    /// The key of the char device node `file` was opened on (its private
    /// data); `None` for a file that is not a char device.
    pub(crate) fn of_file(file: &kernel::fs::file::LocalFile) -> Option<Self> {
        // SAFETY: a file we hold a reference to: its inode is live, its
        // mode fixed. Its private data is read once (`READ_ONCE`): ours
        // and the framework's are set at open, before the fd existed;
        // another driver's may change under us, and is then some other
        // value (compared, never dereferenced).
        unsafe {
            let f = file.as_ptr();
            let mode = u32::from((*(*f).f_inode).i_mode);
            (mode & bindings::S_IFMT == bindings::S_IFCHR)
                .then(|| Self(core::ptr::read_volatile(&raw const (*f).private_data) as usize))
        }
    }
}

/// A region of char device numbers, each handed out once.
///
/// # Invariants
///
/// `base..base + count` were allocated by `alloc_chrdev_region`; numbers
/// below `base + next` were handed out as [`DevNumber`]s, each once.
pub(crate) struct ChrdevRegion {
    base: bindings::dev_t,
    count: u32,
    next: AtomicU32,
}

impl ChrdevRegion {
    /// Allocates `count` numbers under a dynamic major, shown as `name` in
    /// `/proc/devices`.
    pub(crate) fn new(count: u32, name: &'static CStr) -> Result<Arc<Self>> {
        let mut base: bindings::dev_t = 0;
        // SAFETY: `base` is a valid out-pointer; `name` outlives the region.
        to_result(unsafe {
            bindings::alloc_chrdev_region(&mut base, 0, count, name.as_char_ptr())
        })?;
        Ok(Arc::new(
            Self {
                base,
                count,
                next: AtomicU32::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    /// The next number of the region, never handed out before; `None` when
    /// all are.
    pub(crate) fn take(self: &Arc<Self>) -> Option<DevNumber> {
        let minor = self
            .next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.count).then_some(n + 1)
            })
            .ok()?;
        // INVARIANT: counted as handed out above, once. The region starts
        // at minor 0 of its major, so adding works.
        Some(DevNumber {
            devt: self.base + minor,
            _region: self.clone(),
        })
    }
}

impl Drop for ChrdevRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, released only here; no number is in
        // use (each `DevNumber` holds the region).
        unsafe { bindings::unregister_chrdev_region(self.base, self.count) };
    }
}

/// One char device number of a [`ChrdevRegion`], owned: only the region
/// makes them, each number once, so no two nodes share one and no node
/// uses a number that is not this module's.
pub(crate) struct DevNumber {
    devt: bindings::dev_t,
    /// The region stays allocated while its numbers are used.
    _region: Arc<ChrdevRegion>,
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

/// One char device node `/dev/<class>/<name>` dispatching to `T`.
///
/// Nothing of the node's own memory is reachable from the VFS: the char
/// device is the kernel's (`cdev_alloc()`, freed by its kobject's release,
/// however late that runs), and its parent is the node's class device,
/// which it keeps alive (`cdev_set_parent()`). An open finds the node's
/// data through the class device's driver data, under the device's lock,
/// and takes a reference of its own; `Drop` empties that slot under the
/// same lock, so an open that comes later (a file of the node still open
/// keeps the char device reachable) finds nothing (`ENXIO`). No kobject
/// release of this node runs module code.
///
/// # Invariants
///
/// - `published` is `None` until [`Self::publish`] succeeded once; then
///   `device` is a class device of `class` made for `devt`, holding in its
///   driver data a reference on `data` (`Arc::into_raw`) until `Drop`
///   takes it back, and `cdev` a char device of the kernel's for `devt`
///   alone, added with `device` as parent, with [`Self::FOPS`].
/// - Open files hold a reference on `data` each (their private data) and
///   one on this module (the fops' owner).
pub(crate) struct Node<T: NodeOps> {
    data: Arc<T>,
    number: DevNumber,
    class: Arc<Class>,
    published: Option<Published>,
}

/// What [`Node::publish`] made.
struct Published {
    device: NonNull<bindings::device>,
    cdev: NonNull<bindings::cdev>,
}

// SAFETY: the C parts are only touched in construction and drop (the driver
// core and the char device map lock themselves); `T` is `Send + Sync`.
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
    // `CStrExt::as_char_ptr` is not `const`; `c_char` is `i8` on x86 but
    // the bindings' `char` is `u8` (`-funsigned-char`): cast.
    #[allow(clippy::disallowed_methods)]
    const ATTR_TABLE: &'static [bindings::device_attribute; MAX_ATTRS] = &{
        assert!(T::ATTRS.len() <= MAX_ATTRS);
        let mut table = [pin_init::zeroed::<bindings::device_attribute>(); MAX_ATTRS];
        let mut i = 0;
        while i < T::ATTRS.len() {
            let (name, writable) = T::ATTRS[i];
            table[i].attr.name = name.as_ptr().cast();
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

    /// The attribute group of every node's class device. (Fields are
    /// assigned, not listed: with `CONFIG_CFI`, `is_visible` and
    /// `is_visible_const` are two fields of a struct, not one union.)
    const GROUP: &'static bindings::attribute_group = &{
        let mut group: bindings::attribute_group = pin_init::zeroed();
        group.__bindgen_anon_2.attrs = Self::ATTR_PTRS.as_ptr().cast_mut();
        group.__bindgen_anon_1.is_visible = Some(Self::is_visible);
        group
    };

    /// The NULL-terminated groups `device_create_with_groups` takes.
    const GROUPS: &'static [*const bindings::attribute_group; 2] =
        &[Self::GROUP, core::ptr::null()];

    /// Creates the node with `number` in `class`, not yet visible: see
    /// [`Self::publish`].
    pub(crate) fn new(class: &Arc<Class>, number: DevNumber, data: Arc<T>) -> Self {
        Self {
            data,
            number,
            class: class.clone(),
            published: None,
        }
    }

    /// The key its open files carry (see [`NodeKey`]).
    pub(crate) fn key(&self) -> NodeKey {
        NodeKey::from_ptr(Arc::as_ptr(&self.data))
    }

    /// The node's data.
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    /// Makes the node `/dev/<class>/<name>` visible to userspace: its class
    /// device, then its char device. `EBUSY` when it is published already;
    /// on any failure nothing is left published.
    pub(crate) fn publish(&mut self, name: &CStr) -> Result {
        if self.published.is_some() {
            return Err(EBUSY);
        }
        let devt = self.number.devt;
        // The device's reference on the data, taken back in `Drop` (or
        // below, if the char device cannot be added).
        let drvdata = Arc::into_raw(self.data.clone()).cast_mut();
        // SAFETY: the class is live (we hold it); `name` is NUL-terminated
        // and formatted through "%s"; the groups are static; the driver
        // data is set before the attributes appear.
        let dev = unsafe {
            bindings::device_create_with_groups(
                self.class.ptr.as_ptr(),
                core::ptr::null_mut(),
                devt,
                drvdata.cast(),
                Self::GROUPS.as_ptr().cast_mut(),
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        let device = match from_err_ptr(dev).and_then(|d| NonNull::new(d).ok_or(ENOMEM)) {
            Ok(device) => device,
            Err(e) => {
                // SAFETY: the reference taken above; nobody else has it.
                drop(unsafe { Arc::from_raw(drvdata) });
                return Err(e);
            }
        };
        match Self::add_cdev(device, devt) {
            Ok(cdev) => {
                // INVARIANT: both made for `devt`, the data referenced.
                self.published = Some(Published { device, cdev });
                Ok(())
            }
            Err(e) => {
                // SAFETY: our device, unregistered once; no char device
                // reaches it. Its attributes are gone when this returns.
                unsafe { bindings::device_unregister(device.as_ptr()) };
                // SAFETY: the device's reference, taken above; its
                // attributes, the only other readers, are gone.
                drop(unsafe { Arc::from_raw(drvdata) });
                Err(e)
            }
        }
    }

    /// A char device of the kernel's for `devt`, child of `device`, added.
    fn add_cdev(
        device: NonNull<bindings::device>,
        devt: bindings::dev_t,
    ) -> Result<NonNull<bindings::cdev>> {
        // SAFETY: process context; returns NULL or a new char device whose
        // kobject's release (the kernel's) frees it.
        let cdev = NonNull::new(unsafe { bindings::cdev_alloc() }).ok_or(ENOMEM)?;
        let c = cdev.as_ptr();
        // SAFETY: a new char device, ours until added; the fops are static;
        // `device` is live and the char device takes a reference on it when
        // added, put in its release.
        let ret = unsafe {
            (*c).ops = &Self::FOPS;
            (*c).owner = this_module().as_ptr();
            bindings::cdev_set_parent(c, &raw mut (*device.as_ptr()).kobj);
            bindings::cdev_add(c, devt, 1)
        };
        if let Err(e) = to_result(ret) {
            // SAFETY: not added: ours alone, and it took no reference on
            // its parent, which its release would put: unlinked first. The
            // put frees it.
            unsafe {
                (*c).kobj.parent = core::ptr::null_mut();
                bindings::kobject_put(&raw mut (*c).kobj);
            }
            return Err(e);
        }
        Ok(cdev)
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
        // SAFETY: `i_cdev` is a char device `publish` added, held by
        // `chrdev_open` for this call; its parent is the node's class
        // device, which it holds.
        let dev = unsafe {
            let cdev = (*inode).__bindgen_anon_5.i_cdev;
            kernel::container_of!((*cdev).kobj.parent, bindings::device, kobj)
        };
        // The node's data, if it is still there: `Drop` empties the slot
        // under the same lock.
        // SAFETY: a live device (above).
        unsafe { ffi_helpers::rdh_device_lock(dev) };
        // SAFETY: the device is locked; its driver data is NULL or the
        // reference `publish` stored, which `Drop` takes back only under
        // the lock.
        let data = unsafe {
            let raw = (*dev).driver_data.cast::<T>().cast_const();
            (!raw.is_null()).then(|| Arc::from(ArcBorrow::from_raw(raw)))
        };
        // SAFETY: locked above.
        unsafe { ffi_helpers::rdh_device_unlock(dev) };
        let Some(data) = data else {
            return ENXIO.to_errno();
        };
        // SAFETY: valid inode and file being opened.
        let ret = unsafe { bindings::nonseekable_open(inode, file) };
        if ret == 0 {
            // The file's own reference, given back in `release`.
            let data = Arc::into_raw(data);
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
        let Some(Published { device, cdev }) = self.published.take() else {
            return;
        };
        let dev = device.as_ptr();
        // SAFETY: our device (type invariant), unregistered only here:
        // its attributes are removed, their callbacks done, when this
        // returns. The char device still holds its memory.
        unsafe { bindings::device_unregister(dev) };
        // SAFETY: the device's memory is held by the char device (its
        // parent); its driver data is the reference `publish` stored,
        // taken back under the lock opens take.
        let raw = unsafe {
            ffi_helpers::rdh_device_lock(dev);
            let raw = (*dev).driver_data.cast::<T>().cast_const();
            (*dev).driver_data = core::ptr::null_mut();
            ffi_helpers::rdh_device_unlock(dev);
            raw
        };
        if !raw.is_null() {
            // SAFETY: the reference `publish` stored; no open can reach it
            // any more.
            drop(unsafe { Arc::from_raw(raw) });
        }
        // SAFETY: added in `publish`, deleted only here: no new open finds
        // it; the kernel frees it (and puts the device) when its last
        // reference goes, however late. Not touched again.
        unsafe { bindings::cdev_del(cdev.as_ptr()) };
    }
}
