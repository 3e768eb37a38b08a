// SPDX-License-Identifier: GPL-2.0
/*
 * A test-only dma-buf importer for the rust-dma-heap selftests. It drives
 * the exporter paths no userspace call reaches: attach from a device of its
 * own (a faux device, with the DMA mask userspace asks for), map and unmap
 * for DMA, CPU-access syncs with a mapped attachment, vmap twice, detach;
 * and mmap() of a selected buffer through its own file, as a driver that
 * maps an imported buffer for userspace does (dma_buf_mmap()).
 * Not for production kernels.
 */
#include <linux/bitfield.h>
#include <linux/device/faux.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/iosys-map.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rust-dma-heap.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "../rdh_importer.h"

static struct faux_device *fdev;
static DEFINE_MUTEX(import_lock);
/* A heap held through RDH_HEAP_HOLD (import_lock). */
static struct rust_dma_heap *held;

/* What one open file of the device keeps. */
struct importer_file {
	/* Serializes the selection against its replacement and mmap(). */
	struct mutex lock;
	/* The buffer mmap() maps (RDH_IMPORT_MMAP_FD), with a reference. */
	struct dma_buf *mmap_buf;
};

/* Put the held heap (import_lock held): 0, -ENOENT, or -ENODEV. */
static int release_held(void)
{
	void (*put)(struct rust_dma_heap *heap);

	if (!held)
		return -ENOENT;
	/* Gone only if holding the heap did not keep the module. */
	put = symbol_get(rust_dma_heap_put);
	if (!put)
		return -ENODEV;
	put(held);
	held = NULL;
	symbol_put(rust_dma_heap_put);
	return 0;
}

static void check_words(struct rdh_import *req, u32 *words, size_t n)
{
	size_t i;

	req->bad_word = ~0u;
	for (i = 0; i < n; i++) {
		if (words[i] != ((u32)i ^ req->seed)) {
			req->bad_word = i;
			break;
		}
	}
	for (i = 0; i < n; i++)
		words[i] = ~((u32)i ^ req->seed);
}

static void invalidate_mappings(struct dma_buf_attachment *attach)
{
	/* Never called: the heaps' exporter never moves a buffer. */
}

/* An importer that uses only DMA addresses: tables without pages do. */
static const struct dma_buf_attach_ops p2p_ops = {
	.allow_peer2peer = true,
	.invalidate_mappings = invalidate_mappings,
};

/* Attach @dev to @dmabuf as a peer2peer importer, or as a static one. */
static struct dma_buf_attachment *attach(struct dma_buf *dmabuf, struct device *dev, bool p2p)
{
	if (p2p)
		return dma_buf_dynamic_attach(dmabuf, dev, &p2p_ops, NULL);
	return dma_buf_attach(dmabuf, dev);
}

