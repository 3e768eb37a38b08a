// SPDX-License-Identifier: GPL-2.0

//! The heap registry: one char device node per heap in the `dma_heap`
//! class, and `DMA_HEAP_IOCTL_ALLOC` decoded with upstream's semantics.
//! Knows nothing about memory: heaps turn a length into a
//! [`crate::buffer::Memory`]. Each heap's properties and usage are
//! attributes of its class device (`/sys/class/<class>/<heap>/`); every
//! live buffer is listed, with who allocated it, in
//! `/sys/kernel/debug/<class>/buffers`.

#![forbid(unsafe_code)]

use crate::{
    buffer::{Buffer, Choose},
    heaps::{Heap, Usage},
    pool::Pool,
    wrappers::{
        cgroup::{charge_target, MemCgroup, Process},
        chrdev::{ChrdevRegion, Class, Node, NodeKey, NodeOps},
        dmabuf::{DmaBuf, Exports, Info, Slabs},
        fs::{Read, Source},
        kapi::{Heaps, KernelHeap, Published},
        kobject::{KernelDir, KernelFile, NodeDir, Show},
    },
};
use core::fmt::{self, Write};
use kernel::{
    bindings, debugfs,
    fs::file::{FileDescriptorReservation, LocalFile},
    ioctl::{_IOC_DIR, _IOC_NR, _IOC_SIZE, _IOC_TYPE},
    page::PAGE_SIZE,
    prelude::*,
    str::CStr,
    sync::Arc,
    uaccess::{UserPtr, UserSlice},
    uapi::{_IOC_READ, _IOC_WRITE},
};

/// The most heaps one registry holds (upstream: `NUM_HEAP_MINORS`).
const MAX_HEAPS: u32 = 128;

/// `DMA_HEAP_IOC_MAGIC`.
const DMA_HEAP_IOC_MAGIC: u32 = b'H' as u32;
/// `DMA_HEAP_IOCTL_ALLOC`'s command number.
const DMA_HEAP_ALLOC_NR: u32 = 0;
/// `sizeof(struct dma_heap_allocation_data)`.
const ALLOC_DATA_SIZE: usize = 24;
/// `RUST_DMA_HEAP_IOCTL_FILL`'s command number (this module's own, far
/// from upstream's `DMA_HEAP_IOC_MAGIC` numbers).
const FILL_NR: u32 = 0x40;
/// `sizeof(struct rust_dma_heap_alloc_data)`: also the size of the
/// allocation argument of the charge-the-client proposal (see
/// [`ChargeData`]).
const CHARGE_DATA_SIZE: usize = 32;
/// `RUST_DMA_HEAP_IOCTL_ALLOC`'s command number (the control node's
/// allocation, which names its heap).
const ALLOC_NR: u32 = 0x41;
/// `sizeof(struct rust_dma_heap_fill_data)`.
const FILL_DATA_SIZE: usize = 56;
/// `RUST_DMA_HEAP_FILL_DIRECT`: out, the bytes came by direct I/O.
const FILL_DIRECT: u32 = 1;
/// `DMA_HEAP_VALID_FD_FLAGS`.
const VALID_FD_FLAGS: u32 = bindings::O_CLOEXEC | bindings::O_ACCMODE;
/// `DMA_HEAP_VALID_HEAP_FLAGS`: none yet.
const VALID_HEAP_FLAGS: u64 = 0;

/// The file side of one heap node.
struct HeapFile {
    heap: Arc<dyn Heap>,
    /// What chooses its buffers' memory at their first use, for a heap
    /// that defers it (asked once: [`Heap::deferred`]).
    deferred: Option<Arc<dyn Choose>>,
    /// Whether its buffers are charged to the dmem controller (asked once:
    /// [`Heap::charges_dmem`]).
    charges_dmem: bool,
    /// The heap's size and allocation limit ([`Heap::usage`]).
    usage: Arc<Usage>,
    exports: Arc<Exports<Buffer>>,
}

/// `struct dma_heap_allocation_data` (`include/uapi/linux/dma-heap.h`).
#[repr(C)]
#[derive(FromBytes, IntoBytes)]
struct AllocationData {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
}

const _: () = assert!(core::mem::size_of::<AllocationData>() == ALLOC_DATA_SIZE);

/// `struct rust_dma_heap_alloc_data` (`include/uapi/linux/rust-dma-heap.h`):
/// `struct dma_heap_allocation_data` and the next field of the unmerged
/// proposal "dma-heap: charge dma-buf memory via explicit memcg" (May
/// 2026), `charge_pid_fd`, whose `__padding` is `heap_fd` on the control
/// node (zero on a heap's node, as the proposal wants).
#[repr(C)]
#[derive(FromBytes, IntoBytes)]
struct ChargeData {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
    charge_pid_fd: u32,
    heap_fd: u32,
}

const _: () = assert!(core::mem::size_of::<ChargeData>() == CHARGE_DATA_SIZE);

/// `struct rust_dma_heap_fill_data` (`include/uapi/linux/rust-dma-heap.h`).
#[repr(C)]
#[derive(FromBytes, IntoBytes)]
struct FillData {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
    offset: u64,
    file_fd: i32,
    heap_fd: i32,
    flags: u32,
    reserved: u32,
    read: u64,
}

const _: () = assert!(core::mem::size_of::<FillData>() == FILL_DATA_SIZE);

/// The argument as the kernel copies it: a 24-byte struct of 8-byte
/// alignment (a byte array would be read a byte at a time: the kernel's
/// arm64 Rust target forbids unaligned loads).
type AllocationWords = [u64; 3];

