// SPDX-License-Identifier: GPL-2.0

//! The kernel's dma-heap framework (`include/linux/dma-heap.h`,
//! `drivers/dma-buf/dma-heap.c`), on kernels that have it
//! (`CONFIG_DMABUF_HEAPS`): a heap added there gets `/dev/dma_heap/<name>`
//! and the framework's own `DMA_HEAP_IOCTL_ALLOC`, which checks the
//! request and calls the heap's `allocate`. The framework never removes a
//! heap: what it calls must live as long as the kernel, so adding one pins
//! this module.

use super::{chrdev::NodeKey, dmabuf::DmaBuf, this_module};
use core::{marker::PhantomData, mem::MaybeUninit};
use kernel::{
    bindings, ffi,
    prelude::*,
    str::{CStr, CString},
    sync::Arc,
};

/// `struct dma_heap` (opaque). Named as in C: kCFI identifies a callback's
/// type by the names of the structs its pointer arguments point to.
#[allow(non_camel_case_types)]
#[repr(C)]
pub(crate) struct dma_heap {
    _opaque: [u8; 0],
}

/// `struct dma_heap_ops` (named as in C, see [`dma_heap`]).
#[allow(non_camel_case_types)]
#[repr(C)]
struct dma_heap_ops {
    allocate: Option<
        unsafe extern "C" fn(
            heap: *mut dma_heap,
            len: ffi::c_ulong,
            fd_flags: u32,
            heap_flags: u64,
        ) -> *mut bindings::dma_buf,
    >,
}

/// `struct dma_heap_export_info`.
#[allow(non_camel_case_types)]
#[repr(C)]
struct dma_heap_export_info {
    name: *const ffi::c_char,
    ops: *const dma_heap_ops,
    priv_: *mut ffi::c_void,
}

// `struct path` holds a zero-sized `lockdep_map` without lockdep: only
// passed by pointer.
#[allow(improper_ctypes)]
extern "C" {
    fn dma_heap_add(exp_info: *const dma_heap_export_info) -> *mut dma_heap;
    fn dma_heap_get_drvdata(heap: *mut dma_heap) -> *mut ffi::c_void;
    fn kern_path(
        name: *const ffi::c_char,
        flags: ffi::c_uint,
        path: *mut bindings::path,
    ) -> ffi::c_int;
}

/// Whether the framework has a heap named `name`: its device is in
/// `/sys/class/dma_heap/` (sysfs, mounted where userspace loads a module).
/// `dma_heap_add()` checks names only after it has created the device, and
/// the driver core reports the duplicate with a stack dump: a name that is
/// taken is not asked for. Best effort: without sysfs at `/sys` in the
/// loading task's root, or with another provider adding the name between
/// this check and ours, the framework refuses it as before (safely, with
/// that stack dump).
pub(crate) fn taken(name: &CStr) -> bool {
    let Ok(path) = CString::try_from_fmt(fmt!("/sys/class/dma_heap/{}", name)) else {
        return false;
    };
    let mut found = MaybeUninit::<bindings::path>::uninit();
    // SAFETY: `path` is NUL-terminated; `found` is written on success only,
    // and then holds references that `path_put` gives back.
    unsafe {
        if kern_path(path.as_char_ptr(), 0, found.as_mut_ptr()) != 0 {
            return false;
        }
        bindings::path_put(found.as_ptr());
    }
    true
}

/// What a heap added to the framework allocates with.
pub(crate) trait Provide: Send + Sync + 'static {
    /// The heap's name (`/dev/dma_heap/<name>`).
    fn name(&self) -> &CStr;

    /// A new buffer of `len` bytes, exported. The framework has checked
    /// `fd_flags` and `heap_flags` against its own masks; the length is
    /// the caller's, not rounded.
    fn allocate(&self, len: u64, fd_flags: u32, heap_flags: u64) -> Result<DmaBuf>;
}

/// The framework's operations over a [`Provide`] of type `T`.
struct VTable<T>(PhantomData<T>);

impl<T: Provide> VTable<T> {
    const OPS: dma_heap_ops = dma_heap_ops {
        allocate: Some(Self::allocate),
    };

    /// # Safety
    ///
    /// Called by the framework, on a heap [`add`] added with this table.
    unsafe extern "C" fn allocate(
        heap: *mut dma_heap,
        len: ffi::c_ulong,
        fd_flags: u32,
        heap_flags: u64,
    ) -> *mut bindings::dma_buf {
        // SAFETY: the heap's private data is the `T` that `add` leaked for
        // it: valid for as long as the kernel runs.
        let data = unsafe { &*dma_heap_get_drvdata(heap).cast::<T>() };
        match data.allocate(len as u64, fd_flags, heap_flags) {
            // The framework installs the buffer at an fd: our reference is
            // its.
            Ok(buf) => buf.into_raw(),
            Err(e) => e.to_ptr(),
        }
    }
}

/// Adds `data` to the framework as the heap [`Provide::name`] names, for
/// as long as the kernel runs: `data` is never dropped, and this module is
/// pinned (it cannot be unloaded once it has added a heap). `EEXIST` when
/// the framework has a heap of that name already. Returns the key the
/// files of the heap's node carry.
pub(crate) fn add<T: Provide>(data: Arc<T>) -> Result<NodeKey> {
    let ptr = Arc::into_raw(data);
    // SAFETY: from `into_raw` just above; not freed before the end of
    // this function, and never if the heap is added.
    let name = unsafe { &*ptr }.name().as_char_ptr();
    let info = dma_heap_export_info {
        name,
        ops: &VTable::<T>::OPS,
        priv_: ptr.cast_mut().cast(),
    };
    // SAFETY: `info` is fully initialized and only read during the call;
    // the name (borrowed from `data`), the ops (static) and `data` live
    // for as long as the kernel once the heap is added.
    match kernel::error::from_err_ptr(unsafe { dma_heap_add(&info) }) {
        Ok(heap) => {
            // SAFETY: our own module, live (we run in it); the reference
            // taken here is never put.
            unsafe { bindings::__module_get(this_module().as_ptr()) };
            // `dma_heap_open()` makes the heap the file's private data.
            Ok(NodeKey::from_ptr(heap))
        }
        Err(e) => {
            // SAFETY: the framework did not take it: still ours, once.
            drop(unsafe { Arc::from_raw(ptr) });
            Err(e)
        }
    }
}
