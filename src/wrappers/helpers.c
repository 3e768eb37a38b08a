// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C wrappers for kernel APIs that are inline or macros and so have no
 * symbol the Rust side could call, and the module parameters the Rust
 * module! macro cannot declare (strings, and those readable in sysfs: it
 * makes every parameter mode 0). No logic lives here.
 */
#include <linux/cc_platform.h>
#include <linux/cgroup.h>
#include <linux/cgroup_dmem.h>
#include <linux/dma-direct.h>
#include <linux/dma-resv.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/iommu.h>
#include <linux/ioport.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/magic.h>
#include <linux/pid.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/scatterlist.h>
#include <linux/swiotlb.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>

#include "helpers.h"
#ifdef CONFIG_CMA
#include <linux/cma.h>
#ifdef RDH_HAVE_MM_CMA_H
/* The kernel's source tree (Kbuild adds its mm/): struct cma. */
#include "cma.h"
#endif
#endif

static char class_name[32] = "dma_heap";
module_param_string(class_name, class_name, sizeof(class_name), 0444);
MODULE_PARM_DESC(class_name,
		 "Device class and /dev directory of the heaps (default: dma_heap)");

static char mode[16] = "auto";
module_param_string(mode, mode, sizeof(mode), 0444);
MODULE_PARM_DESC(mode,
		 "auto (default): the kernel's /dev/dma_heap where it has the dma-heap framework, else our own; provider; standalone (see Documentation)");

#ifdef CONFIG_DMABUF_HEAPS
/* dma_heap_add() (provider mode). */
MODULE_IMPORT_NS("DMA_BUF_HEAP");
#endif

static bool mem_accounting = true;
module_param(mem_accounting, bool, 0444);
MODULE_PARM_DESC(mem_accounting,
		 "Charge buffers to the allocating task's cgroups: system heap pages to its memory cgroup, CMA and carve-out buffers to its dmem cgroup (default: true; upstream's default is false)");

static char carveout[64];
module_param_string(carveout, carveout, sizeof(carveout), 0444);
MODULE_PARM_DESC(carveout,
		 "A carveout heap on a physical range without device tree: <size>@<base> (see Documentation)");

static unsigned long pool_max_kb;
module_param(pool_max_kb, ulong, 0444);
MODULE_PARM_DESC(pool_max_kb,
		 "Most KiB of freed system heap pages kept for reuse (default 0: a quarter of RAM; see Documentation)");

static bool pool_zeroing = true;
module_param(pool_zeroing, bool, 0644);
MODULE_PARM_DESC(pool_zeroing,
		 "Zero freed pool pages in the background (default Y; N leaves it to allocations, for tests)");

unsigned long rdh_pool_max_kb(void)
{
	return pool_max_kb;
}

bool rdh_pool_zeroing(void)
{
	return READ_ONCE(pool_zeroing);
}

void rdh_mod_reclaimable(struct page *page, long nr)
{
	mod_node_page_state(page_pgdat(page), NR_KERNEL_MISC_RECLAIMABLE, nr);
}

bool rdh_memcg_charges_current(void)
{
	struct mem_cgroup *memcg;
	bool ret;

	if (!memcg_kmem_online())
		return false;
	rcu_read_lock();
	/* A set_active_memcg() scope charges its memcg, not the task's. */
#ifdef CONFIG_MEMCG
	memcg = current->active_memcg;
#else
	memcg = NULL;
#endif
	if (!memcg)
		memcg = mem_cgroup_from_task(current);
	ret = memcg && !mem_cgroup_is_root(memcg);
	rcu_read_unlock();
	return ret;
}

const char *rdh_carveout_param(void)
{
	return carveout;
}

bool rdh_mem_accounting(void)
{
	return mem_accounting;
}

const char *rdh_class_name(void)
{
	return class_name;
}

const char *rdh_mode(void)
{
	return mode;
}

unsigned long rdh_totalram_pages(void)
{
	return totalram_pages();
}

bool rdh_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

bool rdh_page_highmem(struct page *page)
{
	return PageHighMem(page);
}

void rdh_clear_highpage(struct page *page)
{
	clear_highpage(page);
}

/*
 * Zeroes @npages (at least one) physically contiguous pages of the linear
 * map from @page. An architecture's clear_pages() clears the range at once
 * (x86: one string instruction); the generic one calls clear_page() for
 * each page, where one memset() of the range is cheaper (arm64: one
 * DC ZVA loop instead of one per page, 2 MiB of pages cost 512 calls),
 * and for one page clear_page() (no memset() set-up).
 */
void rdh_clear_pages(struct page *page, unsigned int npages)
{
	void *addr = page_address(page);

#ifdef clear_pages
	clear_pages(addr, npages);
#else
	if (npages == 1)
		clear_page(addr);
	else
		memset(addr, 0, (size_t)npages << PAGE_SHIFT);
#endif
}

