// SPDX-License-Identifier: GPL-2.0

//! The in-kernel API (`include/linux/rust-dma-heap.h`): other drivers find
//! a heap by name and allocate dma-bufs from it. The exported C functions
//! (`kapi.c`) hold the module while a heap is held and call the functions
//! below, which reach the heaps a [`Published`] value makes findable.

use super::{
    dmabuf::DmaBuf,
    fs::{Read, Source},
};
use core::{ffi::c_void, marker::PhantomData};
use kernel::{bindings, ffi, prelude::*, str::CStr, sync::Arc};

/// One heap, as another driver holds it.
pub(crate) trait KernelHeap: Send + Sync {
    /// Its name.
    fn name(&self) -> &CStr;

    /// A zeroed buffer of `len` bytes, with `DMA_HEAP_IOCTL_ALLOC`'s checks.
    fn alloc(&self, len: u64, fd_flags: u32, heap_flags: u64) -> Result<DmaBuf>;

    /// A buffer of `len` bytes read from `source` at `offset` (zero past its
    /// end), with `RUST_DMA_HEAP_IOCTL_FILL`'s checks.
    fn fill(
        &self,
        len: u64,
        fd_flags: u32,
        heap_flags: u64,
        source: &Source,
        offset: u64,
    ) -> Result<(DmaBuf, Read)>;
}

/// Every heap findable by name.
pub(crate) trait Heaps: Send + Sync + 'static {
    /// The heap called `name`, if any.
    fn find(&self, name: &CStr) -> Option<Arc<dyn KernelHeap>>;
}

/// `struct rust_dma_heap`, opaque: what C holds is a `KBox<Arc<dyn
/// KernelHeap>>`.
type Held = Arc<dyn KernelHeap>;

/// Heaps findable through the in-kernel API while this value lives.
///
/// # Invariants
///
/// `ptr` is a `KBox<Arc<dyn Heaps>>` turned into a raw pointer, published
/// to `kapi.c`, unpublished and freed in `Drop`.
pub(crate) struct Published {
    ptr: *mut Arc<dyn Heaps>,
    _data: PhantomData<Arc<dyn Heaps>>,
}

// SAFETY: the pointer is only published and freed, once, in `Drop`.
unsafe impl Send for Published {}
// SAFETY: see `Send`.
unsafe impl Sync for Published {}

extern "C" {
    fn rdh_kapi_publish(heaps: *const c_void);
}

impl Published {
    /// Makes `heaps` findable (a module publishes one set at a time).
    pub(crate) fn new(heaps: Arc<dyn Heaps>) -> Result<Self> {
        let ptr = KBox::into_raw(KBox::new(heaps, GFP_KERNEL)?);
        // SAFETY: a valid pointer, freed only after it is unpublished.
        unsafe { rdh_kapi_publish(ptr.cast_const().cast()) };
        // INVARIANT: published.
        Ok(Self {
            ptr,
            _data: PhantomData,
        })
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        // SAFETY: unpublished under `kapi.c`'s lock, which every lookup
        // holds, so no lookup uses `ptr` afterwards; then freed, once.
        unsafe {
            rdh_kapi_publish(core::ptr::null());
            drop(KBox::from_raw(self.ptr));
        }
    }
}

/// `kapi.c`: the heap called `name` of the published `heaps`, or NULL.
///
/// # Safety
///
/// `heaps` is the published pointer of a live [`Published`] (the caller
/// holds `kapi.c`'s lock), `name` a NUL-terminated string.
#[no_mangle]
unsafe extern "C" fn rdh_kapi_find(heaps: *const c_void, name: *const ffi::c_char) -> *mut c_void {
    if name.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: per the function's contract.
    let (heaps, name) = unsafe { (&*heaps.cast::<Arc<dyn Heaps>>(), CStr::from_char_ptr(name)) };
    heaps
        .find(name)
        .and_then(|h| KBox::new(h, GFP_KERNEL).ok())
        .map_or(core::ptr::null_mut(), |b| KBox::into_raw(b).cast())
}

/// # Safety
///
/// `heap` comes from [`rdh_kapi_find`] and was not yet put.
unsafe fn held<'a>(heap: *mut c_void) -> &'a Held {
    // SAFETY: a `KBox<Held>` of `rdh_kapi_find`, live until put.
    unsafe { &*heap.cast::<Held>() }
}

/// `kapi.c`: the name of a held heap (valid while held).
///
/// # Safety
///
/// As for [`held`].
#[no_mangle]
unsafe extern "C" fn rdh_kapi_name(heap: *mut c_void) -> *const ffi::c_char {
    // SAFETY: per the function's contract.
    unsafe { held(heap) }.name().as_char_ptr()
}

/// `kapi.c`: a new dma-buf (one reference for the caller) or an
/// `ERR_PTR`.
///
/// # Safety
///
/// As for [`held`]; process context.
#[no_mangle]
unsafe extern "C" fn rdh_kapi_alloc(
    heap: *mut c_void,
    len: u64,
    fd_flags: u32,
    heap_flags: u64,
) -> *mut bindings::dma_buf {
    // SAFETY: per the function's contract.
    match unsafe { held(heap) }.alloc(len, fd_flags, heap_flags) {
        Ok(buf) => buf.into_raw(),
        Err(e) => e.to_ptr(),
    }
}

/// `kapi.c`: a new dma-buf (one reference for the caller) filled from
/// `file` at `offset`, the bytes read in `*read` (if not NULL); or an
/// `ERR_PTR`.
///
/// # Safety
///
/// As for [`held`]; `file` is a file the caller holds a reference to for
/// the call; `read` NULL or valid for a write; process context.
#[no_mangle]
unsafe extern "C" fn rdh_kapi_fill(
    heap: *mut c_void,
    len: u64,
    fd_flags: u32,
    heap_flags: u64,
    file: *mut bindings::file,
    offset: i64,
    read: *mut usize,
) -> *mut bindings::dma_buf {
    // SAFETY: per the function's contract.
    let heap = unsafe { held(heap) };
    // SAFETY: a file the caller holds for the call (contract).
    let done = unsafe { Source::from_file(file) }.and_then(|source| {
        let offset = u64::try_from(offset).map_err(|_| EINVAL)?;
        heap.fill(len, fd_flags, heap_flags, &source, offset)
    });
    match done {
        Ok((buf, r)) => {
            if !read.is_null() {
                // SAFETY: valid for a write (contract).
                // CAST: at most `len`, a `size_t` on the C side.
                unsafe { *read = r.bytes as usize };
            }
            buf.into_raw()
        }
        Err(e) => e.to_ptr(),
    }
}

/// `kapi.c`: releases a held heap.
///
/// # Safety
///
/// As for [`held`]; the heap is not used afterwards.
#[no_mangle]
unsafe extern "C" fn rdh_kapi_put(heap: *mut c_void) {
    // SAFETY: the `KBox<Held>` of `rdh_kapi_find`, freed once.
    drop(unsafe { KBox::from_raw(heap.cast::<Held>()) });
}
