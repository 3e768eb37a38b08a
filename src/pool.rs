// SPDX-License-Identifier: GPL-2.0

//! The system heap's page pool: the blocks of freed buffers (of the orders
//! it is given) are kept per order and handed out again before the page
//! allocator is asked. Freed blocks are zeroed off the allocation path by a
//! worker (the kernel's unbound workqueue for long work, a tick after a
//! buffer is freed, on whichever CPU is free); an allocation that finds
//! only blocks not yet zeroed zeroes one itself, so no block is ever handed
//! out with a previous user's data. A shrinker gives every pooled page back
//! to the system under memory pressure; the pool never holds more than its
//! limit, and only pages charged to no memory cgroup (the kernel offers
//! modules no way to move a page's charge, so buffers charged to a cgroup
//! go back to the page allocator).

#![forbid(unsafe_code)]

use crate::wrappers::{
    pages::{CleanBlocks, DirtyBlocks, PageRun, Recycle},
    pool_zeroing_param,
    shrinker::Reclaim,
    workqueue::{flush_delayed, unbound_long_queue},
    Dirty, Zeroed,
};
use kernel::{
    impl_has_delayed_work, new_delayed_work, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    workqueue::{DelayedWork, WorkItem},
};

/// The blocks of one order.
struct Blocks {
    /// Zeroed since their last user freed them.
    clean: CleanBlocks,
    /// Freed, waiting for the worker.
    dirty: DirtyBlocks,
}

/// The pool's lists.
///
/// # Invariants
///
/// `queued` is true from the time the worker is queued until it finds no
/// dirty block.
struct Lists {
    blocks: KVec<Blocks>,
    queued: bool,
}

/// A page pool for buddy blocks of a few orders.
#[pin_data]
pub(crate) struct Pool {
    orders: &'static [u32],
    max_pages: usize,
    /// A mutex (every user may sleep; the shrinker too): one call to
    /// lock, one to unlock.
    #[pin]
    lists: Mutex<Lists>,
    /// The number of pages on all stacks and of the block the worker is
    /// zeroing. Changed only under `lists`' lock (see [`Pool::add`]); read
    /// without it as a hint: an allocation skips an empty pool's lock, the
    /// shrinker and sysfs count without taking it.
    pages: Atomic<usize>,
    #[pin]
    work: DelayedWork<Pool>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Pool { self.work }
}

impl WorkItem for Pool {
    type Pointer = Arc<Pool>;

    fn run(this: Arc<Pool>) {
        this.zero_dirty();
    }
}

impl Pool {
    /// An empty pool for blocks of `orders`, keeping at most `max_bytes`.
    pub(crate) fn new(orders: &'static [u32], max_bytes: usize) -> Result<Arc<Self>> {
        let mut blocks = KVec::with_capacity(orders.len(), GFP_KERNEL)?;
        for &order in orders {
            blocks.push(
                Blocks {
                    clean: CleanBlocks::new(order),
                    dirty: DirtyBlocks::new(order),
                },
                GFP_KERNEL,
            )?;
        }
        Arc::pin_init(
            pin_init!(Self {
                orders,
                max_pages: max_bytes / PAGE_SIZE,
                lists <- new_mutex!(Lists {
                    blocks,
                    queued: false,
                }),
                pages: Atomic::new(0),
                work <- new_delayed_work!("rust_dma_heap::Pool::work"),
            }),
            GFP_KERNEL,
        )
    }

    fn index(&self, order: u32) -> Option<usize> {
        self.orders.iter().position(|&o| o == order)
    }

    /// Bytes in the pool.
    pub(crate) fn bytes(&self) -> usize {
        self.pages.load(Relaxed) * PAGE_SIZE
    }

    /// Counts `delta` pages more (or fewer) in the pool; `_lists` shows its
    /// lock is held, so a load and a store suffice.
    fn add(&self, _lists: &Lists, delta: isize) {
        let pages = self.pages.load(Relaxed).wrapping_add_signed(delta);
        self.pages.store(pages, Relaxed);
    }

