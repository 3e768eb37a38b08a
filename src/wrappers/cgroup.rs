// SPDX-License-Identifier: GPL-2.0

//! Control groups: the dmem controller's regions and charges
//! (`kernel/cgroup/dmem.c`, no bindings in 7.3), and who allocated a
//! buffer (task, and the cgroup its memory is charged to) for reports.
//! The memory controller charges pages itself (`__GFP_ACCOUNT`, see
//! [`super::pages`]), to the current task's memory cgroup or, inside
//! [`MemCgroup::charging`], to another one (`set_active_memcg()`).

use super::ffi_helpers::{self, DmemPool};
use core::{mem::ManuallyDrop, ptr::NonNull};
use kernel::{bindings, prelude::*, str::CStr, sync::Arc};

/// A region of the dmem controller: one pool of device memory that
/// `dmem.max`/`dmem.current` of every cgroup list by name.
///
/// # Invariants
///
/// `ptr` was returned by `dmem_cgroup_register_region` and is unregistered
/// in `Drop`, once: no [`DmemCharge`] of it is left then (each holds the
/// region).
pub(crate) struct DmemRegion {
    ptr: NonNull<ffi_helpers::DmemRegion>,
}

// SAFETY: the dmem controller does its own locking; the region is only
// charged (any thread) and unregistered once (in `Drop`).
unsafe impl Send for DmemRegion {}
// SAFETY: see `Send`.
unsafe impl Sync for DmemRegion {}

impl DmemRegion {
    /// Registers region `name` of `size` bytes; `None` when the kernel
    /// has no dmem controller or it is disabled (`cgroup_disable=dmem`):
    /// nothing is charged then.
    pub(crate) fn register(name: &CStr, size: u64) -> Result<Option<Arc<Self>>> {
        // SAFETY: `name` is NUL-terminated; the controller copies it.
        let ptr = unsafe { ffi_helpers::rdh_dmem_register(name.as_char_ptr(), size) };
        let Some(ptr) = NonNull::new(kernel::error::from_err_ptr(ptr)?) else {
            return Ok(None);
        };
        // INVARIANT: just registered.
        let region = Self { ptr };
        Ok(Some(Arc::new(region, GFP_KERNEL)?))
    }

    /// Charges `size` bytes to the current task's dmem cgroup (and its
    /// ancestors). `ENOMEM` when that would exceed a `dmem.max` on the
    /// way: nothing is charged then.
    pub(crate) fn try_charge(self: &Arc<Self>, size: u64) -> Result<DmemCharge> {
        let mut pool: *mut DmemPool = core::ptr::null_mut();
        let mut css = core::ptr::null_mut();
        // SAFETY: the region is registered (type invariant); `pool` and
        // `css` are valid out-pointers, set on success.
        let ret = unsafe {
            ffi_helpers::rdh_dmem_try_charge(self.ptr.as_ptr(), size, &mut pool, &mut css)
        };
        match ret {
            0 => match (NonNull::new(pool), NonNull::new(css)) {
                (Some(pool), Some(css)) => Ok(DmemCharge {
                    // INVARIANT: what the successful charge returned.
                    pool,
                    // SAFETY: a reference for us, given back in `Drop`.
                    css: ManuallyDrop::new(unsafe { Css::from_raw(css) }),
                    size,
                    _region: self.clone(),
                }),
                // Not what the helper returns on success; if it ever did,
                // what it did return is given back.
                _ => {
                    // SAFETY: the charge just made, and the reference if
                    // any, given back once (the helper takes NULLs).
                    unsafe { ffi_helpers::rdh_dmem_uncharge(pool, size, css) };
                    Err(EINVAL)
                }
            },
            // At a limit (`-EAGAIN`): the caller asked for memory its
            // cgroup may not have.
            r if r == -(bindings::EAGAIN as i32) => Err(ENOMEM),
            r => Err(Error::from_errno(r)),
        }
    }
}

impl Drop for DmemRegion {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); unregistered only here.
        unsafe { ffi_helpers::rdh_dmem_unregister(self.ptr.as_ptr()) };
    }
}

/// Bytes charged to a dmem cgroup pool, uncharged when dropped (by
/// whichever task drops the buffer last), and the cgroup charged, for
/// reports.
///
/// # Invariants
///
/// `pool` and `size` are what a successful `dmem_cgroup_try_charge` on
/// `_region` returned and was asked, `css` the charging task's css of the
/// dmem controller read just after it (the charged cgroup's unless the task
/// moved in between: the controller keeps the pool's cgroup private);
/// uncharged and put once, in `Drop` (one call).
pub(crate) struct DmemCharge {
    pool: NonNull<DmemPool>,
    css: ManuallyDrop<Css>,
    size: u64,
    _region: Arc<DmemRegion>,
}

