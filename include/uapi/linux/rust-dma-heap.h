/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rust-dma-heap's own ioctls, beside upstream's DMA_HEAP_IOCTL_ALLOC
 * (<linux/dma-heap.h>): what upstream does not have.
 */
#ifndef _UAPI_LINUX_RUST_DMA_HEAP_H
#define _UAPI_LINUX_RUST_DMA_HEAP_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: RUST_DMA_HEAP_IOCTL_FILL - allocate a buffer and fill it from a file
 *
 * Allocates @len bytes from a heap, as DMA_HEAP_IOCTL_ALLOC does, and reads the file @file_fd from @offset into
 * them before the dma-buf fd is returned in @fd. The bytes go straight into
 * the buffer's pages: with direct I/O (no page cache) when the file takes
 * it and @offset is sector-aligned, else through the page cache. Past the
 * file's end the buffer is zero. The auto heap places the memory at the
 * fill, as at a first use by the CPU (system pages).
 *
 * Made on a heap's node (/dev/<class>/<heap>, where the module serves its
 * own nodes), it allocates from that heap. Made on the module's control
 * node, /dev/rust_dma_heap_ctl (in every mode; the only way where the
 * kernel's dma-heap framework serves /dev/dma_heap/<heap>, whose ioctl
 * knows only DMA_HEAP_IOCTL_ALLOC), it allocates from the heap whose node
 * @heap_fd is open on: the heap node's permissions apply at its open, the
 * control node itself grants nothing (mode 0666).
 *
 * Like DMA_HEAP_IOCTL_ALLOC the argument may be shorter (older userspace:
 * missing fields read as zero) or longer (extra input is ignored; only what
 * the caller's size covers is written back).
 *
 * Errors: everything DMA_HEAP_IOCTL_ALLOC returns, and
 * EBADF      @file_fd is not an open fd, or not open for reading;
 * EINVAL     @file_fd is neither a regular file nor a block device; @fd,
 *            @flags or @reserved not zero;
 *            on the control node, @heap_fd is not open on a heap node of
 *            this module (EBADF: not an open fd);
 * EOVERFLOW  @offset + @len beyond the largest file offset (loff_t);
 * EOPNOTSUPP the heap's memory has no struct page (no-map carve-outs);
 * EIO (or the file's error) an I/O error; EINTR a fatal signal.
 * A failed call leaves nothing behind: no fd, no memory, no charge.
 */

/*
 * Out in @flags: the file was read with direct I/O (IOCB_DIRECT), which it
 * accepted: not through the page cache (tmpfs, which has none to bypass,
 * accepts it too).
 */
#define RUST_DMA_HEAP_FILL_DIRECT	(1U << 0)

/**
 * struct rust_dma_heap_fill_data - argument of RUST_DMA_HEAP_IOCTL_FILL
 * @len:	in: bytes to allocate (rounded up to pages)
 * @fd:		out: the dma-buf's fd (in: 0)
 * @fd_flags:	in: O_CLOEXEC and the access mode, as DMA_HEAP_IOCTL_ALLOC
 * @heap_flags:	in: 0, as DMA_HEAP_IOCTL_ALLOC
 * @offset:	in: file offset of the buffer's first byte
 * @file_fd:	in: the file to read (a regular file or a block device)
 * @heap_fd:	in: on the control node, an fd of the heap's node; ignored on
 *		a heap's node
 * @flags:	in: 0; out: RUST_DMA_HEAP_FILL_DIRECT
 * @reserved:	in: 0
 * @read:	out: bytes read from the file (the rest of the buffer is zero)
 */
struct rust_dma_heap_fill_data {
	__u64 len;
	__u32 fd;
	__u32 fd_flags;
	__u64 heap_flags;
	__u64 offset;
	__s32 file_fd;
	__s32 heap_fd;
	__u32 flags;
	__u32 reserved;
	__u64 read;
};

/* upstream's DMA_HEAP_IOC_MAGIC; numbers from 0x40 are this module's */
#define RUST_DMA_HEAP_IOC_MAGIC		'H'

#define RUST_DMA_HEAP_IOCTL_FILL	_IOWR(RUST_DMA_HEAP_IOC_MAGIC, 0x40, \
					      struct rust_dma_heap_fill_data)

/**
 * DOC: RUST_DMA_HEAP_IOCTL_ALLOC - allocate a buffer charged to another process
 *
 * DMA_HEAP_IOCTL_ALLOC for a service that allocates on behalf of a client
 * (Android's allocator, a camera service, a compositor): when
 * @charge_pid_fd is a pidfd (pidfd_open(2)) the buffer is charged to that
 * process's memory cgroup instead of the caller's, and fails with ENOMEM
 * when that cgroup is over its memory.max, however much room the caller's
 * has. The buffer's memory is charged, not the kernel objects of the
 * dma-buf and its fd (those stay the caller's, who holds the fd, as in the
 * proposal). System heap pages are charged at allocation (never taken from
 * the pool, which charges nobody); an auto buffer's memory when it is
 * placed.
 * 7.3's dmem controller charges only the current task's cgroup: on a heap
 * charged there (CMA areas, carve-outs, auto's reservation) a client in
 * another dmem cgroup is refused (EOPNOTSUPP) rather than the caller's
 * charged; one in the caller's own is charged as the caller. 0: the caller
 * is charged, as DMA_HEAP_IOCTL_ALLOC.
 *
 * Tracks an unmerged proposal ("dma-heap: charge dma-buf memory via
 * explicit memcg", May 2026), whose struct dma_heap_allocation_data gains
 * the same two fields after @heap_flags (its __padding is @heap_fd here):
 * its DMA_HEAP_IOCTL_ALLOC (a 32-byte argument) works unchanged on the
 * module's heap nodes, where __padding must be 0. Other argument sizes of
 * DMA_HEAP_IOCTL_ALLOC keep upstream's rule (bytes past its 24 ignored).
 * Where the kernel's framework serves /dev/dma_heap, only the control node
 * (/dev/rust_dma_heap_ctl, with @heap_fd naming the heap as for
 * RUST_DMA_HEAP_IOCTL_FILL) takes it.
 *
 * Charging another process is a privilege: allowed when the caller could
 * send it a signal (the rule of kill(2): same user, or CAP_KILL) or has
 * CAP_SYS_RESOURCE. The debugfs "buffers" report names both processes.
 *
 * Errors: everything DMA_HEAP_IOCTL_ALLOC returns, and
 * EBADF      @charge_pid_fd is not an open pidfd (any other fd, too);
 * ESRCH      its process has exited;
 * EPERM      the caller may not charge it;
 * EOPNOTSUPP a dmem-charged heap, the client in another dmem cgroup;
 * EINVAL     on the control node, @heap_fd is not a heap node of this
 *            module; DMA_HEAP_IOCTL_ALLOC's __padding not 0.
 */

/**
 * struct rust_dma_heap_alloc_data - argument of RUST_DMA_HEAP_IOCTL_ALLOC
 * @len:	in: bytes to allocate (rounded up to pages)
 * @fd:		out: the dma-buf's fd (in: 0)
 * @fd_flags:	in: O_CLOEXEC and the access mode, as DMA_HEAP_IOCTL_ALLOC
 * @heap_flags:	in: 0, as DMA_HEAP_IOCTL_ALLOC
 * @charge_pid_fd: in: pidfd of the process to charge; 0: the caller
 * @heap_fd:	in: on the control node, an fd of the heap's node; ignored on
 *		a heap's node
 */
struct rust_dma_heap_alloc_data {
	__u64 len;
	__u32 fd;
	__u32 fd_flags;
	__u64 heap_flags;
	__u32 charge_pid_fd;
	__u32 heap_fd;
};

#define RUST_DMA_HEAP_IOCTL_ALLOC	_IOWR(RUST_DMA_HEAP_IOC_MAGIC, 0x41, \
					      struct rust_dma_heap_alloc_data)

#endif /* _UAPI_LINUX_RUST_DMA_HEAP_H */