impl HeapFile {
    /// `dma_heap_ioctl_allocate()`: validates, allocates and exports. The
    /// fd is reserved but not installed.
    #[inline(always)]
    fn allocate(&self, data: &AllocationData) -> Result<(DmaBuf, FileDescriptorReservation)> {
        if data.fd != 0 {
            return Err(EINVAL);
        }
        let len = self.checked_len(data.len, data.fd_flags, data.heap_flags)?;
        let dmabuf = self.export_new(len, data.fd_flags, data.heap_flags, None)?;
        let fd = FileDescriptorReservation::get_unused_fd_flags(data.fd_flags)?;
        Ok((dmabuf, fd))
    }

    /// As [`Self::allocate`], charged to the process `charge_pid_fd`
    /// refers to when it is not 0 instead of the caller: its memory cgroup
    /// is charged (and limits it) for the system heap's pages and an
    /// `auto` buffer's, whenever they are placed. `EBADF` when it is not an
    /// open pidfd, `ESRCH` when its process has exited, `EPERM` when the
    /// caller could not signal it and lacks `CAP_SYS_RESOURCE`;
    /// `EOPNOTSUPP` on a heap charged to the dmem controller (CMA,
    /// carve-outs, `auto`'s reservation) when the process is in another
    /// dmem cgroup than the caller (7.3's controller charges only the
    /// current task's). The length and flags are checked first.
    #[inline(always)]
    fn allocate_charged(&self, data: &ChargeData) -> Result<(DmaBuf, FileDescriptorReservation)> {
        if data.fd != 0 {
            return Err(EINVAL);
        }
        let (fd_flags, heap_flags) = (data.fd_flags, data.heap_flags);
        let len = self.checked_len(data.len, fd_flags, heap_flags)?;
        let dmabuf = if data.charge_pid_fd == 0 {
            self.export_new(len, fd_flags, heap_flags, None)?
        } else {
            let pidfd = i32::try_from(data.charge_pid_fd).map_err(|_| EBADF)?;
            let client = charge_target(pidfd, self.charges_dmem)?;
            self.export_new(len, fd_flags, heap_flags, Some(client))?
        };
        let fd = FileDescriptorReservation::get_unused_fd_flags(fd_flags)?;
        Ok((dmabuf, fd))
    }

    /// `len` page-aligned, after the checks of `dma_heap_ioctl_allocate()`
    /// on the flags and length and ours on the heap's `max_alloc`.
    #[inline(always)]
    fn checked_len(&self, len: u64, fd_flags: u32, heap_flags: u64) -> Result<usize> {
        checked_len(len, fd_flags, heap_flags, self.usage.max_alloc())
    }

    /// A new buffer of `len` bytes, exported (the ioctl's and the
    /// in-kernel API's checks).
    #[inline]
    fn buffer(&self, len: u64, fd_flags: u32, heap_flags: u64) -> Result<DmaBuf> {
        let len = self.checked_len(len, fd_flags, heap_flags)?;
        self.export_new(len, fd_flags, heap_flags, None)
    }

    /// A new buffer of `len` bytes ([`Self::checked_len`]), exported.
    /// `client`: the process charged instead of the caller and its memory
    /// cgroup ([`charge_target`]). Only the buffer's memory is charged to
    /// it, as the proposal does: the dma-buf's own objects (its file,
    /// inode, our bookkeeping) are the caller's, who holds the fd.
    fn export_new(
        &self,
        len: usize,
        fd_flags: u32,
        heap_flags: u64,
        client: Option<(Option<MemCgroup>, Process)>,
    ) -> Result<DmaBuf> {
        let (memcg, charged) = match client {
            Some((memcg, charged)) => (memcg, Some(charged)),
            None => (None, None),
        };
        match &self.deferred {
            Some(chooser) => DmaBuf::export(
                &self.exports,
                Buffer::deferred(len, chooser.clone(), memcg, charged),
                fd_flags,
            ),
            None => DmaBuf::export(
                &self.exports,
                Buffer::now(
                    |slot| match memcg {
                        Some(memcg) => memcg
                            .charging_once(|| self.heap.allocate(len, fd_flags, heap_flags, slot)),
                        None => self.heap.allocate(len, fd_flags, heap_flags, slot),
                    },
                    charged,
                ),
                fd_flags,
            ),
        }
    }

    /// A new buffer of `len` bytes read from `source` at `offset` (zero
    /// past its end), exported.
    fn loaded(
        &self,
        len: u64,
        fd_flags: u32,
        heap_flags: u64,
        source: &Source,
        offset: u64,
    ) -> Result<(DmaBuf, Read)> {
        let len = self.checked_len(len, fd_flags, heap_flags)?;
        if !self.heap.loads() {
            return Err(EOPNOTSUPP);
        }
        if let Some(chooser) = &self.deferred {
            // Memory placed now, for the CPU that writes it.
            let (memory, from, read) = chooser.load(len, source, offset)?;
            let buffer = Buffer::placed(chooser.clone(), memory, from);
            return Ok((DmaBuf::export(&self.exports, buffer, fd_flags)?, read));
        }
        let mut read = Read::default();
        let dmabuf = DmaBuf::export(
            &self.exports,
            Buffer::now(
                |slot| {
                    let (filled, r) = self.heap.load(len, source, offset, slot)?;
                    read = r;
                    Ok(filled)
                },
                None,
            ),
            fd_flags,
        )?;
        Ok((dmabuf, read))
    }

    /// `RUST_DMA_HEAP_IOCTL_FILL`: validates, allocates, reads and exports.
    /// The fd is reserved but not installed.
    fn fill(&self, data: &FillData) -> Result<(DmaBuf, FileDescriptorReservation, Read)> {
        if data.fd != 0 || data.flags != 0 || data.reserved != 0 {
            return Err(EINVAL);
        }
        check_span(data.offset, data.len)?;
        let source = Source::from_fd(data.file_fd)?;
        let (dmabuf, read) = self.loaded(
            data.len,
            data.fd_flags,
            data.heap_flags,
            &source,
            data.offset,
        )?;
        let fd = FileDescriptorReservation::get_unused_fd_flags(data.fd_flags)?;
        Ok((dmabuf, fd, read))
    }
}

