// SPDX-License-Identifier: GPL-2.0

//! The system heap: pages from the buddy allocator, largest blocks first,
//! through a pool of freed blocks (see [`crate::pool`]).

#![forbid(unsafe_code)]

use super::{Heap, Usage};
use crate::{
    buffer::{Charge, Filled, Memory, MemorySlot},
    pool::Pool,
    wrappers::{
        fatal_signal_pending,
        fs::{Read, Source},
        memcg_charges_current,
        pages::{Effort, Fresh, FreshRuns, PageRun, PageRuns},
        pool_max_kb_param,
        shrinker::Shrinker,
        totalram_pages, Dirty, Zeroed,
    },
};
use kernel::{page::PAGE_SIZE, prelude::*, str::CStr, sync::Arc};

/// Block orders tried, largest first: 1 MiB, 64 KiB, 4 KiB with 4 KiB
/// pages, the sizes IOMMUs map cheaply (as upstream).
const ORDERS: [u32; 3] = [8, 4, 0];

/// Block orders the pool keeps: not single pages, which the page
/// allocator's per-CPU lists already keep for reuse, zeroed in 1.6 us
/// here, while a pool's lock and lists cost more than that on a cold path
/// (Documentation/benchmark/README.rst, "After the page pool").
const POOLED: [u32; 2] = [8, 4];

/// The `system` heap.
pub(crate) struct SystemHeap {
    /// Charge buffers to the allocating task's memory cgroup (upstream's
    /// `mem_accounting`).
    account: bool,
    usage: Arc<Usage>,
    /// Declared before the pool: unregistered first.
    _shrinker: Shrinker<Pool>,
    pool: Arc<Pool>,
}

impl SystemHeap {
    /// The heap, charging its buffers to memory cgroups when `account`,
    /// with a pool of `pool_max_kb` (a quarter of RAM by default).
    pub(crate) fn new(account: bool) -> Result<Self> {
        let ram = totalram_pages() * PAGE_SIZE;
        let max = match pool_max_kb_param() {
            0 => ram / 4,
            kb => kb.saturating_mul(1024).min(ram),
        };
        let pool = Pool::new(&POOLED, max)?;
        Ok(Self {
            account,
            usage: Arc::new(Usage::new(ram as u64), GFP_KERNEL)?,
            _shrinker: Shrinker::register(c"rust-dma-heap-pool", pool.clone())?,
            pool,
        })
    }

    /// `len` bytes (page-aligned, non-zero) of zeroed memory, as a buffer
    /// of this heap has (for the heaps that choose from it).
    pub(crate) fn memory(&self, len: usize) -> Result<Memory> {
        Ok(Memory::pages(self.pages(len)?, self.charge()))
    }

    /// `len` bytes read from `source` at `pos` (zero past its end), as a
    /// buffer of this heap has them (for the heaps that choose from it).
    pub(crate) fn loaded_memory(
        &self,
        len: usize,
        source: &Source,
        pos: u64,
    ) -> Result<(Memory, Read)> {
        let (runs, read) = source.load_pieces(len, pos, |n| self.dirty_pages(n))?;
        Ok((Memory::loaded(runs, self.charge()), read))
    }

    /// Its pool (the heaps that draw from it share it).
    pub(crate) fn shared_pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// What the buffers are charged to.
    pub(crate) fn charge(&self) -> Charge {
        if self.account {
            Charge::Memcg
        } else {
            Charge::None
        }
    }

    /// The largest block not larger than `remaining` nor `max_order`, and
    /// its order: from the pool when `pooled`, else from the page
    /// allocator (high orders opportunistic, order 0 may reclaim). Inlined:
    /// its result (40 bytes) would otherwise be copied by a call to
    /// `memcpy`.
    #[inline(always)]
    fn alloc_largest<F: Fresh>(
        &self,
        remaining: usize,
        max_order: u32,
        pooled: bool,
    ) -> Result<Option<(F, u32)>> {
        for order in fitting_orders(remaining, max_order) {
            if pooled {
                if let Some(run) = self.pool.take(order)? {
                    return Ok(Some((F::from_zeroed(run), order)));
                }
            }
            let effort = if order > 0 {
                Effort::Opportunistic
            } else {
                Effort::Normal
            };
            if let Some(run) = F::buddy(order, effort, self.account) {
                return Ok(Some((run, order)));
            }
        }
        Ok(None)
    }

    /// `runs`, back to the pool when freed if `pooled`. Inlined, as
    /// [`Self::alloc_largest`].
    #[inline(always)]
    fn recycled<F: Fresh>(&self, runs: F::Runs, pooled: bool) -> F::Runs {
        if pooled {
            F::recycled(runs, self.pool.clone())
        } else {
            runs
        }
    }

    /// `len` bytes (page-aligned, non-zero) of zeroed pages, charged as
    /// [`Self::charge`] says, going back to the pool when freed. Inlined
    /// into its callers: returned, the runs would be copied by a call to
    /// `memcpy`.
    #[inline(always)]
    pub(crate) fn pages(&self, len: usize) -> Result<Zeroed<PageRuns>> {
        self.fresh_pages::<Zeroed<PageRun>>(len)
    }

    /// As [`Self::pages`], not zeroed (but for the pool's blocks, which
    /// are): for memory a read will overwrite.
    #[inline(always)]
    pub(crate) fn dirty_pages(&self, len: usize) -> Result<Dirty<PageRuns>> {
        self.fresh_pages::<Dirty<PageRun>>(len)
    }

