// SPDX-License-Identifier: GPL-2.0

//! The system heap: pages from the buddy allocator, largest blocks first.

use super::Heap;
use crate::{
    buffer::{Charge, Memory, Origin, Usage},
    wrappers::{
        fatal_signal_pending,
        pages::{Effort, PageRun, PageRuns},
        totalram_pages,
    },
};
use kernel::{page::PAGE_SIZE, prelude::*, str::CStr};

/// Block orders tried, largest first: 1 MiB, 64 KiB, 4 KiB with 4 KiB
/// pages, the sizes IOMMUs map cheaply (as upstream).
const ORDERS: [u32; 3] = [8, 4, 0];

/// The `system` heap.
pub(crate) struct SystemHeap {
    /// Charge buffers to the allocating task's memory cgroup (upstream's
    /// `mem_accounting`).
    account: bool,
    usage: Usage,
}

impl SystemHeap {
    /// The heap, charging its buffers to memory cgroups when `account`.
    pub(crate) fn new(account: bool) -> Self {
        let ram = totalram_pages() as u64 * PAGE_SIZE as u64;
        Self {
            account,
            usage: Usage::new(ram),
        }
    }

    /// What the buffers are charged to.
    fn charge(&self) -> Charge {
        if self.account {
            Charge::Memcg
        } else {
            Charge::None
        }
    }

    /// The largest block not larger than `remaining` nor `max_order`, and
    /// its order; high orders are opportunistic, order 0 may reclaim.
    fn alloc_largest(&self, remaining: usize, max_order: u32) -> Option<(PageRun, u32)> {
        ORDERS
            .iter()
            .filter(|&&order| order <= max_order && remaining >= PAGE_SIZE << order)
            .find_map(|&order| {
                let effort = if order > 0 {
                    Effort::Opportunistic
                } else {
                    Effort::Normal
                };
                PageRun::alloc_buddy(order, effort, self.account).map(|run| (run, order))
            })
    }
}

impl Origin for SystemHeap {
    fn name(&self) -> &CStr {
        c"system"
    }

    fn usage(&self) -> &Usage {
        &self.usage
    }
}

impl Heap for SystemHeap {
    fn allocate(&self, len: usize, _fd_flags: u32, _heap_flags: u64) -> Result<Memory> {
        // More than the machine has can never succeed: refuse it before
        // reclaim and the OOM killer get involved (upstream does not).
        if len / PAGE_SIZE > totalram_pages() {
            return Err(ENOMEM);
        }
        let (first, order) = self.alloc_largest(len, ORDERS[0]).ok_or(ENOMEM)?;
        if first.size() == len {
            return Memory::pages(PageRuns::one(first), self.charge());
        }
        let mut remaining = len - first.size();
        let mut max_order = order;
        // Room for the rest in blocks of this order (more only when the
        // allocator runs out of them).
        let mut runs = KVVec::with_capacity(1 + remaining.div_ceil(first.size()), GFP_KERNEL)?;
        runs.push(first, GFP_KERNEL)?;
        while remaining > 0 {
            // A killed caller stops here; dropping `runs` frees all.
            if fatal_signal_pending() {
                return Err(EINTR);
            }
            let (run, order) = self.alloc_largest(remaining, max_order).ok_or(ENOMEM)?;
            remaining -= run.size();
            max_order = order;
            runs.push(run, GFP_KERNEL)?;
        }
        Memory::pages(PageRuns::new(runs), self.charge())
    }

    fn contiguous(&self) -> bool {
        false
    }

    fn cached(&self) -> bool {
        true
    }
}
