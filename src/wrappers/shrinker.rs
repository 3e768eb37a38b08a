// SPDX-License-Identifier: GPL-2.0

//! Shrinkers (`include/linux/shrinker.h`, no `rust/kernel` type in 7.3): how
//! memory kept for reuse goes back to the system under memory pressure.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, ffi, prelude::*, str::CStr, sync::Arc};

/// What a shrinker reclaims from.
pub(crate) trait Reclaim: Send + Sync + 'static {
    /// Objects that could be freed now.
    fn count(&self) -> usize;

    /// Frees up to `nr` objects; returns how many it freed.
    fn scan(&self, nr: usize) -> usize;
}

/// A registered shrinker over a `T`.
///
/// # Invariants
///
/// `ptr` was returned by `shrinker_alloc`, is registered, and its
/// `private_data` is an `Arc<T>` turned into a raw pointer, taken back in
/// `Drop` after `shrinker_free`.
pub(crate) struct Shrinker<T: Reclaim> {
    ptr: NonNull<bindings::shrinker>,
    _data: PhantomData<Arc<T>>,
}

// SAFETY: the shrinker core does its own locking; we only free it (once).
unsafe impl<T: Reclaim> Send for Shrinker<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Reclaim> Sync for Shrinker<T> {}

impl<T: Reclaim> Shrinker<T> {
    /// Registers a shrinker named `name` (as `/sys/kernel/debug/shrinker/`
    /// lists it) over `data`.
    pub(crate) fn register(name: &CStr, data: Arc<T>) -> Result<Self> {
        // SAFETY: a format string and its one string argument.
        let ptr = unsafe { bindings::shrinker_alloc(0, c"%s".as_char_ptr(), name.as_char_ptr()) };
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: a shrinker just allocated, not registered yet: filled in,
        // then registered; the callbacks may run from now on.
        unsafe {
            let s = ptr.as_ptr();
            (*s).count_objects = Some(Self::count_objects);
            (*s).scan_objects = Some(Self::scan_objects);
            (*s).seeks = bindings::DEFAULT_SEEKS as ffi::c_int;
            (*s).private_data = Arc::into_raw(data).cast_mut().cast();
            bindings::shrinker_register(s);
        }
        // INVARIANT: registered, with the `Arc` as private data.
        Ok(Self {
            ptr,
            _data: PhantomData,
        })
    }

    /// # Safety
    ///
    /// `s` is a shrinker registered by [`Self::register`], not yet freed.
    unsafe fn data<'a>(s: *mut bindings::shrinker) -> &'a T {
        // SAFETY: the private data is the `Arc<T>` of `register`, released
        // only after `shrinker_free`, which waits for running callbacks.
        unsafe { &*(*s).private_data.cast::<T>() }
    }

    /// # Safety
    ///
    /// Called by the shrinker core on a shrinker of [`Self::register`].
    unsafe extern "C" fn count_objects(
        s: *mut bindings::shrinker,
        _sc: *mut bindings::shrink_control,
    ) -> ffi::c_ulong {
        // SAFETY: called on our registered shrinker.
        match unsafe { Self::data(s) }.count() {
            0 => bindings::SHRINK_EMPTY as ffi::c_ulong,
            n => n as ffi::c_ulong,
        }
    }

    /// # Safety
    ///
    /// As for [`Self::count_objects`]; `sc` is the core's control block.
    unsafe extern "C" fn scan_objects(
        s: *mut bindings::shrinker,
        sc: *mut bindings::shrink_control,
    ) -> ffi::c_ulong {
        // SAFETY: called on our registered shrinker with its control block.
        let (data, nr) = unsafe { (Self::data(s), (*sc).nr_to_scan) };
        match data.scan(nr) {
            0 => bindings::SHRINK_STOP as ffi::c_ulong,
            n => n as ffi::c_ulong,
        }
    }
}

impl<T: Reclaim> Drop for Shrinker<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); `shrinker_free` unregisters
        // it and waits until no callback runs, so the data can go after.
        unsafe {
            let data = (*self.ptr.as_ptr()).private_data.cast::<T>();
            bindings::shrinker_free(self.ptr.as_ptr());
            drop(Arc::from_raw(data));
        }
    }
}
