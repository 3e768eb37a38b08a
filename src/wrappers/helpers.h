/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Thin C wrappers for kernel APIs that are inline or macros and so have no
 * symbol the Rust side could call. No logic lives here.
 */
#ifndef RUST_DMA_HEAP_HELPERS_H
#define RUST_DMA_HEAP_HELPERS_H

#include <linux/dma-direction.h>
#include <linux/types.h>
#include <linux/pgtable.h>

struct bio_vec;
struct cgroup_subsys_state;
struct cma;
struct device;
struct file;
struct kiocb;
struct mem_cgroup;
struct dma_resv;
struct dmem_cgroup_pool_state;
struct dmem_cgroup_region;
struct page;
struct sg_table;
struct vm_area_struct;
struct scatterlist;

const char *rdh_class_name(void);
const char *rdh_mode(void);
unsigned long rdh_cma_pages(const struct cma *cma);
void rdh_cma_span(const struct cma *cma, phys_addr_t *base, phys_addr_t *end);
void rdh_warn_ratelimited(const char *msg);
struct dmem_cgroup_region *rdh_dmem_register(const char *name, u64 size);
void rdh_dmem_unregister(struct dmem_cgroup_region *region);
int rdh_dmem_try_charge(struct dmem_cgroup_region *region, u64 size,
			struct dmem_cgroup_pool_state **pool,
			struct cgroup_subsys_state **css);
void rdh_dmem_uncharge(struct dmem_cgroup_pool_state *pool, u64 size,
		       struct cgroup_subsys_state *css);
struct cgroup_subsys_state *rdh_page_memcg_css(struct page *page);
void rdh_css_put(struct cgroup_subsys_state *css);
int rdh_css_path(struct cgroup_subsys_state *css, char *buf, size_t len);
bool rdh_mem_accounting(void);
unsigned long rdh_pool_max_kb(void);
bool rdh_pool_zeroing(void);
void rdh_mod_reclaimable(struct page *page, long nr);
bool rdh_memcg_charges_current(void);
unsigned long rdh_totalram_pages(void);
bool rdh_fatal_signal_pending(void);
bool rdh_page_highmem(struct page *page);
void rdh_clear_highpage(struct page *page);
void rdh_clear_pages(struct page *page, unsigned int npages);
unsigned long rdh_page_to_pfn(struct page *page);
void *rdh_vmap(struct page **pages, unsigned int count, bool wc);
void rdh_vunmap(const void *addr);
void rdh_flush_kernel_vmap_range(void *addr, int size);
void rdh_invalidate_kernel_vmap_range(void *addr, int size);

struct device_node;

void rdh_of_node_put(struct device_node *np);
int rdh_reserved_mem_lookup(struct device_node *np, phys_addr_t *base,
			    phys_addr_t *size);
int rdh_dma_mapping_error(struct device *dev, dma_addr_t addr);
int rdh_dma_coerce_mask_and_coherent(struct device *dev, u64 mask);
void rdh_sg_set_dma(struct scatterlist *sg, dma_addr_t addr, unsigned int len);
bool rdh_pfn_valid(unsigned long pfn);
dma_addr_t rdh_phys_to_dma(struct device *dev, phys_addr_t phys);
struct page *rdh_pfn_to_page(unsigned long pfn);
pgprot_t rdh_pgprot_writecombine(pgprot_t prot);
pte_t rdh_pfn_pte(unsigned long pfn, pgprot_t prot);
pte_t rdh_pte_mkyoung(pte_t pte);
pte_t rdh_pte_mkdirty(pte_t pte);
pgprot_t rdh_pte_pgprot(pte_t pte);
const char *rdh_carveout_param(void);

/* kapi.c, and the Rust functions it calls (src/wrappers/kapi.rs). */
struct rust_dma_heap;
struct dma_buf;
void rdh_kapi_publish(const void *heaps);
struct rust_dma_heap *rdh_kapi_find(const void *heaps, const char *name);
const char *rdh_kapi_name(struct rust_dma_heap *heap);
struct dma_buf *rdh_kapi_alloc(struct rust_dma_heap *heap, u64 len, u32 fd_flags,
			       u64 heap_flags);
struct dma_buf *rdh_kapi_fill(struct rust_dma_heap *heap, u64 len, u32 fd_flags,
			      u64 heap_flags, struct file *file, loff_t offset, size_t *read);
void rdh_kapi_put(struct rust_dma_heap *heap);

bool rdh_file_writable(const struct file *file);
bool rdh_dev_translates(struct device *dev);
bool rdh_dev_force_bounce(struct device *dev);
bool rdh_cc_guest(void);
void rdh_cond_resched(void);
struct mem_cgroup *rdh_current_memcg(void);
int rdh_pidfd_charge(int fd, bool dmem, struct mem_cgroup **memcg, pid_t *tgid, char *comm);
void rdh_memcg_unscope(struct mem_cgroup *old, struct mem_cgroup *memcg);
void rdh_memcg_put(struct mem_cgroup *memcg);
struct mem_cgroup *rdh_set_active_memcg(struct mem_cgroup *memcg);
/* mem_cgroup_margin() (static in mm/memcontrol.c) of memcg and its ancestors, in pages. */
unsigned long rdh_memcg_margin(struct mem_cgroup *memcg);
int rdh_request_mem_region(phys_addr_t base, u64 size, const char *name);
void rdh_release_mem_region(phys_addr_t base, u64 size);
void rdh_device_lock(struct device *dev);
void rdh_device_unlock(struct device *dev);
int rdh_file_for_read(struct file *file, u64 *size, bool *direct);
ssize_t rdh_read_bvec(struct file *file, struct kiocb *iocb,
		      void (*complete)(struct kiocb *iocb, long ret),
		      struct bio_vec *bv, unsigned long nr, size_t skip,
		      size_t count, loff_t pos, bool direct);
void rdh_memzero_page(struct page *page, size_t offset, size_t len);

#endif /* RUST_DMA_HEAP_HELPERS_H */
