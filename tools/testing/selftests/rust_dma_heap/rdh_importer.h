/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The test importer's interface: /dev/rdh_importer, one ioctl that imports
 * a dma-buf fd the way a device driver does and reports what it saw.
 */
#ifndef RDH_IMPORTER_H
#define RDH_IMPORTER_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Attach a second time and map both attachments. */
#define RDH_IMPORT_TWICE	(1 << 0)
/* Detach without unmapping first. */
#define RDH_IMPORT_DETACH_MAPPED (1 << 1)
/* Attach, map, unmap, detach only: no CPU access, words untouched. */
#define RDH_IMPORT_MAP_ONLY	(1 << 2)
/* When the first map fails, map the same attachment once more. */
#define RDH_IMPORT_MAP_RETRY	(1 << 3)
/* Attach, map, time one CPU-access sync pair (begin + end), unmap, detach. */
#define RDH_IMPORT_TIME_SYNC	(1 << 4)
/*
 * Attach as an importer that did not declare allow_peer2peer (a static
 * dma_buf_attach(): it may call sg_page() on its table). Without it the
 * importer attaches with allow_peer2peer: it uses only DMA addresses.
 */
#define RDH_IMPORT_NO_P2P	(1 << 5)

struct rdh_import {
	__s32 fd;		/* in: the dma-buf */
	__u32 flags;		/* in: RDH_IMPORT_* */
	/* in: the device's DMA mask; 0: 64 bits; below the top of RAM: a
	 * 32-bit mask and this as bus limit
	 */
	__u64 dma_mask;
	__u32 seed;		/* in: userspace wrote word i = i ^ seed */
	__u32 nents;		/* out: mapped scatterlist entries */
	__u64 dma_addr;		/* out: DMA address of the first entry */
	__u64 dma_len;		/* out: total DMA length */
	__u64 size;		/* out: dma-buf size */
	__u32 bad_word;		/* out: first word that did not match, or ~0 */
	__u32 vmap_same;	/* out: a second vmap returned the same address */
	__s32 map_err;		/* out: errno of mapping, 0 on success */
	__s32 retry_err;	/* out: errno of the retried map (RDH_IMPORT_MAP_RETRY) */
	__u64 sync_ns;		/* out: the sync pair's time (RDH_IMPORT_TIME_SYNC) */
};

/* Check the words through vmap, then write word i = ~(i ^ seed). */
#define RDH_IMPORT_CHECK	_IOWR('R', 0x01, struct rdh_import)

/* Through rust-dma-heap's in-kernel API (include/linux/rust-dma-heap.h). */
enum rdh_heap_op {
	RDH_HEAP_ALLOC,		/* find, allocate, put; the buffer as fd */
	RDH_HEAP_HOLD,		/* find and keep the heap (one at a time) */
	RDH_HEAP_RELEASE,	/* put the kept heap */
	RDH_HEAP_FILL,		/* find, fill from file_fd at offset, put; as ALLOC */
};

struct rdh_heap_req {
	char name[64];		/* in: the heap */
	__u32 op;		/* in: RDH_HEAP_* */
	__u32 fd_flags;		/* in: for the allocation */
	__u64 len;		/* in: bytes to allocate */
	__u64 heap_flags;	/* in: for the allocation */
	__s32 fd;		/* out: the buffer (O_CLOEXEC), for RDH_HEAP_ALLOC */
	__u32 zeroed;		/* out: 1 when every byte read (vmap) was zero */
	__u64 size;		/* out: the dma-buf's size */
	__u32 nents;		/* out: entries mapped for the importer's device */
	__u32 pad;
	char got_name[64];	/* out: rust_dma_heap_get_name() */
	__s32 file_fd;		/* in: the file of RDH_HEAP_FILL */
	__u32 pad2;
	__u64 offset;		/* in: its offset, for RDH_HEAP_FILL */
	__u64 read;		/* out: bytes read, for RDH_HEAP_FILL */
};

#define RDH_IMPORT_HEAP		_IOWR('R', 0x02, struct rdh_heap_req)

/*
 * The memory type the MMU applies to a buffer's CPU mappings, as the
 * translation hardware reports it (arm64: PAR_EL1.ATTR, the MAIR byte:
 * 0xff normal write-back, 0x44 normal non-cacheable = write-combined).
 * -EOPNOTSUPP on other architectures.
 */
struct rdh_memtype {
	__s32 fd;		/* in: the dma-buf */
	__u32 pad;
	__u64 uaddr;		/* in: an address in the caller's mmap of it */
	__s32 kernel_attr;	/* out: at its vmap; -1 on a translation fault */
	__s32 user_attr;	/* out: at uaddr; -1 on a translation fault */
};

#define RDH_IMPORT_MEMTYPE	_IOWR('R', 0x03, struct rdh_memtype)

/* Select the dma-buf that mmap() of this open file maps (dma_buf_mmap()). */
#define RDH_IMPORT_MMAP_FD	_IOW('R', 0x04, __s32)

#endif /* RDH_IMPORTER_H */
