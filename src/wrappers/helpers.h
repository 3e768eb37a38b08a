/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Thin C wrappers for kernel APIs that are inline or macros and so have no
 * symbol the Rust side could call. No logic lives here.
 */
#ifndef RUST_DMA_HEAP_HELPERS_H
#define RUST_DMA_HEAP_HELPERS_H

#include <linux/dma-direction.h>
#include <linux/gfp_types.h>
#include <linux/types.h>
#include <linux/pgtable.h>

struct device;
struct page;
struct sg_table;
struct vm_area_struct;
struct scatterlist;

extern const gfp_t rdh_gfp_zeroed_user;
extern const gfp_t rdh_gfp_zeroed_user_opportunistic;
extern const gfp_t rdh_gfp_account;

const char *rdh_class_name(void);
unsigned long rdh_totalram_pages(void);
bool rdh_fatal_signal_pending(void);
void rdh_clear_pages(struct page *page, unsigned long count);
unsigned long rdh_page_to_pfn(struct page *page);
void rdh_sg_set_page(struct scatterlist *sg, struct page *page,
		     unsigned int len, unsigned int offset);
struct scatterlist *rdh_sg_next(struct scatterlist *sg);
void rdh_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				  enum dma_data_direction dir);
void rdh_dma_sync_sgtable_for_device(struct device *dev, struct sg_table *sgt,
				     enum dma_data_direction dir);
void *rdh_vmap(struct page **pages, unsigned int count);
void rdh_vunmap(const void *addr);
void rdh_flush_kernel_vmap_range(void *addr, int size);
void rdh_invalidate_kernel_vmap_range(void *addr, int size);

struct device_node;

void rdh_of_node_put(struct device_node *np);
int rdh_reserved_mem_lookup(struct device_node *np, phys_addr_t *base,
			    phys_addr_t *size);
int rdh_dma_mapping_error(struct device *dev, dma_addr_t addr);
void rdh_sg_set_dma(struct scatterlist *sg, dma_addr_t addr, unsigned int len);
bool rdh_pfn_valid(unsigned long pfn);
bool rdh_dma_capable(struct device *dev, phys_addr_t phys, size_t size);
struct page *rdh_pfn_to_page(unsigned long pfn);
void rdh_vma_set_writecombine(struct vm_area_struct *vma);
pgprot_t rdh_pgprot_young_dirty(pgprot_t prot);
const char *rdh_carveout_param(void);

#endif /* RUST_DMA_HEAP_HELPERS_H */