/// `len` page-aligned, after the checks of `dma_heap_ioctl_allocate()` on
/// the flags (`EINVAL`) and length (`EINVAL` for 0 or one that wraps when
/// aligned), and ours against the heap's `max_alloc` (`ENOMEM`).
#[inline]
fn checked_len(len: u64, fd_flags: u32, heap_flags: u64, max_alloc: u64) -> Result<usize> {
    if fd_flags & !VALID_FD_FLAGS != 0 || heap_flags & !VALID_HEAP_FLAGS != 0 {
        return Err(EINVAL);
    }
    // PAGE_ALIGN(); a length that wraps (or does not fit size_t) is 0.
    let len = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_next_multiple_of(PAGE_SIZE))
        .unwrap_or(0);
    if len == 0 {
        return Err(EINVAL);
    }
    // CAST: usize is at most 64 bits on every architecture the kernel has.
    if len as u64 > max_alloc {
        return Err(ENOMEM);
    }
    Ok(len)
}

/// An ioctl's argument sizes in and out, as its direction bits say.
#[inline]
fn arg_sizes(cmd: u32) -> (usize, usize) {
    let size = _IOC_SIZE(cmd);
    let dir = _IOC_DIR(cmd);
    (
        if dir & _IOC_WRITE != 0 { size } else { 0 },
        if dir & _IOC_READ != 0 { size } else { 0 },
    )
}

/// An ioctl's argument of `in_size` bytes in and `out_size` out, around a
/// struct of `N` bytes: read into a zeroed buffer (missing input reads as
/// zero, extra input is ignored), `f` on the struct's bytes, and only what
/// the caller's size covers written back. Returns `f`'s dma-buf and fd,
/// the fd still to install: on a failed copy-out, dropping them frees the
/// buffer and un-reserves the fd, and nothing leaks.
fn sized_arg<const N: usize, R>(
    user: UserPtr,
    in_size: usize,
    out_size: usize,
    f: impl FnOnce(&mut [u8; N]) -> Result<R>,
) -> Result<R> {
    let mut kdata = KVec::new();
    kdata.resize(in_size.max(out_size).max(N), 0u8, GFP_KERNEL)?;
    UserSlice::new(user, in_size)
        .reader()
        .read_slice(&mut kdata[..in_size])?;
    let head: &mut [u8; N] = (&mut kdata[..N]).try_into().map_err(|_| EINVAL)?;
    let done = f(head)?;
    UserSlice::new(user, out_size)
        .writer()
        .write_slice(&kdata[..out_size])?;
    Ok(done)
}

/// `RUST_DMA_HEAP_IOCTL_FILL` on the heap `pick` names (from the
/// argument), its argument of any size (as the allocation's).
#[inline(never)]
fn ioctl_fill<H: core::ops::Deref<Target = HeapFile>>(
    cmd: u32,
    arg: usize,
    pick: impl FnOnce(&FillData) -> Result<H>,
) -> Result<isize> {
    let (in_size, out_size) = arg_sizes(cmd);
    let user = UserPtr::from_addr(arg);
    let (dmabuf, fd) = sized_arg::<FILL_DATA_SIZE, _>(user, in_size, out_size, |head| {
        let mut data: FillData = zerocopy::transmute!(*head);
        let (dmabuf, fd, read) = pick(&data)?.fill(&data)?;
        data.fd = fd.reserved_fd();
        data.read = read.bytes;
        data.flags = if read.direct { FILL_DIRECT } else { 0 };
        *head = zerocopy::transmute!(data);
        Ok((dmabuf, fd))
    })?;
    dmabuf.install(fd);
    Ok(0)
}

/// `RUST_DMA_HEAP_IOCTL_ALLOC` on the heap `pick` names (from the
/// argument), its argument of any size (as the allocation's).
#[inline(never)]
fn ioctl_alloc<H: core::ops::Deref<Target = HeapFile>>(
    user: UserPtr,
    (in_size, out_size): (usize, usize),
    pick: impl FnOnce(&ChargeData) -> Result<H>,
) -> Result<isize> {
    let (dmabuf, fd) = sized_arg::<CHARGE_DATA_SIZE, _>(user, in_size, out_size, |head| {
        let mut data: ChargeData = zerocopy::transmute!(*head);
        let (dmabuf, fd) = pick(&data)?.allocate_charged(&data)?;
        data.fd = fd.reserved_fd();
        *head = zerocopy::transmute!(data);
        Ok((dmabuf, fd))
    })?;
    dmabuf.install(fd);
    Ok(0)
}

/// The module's own node, `/dev/rust_dma_heap_ctl`, in both modes: the
/// ioctls the framework's nodes do not know, each naming its heap by an
/// open fd of the heap's node (`heap_fd`), so that the node's permissions
/// apply as they do to an allocation. The node itself grants nothing (mode
/// 0666).
struct Control {
    /// Every heap served, with the key its node's files carry.
    heaps: KVec<(NodeKey, Arc<HeapFile>)>,
}

impl Control {
    /// The heap whose node `fd` is open on: `EBADF` when `fd` is not an
    /// open fd, `EINVAL` when it is not a heap node of this module.
    fn heap_of(&self, fd: i32) -> Result<Arc<HeapFile>> {
        let file = LocalFile::fget(u32::try_from(fd).map_err(|_| EBADF)?)?;
        let key = NodeKey::of_file(&file).ok_or(EINVAL)?;
        self.heaps
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, heap)| heap.clone())
            .ok_or(EINVAL)
    }
}