// SAFETY: an uncharge may happen on any thread (page counters are atomic;
// a css reference may be put from any thread).
unsafe impl Send for DmemCharge {}
// SAFETY: shared access reads `size` and names the cgroup (`Css` is
// `Sync`).
unsafe impl Sync for DmemCharge {}

impl DmemCharge {
    /// The path of the dmem cgroup charged ([`Css::path`]; see the type's
    /// invariants for a task moved while charging).
    pub(crate) fn cgroup_path<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        self.css.path(buf)
    }
}

impl Drop for DmemCharge {
    fn drop(&mut self) {
        // SAFETY: the charge made in `try_charge` and our reference on the
        // css (type invariant), given back once: `css` is not dropped.
        // This also drops the pool and css references the charge holds.
        unsafe {
            ffi_helpers::rdh_dmem_uncharge(self.pool.as_ptr(), self.size, self.css.0.as_ptr())
        };
    }
}

/// A reference on a cgroup's state for one controller (`struct
/// cgroup_subsys_state`), for naming the cgroup later.
///
/// # Invariants
///
/// `0` is a css this object holds one reference on, put in `Drop`.
pub(super) struct Css(NonNull<bindings::cgroup_subsys_state>);

impl Css {
    /// Takes over a reference on a css.
    ///
    /// # Safety
    ///
    /// `css` is a css the caller holds a reference on, which it gives to
    /// the new object.
    pub(super) unsafe fn from_raw(css: NonNull<bindings::cgroup_subsys_state>) -> Self {
        Self(css)
    }

    /// The cgroup's path (from the caller's cgroup namespace; its names are
    /// any bytes but `/`: escape them to print), written into `buf`; `None`
    /// if it does not fit.
    pub(super) fn path<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        // SAFETY: we hold a reference on the css (so on its cgroup); `buf`
        // is writable for its length and NUL-terminated on success.
        let ret = unsafe {
            ffi_helpers::rdh_css_path(self.0.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if ret < 0 {
            return None;
        }
        let len = buf.iter().position(|&b| b == 0)?;
        Some(&buf[..len])
    }
}

// SAFETY: a css reference may be put from any thread.
unsafe impl Send for Css {}
// SAFETY: shared access only names the cgroup (`cgroup_path` locks).
unsafe impl Sync for Css {}

impl Drop for Css {
    fn drop(&mut self) {
        // SAFETY: our reference (type invariant).
        unsafe { ffi_helpers::rdh_css_put(self.0.as_ptr()) };
    }
}

/// A process a buffer is for, as it was at allocation: the one that
/// allocated it, or the client a service allocated it for (its thread
/// group id and name then).
///
/// # Invariants
///
/// `comm` is NUL-padded (`get_task_comm`).
pub(crate) struct Process {
    tgid: i32,
    comm: Comm,
}

/// A task's name, aligned so that a [`Process`] (24 bytes) moves with a
/// few register loads and stores: without NEON and with strict alignment
/// (the kernel's arm64 Rust target), copies of more than 32 bytes or of
/// byte arrays become calls to `memcpy`.
#[repr(C, align(8))]
struct Comm([u8; 16]);

impl Process {
    /// The current task's process: its thread group id and name, as
    /// `get_task_comm()` reads it (a rename racing with the copy may tear
    /// the name, as it may `get_task_comm()`'s).
    #[inline]
    pub(crate) fn current() -> Self {
        /// Where `comm` lies in `task_struct`: on an 8-byte boundary the
        /// name is copied as two words, otherwise a byte at a time (the
        /// test folds at compile time).
        const COMM: usize = core::mem::offset_of!(bindings::task_struct, comm);
        const WORDS: bool = COMM % 8 == 0 && core::mem::align_of::<bindings::task_struct>() >= 8;
        let task = kernel::task::Task::current_raw();
        let mut comm = Comm([0u8; 16]);
        // SAFETY: `current` is live while it runs this; its `tgid` never
        // changes. Its `comm` (`TASK_COMM_LEN`, 16 bytes: what is read) is
        // written only by a rename (`__set_task_comm()`, which readers such
        // as `get_task_comm()` do not synchronise with): the reads are
        // volatile, each of a whole aligned word or byte.
        let tgid = unsafe {
            let src = (&raw const (*task).comm).cast::<u8>();
            if WORDS {
                let src = src.cast::<u64>();
                let dst = comm.0.as_mut_ptr().cast::<u64>();
                dst.write(src.read_volatile());
                dst.add(1).write(src.add(1).read_volatile());
            } else {
                for (i, b) in comm.0.iter_mut().enumerate() {
                    *b = src.add(i).read_volatile();
                }
            }
            (*task).tgid
        };
        // INVARIANT: NUL-padded by every rename (`__set_task_comm()` pads),
        // and terminated here.
        comm.0[15] = 0;
        Self { tgid, comm }
    }

    /// The process's id.
    pub(crate) fn tgid(&self) -> i32 {
        self.tgid
    }