static int import_check(struct rdh_import *req)
{
	bool p2p = !(req->flags & RDH_IMPORT_NO_P2P);
	struct device *dev = &fdev->dev;
	struct dma_buf_attachment *a, *b = NULL;
	struct sg_table *sgt, *sgt_b = NULL;
	struct iosys_map map, map2;
	struct dma_buf *dmabuf;
	struct scatterlist *sg;
	int ret, i;

	/*
	 * A mask below what the DMA core supports here (the top of RAM) is a
	 * bus limit, as a device tree's dma-ranges sets one.
	 */
	dev->bus_dma_limit = 0;
	ret = dma_set_mask_and_coherent(dev, req->dma_mask ?: DMA_BIT_MASK(64));
	if (ret == -EIO && req->dma_mask < DMA_BIT_MASK(32)) {
		ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(32));
		dev->bus_dma_limit = req->dma_mask;
	}
	if (ret)
		return ret;
	dmabuf = dma_buf_get(req->fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	req->size = dmabuf->size;

	a = attach(dmabuf, dev, p2p);
	if (IS_ERR(a)) {
		ret = PTR_ERR(a);
		goto put;
	}
	sgt = dma_buf_map_attachment_unlocked(a, DMA_BIDIRECTIONAL);
	if (IS_ERR(sgt)) {
		/* Reported, not an ioctl failure: the test asserts on it. */
		req->map_err = -PTR_ERR(sgt);
		if (!(req->flags & RDH_IMPORT_MAP_RETRY))
			goto detach;
		sgt = dma_buf_map_attachment_unlocked(a, DMA_BIDIRECTIONAL);
		if (IS_ERR(sgt)) {
			req->retry_err = -PTR_ERR(sgt);
			goto detach;
		}
	}
	req->nents = sgt->nents;
	req->dma_addr = sg_dma_address(sgt->sgl);
	req->dma_len = 0;
	for_each_sgtable_dma_sg(sgt, sg, i)
		req->dma_len += sg_dma_len(sg);
	if (req->flags & RDH_IMPORT_MAP_ONLY)
		goto unmap;
	if (req->flags & RDH_IMPORT_TIME_SYNC) {
		u64 t0 = ktime_get_ns();

		ret = dma_buf_begin_cpu_access(dmabuf, DMA_BIDIRECTIONAL);
		if (!ret)
			ret = dma_buf_end_cpu_access(dmabuf, DMA_BIDIRECTIONAL);
		req->sync_ns = ktime_get_ns() - t0;
		goto unmap;
	}

	if (req->flags & RDH_IMPORT_TWICE) {
		b = attach(dmabuf, dev, p2p);
		if (IS_ERR(b)) {
			ret = PTR_ERR(b);
			b = NULL;
			goto unmap;
		}
		sgt_b = dma_buf_map_attachment_unlocked(b, DMA_BIDIRECTIONAL);
		if (IS_ERR(sgt_b)) {
			ret = PTR_ERR(sgt_b);
			sgt_b = NULL;
			goto unmap;
		}
	}

	/* CPU access with mapped attachments: the exporter syncs them. */
	ret = dma_buf_begin_cpu_access(dmabuf, DMA_BIDIRECTIONAL);
	if (ret)
		goto unmap;
	ret = dma_buf_vmap_unlocked(dmabuf, &map);
	if (ret) {
		dma_buf_end_cpu_access(dmabuf, DMA_BIDIRECTIONAL);
		goto unmap;
	}
	ret = dma_buf_vmap_unlocked(dmabuf, &map2);
	if (!ret) {
		req->vmap_same = iosys_map_is_equal(&map, &map2);
		dma_buf_vunmap_unlocked(dmabuf, &map2);
	}
	check_words(req, map.vaddr, dmabuf->size / 4);
	dma_buf_vunmap_unlocked(dmabuf, &map);
	dma_buf_end_cpu_access(dmabuf, DMA_BIDIRECTIONAL);

unmap:
	if (sgt_b)
		dma_buf_unmap_attachment_unlocked(b, sgt_b, DMA_BIDIRECTIONAL);
	if (b)
		dma_buf_detach(dmabuf, b);
	if (!(req->flags & RDH_IMPORT_DETACH_MAPPED))
		dma_buf_unmap_attachment_unlocked(a, sgt, DMA_BIDIRECTIONAL);
detach:
	dma_buf_detach(dmabuf, a);
put:
	dma_buf_put(dmabuf);
	return ret;
}

#ifdef CONFIG_ARM64
/* The MAIR attribute the stage-1 walk gives @addr; -1 on a fault. */
static int memattr(unsigned long addr, bool user)
{
	unsigned long flags;
	u64 par;

	local_irq_save(flags);
	if (user)
		asm volatile("at s1e0r, %0" : : "r"(addr));
	else
		asm volatile("at s1e1r, %0" : : "r"(addr));
	isb();
	par = read_sysreg_par();
	local_irq_restore(flags);
	if (par & SYS_PAR_EL1_F)
		return -1;
	return FIELD_GET(SYS_PAR_EL1_ATTR, par);
}

static int memtype(struct rdh_memtype *req)
{
	struct dma_buf *dmabuf = dma_buf_get(req->fd);
	struct iosys_map map;
	int ret;

	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	ret = dma_buf_vmap_unlocked(dmabuf, &map);
	if (!ret) {
		req->kernel_attr = memattr((unsigned long)map.vaddr, false);
		dma_buf_vunmap_unlocked(dmabuf, &map);
		req->user_attr = memattr(req->uaddr, true);
	}
	dma_buf_put(dmabuf);
	return ret;
}
#else
static int memtype(struct rdh_memtype *req)
{
	return -EOPNOTSUPP;
}
#endif

static long importer_memtype_ioctl(unsigned long arg)
{
	struct rdh_memtype req;
	int ret;

	if (copy_from_user(&req, (void __user *)arg, sizeof(req)))
		return -EFAULT;
	ret = memtype(&req);
	if (ret)
		return ret;
	return copy_to_user((void __user *)arg, &req, sizeof(req)) ? -EFAULT : 0;
}