impl NodeOps for Control {
    const ATTRS: &'static [(&'static CStr, bool)] = &[];

    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        if _IOC_TYPE(cmd) != DMA_HEAP_IOC_MAGIC {
            return Err(ENOTTY);
        }
        match _IOC_NR(cmd) {
            FILL_NR => ioctl_fill(cmd, arg, |data| self.heap_of(data.heap_fd)),
            // CAST: an fd is a C `int`; a value past `INT_MAX` is no fd.
            ALLOC_NR => ioctl_alloc(UserPtr::from_addr(arg), arg_sizes(cmd), |data| {
                self.heap_of(data.heap_fd as i32)
            }),
            _ => Err(ENOTTY),
        }
    }

    fn show(&self, _idx: usize, _f: &mut dyn Write) -> fmt::Result {
        Err(fmt::Error)
    }

    fn store(&self, _idx: usize, _text: &str) -> Result {
        Err(EINVAL)
    }
}

/// `/dev/rust_dma_heap_ctl`: its class (`/sys/class/rust_dma_heap_ctl/`)
/// and char device region are its own.
const CONTROL_NAME: &CStr = c"rust_dma_heap_ctl";

impl Control {
    /// The control node over `heaps`, published.
    fn publish(heaps: KVec<(NodeKey, Arc<HeapFile>)>) -> Result<Node<Control>> {
        let region = ChrdevRegion::new(1, CONTROL_NAME)?;
        let class = Class::new_flat(CONTROL_NAME)?;
        let number = region.take().ok_or(ENOMEM)?;
        let mut node = Node::new(&class, number, Arc::new(Control { heaps }, GFP_KERNEL)?);
        node.publish(CONTROL_NAME)?;
        Ok(node)
    }
}

impl KernelHeap for HeapFile {
    fn name(&self) -> &CStr {
        self.heap.name()
    }

    fn alloc(&self, len: u64, fd_flags: u32, heap_flags: u64) -> Result<DmaBuf> {
        self.buffer(len, fd_flags, heap_flags)
    }

    fn fill(
        &self,
        len: u64,
        fd_flags: u32,
        heap_flags: u64,
        source: &Source,
        offset: u64,
    ) -> Result<(DmaBuf, Read)> {
        check_span(offset, len)?;
        self.loaded(len, fd_flags, heap_flags, source, offset)
    }
}

/// `EOVERFLOW` unless a fill's last byte has a file offset (an `loff_t`).
fn check_span(offset: u64, len: u64) -> Result {
    match offset.checked_add(len) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(EOVERFLOW),
    }
}

#[cfg(CONFIG_DMABUF_HEAPS)]
impl crate::wrappers::dma_heap::Provide for HeapFile {
    fn name(&self) -> &CStr {
        self.heap.name()
    }

    fn allocate(&self, len: u64, fd_flags: u32, heap_flags: u64) -> Result<DmaBuf> {
        self.buffer(len, fd_flags, heap_flags)
    }
}

/// The heaps other drivers find by name (the in-kernel API).
struct Index(KVec<Arc<HeapFile>>);

impl Heaps for Index {
    fn find(&self, name: &CStr) -> Option<Arc<dyn KernelHeap>> {
        let file = self.0.iter().find(|f| f.heap.name() == name)?;
        Some(file.clone())
    }
}

/// Indices in [`HeapFile::ATTRS`].
const CONTIGUOUS: usize = 0;
const CACHED: usize = 1;
const SIZE: usize = 2;
const USED: usize = 3;
const BUFFERS: usize = 4;
const PEAK: usize = 5;
const MAX_ALLOC: usize = 6;
const POOL: usize = 7;

impl NodeOps for HeapFile {
    /// Documentation/ABI/testing/sysfs-class-dma_heap.
    const ATTRS: &'static [(&'static CStr, bool)] = &[
        (c"contiguous", false),
        (c"cached", false),
        (c"size", false),
        (c"used", false),
        (c"buffers", false),
        (c"peak", true),
        (c"max_alloc", true),
        (c"pool", false),
    ];

    fn show(&self, idx: usize, f: &mut dyn Write) -> fmt::Result {
        let usage = self.heap.usage();
        let value = match idx {
            CONTIGUOUS => u64::from(self.heap.contiguous()),
            CACHED => u64::from(self.heap.cached()),
            SIZE => usage.size(),
            USED => self.exports.used(),
            BUFFERS => self.exports.count(),
            PEAK => self.exports.peak(),
            MAX_ALLOC => usage.max_alloc(),
            POOL => self.heap.pool().ok_or(fmt::Error)? as u64,
            _ => return Err(fmt::Error),
        };
        writeln!(f, "{value}")
    }

    fn has_attr(&self, idx: usize) -> bool {
        idx != POOL || self.heap.pool().is_some()
    }

    fn store(&self, idx: usize, text: &str) -> Result {
        let value: u64 = text.parse().map_err(|_| EINVAL)?;
        match idx {
            PEAK if value == 0 => self.exports.reset_peak(),
            MAX_ALLOC => self.heap.usage().set_max_alloc(value)?,
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// `dma_heap_ioctl()`: the argument may be smaller or larger than
    /// today's struct (older or newer userspace); missing input reads as
    /// zero, extra input is ignored, and only what the caller's size covers
    /// is written back.
    #[inline]
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        if _IOC_TYPE(cmd) != DMA_HEAP_IOC_MAGIC {
            return Err(ENOTTY);
        }
        let nr = _IOC_NR(cmd);
        if nr == FILL_NR {
            // On a heap's own node: that heap (`heap_fd` is not read).
            return ioctl_fill(cmd, arg, |_| Ok(self));
        }
        if nr == ALLOC_NR {
            // On a heap's own node: that heap (`heap_fd` is not read).
            return ioctl_alloc(UserPtr::from_addr(arg), arg_sizes(cmd), |_| Ok(self));
        }
        if nr != DMA_HEAP_ALLOC_NR {
            return Err(ENOTTY);
        }
        let (in_size, out_size) = arg_sizes(cmd);
        let user = UserPtr::from_addr(arg);
        if in_size != ALLOC_DATA_SIZE || out_size != ALLOC_DATA_SIZE {
            if in_size == CHARGE_DATA_SIZE && out_size == CHARGE_DATA_SIZE {
                return self.ioctl_charged(user);
            }
            return self.ioctl_resized(user, in_size, out_size);
        }
        // Today's `DMA_HEAP_IOCTL_ALLOC`: one typed value each way (one
        // call into the kernel's `_copy_{from,to}_user`).
        let words: AllocationWords = UserSlice::new(user, in_size).reader().read()?;
        let mut data: AllocationData = zerocopy::transmute!(words);
        let (dmabuf, fd) = self.allocate(&data)?;
        data.fd = fd.reserved_fd();
        let words: AllocationWords = zerocopy::transmute!(data);
        // On a failed copy-out, dropping `fd` and `dmabuf` un-reserves the
        // fd and frees the buffer: nothing leaks.
        UserSlice::new(user, out_size).writer().write(&words)?;
        dmabuf.install(fd);
        Ok(0)
    }
}