    /// The process's name at allocation, as the task set it
    /// (`prctl(PR_SET_NAME)` takes any bytes: escape them to print).
    pub(crate) fn comm(&self) -> &[u8] {
        let len = self.comm.0.iter().position(|&b| b == 0).unwrap_or(16);
        &self.comm.0[..len]
    }
}

/// A reference on a memory cgroup, for charging memory to it later from
/// another task's context.
///
/// # Invariants
///
/// `ptr` is a memory cgroup this object holds one reference on (none is
/// needed for the root, whose references are not counted), put in `Drop`.
pub(crate) struct MemCgroup {
    ptr: NonNull<bindings::mem_cgroup>,
}

// SAFETY: a reference on a cgroup may be used and put from any thread.
unsafe impl Send for MemCgroup {}
// SAFETY: shared access only reads its counters and charges to it.
unsafe impl Sync for MemCgroup {}

impl MemCgroup {
    /// The current task's memory cgroup (its mm owner's; the root for a
    /// kernel thread); `None` without the memory controller.
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: process context; returns NULL or a cgroup with a
        // reference for us.
        let ptr = unsafe { ffi_helpers::rdh_current_memcg() };
        // INVARIANT: the reference just taken.
        NonNull::new(ptr).map(|ptr| Self { ptr })
    }

    /// Bytes it can be charged now before it or an ancestor reaches its
    /// `memory.max` (`usize::MAX` when nothing limits it).
    pub(crate) fn room(&self) -> usize {
        // SAFETY: a cgroup we hold (type invariant); reads its counters.
        let pages = unsafe { ffi_helpers::rdh_memcg_margin(self.ptr.as_ptr()) };
        // CAST: `c_ulong` is `usize` on every kernel architecture.
        (pages as usize).saturating_mul(kernel::page::PAGE_SIZE)
    }

    /// Runs `f` with the memory it allocates with `__GFP_ACCOUNT` charged
    /// to this cgroup (`set_active_memcg()`), whichever task runs it, and
    /// limited by this cgroup's `memory.max`.
    pub(crate) fn charging<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: process context (the current task's scope); the cgroup is
        // held (type invariant) for the whole scope, which ends below, in
        // this task, restoring the previous one (scopes nest).
        let old = unsafe { ffi_helpers::rdh_set_active_memcg(self.ptr.as_ptr()) };
        let r = f();
        // SAFETY: as above: the scope ends.
        unsafe { ffi_helpers::rdh_set_active_memcg(old) };
        r
    }

    /// As [`Self::charging`], for the last use of this reference: it is
    /// put as the scope ends (one call into C for both).
    #[inline]
    pub(crate) fn charging_once<R>(self, f: impl FnOnce() -> R) -> R {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: as in `charging`.
        let old = unsafe { ffi_helpers::rdh_set_active_memcg(this.ptr.as_ptr()) };
        let r = f();
        // SAFETY: the scope ends in the task that opened it, restoring the
        // previous one (scopes nest); our reference (type invariant) is
        // put, once: `this` is not dropped.
        unsafe { ffi_helpers::rdh_memcg_unscope(old, this.ptr.as_ptr()) };
        r
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // SAFETY: our reference (type invariant).
        unsafe { ffi_helpers::rdh_memcg_put(self.ptr.as_ptr()) };
    }
}

/// For an allocation a service makes for the process of pidfd `fd` (its
/// client): that process's memory cgroup (`None` without the memory
/// controller), to charge the buffer's memory in its scope
/// ([`MemCgroup::charging_once`]), and the process, for the report.
/// `EBADF` when `fd` is not an open pidfd, `ESRCH` when the process has
/// exited (or is exiting), `EPERM` when the current task could not signal
/// it and lacks `CAP_SYS_RESOURCE`; with `dmem`, `EOPNOTSUPP` when it is in
/// another dmem cgroup than the current task (7.3's controller charges
/// only the current task's).
#[inline(always)]
pub(crate) fn charge_target(fd: i32, dmem: bool) -> Result<(Option<MemCgroup>, Process)> {
    let mut memcg = core::ptr::null_mut();
    let mut tgid = 0;
    let mut comm = Comm([0u8; 16]);
    // SAFETY: process context; any value of `fd`; the out pointers are
    // valid (`comm` has room for `TASK_COMM_LEN`, 16, bytes). On success
    // `memcg` is NULL or a cgroup with a reference for us.
    super::errno(unsafe {
        ffi_helpers::rdh_pidfd_charge(fd, dmem, &mut memcg, &mut tgid, comm.0.as_mut_ptr().cast())
    })?;
    // INVARIANT: the reference just taken.
    let memcg = NonNull::new(memcg).map(|ptr| MemCgroup { ptr });
    // INVARIANT: the helper NUL-pads `comm`.
    Ok((memcg, Process { tgid, comm }))
}
