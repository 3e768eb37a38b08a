// SPDX-License-Identifier: GPL-2.0

//! Slab caches (`struct kmem_cache`) of one Rust type: the objects this
//! layer makes for every buffer and every attachment come from caches of
//! their own, one call into the slab allocator each way (the kernel
//! crate's allocator goes through `krealloc` for every object).

use core::{marker::PhantomData, mem, ptr::NonNull};
use kernel::{bindings, prelude::*, str::CStr};

/// A slab cache of `T`s.
///
/// # Invariants
///
/// `cache` is a live cache of objects of `T`'s size and alignment, made by
/// [`Slab::new`] and destroyed only when this is dropped; every object
/// allocated from it is freed (by [`Slab::free`]) before that.
pub(crate) struct Slab<T> {
    cache: NonNull<bindings::kmem_cache>,
    _objects: PhantomData<T>,
}

// SAFETY: the slab allocator may be called from any thread; the objects
// (`T`) are only reached through the pointers `alloc` hands out.
unsafe impl<T> Send for Slab<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Slab<T> {}

impl<T> Slab<T> {
    /// A cache named `name` (shown in `/proc/slabinfo`; unique while it
    /// lives, no spaces).
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        let size = u32::try_from(mem::size_of::<T>().max(1)).map_err(|_| EINVAL)?;
        let mut args = bindings::kmem_cache_args {
            align: mem::align_of::<T>() as u32,
            useroffset: 0,
            usersize: 0,
            freeptr_offset: 0,
            use_freeptr_offset: false,
            ctor: None,
            sheaf_capacity: 0,
        };
        // SAFETY: `name` is static and NUL-terminated; `args` is fully
        // initialized and only read during the call.
        let cache =
            unsafe { bindings::__kmem_cache_create_args(name.as_char_ptr(), size, &mut args, 0) };
        // INVARIANT: a new cache for `T`.
        Ok(Self {
            cache: NonNull::new(cache).ok_or(ENOMEM)?,
            _objects: PhantomData,
        })
    }

    /// A new object holding what `make` returns (may sleep), made only
    /// once the memory is there: a value that must not be dropped without
    /// its owner's knowledge (a `ManuallyDrop` field) is never made on a
    /// failed allocation. The caller owns the object until it hands it to
    /// [`Self::free`].
    pub(crate) fn alloc(&self, make: impl FnOnce() -> T) -> Result<NonNull<T>> {
        let ptr = self.alloc_uninit()?;
        // SAFETY: a new object of `T`'s size and alignment, ours to write.
        unsafe { ptr.as_ptr().write(make()) };
        Ok(ptr)
    }

    /// A new object, uninitialized (may sleep), for a caller that writes
    /// its fields in place. The caller owns it until it hands it to
    /// [`Self::free`] once initialized.
    pub(crate) fn alloc_uninit(&self) -> Result<NonNull<T>> {
        // SAFETY: a live cache (type invariant); process context (`GFP_KERNEL`).
        let ptr =
            unsafe { bindings::kmem_cache_alloc_noprof(self.cache.as_ptr(), bindings::GFP_KERNEL) };
        NonNull::new(ptr.cast::<T>()).ok_or(ENOMEM)
    }

    /// Drops the object and gives its memory back.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`Self::alloc`] on this cache (or from
    /// [`Self::alloc_uninit`], and be initialized since) and not have been
    /// freed; nothing may use it afterwards.
    pub(crate) unsafe fn free(&self, ptr: NonNull<T>) {
        // SAFETY: a live object of this cache, ours to drop and free
        // (caller).
        unsafe {
            ptr.as_ptr().drop_in_place();
            bindings::kmem_cache_free(self.cache.as_ptr(), ptr.as_ptr().cast());
        }
    }

    /// Gives back the memory of an object that was never initialized.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`Self::alloc_uninit`] on this cache, hold
    /// nothing that needs dropping, and not have been freed; nothing may
    /// use it afterwards.
    pub(crate) unsafe fn free_uninit(&self, ptr: NonNull<T>) {
        // SAFETY: an object of this cache, ours (caller).
        unsafe { bindings::kmem_cache_free(self.cache.as_ptr(), ptr.as_ptr().cast()) };
    }
}

impl<T> Drop for Slab<T> {
    fn drop(&mut self) {
        // SAFETY: every object was freed (type invariant); nothing uses the
        // cache after this.
        unsafe { bindings::kmem_cache_destroy(self.cache.as_ptr()) };
    }
}