/// The proposal's argument as the kernel copies it (see
/// [`AllocationWords`]).
type ChargeWords = [u64; 4];

impl HeapFile {
    /// `DMA_HEAP_IOCTL_ALLOC` with the charge-the-client proposal's 32-byte
    /// argument (see [`ChargeData`]: its `__padding` must be zero), read
    /// and written as one typed value each way.
    #[inline(never)]
    fn ioctl_charged(&self, user: UserPtr) -> Result<isize> {
        let words: ChargeWords = UserSlice::new(user, CHARGE_DATA_SIZE).reader().read()?;
        let mut data: ChargeData = zerocopy::transmute!(words);
        if data.heap_fd != 0 {
            return Err(EINVAL);
        }
        let (dmabuf, fd) = self.allocate_charged(&data)?;
        data.fd = fd.reserved_fd();
        let words: ChargeWords = zerocopy::transmute!(data);
        UserSlice::new(user, CHARGE_DATA_SIZE)
            .writer()
            .write(&words)?;
        dmabuf.install(fd);
        Ok(0)
    }

    /// The ioctl for an argument smaller or larger than today's struct:
    /// read into a zeroed vector, only what the caller's size covers
    /// written back.
    /// A 32-byte argument in is the charge-the-client proposal's (see
    /// [`ChargeData`]: its `__padding` must be zero); other sizes are
    /// upstream's struct, older or newer (extra bytes ignored: upstream's
    /// kselftest sends a longer one with garbage after the struct).
    #[inline(never)]
    fn ioctl_resized(&self, user: UserPtr, in_size: usize, out_size: usize) -> Result<isize> {
        if in_size == CHARGE_DATA_SIZE {
            return ioctl_alloc(user, (in_size, out_size), |data| {
                if data.heap_fd != 0 {
                    Err(EINVAL)
                } else {
                    Ok(self)
                }
            });
        }
        let (dmabuf, fd) = sized_arg::<ALLOC_DATA_SIZE, _>(user, in_size, out_size, |head| {
            let mut data: AllocationData = zerocopy::transmute!(*head);
            let (dmabuf, fd) = self.allocate(&data)?;
            data.fd = fd.reserved_fd();
            *head = zerocopy::transmute!(data);
            Ok((dmabuf, fd))
        })?;
        dmabuf.install(fd);
        Ok(0)
    }
}

/// `/sys/kernel/<ATTRS_DIR>/heaps/<heap>/`: every heap's attributes, in
/// both modes.
const ATTRS_DIR: &CStr = c"rust_dma_heap";

/// The heaps' attribute directories. Fields drop in order: each heap's,
/// then `heaps/`, then its parent.
struct HeapDirs {
    _heaps: KVec<NodeDir<HeapFile>>,
    _dir: KernelDir,
    _parent: Arc<KernelDir>,
}

impl HeapDirs {
    /// `/sys/kernel/rust_dma_heap/heaps/<heap>/` for every heap of
    /// `files`; `/sys/kernel/rust_dma_heap/` is `class_dir` when the class
    /// has that name.
    fn new(
        class_name: &CStr,
        class_dir: Option<&Arc<KernelDir>>,
        files: &[(NodeKey, Arc<HeapFile>)],
    ) -> Result<Self> {
        let parent = match class_dir {
            Some(dir) if class_name == ATTRS_DIR => dir.clone(),
            _ => Arc::new(KernelDir::new(ATTRS_DIR, None)?, GFP_KERNEL)?,
        };
        let dir = KernelDir::new(c"heaps", Some(&parent))?;
        let mut heaps = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        for (_, file) in files {
            heaps.push(
                NodeDir::new(&dir, file.heap.name(), file.clone())?,
                GFP_KERNEL,
            )?;
        }
        Ok(Self {
            _heaps: heaps,
            _dir: dir,
            _parent: parent,
        })
    }
}

/// Every heap's live buffers.
type AllExports = KVec<Arc<Exports<Buffer>>>;

/// `/sys/kernel/debug/<class>/buffers`: a header, then a line per live
/// buffer (tab-separated), heap by heap.
fn write_buffers(heaps: &AllExports, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "inode\theap\tsize\tpid\tcomm\tcgroup\tattachments\tvmaps\tname\tmemory\tcharged"
    )?;
    heaps.iter().try_for_each(|exports| {
        let heap = exports.name().to_bytes();
        exports.for_each(|buffer, info| line(heap, buffer, info, f))
    })
}

