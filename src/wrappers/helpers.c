// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C wrappers for kernel APIs that are inline or macros and so have no
 * symbol the Rust side could call, and the module's one string parameter
 * (the Rust module! macro takes integers and bools only). No logic lives
 * here.
 */
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/sched/signal.h>
#include <linux/scatterlist.h>
#include <linux/vmalloc.h>

#include "helpers.h"

static char class_name[32] = "dma_heap";
module_param_string(class_name, class_name, sizeof(class_name), 0444);
MODULE_PARM_DESC(class_name,
		 "Device class and /dev directory of the heaps (default: dma_heap)");

static char carveout[64];
module_param_string(carveout, carveout, sizeof(carveout), 0444);
MODULE_PARM_DESC(carveout,
		 "A carveout heap on a physical range without device tree: <size>@<base> (see Documentation)");

/*
 * Upstream system heap's LOW_ORDER_GFP, except that a buffer userspace asked
 * too much for fails (ENOMEM, quietly: an answer, not a kernel event) instead
 * of invoking the OOM killer; HIGH_ORDER_GFP; __GFP_ACCOUNT for
 * mem_accounting=1.
 */
const gfp_t rdh_gfp_zeroed_user = GFP_HIGHUSER | __GFP_ZERO | __GFP_RETRY_MAYFAIL |
				  __GFP_NOWARN;
const gfp_t rdh_gfp_account = __GFP_ACCOUNT;
const gfp_t rdh_gfp_zeroed_user_opportunistic =
	((GFP_HIGHUSER | __GFP_ZERO | __GFP_NOWARN | __GFP_NORETRY) &
	 ~__GFP_RECLAIM) | __GFP_COMP;

const char *rdh_carveout_param(void)
{
	return carveout;
}

const char *rdh_class_name(void)
{
	return class_name;
}

unsigned long rdh_totalram_pages(void)
{
	return totalram_pages();
}

bool rdh_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

/* As upstream's CMA heap: one memset through the linear map, or page by page. */
void rdh_clear_pages(struct page *page, unsigned long count)
{
	unsigned long i;

	if (!PageHighMem(page)) {
		memset(page_address(page), 0, count << PAGE_SHIFT);
		return;
	}
	for (i = 0; i < count; i++)
		clear_highpage(page + i);
}

unsigned long rdh_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

void rdh_sg_set_page(struct scatterlist *sg, struct page *page,
		     unsigned int len, unsigned int offset)
{
	sg_set_page(sg, page, len, offset);
}

struct scatterlist *rdh_sg_next(struct scatterlist *sg)
{
	return sg_next(sg);
}

void rdh_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				  enum dma_data_direction dir)
{
	dma_sync_sgtable_for_cpu(dev, sgt, dir);
}

void rdh_dma_sync_sgtable_for_device(struct device *dev, struct sg_table *sgt,
				     enum dma_data_direction dir)
{
	dma_sync_sgtable_for_device(dev, sgt, dir);
}

void *rdh_vmap(struct page **pages, unsigned int count)
{
	return vmap(pages, count, VM_MAP, PAGE_KERNEL);
}

void rdh_vunmap(const void *addr)
{
	vunmap(addr);
}

void rdh_flush_kernel_vmap_range(void *addr, int size)
{
	flush_kernel_vmap_range(addr, size);
}

void rdh_invalidate_kernel_vmap_range(void *addr, int size)
{
	invalidate_kernel_vmap_range(addr, size);
}

#ifdef CONFIG_OF_RESERVED_MEM
void rdh_of_node_put(struct device_node *np)
{
	of_node_put(np);
}

int rdh_reserved_mem_lookup(struct device_node *np, phys_addr_t *base,
			    phys_addr_t *size)
{
	struct reserved_mem *rmem = of_reserved_mem_lookup(np);

	if (!rmem)
		return -ENOENT;
	*base = rmem->base;
	*size = rmem->size;
	return 0;
}
#endif

int rdh_dma_mapping_error(struct device *dev, dma_addr_t addr)
{
	return dma_mapping_error(dev, addr);
}

void rdh_sg_set_dma(struct scatterlist *sg, dma_addr_t addr, unsigned int len)
{
	sg_dma_address(sg) = addr;
	sg_dma_len(sg) = len;
}

bool rdh_dma_capable(struct device *dev, phys_addr_t phys, size_t size)
{
	/* As dma_direct_map_resource() checks it, without its warning. */
	if (!dev->dma_mask || device_iommu_mapped(dev))
		return true;
	return dma_capable(dev, (dma_addr_t)phys, size, false, 0);
}

bool rdh_pfn_valid(unsigned long pfn)
{
	return pfn_valid(pfn);
}

struct page *rdh_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

void rdh_vma_set_writecombine(struct vm_area_struct *vma)
{
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
}

/* @prot with the young and dirty bits of a PTE set. */
pgprot_t rdh_pgprot_young_dirty(pgprot_t prot)
{
	return pte_pgprot(pte_mkdirty(pte_mkyoung(pfn_pte(0, prot))));
}
