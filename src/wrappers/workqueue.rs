// SPDX-License-Identifier: GPL-2.0

//! What `rust/kernel/workqueue.rs` lacks in 7.3
//! (`include/linux/workqueue.h`): flushing a delayed work item, and the
//! kernel's unbound workqueue for long work.

use kernel::{
    bindings,
    workqueue::{DelayedWork, Queue},
};

/// Waits until `work` has run if it was queued (a pending timer fires at
/// once), so that nothing it refers to is used afterwards; it may be
/// queued again later.
pub(crate) fn flush_delayed<T: ?Sized, const ID: u64>(work: &DelayedWork<T, ID>) {
    // SAFETY: `DelayedWork` is a transparent wrapper of an initialized
    // `struct delayed_work`.
    unsafe {
        bindings::flush_delayed_work(core::ptr::from_ref(work).cast_mut().cast());
    }
}

/// The kernel's unbound workqueue for long work items
/// (`system_dfl_long_wq`): zeroing a pool's blocks may take a while, and
/// runs on whichever CPU is free rather than on the one that freed them.
pub(crate) fn unbound_long_queue() -> &'static Queue {
    // SAFETY: `system_dfl_long_wq` is a C global set up at boot and never
    // freed.
    unsafe { Queue::from_raw(bindings::system_dfl_long_wq) }
}