/* Fill @req from a buffer of the in-kernel API: vmap it, map it. */
static int heap_buffer_check(struct rdh_heap_req *req, struct dma_buf *dmabuf)
{
	struct dma_buf_attachment *a;
	struct sg_table *sgt;
	struct iosys_map map;
	const u8 *p;
	size_t i;
	int ret;

	req->size = dmabuf->size;
	fdev->dev.bus_dma_limit = 0;
	ret = dma_set_mask_and_coherent(&fdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	/* As a driver does: mapped for its device first, then read. */
	a = attach(dmabuf, &fdev->dev, true);
	if (IS_ERR(a))
		return PTR_ERR(a);
	sgt = dma_buf_map_attachment_unlocked(a, DMA_BIDIRECTIONAL);
	if (IS_ERR(sgt)) {
		ret = PTR_ERR(sgt);
		goto detach;
	}
	req->nents = sgt->nents;
	ret = dma_buf_vmap_unlocked(dmabuf, &map);
	if (!ret) {
		p = map.vaddr;
		req->zeroed = 1;
		for (i = 0; i < dmabuf->size; i++)
			if (p[i]) {
				req->zeroed = 0;
				break;
			}
		dma_buf_vunmap_unlocked(dmabuf, &map);
	}
	dma_buf_unmap_attachment_unlocked(a, sgt, DMA_BIDIRECTIONAL);
detach:
	dma_buf_detach(dmabuf, a);
	return ret;
}

/*
 * The in-kernel API, reached with symbol_get(): this module does not
 * depend on rust_dma_heap.ko, which the tests unload and load again.
 */
static int import_heap(struct rdh_heap_req *req)
{
	struct rust_dma_heap *(*find)(const char *name);
	const char *(*get_name)(struct rust_dma_heap *heap);
	struct dma_buf *(*alloc)(struct rust_dma_heap *heap, size_t len, u32 fd_flags,
				 u64 heap_flags);
	struct dma_buf *(*fill)(struct rust_dma_heap *heap, size_t len, u32 fd_flags,
				u64 heap_flags, struct file *file, loff_t offset, size_t *read);
	void (*put)(struct rust_dma_heap *heap);
	struct rust_dma_heap *heap;
	struct dma_buf *dmabuf;
	struct file *file;
	size_t read = 0;
	int ret = 0;

	req->name[sizeof(req->name) - 1] = '\0';
	if (req->op == RDH_HEAP_RELEASE)
		return release_held();
	find = symbol_get(rust_dma_heap_find);
	get_name = symbol_get(rust_dma_heap_get_name);
	alloc = symbol_get(rust_dma_heap_buffer_alloc);
	fill = symbol_get(rust_dma_heap_buffer_fill);
	put = symbol_get(rust_dma_heap_put);
	if (!find || !get_name || !alloc || !fill || !put) {
		ret = -ENODEV;
		goto out;
	}
	heap = find(req->name);
	if (!heap) {
		ret = -ENOENT;
		goto out;
	}
	strscpy(req->got_name, get_name(heap), sizeof(req->got_name));
	if (req->op == RDH_HEAP_HOLD) {
		/*
		 * Only the heap is kept: no symbol stays referenced, so what
		 * keeps the module loaded meanwhile is the heap alone.
		 */
		if (held) {
			put(heap);
			ret = -EBUSY;
		} else {
			held = heap;
		}
		goto out;
	}
	if (req->op == RDH_HEAP_FILL) {
		file = fget(req->file_fd);
		if (!file) {
			put(heap);
			ret = -EBADF;
			goto out;
		}
		dmabuf = fill(heap, req->len, req->fd_flags, req->heap_flags, file,
			      req->offset, &read);
		fput(file);
		req->read = read;
	} else {
		dmabuf = alloc(heap, req->len, req->fd_flags, req->heap_flags);
	}
	put(heap);
	if (IS_ERR(dmabuf)) {
		ret = PTR_ERR(dmabuf);
		goto out;
	}
	ret = heap_buffer_check(req, dmabuf);
	if (!ret) {
		req->fd = dma_buf_fd(dmabuf, O_CLOEXEC);
		if (req->fd >= 0)
			goto out;
		ret = req->fd;
	}
	dma_buf_put(dmabuf);
out:
	if (find)
		symbol_put(rust_dma_heap_find);
	if (get_name)
		symbol_put(rust_dma_heap_get_name);
	if (alloc)
		symbol_put(rust_dma_heap_buffer_alloc);
	if (fill)
		symbol_put(rust_dma_heap_buffer_fill);
	if (put)
		symbol_put(rust_dma_heap_put);
	return ret;
}

static long importer_heap_ioctl(unsigned long arg)
{
	struct rdh_heap_req req;
	int ret;

	if (copy_from_user(&req, (void __user *)arg, sizeof(req)))
		return -EFAULT;
	mutex_lock(&import_lock);
	ret = import_heap(&req);
	mutex_unlock(&import_lock);
	if (ret)
		return ret;
	/* (A buffer's fd stays installed even if this copy fails.) */
	return copy_to_user((void __user *)arg, &req, sizeof(req)) ? -EFAULT : 0;
}

/* Select the buffer mmap() of @file maps; a former selection is put. */
static long importer_mmap_fd_ioctl(struct file *file, unsigned long arg)
{
	struct importer_file *imp = file->private_data;
	struct dma_buf *dmabuf, *old;
	s32 fd;

	if (get_user(fd, (s32 __user *)arg))
		return -EFAULT;
	dmabuf = dma_buf_get(fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	mutex_lock(&imp->lock);
	old = imp->mmap_buf;
	imp->mmap_buf = dmabuf;
	mutex_unlock(&imp->lock);
	if (old)
		dma_buf_put(old);
	return 0;
}

static long importer_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct rdh_import req;
	int ret;

	if (cmd == RDH_IMPORT_MMAP_FD)
		return importer_mmap_fd_ioctl(file, arg);
	if (cmd == RDH_IMPORT_HEAP)
		return importer_heap_ioctl(arg);
	if (cmd == RDH_IMPORT_MEMTYPE)
		return importer_memtype_ioctl(arg);
	if (cmd != RDH_IMPORT_CHECK)
		return -ENOTTY;
	if (copy_from_user(&req, (void __user *)arg, sizeof(req)))
		return -EFAULT;
	mutex_lock(&import_lock);
	ret = import_check(&req);
	mutex_unlock(&import_lock);
	if (ret)
		return ret;
	return copy_to_user((void __user *)arg, &req, sizeof(req)) ? -EFAULT : 0;
}

/*
 * Map the selected buffer: the mapping becomes the dma-buf's own, as
 * dma_buf_mmap() makes it (its file, its mmap), whatever this file's mode.
 */
static int importer_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct importer_file *imp = file->private_data;
	struct dma_buf *dmabuf;
	int ret;

	mutex_lock(&imp->lock);
	dmabuf = imp->mmap_buf;
	if (dmabuf)
		get_dma_buf(dmabuf);
	mutex_unlock(&imp->lock);
	if (!dmabuf)
		return -EINVAL;
	/* The mapping takes a reference of its own (vma_set_file()). */
	ret = dma_buf_mmap(dmabuf, vma, vma->vm_pgoff);
	dma_buf_put(dmabuf);
	return ret;
}