/// A count, or `-` when unknown.
struct Count(Option<usize>);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("-"),
        }
    }
}

/// Bytes from outside the module (a buffer's name, a task's `comm`, a
/// cgroup's or a device tree node's name) as one field of a report line:
/// every byte that could end the field or the line or fake either (control
/// characters, DEL, bytes of 0x80 and above, and the backslash itself) is
/// written as a backslash and three octal digits (`\011` for a tab), as
/// `/proc/<pid>/mountinfo` escapes paths. Nothing a process can name a
/// buffer or itself adds a field or a line.
struct Escaped<'a>(&'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while !rest.is_empty() {
            // The longest run that needs no escape, written at once.
            let plain = rest
                .iter()
                .position(|&b| needs_escape(b))
                .unwrap_or(rest.len());
            // Printable ASCII only: valid UTF-8.
            f.write_str(core::str::from_utf8(&rest[..plain]).map_err(|_| fmt::Error)?)?;
            if let Some(&b) = rest.get(plain) {
                write!(f, "\\{:03o}", b)?;
                rest = &rest[plain + 1..];
            } else {
                rest = &[];
            }
        }
        Ok(())
    }
}

/// Whether `b` is written escaped in a report (see [`Escaped`]).
fn needs_escape(b: u8) -> bool {
    !(b' '..=b'~').contains(&b) || b == b'\\'
}

/// One line of `buffers`.
fn line(heap: &[u8], buffer: &Buffer, info: &Info<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let owner = buffer.owner();
    let mut path = [0u8; 256];
    writeln!(
        f,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        info.ino,
        Escaped(heap),
        buffer.len(),
        owner.tgid(),
        Escaped(owner.comm()),
        Escaped(buffer.cgroup_path(&mut path).unwrap_or(b"-")),
        Count(info.attachments),
        Count(info.vmaps),
        Escaped(info.name.unwrap_or(b"-")),
        Escaped(buffer.chosen_from().map_or(heap, str::as_bytes)),
        ChargedTo(buffer.charged()),
    )
}

/// The `charged` column: `<tgid>:<comm>` of the process a service
/// allocated the buffer for, `-` when it is the allocating one.
struct ChargedTo<'a>(Option<&'a Process>);

impl fmt::Display for ChargedTo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, "{}:{}", c.tgid(), Escaped(c.comm())),
            None => f.write_str("-"),
        }
    }
}

/// `/sys/kernel/<class>/total_pools_kb`: the KiB every heap's pool holds
/// (Android's file of the same name).
struct Pools(KVec<Arc<Pool>>);

impl Show for Pools {
    fn show(&self, f: &mut dyn Write) -> fmt::Result {
        let bytes: usize = self.0.iter().map(|p| p.bytes()).sum();
        writeln!(f, "{}", bytes / 1024)
    }
}

/// All heaps of the module, served either as nodes of its own class or
/// through the kernel's dma-heap framework.
///
/// Fields drop in order: the in-kernel API's index, the debugfs file,
/// nodes (no file can be open: the module is going away), then the device
/// numbers, then the class. (A registry that serves through the framework
/// is never dropped: the module is pinned.)
pub(crate) struct Registry {
    _control: Option<Node<Control>>,
    _kapi: Option<Published>,
    _pools: Option<KernelFile<Pools>>,
    _attrs: Option<HeapDirs>,
    _buffers: Pin<KBox<debugfs::File<AllExports>>>,
    _debugfs: debugfs::Dir,
    _nodes: KVec<Node<HeapFile>>,
    _own: Option<(Arc<ChrdevRegion>, Arc<Class>)>,
    served: usize,
}