    /// A zeroed block of `order` from the pool, if it has one: a clean one,
    /// else a dirty one zeroed here (`EINTR` if the caller is killed
    /// meanwhile; the block is freed).
    pub(crate) fn take(&self, order: u32) -> Result<Option<Zeroed<PageRun>>> {
        let Some(i) = self.index(order) else {
            return Ok(None);
        };
        // An empty pool (after the shrinker, or before the first free) is
        // not locked.
        if self.pages.load(Relaxed) == 0 {
            return Ok(None);
        }
        let dirty = {
            let mut lists = self.lists.lock();
            let b = &mut lists.blocks[i];
            if let Some(run) = b.clean.pop() {
                self.add(&lists, -(run.count() as isize));
                return Ok(Some(run));
            }
            let Some(run) = b.dirty.pop() else {
                return Ok(None);
            };
            self.add(&lists, -(run.count() as isize));
            run
        };
        Ok(Some(dirty.zero()?))
    }

    /// The worker: zeroes dirty blocks, largest first, until none is left.
    /// A block being zeroed stays counted in the pool.
    fn zero_dirty(&self) {
        // Held back (`pool_zeroing=N`): allocations zero what they take.
        let zeroing = pool_zeroing_param();
        loop {
            let run = {
                let mut lists = self.lists.lock();
                let dirty = if zeroing {
                    lists.blocks.iter_mut().find_map(|b| b.dirty.pop())
                } else {
                    None
                };
                let Some(run) = dirty else {
                    lists.queued = false;
                    return;
                };
                run
            };
            let count = run.count();
            let i = self.index(run.order().unwrap_or(u32::MAX));
            // A worker has no signal: zeroing runs to the end (a failed one
            // frees the block).
            let zeroed = run.zero().ok();
            let mut lists = self.lists.lock();
            let kept = match (i, zeroed) {
                (Some(i), Some(run)) => lists.blocks[i].clean.push(run).map_err(Some),
                (_, run) => Err(run),
            };
            if let Err(run) = kept {
                self.add(&lists, -(count as isize));
                drop(lists);
                drop(run);
            }
        }
    }

    /// Waits for the worker to finish what it was given.
    pub(crate) fn flush(&self) {
        flush_delayed(&self.work);
    }
}

impl Recycle for Pool {
    fn recycle(self: Arc<Self>, runs: &mut dyn Iterator<Item = PageRun>) {
        let queue = {
            let mut lists = self.lists.lock();
            for run in runs {
                let Some(i) = run.order().and_then(|o| self.index(o)) else {
                    continue;
                };
                let count = run.count();
                // Over the limit, or refused (charged to a memory cgroup):
                // freed here.
                if self.pages.load(Relaxed) + count <= self.max_pages
                    && lists.blocks[i].dirty.push(run).is_ok()
                {
                    self.add(&lists, count as isize);
                }
            }
            let dirty = lists.blocks.iter().any(|b| b.dirty.len() > 0);
            let queue = dirty && !lists.queued;
            if queue {
                lists.queued = true;
            }
            queue
        };
        if queue {
            // A tick later, on any CPU (zeroing a large pool is long
            // work, and its stores need not fill the caches of the CPU
            // that allocates next): queuing arms a timer and
            // wakes nobody, so freeing costs no more than the list; an
            // allocation that comes first zeroes what it takes itself.
            // Not pending (`queued` was false): accepted.
            let _ = unbound_long_queue().enqueue_delayed(self, 1);
        }
    }
}

impl Reclaim for Pool {
    fn count(&self) -> usize {
        self.pages.load(Relaxed)
    }

    fn scan(&self, nr: usize) -> usize {
        let mut freed = 0;
        while freed < nr {
            let run = {
                let mut lists = self.lists.lock();
                let Some(run) = lists.blocks.iter_mut().find_map(|b| {
                    b.dirty
                        .pop()
                        .map(Dirty::into_inner)
                        .or_else(|| b.clean.pop().map(Zeroed::into_inner))
                }) else {
                    break;
                };
                self.add(&lists, -(run.count() as isize));
                run
            };
            freed += run.count();
            // Back to the page allocator, outside the lock.
            drop(run);
        }
        freed
    }
}
