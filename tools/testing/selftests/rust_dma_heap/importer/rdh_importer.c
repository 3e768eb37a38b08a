// SPDX-License-Identifier: GPL-2.0
/*
 * A test-only dma-buf importer for the rust-dma-heap selftests. It drives
 * the exporter paths no userspace call reaches: attach from a device of its
 * own (a faux device, with the DMA mask userspace asks for), map and unmap
 * for DMA, CPU-access syncs with a mapped attachment, vmap twice, detach.
 * Not for production kernels.
 */
#include <linux/device/faux.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/iosys-map.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "../rdh_importer.h"

static struct faux_device *fdev;
static DEFINE_MUTEX(import_lock);

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

static int import_check(struct rdh_import *req)
{
	struct device *dev = &fdev->dev;
	struct dma_buf_attachment *a, *b = NULL;
	struct sg_table *sgt, *sgt_b = NULL;
	struct iosys_map map, map2;
	struct dma_buf *dmabuf;
	struct scatterlist *sg;
	int ret, i;

	ret = dma_set_mask_and_coherent(dev, req->dma_mask ?: DMA_BIT_MASK(64));
	if (ret)
		return ret;
	dmabuf = dma_buf_get(req->fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	req->size = dmabuf->size;

	a = dma_buf_attach(dmabuf, dev);
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

	if (req->flags & RDH_IMPORT_TWICE) {
		b = dma_buf_attach(dmabuf, dev);
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

static long importer_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct rdh_import req;
	int ret;

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

static const struct file_operations importer_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = importer_ioctl,
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