impl Registry {
    /// Serves every heap of `heaps`: as a node of the class `class_name`
    /// (`/dev/<class_name>/`), or, when `provider`, through the kernel's
    /// dma-heap framework (`/dev/dma_heap/`, where the module then stays
    /// for good). Every heap is built before the first is published: once
    /// one is visible the module must load (a file may be open on it, the
    /// framework keeps pointers into it), so nothing fails after that. A
    /// heap whose name is taken, or that cannot be published, is logged
    /// and skipped; `ENODEV` when none at all could be. The debugfs report
    /// and `/sys/kernel/<class_name>/` are named after `class_name` in both
    /// cases.
    pub(crate) fn new(
        class_name: &'static CStr,
        heaps: KVec<Arc<dyn Heap>>,
        provider: bool,
    ) -> Result<Self> {
        let own = if provider {
            None
        } else {
            Some((
                ChrdevRegion::new(MAX_HEAPS, class_name)?,
                Class::new(class_name)?,
            ))
        };
        let mut built: KVec<Node<HeapFile>> = KVec::with_capacity(heaps.len(), GFP_KERNEL)?;
        let mut files: KVec<Arc<HeapFile>> = KVec::with_capacity(heaps.len(), GFP_KERNEL)?;
        let slabs = Slabs::new()?;
        for heap in heaps {
            if files.iter().any(|f| f.heap.name() == heap.name()) {
                pr_err!("a heap named {} exists already; skipped\n", heap.name());
                continue;
            }
            let number = match &own {
                Some((region, _)) => match region.take() {
                    Some(number) => Some(number),
                    None => {
                        pr_err!("more than {} heaps: {} skipped\n", MAX_HEAPS, heap.name());
                        continue;
                    }
                },
                None => None,
            };
            let exports = Exports::new(heap.name(), &slabs)?;
            let deferred = heap.deferred();
            let charges_dmem = heap.charges_dmem();
            let usage = heap.usage().clone();
            let file = Arc::new(
                HeapFile {
                    heap,
                    deferred,
                    charges_dmem,
                    usage,
                    exports,
                },
                GFP_KERNEL,
            )?;
            files.push(file.clone(), GFP_KERNEL)?;
            if let (Some((_, class)), Some(number)) = (&own, number) {
                built.push(Node::new(class, number, file), GFP_KERNEL)?;
            }
        }
        let mut exports = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        let mut pools = KVec::new();
        let mut serve = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        for file in &files {
            exports.push(file.exports.clone(), GFP_KERNEL)?;
            // Each pool once, whichever heaps draw from it.
            if let Some(pool) = file.heap.draws_from() {
                if !pools.iter().any(|p| Arc::ptr_eq(p, pool)) {
                    pools.push(pool.clone(), GFP_KERNEL)?;
                }
            }
            serve.push(file.clone(), GFP_KERNEL)?;
        }
        // Other drivers find the heaps from here on (not a reason to fail
        // either; a heap whose node the driver core refuses below stays
        // findable).
        let kapi = Arc::new(Index(files), GFP_KERNEL)
            .map_err(Error::from)
            .and_then(|index| Published::new(index))
            .inspect_err(|e| pr_warn!("in-kernel API not available: {e:?}\n"))
            .ok();
        // The last allocations that may fail the load come before the
        // first heap is served.
        let mut nodes = KVec::with_capacity(built.len(), GFP_KERNEL)?;
        // (Like debugfs, not reasons to fail.)
        let class_dir = KernelDir::new(class_name, None)
            .and_then(|dir| Ok(Arc::new(dir, GFP_KERNEL)?))
            .inspect_err(|e| pr_warn!("/sys/kernel/{class_name}: {e:?}\n"))
            .ok();
        let pools = class_dir.as_ref().and_then(|dir| {
            KernelFile::new(dir, c"total_pools_kb", Pools(pools))
                .inspect_err(|e| pr_warn!("/sys/kernel/{class_name}/total_pools_kb: {e:?}\n"))
                .ok()
        });
        // (A missing debugfs is no reason to fail: the file is then inert.)
        let debugfs = debugfs::Dir::new(class_name);
        let buffers = KBox::pin_init(
            debugfs.read_callback_file(c"buffers", exports, &write_buffers),
            GFP_KERNEL,
        )?;
        let mut served: KVec<(NodeKey, Arc<HeapFile>)> =
            KVec::with_capacity(serve.len(), GFP_KERNEL)?;
        // No `?` below: once a heap is served (a node visible, or a heap in
        // the kernel's framework, which keeps pointers into the module) the
        // load must succeed.
        if provider {
            Self::provide(&serve, &mut served);
        } else {
            for (mut node, file) in built.into_iter().zip(serve.iter()) {
                let name = node.data().heap.clone();
                if let Err(e) = node.publish(name.name()) {
                    pr_err!("heap {}: node not created ({:?})\n", name.name(), e);
                    continue;
                }
                // Room for every node and heap reserved above: neither
                // push can fail (a node not kept would go, unserved).
                let key = node.key();
                if nodes.push_within_capacity(node).is_err()
                    || served.push_within_capacity((key, file.clone())).is_err()
                {
                    pr_err!("heap {}: no room to keep its node\n", name.name());
                }
            }
        }
        if served.is_empty() {
            return Err(ENODEV);
        }
        // The attributes of the heaps served (not a reason to fail: nothing
        // may, now that they are).
        let attrs = HeapDirs::new(class_name, class_dir.as_ref(), &served)
            .inspect_err(|e| pr_warn!("/sys/kernel/{ATTRS_DIR}/heaps: {e:?}\n"))
            .ok();
        let count = served.len();
        let control = Control::publish(served)
            .inspect_err(|e| pr_warn!("/dev/{CONTROL_NAME}: {e:?}\n"))
            .ok();
        Ok(Self {
            _control: control,
            _kapi: kapi,
            _pools: pools,
            _attrs: attrs,
            _buffers: buffers,
            _debugfs: debugfs,
            _nodes: nodes,
            _own: own,
            served: count,
        })
    }

    /// Adds every heap of `files` to the kernel's dma-heap framework (a
    /// name it has already is logged and skipped), and to `added` (which
    /// has room for all) those it took.
    #[cfg(CONFIG_DMABUF_HEAPS)]
    fn provide(files: &[Arc<HeapFile>], added: &mut KVec<(NodeKey, Arc<HeapFile>)>) {
        for file in files {
            let name = file.heap.clone();
            let bytes = name.name().to_bytes();
            // The framework names its device with the heap's name as a
            // format string, and sysfs has no `/` in a name.
            let done = if bytes.iter().any(|&b| b == b'/' || b == b'%') {
                Err(EINVAL)
            } else if crate::wrappers::dma_heap::taken(name.name()) {
                Err(EEXIST)
            } else {
                crate::wrappers::dma_heap::add(file.clone())
            };
            match done {
                // Room reserved by the caller: cannot fail.
                Ok(key) => {
                    if added.push_within_capacity((key, file.clone())).is_err() {
                        pr_err!("heap {}: added, but no room to list it\n", name.name());
                    }
                }
                Err(e) if e == EEXIST => pr_info!(
                    "the kernel has a heap named {} already: ours not added\n",
                    name.name()
                ),
                Err(e) => pr_err!("heap {}: not added ({:?})\n", name.name(), e),
            }
        }
    }

    /// Without the kernel's framework there is nothing to add to.
    #[cfg(not(CONFIG_DMABUF_HEAPS))]
    fn provide(_files: &[Arc<HeapFile>], _added: &mut KVec<(NodeKey, Arc<HeapFile>)>) {}

    /// How many heaps are served.
    pub(crate) fn len(&self) -> usize {
        self.served
    }
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kunit_tests(rust_dma_heap_uapi)]
mod tests {
    use super::*;
    use kernel::ioctl::{_IO, _IOR, _IOW, _IOWR};