unsigned long rdh_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

void *rdh_vmap(struct page **pages, unsigned int count, bool wc)
{
	return vmap(pages, count, VM_MAP,
		    wc ? pgprot_writecombine(PAGE_KERNEL) : PAGE_KERNEL);
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

int rdh_dma_coerce_mask_and_coherent(struct device *dev, u64 mask)
{
	return dma_coerce_mask_and_coherent(dev, mask);
}

void rdh_sg_set_dma(struct scatterlist *sg, dma_addr_t addr, unsigned int len)
{
	sg_dma_address(sg) = addr;
	sg_dma_len(sg) = len;
}

void rdh_warn_ratelimited(const char *msg)
{
	pr_warn_ratelimited("%s", msg);
}

dma_addr_t rdh_phys_to_dma(struct device *dev, phys_addr_t phys)
{
	return phys_to_dma(dev, phys);
}

bool rdh_pfn_valid(unsigned long pfn)
{
	return pfn_valid(pfn);
}

struct page *rdh_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

pgprot_t rdh_pgprot_writecombine(pgprot_t prot)
{
	return pgprot_writecombine(prot);
}

pte_t rdh_pfn_pte(unsigned long pfn, pgprot_t prot)
{
	return pfn_pte(pfn, prot);
}

pte_t rdh_pte_mkyoung(pte_t pte)
{
	return pte_mkyoung(pte);
}

pte_t rdh_pte_mkdirty(pte_t pte)
{
	return pte_mkdirty(pte);
}

pgprot_t rdh_pte_pgprot(pte_t pte)
{
	return pte_pgprot(pte);
}

#ifdef CONFIG_CMA
#ifdef RDH_HAVE_MM_CMA_H
/* cma_get_size() is not exported: the field it reads. */
unsigned long rdh_cma_pages(const struct cma *cma)
{
	return cma->count;
}

/* The lowest and the end (exclusive) physical address of @cma's ranges. */
void rdh_cma_span(const struct cma *cma, phys_addr_t *base, phys_addr_t *end)
{
	int i;

	*base = ~(phys_addr_t)0;
	*end = 0;
	for (i = 0; i < cma->nranges; i++) {
		*base = min(*base, PFN_PHYS(cma->ranges[i].base_pfn));
		*end = max(*end, PFN_PHYS(cma->ranges[i].base_pfn + cma->ranges[i].count));
	}
}
#else
/*
 * Built against a headers package (scripts/package/install-extmod-build:
 * no mm/, so struct cma is out of reach): the zones' CMA pages, every area
 * together, and the span of the zones that hold them. Exact with one CMA
 * area; with several, an upper bound for each.
 */
static unsigned long rdh_cma_zones(phys_addr_t *base, phys_addr_t *end)
{
	unsigned long pages = 0;
	struct zone *zone;
	int nid, z;

	*base = ~(phys_addr_t)0;
	*end = 0;
	for_each_online_node(nid) {
		for (z = 0; z < MAX_NR_ZONES; z++) {
			zone = &NODE_DATA(nid)->node_zones[z];
			if (!zone_cma_pages(zone))
				continue;
			pages += zone_cma_pages(zone);
			*base = min(*base, PFN_PHYS(zone->zone_start_pfn));
			*end = max(*end, PFN_PHYS(zone_end_pfn(zone)));
		}
	}
	return pages;
}

unsigned long rdh_cma_pages(const struct cma *cma)
{
	phys_addr_t base, end;

	return rdh_cma_zones(&base, &end);
}

void rdh_cma_span(const struct cma *cma, phys_addr_t *base, phys_addr_t *end)
{
	rdh_cma_zones(base, end);
}
#endif
#endif

/*
 * The dmem controller's API: variadic, and inline stubs without
 * CONFIG_CGROUP_DMEM.
 */
/*
 * NULL (nothing to charge) without the controller, or when the
 * administrator turned it off (cgroup_disable=dmem): its files are
 * gone then, and a charge would only cost.
 */
struct dmem_cgroup_region *rdh_dmem_register(const char *name, u64 size)
{
	struct dmem_cgroup_init init = { .size = size };

#ifdef CONFIG_CGROUP_DMEM
	if (!cgroup_subsys_enabled(dmem_cgrp_subsys))
		return NULL;
#endif
	return dmem_cgroup_register_region(&init, "%s", name);
}

void rdh_dmem_unregister(struct dmem_cgroup_region *region)
{
	dmem_cgroup_unregister_region(region);
}

/*
 * Charges @size bytes of @region to current's dmem cgroup; on success
 * (0) sets @pool to the charged pool and @css to a reference on current's
 * css of the dmem controller, for naming the cgroup, both non-NULL: both
 * are given back by rdh_dmem_uncharge(). (The pool's own reference on its
 * cgroup is private to the controller, so the css is read just after the
 * charge: the charged cgroup's unless current moved in between.)
 */
int rdh_dmem_try_charge(struct dmem_cgroup_region *region, u64 size,
			struct dmem_cgroup_pool_state **pool,
			struct cgroup_subsys_state **css)
{
#ifdef CONFIG_CGROUP_DMEM
	int ret = dmem_cgroup_try_charge(region, size, pool, NULL);

	if (!ret)
		*css = task_get_css(current, dmem_cgrp_id);
	return ret;
#else
	return -ENODEV;
#endif
}

/* Either may be NULL (nothing to give back of it). */
void rdh_dmem_uncharge(struct dmem_cgroup_pool_state *pool, u64 size,
		       struct cgroup_subsys_state *css)
{
	dmem_cgroup_uncharge(pool, size);
	if (css)
		css_put(css);
}

/* A reference on the css of the memory cgroup @page is charged to. */
struct cgroup_subsys_state *rdh_page_memcg_css(struct page *page)
{
	struct cgroup_subsys_state *css = NULL;
#ifdef CONFIG_MEMCG
	struct mem_cgroup *memcg;

	rcu_read_lock();
	memcg = folio_memcg(page_folio(page));
	if (memcg && css_tryget(&memcg->css))
		css = &memcg->css;
	rcu_read_unlock();
#endif
	return css;
}

void rdh_css_put(struct cgroup_subsys_state *css)
{
	css_put(css);
}

int rdh_css_path(struct cgroup_subsys_state *css, char *buf, size_t len)
{
#ifdef CONFIG_CGROUPS
	return cgroup_path(css->cgroup, buf, len);
#else
	return -EINVAL;
#endif
}

bool rdh_file_writable(const struct file *file)
{
	return file->f_mode & FMODE_WRITE;
}

bool rdh_dev_translates(struct device *dev)
{
	struct iommu_domain *domain = iommu_get_domain_for_dev(dev);

	return domain && (domain->type & __IOMMU_DOMAIN_PAGING);
}

bool rdh_dev_force_bounce(struct device *dev)
{
	return is_swiotlb_force_bounce(dev);
}

bool rdh_cc_guest(void)
{
	return cc_platform_has(CC_ATTR_MEM_ENCRYPT);
}

void rdh_cond_resched(void)
{
	cond_resched();
}

struct mem_cgroup *rdh_current_memcg(void)
{
#ifdef CONFIG_MEMCG
	/* A set_active_memcg() scope charges its memcg, not the task's. */
	struct mem_cgroup *active = current->active_memcg;

	if (active) {
		css_get(&active->css);
		return active;
	}
#endif
	return get_mem_cgroup_from_mm(current->mm);
}

/*
 * An allocation charged to the process of pidfd @fd: if the current task
 * may charge it (it could signal it: the credential rule of kill(2) and
 * pidfd_send_signal(2), or has CAP_SYS_RESOURCE), its memory cgroup in
 * *@memcg (a reference; NULL without memcg), its thread group id in *@tgid
 * and its name in @comm (TASK_COMM_LEN bytes). 0, or -EBADF (@fd is not an
 * open pidfd), -ESRCH (the process has exited or is exiting), -EPERM, or,
 * with @dmem, -EOPNOTSUPP when it is in another cgroup of the dmem
 * controller than the current task (which charges only the current one's).
 *
 * pidfd_pid() is not exported: a pidfd is a file of pidfs, whose inode
 * keeps the struct pid in i_private (what pidfd_pid() reads). Everything
 * is read under RCU, at once, without a reference on the task.
 */
int rdh_pidfd_charge(int fd, bool dmem, struct mem_cgroup **memcg, pid_t *tgid, char *comm)
{
	const struct cred *cred, *tcred;
	struct task_struct *task;
	int ret = 0;

	CLASS(fd, f)(fd);
	*memcg = NULL;
	if (fd_empty(f) || file_inode(fd_file(f))->i_sb->s_magic != PID_FS_MAGIC)
		return -EBADF;
	rcu_read_lock();
	task = pid_task(file_inode(fd_file(f))->i_private, PIDTYPE_PID);
	if (!task || task->flags & (PF_EXITING | PF_KTHREAD)) {
		ret = -ESRCH;
		goto out;
	}
	cred = current_cred();
	tcred = __task_cred(task);
	if (!same_thread_group(current, task) &&
	    !uid_eq(cred->euid, tcred->suid) && !uid_eq(cred->euid, tcred->uid) &&
	    !uid_eq(cred->uid, tcred->suid) && !uid_eq(cred->uid, tcred->uid) &&
	    !ns_capable(tcred->user_ns, CAP_KILL) && !capable(CAP_SYS_RESOURCE)) {
		ret = -EPERM;
		goto out;
	}
#ifdef CONFIG_CGROUP_DMEM
	if (dmem && task_css(task, dmem_cgrp_id) != task_css(current, dmem_cgrp_id)) {
		ret = -EOPNOTSUPP;
		goto out;
	}
#endif
#ifdef CONFIG_MEMCG
	if (!mem_cgroup_disabled()) {
		struct mem_cgroup *m;

		/*
		 * As get_mem_cgroup_from_mm(): the task may be moving.
		 * mem_cgroup_from_task(), inline.
		 */
		do {
			m = mem_cgroup_from_css(task_css(task, memory_cgrp_id));
		} while (!css_tryget(&m->css));
		*memcg = m;
	}
#endif
	*tgid = task_tgid_nr(task);
	memcpy(comm, task->comm, TASK_COMM_LEN);
	comm[TASK_COMM_LEN - 1] = '\0';
out:
	rcu_read_unlock();
	return ret;
}

void rdh_memcg_put(struct mem_cgroup *memcg)
{
	mem_cgroup_put(memcg);
}

/* Ends a set_active_memcg(@memcg) scope: @old active again, @memcg put. */
void rdh_memcg_unscope(struct mem_cgroup *old, struct mem_cgroup *memcg)
{
	set_active_memcg(old);
	mem_cgroup_put(memcg);
}

struct mem_cgroup *rdh_set_active_memcg(struct mem_cgroup *memcg)
{
	return set_active_memcg(memcg);
}

unsigned long rdh_memcg_margin(struct mem_cgroup *memcg)
{
	unsigned long margin = ULONG_MAX;

#ifdef CONFIG_MEMCG
	for (; memcg && !mem_cgroup_is_root(memcg); memcg = parent_mem_cgroup(memcg)) {
		unsigned long count = page_counter_read(&memcg->memory);
		unsigned long limit = READ_ONCE(memcg->memory.max);

		margin = min(margin, count < limit ? limit - count : 0);
	}
#endif
	return margin;
}

int rdh_request_mem_region(phys_addr_t base, u64 size, const char *name)
{
	return request_mem_region(base, size, name) ? 0 : -EBUSY;
}

void rdh_release_mem_region(phys_addr_t base, u64 size)
{
	release_mem_region(base, size);
}

void rdh_device_lock(struct device *dev)
{
	device_lock(dev);
}

void rdh_device_unlock(struct device *dev)
{
	device_unlock(dev);
}

/*
 * What a read of @file needs: -EBADF unless it is open for reading, -EINVAL
 * unless it is a regular file or a block device; its size in bytes, and
 * whether it takes direct I/O (FMODE_CAN_ODIRECT).
 */
int rdh_file_for_read(struct file *file, u64 *size, bool *direct)
{
	umode_t mode = file_inode(file)->i_mode;

	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	if (!S_ISREG(mode) && !S_ISBLK(mode))
		return -EINVAL;
	/* A block device's size is its mapping host's (the bdev inode). */
	*size = i_size_read(file->f_mapping->host);
	*direct = file->f_mode & FMODE_CAN_ODIRECT;
	return 0;
}

/*
 * Reads @count bytes at @pos of @file into @nr bio_vecs, starting @skip
 * bytes into them, with IOCB_DIRECT when @direct (whatever the file was
 * opened with). Synchronous when @iocb is NULL; otherwise through @iocb,
 * asynchronous with @complete (-EIOCBQUEUED: @complete comes later).
 * Bytes read, or -errno.
 */
ssize_t rdh_read_bvec(struct file *file, struct kiocb *iocb,
		      void (*complete)(struct kiocb *iocb, long ret),
		      struct bio_vec *bv, unsigned long nr, size_t skip,
		      size_t count, loff_t pos, bool direct)
{
	struct kiocb sync;
	struct iov_iter iter;

	if (!iocb) {
		iocb = &sync;
		complete = NULL;
	}
	init_sync_kiocb(iocb, file);
	iocb->ki_pos = pos;
	iocb->ki_flags &= ~IOCB_DIRECT;
	if (direct)
		iocb->ki_flags |= IOCB_DIRECT;
	iocb->ki_complete = complete;
	iov_iter_bvec(&iter, ITER_DEST, bv, nr, skip + count);
	iov_iter_advance(&iter, skip);
	return vfs_iocb_iter_read(file, iocb, &iter);
}

void rdh_memzero_page(struct page *page, size_t offset, size_t len)
{
	memzero_page(page, offset, len);
}
