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

struct rdh_import {
	__s32 fd;		/* in: the dma-buf */
	__u32 flags;		/* in: RDH_IMPORT_* */
	__u64 dma_mask;		/* in: the device's DMA mask; 0: 64 bits */
	__u32 seed;		/* in: userspace wrote word i = i ^ seed */
	__u32 nents;		/* out: mapped scatterlist entries */
	__u64 dma_addr;		/* out: DMA address of the first entry */
	__u64 dma_len;		/* out: total DMA length */
	__u64 size;		/* out: dma-buf size */
	__u32 bad_word;		/* out: first word that did not match, or ~0 */
	__u32 vmap_same;	/* out: a second vmap returned the same address */
	__s32 map_err;		/* out: errno of mapping, 0 on success */
	__s32 retry_err;	/* out: errno of the retried map (RDH_IMPORT_MAP_RETRY) */
};

/* Check the words through vmap, then write word i = ~(i ^ seed). */
#define RDH_IMPORT_CHECK	_IOWR('R', 0x01, struct rdh_import)

#endif /* RDH_IMPORTER_H */