    #[test]
    fn arg_sizes_follow_direction() {
        assert_eq!(
            arg_sizes(_IOWR::<AllocationData>(DMA_HEAP_IOC_MAGIC, 0)),
            (24, 24)
        );
        assert_eq!(
            arg_sizes(_IOWR::<FillData>(DMA_HEAP_IOC_MAGIC, 0x40)),
            (56, 56)
        );
        assert_eq!(
            arg_sizes(_IOW::<AllocationData>(DMA_HEAP_IOC_MAGIC, 0)),
            (24, 0)
        );
        assert_eq!(
            arg_sizes(_IOR::<AllocationData>(DMA_HEAP_IOC_MAGIC, 0)),
            (0, 24)
        );
        assert_eq!(arg_sizes(_IO(DMA_HEAP_IOC_MAGIC, 0)), (0, 0));
        // An older, shorter struct; a newer, longer one.
        assert_eq!(
            arg_sizes(_IOWR::<[u8; 16]>(DMA_HEAP_IOC_MAGIC, 0)),
            (16, 16)
        );
        assert_eq!(
            arg_sizes(_IOWR::<[u8; 40]>(DMA_HEAP_IOC_MAGIC, 0)),
            (40, 40)
        );
    }

    #[test]
    fn uapi_layouts() {
        assert_eq!(core::mem::size_of::<AllocationData>(), 24);
        assert_eq!(core::mem::offset_of!(AllocationData, fd), 8);
        assert_eq!(core::mem::offset_of!(AllocationData, heap_flags), 16);
        assert_eq!(core::mem::size_of::<FillData>(), 56);
        assert_eq!(core::mem::offset_of!(FillData, offset), 24);
        assert_eq!(core::mem::offset_of!(FillData, heap_fd), 36);
        assert_eq!(core::mem::offset_of!(FillData, read), 48);
        // The proposal's struct: upstream's, then charge_pid_fd and the
        // padding word (heap_fd on the control node).
        assert_eq!(core::mem::size_of::<ChargeData>(), 32);
        assert_eq!(core::mem::offset_of!(ChargeData, heap_flags), 16);
        assert_eq!(core::mem::offset_of!(ChargeData, charge_pid_fd), 24);
        assert_eq!(core::mem::offset_of!(ChargeData, heap_fd), 28);
        assert_eq!(
            arg_sizes(_IOWR::<ChargeData>(DMA_HEAP_IOC_MAGIC, ALLOC_NR)),
            (32, 32)
        );
    }

    #[test]
    fn len_is_page_aligned() {
        assert_eq!(checked_len(1, 0, 0, u64::MAX), Ok(PAGE_SIZE));
        assert_eq!(checked_len(PAGE_SIZE as u64, 0, 0, u64::MAX), Ok(PAGE_SIZE));
        assert_eq!(
            checked_len(PAGE_SIZE as u64 + 1, 0, 0, u64::MAX),
            Ok(2 * PAGE_SIZE)
        );
    }

    #[test]
    fn len_zero_or_wrapping_is_einval() {
        assert_eq!(checked_len(0, 0, 0, u64::MAX), Err(EINVAL));
        assert_eq!(checked_len(u64::MAX, 0, 0, u64::MAX), Err(EINVAL));
        assert_eq!(checked_len(u64::MAX - 1, 0, 0, u64::MAX), Err(EINVAL));
    }

    #[test]
    fn flags_checked_as_upstream() {
        let rw = bindings::O_RDWR | bindings::O_CLOEXEC;
        assert_eq!(checked_len(1, rw, 0, u64::MAX), Ok(PAGE_SIZE));
        assert_eq!(
            checked_len(1, bindings::O_NONBLOCK, 0, u64::MAX),
            Err(EINVAL)
        );
        assert_eq!(checked_len(1, 0, 1, u64::MAX), Err(EINVAL));
        assert_eq!(checked_len(1, 0, 1 << 63, u64::MAX), Err(EINVAL));
    }

    #[test]
    fn max_alloc_is_enomem() {
        let max = 16 * PAGE_SIZE as u64;
        assert_eq!(checked_len(max, 0, 0, max), Ok(16 * PAGE_SIZE));
        assert_eq!(checked_len(max + 1, 0, 0, max), Err(ENOMEM));
        assert_eq!(checked_len(1, 0, 0, 0), Err(ENOMEM));
    }

    #[test]
    fn fill_span_fits_loff_t() {
        assert_eq!(check_span(0, 4096), Ok(()));
        assert_eq!(check_span(i64::MAX as u64 - 4096, 4096), Ok(()));
        assert_eq!(check_span(i64::MAX as u64 - 4095, 4096), Err(EOVERFLOW));
        assert_eq!(check_span(u64::MAX, 1), Err(EOVERFLOW));
    }

    /// `bytes` as a report writes them.
    fn escaped(bytes: &[u8]) -> Result<KVec<u8>> {
        struct Text(KVec<u8>);
        impl Write for Text {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0
                    .extend_from_slice(s.as_bytes(), GFP_KERNEL)
                    .map_err(|_| fmt::Error)
            }
        }
        let mut text = Text(KVec::new());
        write!(text, "{}", Escaped(bytes)).map_err(|_| ENOMEM)?;
        Ok(text.0)
    }

    #[test]
    fn escaped_text() -> Result {
        assert_eq!(
            &escaped(b"cam\\\0\tx\x7f\xff ok~")?[..],
            b"cam\\134\\000\\011x\\177\\377 ok~"
        );
        assert_eq!(&escaped(b"")?[..], b"");
        assert_eq!(&escaped(b"a\nb")?[..], b"a\\012b");
        Ok(())
    }
}