    /// `len` bytes (page-aligned, non-zero) of new pages of kind `F`.
    #[inline(always)]
    fn fresh_pages<F: Fresh>(&self, len: usize) -> Result<F::Runs> {
        // More than the machine has was refused already (`max_alloc` is at
        // most the RAM size), before reclaim could get involved (upstream
        // does not refuse it).
        // Pooled pages are charged to nobody: only for callers the kernel
        // would not charge either, and only buffers with a block of a
        // pooled order (blocks come largest first) go near the pool.
        let smallest = PAGE_SIZE << POOLED[POOLED.len() - 1];
        let pooled = len >= smallest && !(self.account && memcg_charges_current());
        let (first, order) = self
            .alloc_largest::<F>(len, ORDERS[0], pooled)?
            .ok_or(ENOMEM)?;
        let pooled = pooled && POOLED.contains(&order);
        let size = first.run().size();
        if size == len {
            return Ok(self.recycled::<F>(PageRuns::one(first), pooled));
        }
        let mut remaining = len - size;
        let mut max_order = order;
        // Room for the rest in blocks of this order (more only when the
        // allocator runs out of them).
        let mut runs = FreshRuns::with_capacity(1 + remaining.div_ceil(size))?;
        runs.push(first)?;
        while remaining > 0 {
            // A killed caller stops here; dropping `runs` frees all.
            if fatal_signal_pending() {
                return Err(EINTR);
            }
            let (run, order) = self
                .alloc_largest::<F>(remaining, max_order, pooled)?
                .ok_or(ENOMEM)?;
            remaining -= run.run().size();
            max_order = order;
            runs.push(run)?;
        }
        Ok(self.recycled::<F>(PageRuns::from_runs(runs), pooled))
    }
}

/// The block orders of [`ORDERS`] to try, largest first, for `remaining`
/// bytes when blocks of `max_order` at most are wanted (a buffer's blocks
/// never grow: after a smaller block, only that order or less).
#[inline(always)]
fn fitting_orders(remaining: usize, max_order: u32) -> impl Iterator<Item = u32> {
    ORDERS
        .into_iter()
        .filter(move |&order| order <= max_order && remaining >= PAGE_SIZE << order)
}

impl Heap for SystemHeap {
    fn name(&self) -> &CStr {
        c"system"
    }

    fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    fn allocate(
        &self,
        len: usize,
        _fd_flags: u32,
        _heap_flags: u64,
        slot: MemorySlot<'_>,
    ) -> Result<Filled> {
        Ok(slot.pages(self.pages(len)?, self.charge()))
    }

    fn load(
        &self,
        len: usize,
        source: &Source,
        pos: u64,
        slot: MemorySlot<'_>,
    ) -> Result<(Filled, Read)> {
        let (runs, read) = source.load_pieces(len, pos, |n| self.dirty_pages(n))?;
        Ok((slot.loaded(runs, self.charge()), read))
    }

    fn loads(&self) -> bool {
        true
    }

    fn contiguous(&self) -> bool {
        false
    }

    fn cached(&self) -> bool {
        true
    }

    fn pool(&self) -> Option<usize> {
        Some(self.pool.bytes())
    }

    fn draws_from(&self) -> Option<&Arc<Pool>> {
        Some(&self.pool)
    }
}

impl Drop for SystemHeap {
    fn drop(&mut self) {
        // The last buffers may have queued the worker: it finishes before
        // the module's code goes.
        self.pool.flush();
    }
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kunit_tests(rust_dma_heap_orders)]
mod tests {
    use super::*;

    /// The orders of a buffer of `len` bytes when every block comes:
    /// largest first, never larger than the previous one.
    fn plan(len: usize) -> Result<KVec<u32>> {
        let mut orders = KVec::new();
        let (mut remaining, mut max) = (len, ORDERS[0]);
        while let Some(order) = fitting_orders(remaining, max).next() {
            orders.push(order, GFP_KERNEL)?;
            remaining -= PAGE_SIZE << order;
            max = order;
        }
        assert_eq!(remaining, 0);
        Ok(orders)
    }

    #[test]
    fn orders_largest_first() {
        assert_eq!(ORDERS, [8, 4, 0]);
        // Every pooled order is an allocation order.
        assert!(POOLED.iter().all(|o| ORDERS.contains(o)));
    }

    #[test]
    fn fitting_one_page() {
        let mut it = fitting_orders(PAGE_SIZE, 8);
        assert_eq!(it.next(), Some(0));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn fitting_respects_max_order() {
        let mut it = fitting_orders(4 << 20, 4);
        assert_eq!(it.next(), Some(4));
        assert_eq!(it.next(), Some(0));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn fitting_nothing_below_a_page() {
        assert_eq!(fitting_orders(PAGE_SIZE - 1, 8).next(), None);
        assert_eq!(fitting_orders(0, 8).next(), None);
    }

    #[test]
    fn plans_of_sizes() -> Result {
        assert_eq!(&plan(PAGE_SIZE)?[..], &[0]);
        assert_eq!(&plan(16 * PAGE_SIZE)?[..], &[4]);
        assert_eq!(&plan(17 * PAGE_SIZE)?[..], &[4, 0]);
        assert_eq!(&plan(256 * PAGE_SIZE)?[..], &[8]);
        assert_eq!(&plan(3 * 256 * PAGE_SIZE)?[..], &[8, 8, 8]);
        assert_eq!(&plan((256 + 32 + 3) * PAGE_SIZE)?[..], &[8, 4, 4, 0, 0, 0]);
        Ok(())
    }

    #[test]
    fn pooled_threshold_is_smallest_pooled_block() {
        assert_eq!(PAGE_SIZE << POOLED[POOLED.len() - 1], 16 * PAGE_SIZE);
    }
}