/* misc_open() set private_data to the miscdevice: ours replaces it. */
static int importer_open(struct inode *inode, struct file *file)
{
	struct importer_file *imp = kzalloc(sizeof(*imp), GFP_KERNEL);

	if (!imp)
		return -ENOMEM;
	mutex_init(&imp->lock);
	file->private_data = imp;
	return 0;
}

/*
 * The file's selected buffer is put; a heap still held when its holder
 * closes the device goes back.
 */
static int importer_release(struct inode *inode, struct file *file)
{
	struct importer_file *imp = file->private_data;

	if (imp->mmap_buf)
		dma_buf_put(imp->mmap_buf);
	mutex_destroy(&imp->lock);
	kfree(imp);
	mutex_lock(&import_lock);
	release_held();
	mutex_unlock(&import_lock);
	return 0;
}

static const struct file_operations importer_fops = {
	.owner = THIS_MODULE,
	.open = importer_open,
	.unlocked_ioctl = importer_ioctl,
	.mmap = importer_mmap,
	.release = importer_release,
};

static struct miscdevice importer_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "rdh_importer",
	.fops = &importer_fops,
};

static int __init importer_init(void)
{
	int ret;

	fdev = faux_device_create("rdh_importer", NULL, NULL);
	if (!fdev)
		return -ENODEV;
	fdev->dev.dma_mask = &fdev->dev.coherent_dma_mask;
	ret = misc_register(&importer_misc);
	if (ret)
		faux_device_destroy(fdev);
	return ret;
}

static void __exit importer_exit(void)
{
	misc_deregister(&importer_misc);
	faux_device_destroy(fdev);
}

module_init(importer_init);
module_exit(importer_exit);
MODULE_DESCRIPTION("rust-dma-heap selftest importer (test only)");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("DMA_BUF");
