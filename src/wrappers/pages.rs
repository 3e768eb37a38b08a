// SPDX-License-Identifier: GPL-2.0

//! Owned runs of physically contiguous pages with `struct page`, from the
//! page allocator (`alloc_pages`), a CMA area or a reserved region.

#[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
use super::cma::{self, CmaArea};
use super::{cgroup::Css, ffi_helpers, reserved_mem::Chunk, Dirty, Loaded, Zeroed};
use core::{alloc::Layout, ptr::NonNull};
use kernel::{
    alloc::{
        allocator::{KVmalloc, Kmalloc},
        AllocError, Allocator, Flags, NumaNode,
    },
    bindings, ffi,
    page::PAGE_SIZE,
    prelude::*,
    sync::Arc,
};

/// The allocation flags of the system heap's blocks, from the bits of
/// `include/linux/gfp_types.h` (the composite `GFP_*` macros have no
/// bindings).
mod gfp {
    use kernel::bindings::{self, gfp_t};

    const fn bit(b: u32) -> gfp_t {
        1 << b
    }

    const RECLAIM: gfp_t =
        bit(bindings::___GFP_DIRECT_RECLAIM_BIT) | bit(bindings::___GFP_KSWAPD_RECLAIM_BIT);
    /// `GFP_KERNEL`, rebuilt: checked against the binding below.
    const KERNEL: gfp_t = RECLAIM | bit(bindings::___GFP_IO_BIT) | bit(bindings::___GFP_FS_BIT);
    /// `GFP_HIGHUSER`.
    const HIGHUSER: gfp_t =
        KERNEL | bit(bindings::___GFP_HARDWALL_BIT) | bit(bindings::___GFP_HIGHMEM_BIT);
    const ZERO: gfp_t = bit(bindings::___GFP_ZERO_BIT);
    const NOWARN: gfp_t = bit(bindings::___GFP_NOWARN_BIT);

    /// Upstream system heap's `LOW_ORDER_GFP` (`GFP_HIGHUSER | __GFP_ZERO`),
    /// except that a buffer userspace asked too much for fails (`ENOMEM`,
    /// quietly: an answer, not a kernel event) instead of invoking the OOM
    /// killer: `__GFP_RETRY_MAYFAIL | __GFP_NOWARN`.
    pub(super) const ZEROED_USER: gfp_t =
        HIGHUSER | ZERO | bit(bindings::___GFP_RETRY_MAYFAIL_BIT) | NOWARN;
    /// Upstream's `HIGH_ORDER_GFP`: no reclaim, no retry, no warning, one
    /// compound block.
    pub(super) const ZEROED_USER_OPPORTUNISTIC: gfp_t =
        ((HIGHUSER | ZERO | NOWARN | bit(bindings::___GFP_NORETRY_BIT)) & !RECLAIM)
            | bit(bindings::___GFP_COMP_BIT);
    /// `__GFP_ZERO`.
    pub(super) const ZERO_FLAG: gfp_t = ZERO;
    /// `__GFP_ACCOUNT`: charged to the caller's memory cgroup.
    pub(super) const ACCOUNT: gfp_t = bit(bindings::___GFP_ACCOUNT_BIT);
    /// `GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_NOWARN`: kernel memory
    /// that may reclaim but fails rather than invoking the OOM killer.
    pub(super) const KERNEL_MAYFAIL: gfp_t =
        KERNEL | bit(bindings::___GFP_RETRY_MAYFAIL_BIT) | NOWARN;

    const _: () = assert!(KERNEL == bindings::GFP_KERNEL);
    const _: () = assert!(KERNEL | ACCOUNT == bindings::GFP_KERNEL_ACCOUNT);
    const _: () = assert!(ZERO == bindings::__GFP_ZERO && NOWARN == bindings::__GFP_NOWARN);
}

/// How hard the page allocator should try for a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Effort {
    /// Ordinary allocation: may reclaim, fails quietly rather than invoking
    /// the OOM killer (`GFP_HIGHUSER | __GFP_ZERO | __GFP_RETRY_MAYFAIL |
    /// __GFP_NOWARN`).
    Normal,
    /// Opportunistic: no reclaim, no retry, no warning; for high orders that
    /// have a smaller fallback (upstream system heap's `HIGH_ORDER_GFP`).
    Opportunistic,
}

/// Where a run of pages came from, and so how it goes back.
enum Source {
    /// Lent by a reserved region with `struct page`s (a carveout without
    /// `no-map`); dropping the chunk gives it back.
    /// (Boxed: a run is then four words, which moves without a call to
    /// `memcpy` on the kernel's arm64 Rust target.)
    Reserved { _chunk: KBox<Chunk> },
    /// `alloc_pages(_, order)`: one (compound) buddy block.
    Buddy { order: u32 },
    /// `cma_alloc()` from this area.
    #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
    Cma(CmaArea),
}

/// An owned run of physically contiguous pages with `struct page`.
///
/// # Invariants
///
/// `first` is the first of `count` physically contiguous pages whose
/// `struct page`s are contiguous too, owned by this object and returned to
/// `source` in `Drop`.
pub(crate) struct PageRun {
    first: NonNull<bindings::page>,
    count: usize,
    source: Source,
}

// SAFETY: a page run is plain memory owned by this object; it may be freed
// from any thread.
unsafe impl Send for PageRun {}
// SAFETY: shared access only reads the pointer and length.
unsafe impl Sync for PageRun {}

impl PageRun {
    /// Allocates a zeroed buddy block of `2^order` pages, charged to the
    /// caller's memory cgroup when `account`; `None` when the allocator has
    /// none.
    pub(crate) fn alloc_buddy(order: u32, effort: Effort, account: bool) -> Option<Zeroed<Self>> {
        let run = Self::buddy(order, effort, account, gfp::ZERO_FLAG)?;
        // SAFETY: `__GFP_ZERO` zeroed the block, highmem included; it is
        // new.
        Some(unsafe { Zeroed::new_unchecked(run) })
    }

    /// As [`Self::alloc_buddy`], not zeroed: for memory that will be
    /// overwritten whole (see [`Dirty`]).
    pub(crate) fn alloc_buddy_dirty(
        order: u32,
        effort: Effort,
        account: bool,
    ) -> Option<Dirty<Self>> {
        Some(Dirty(Self::buddy(order, effort, account, 0)?))
    }

    /// A buddy block, allocated with `zero` (`__GFP_ZERO` or nothing) added
    /// to `effort`'s flags.
    #[inline(always)]
    fn buddy(order: u32, effort: Effort, account: bool, zero: bindings::gfp_t) -> Option<Self> {
        let mut gfp = match effort {
            Effort::Normal => gfp::ZEROED_USER,
            Effort::Opportunistic => gfp::ZEROED_USER_OPPORTUNISTIC,
        } & !gfp::ZERO_FLAG
            | zero;
        if account {
            gfp |= gfp::ACCOUNT;
        }
        // SAFETY: `alloc_pages` may be called with any flags and order in
        // process context; it returns NULL or an owned block.
        let page = unsafe { bindings::alloc_pages(gfp, order) };
        // INVARIANT: a non-NULL result is a block of `2^order` pages we own
        // (a buddy block never spans memory sections, so its `struct page`s
        // are contiguous).
        NonNull::new(page).map(|first| Self {
            first,
            count: 1 << order,
            source: Source::Buddy { order },
        })
    }

    #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
    /// Allocates `count` contiguous pages from a CMA area, aligned to
    /// `2^align_order` pages; not zeroed yet (see [`Self::zero`]).
    pub(crate) fn alloc_cma(area: CmaArea, count: usize, align_order: u32) -> Option<Dirty<Self>> {
        // SAFETY: `area` is a live CMA area (type invariant of `CmaArea`);
        // `cma_alloc` returns NULL or `count` pages we own. `no_warn`:
        // exhaustion is an expected answer (ENOMEM), not a kernel event.
        let page =
            unsafe { cma::cma_alloc(area.as_raw(), count as ffi::c_ulong, align_order, true) };
        // INVARIANT: CMA hands out a contiguous pfn range; its `struct
        // page`s are contiguous in the memory map (as upstream's CMA heap
        // relies on).
        NonNull::new(page).map(|first| {
            Dirty(Self {
                first,
                count,
                source: Source::Cma(area),
            })
        })
    }

    /// The pages of a chunk of a region with `struct page`s; not zeroed
    /// yet (see [`Self::zero`]). `EINVAL` for a chunk of a no-map region.
    pub(crate) fn from_chunk(chunk: Dirty<Chunk>) -> Result<Dirty<Self>> {
        if !chunk.has_pages() {
            return Err(EINVAL);
        }
        let chunk = chunk.into_inner();
        let pfn = ffi::c_ulong::try_from(chunk.pfn()).map_err(|_| EINVAL)?;
        // SAFETY: every pfn of a region with pages has a `struct page`
        // (invariant of `Region`).
        let first = unsafe { ffi_helpers::rdh_pfn_to_page(pfn) };
        // INVARIANT: the chunk is ours until dropped (with the run); the
        // region guarantees a virtually contiguous memory map.
        Ok(Dirty(Self {
            first: NonNull::new(first).ok_or(EINVAL)?,
            count: chunk.len() / PAGE_SIZE,
            source: Source::Reserved {
                _chunk: KBox::new(chunk, GFP_KERNEL)?,
            },
        }))
    }

    /// Zeroes every page (highmem-safe), 2 MiB at a time, yielding the CPU
    /// and stopping with `EINTR` between them when the caller gets a fatal
    /// signal. Only for a run nobody has seen yet (see [`Dirty::zero`]).
    #[inline]
    fn zero(&self) -> Result {
        const CHUNK: usize = 512;
        let mut i = 0;
        while i < self.count {
            if i > 0 {
                if super::fatal_signal_pending() {
                    return Err(EINTR);
                }
                super::cond_resched();
            }
            let n = CHUNK.min(self.count - i);
            let (first, last) = (self.page(i), self.page(i + n - 1));
            // SAFETY: pages `i .. i + n` belong to this run, which we own
            // (type invariant). Without highmem they are contiguous in the
            // linear map (physically contiguous), so one `clear_pages()`
            // covers them (as upstream's CMA heap); otherwise each is
            // mapped in turn. Without `CONFIG_HIGHMEM` no page is.
            unsafe {
                if !cfg!(CONFIG_HIGHMEM)
                    || (!ffi_helpers::rdh_page_highmem(first)
                        && !ffi_helpers::rdh_page_highmem(last))
                {
                    // CAST: `n` is at most `CHUNK`.
                    ffi_helpers::rdh_clear_pages(first, n as u32);
                } else {
                    for p in i..i + n {
                        ffi_helpers::rdh_clear_highpage(self.page(p));
                    }
                }
            }
            i += n;
        }
        Ok(())
    }

    /// The order of a buddy block (`None` for other runs).
    pub(crate) fn order(&self) -> Option<u32> {
        match self.source {
            Source::Buddy { order } => Some(order),
            _ => None,
        }
    }

    /// Whether the pages are charged to a memory cgroup (allocated with
    /// `__GFP_ACCOUNT` by a task the kernel charges).
    pub(crate) fn memcg_charged(&self) -> bool {
        // SAFETY: the page is ours (type invariant); `memcg_data` of a page
        // we own changes only when it is charged or freed, by its owner.
        unsafe { (*self.first.as_ptr()).memcg_data != 0 }
    }

    /// The page frame number of the run's first page.
    pub(super) fn pfn(&self) -> usize {
        // SAFETY: `self.first` is a valid page by the type invariant.
        unsafe { ffi_helpers::rdh_page_to_pfn(self.first.as_ptr()) as usize }
    }

    /// The run's size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.count * PAGE_SIZE
    }

    /// The run's size in pages.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The `struct page` of page `i` of the run (`i < count`).
    pub(super) fn page(&self, i: usize) -> *mut bindings::page {
        self.first.as_ptr().wrapping_add(i)
    }
}

impl Dirty<PageRun> {
    /// Zeroes the run (see [`PageRun::zero`]); on failure it is freed.
    #[inline]
    pub(crate) fn zero(self) -> Result<Zeroed<PageRun>> {
        self.0.zero()?;
        // SAFETY: every byte was just zeroed; nobody else has the run.
        Ok(unsafe { Zeroed::new_unchecked(self.0) })
    }
}

impl Drop for PageRun {
    #[inline]
    fn drop(&mut self) {
        match &self.source {
            // SAFETY: by the type invariant we own this block of this order.
            Source::Buddy { order } => unsafe {
                bindings::__free_pages(self.first.as_ptr(), *order)
            },
            // Dropping the chunk (with `self`) gives the pages back.
            Source::Reserved { .. } => {}
            #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
            Source::Cma(area) => {
                // SAFETY: these `count` pages came from `cma_alloc` on `area`.
                unsafe {
                    cma::cma_release(
                        area.as_raw(),
                        self.first.as_ptr(),
                        self.count as ffi::c_ulong,
                    )
                };
            }
        }
    }
}

/// The allocator of a buffer's list of runs: `kvmalloc()`, failing as the
/// system heap's blocks do (`__GFP_RETRY_MAYFAIL | __GFP_NOWARN`) rather
/// than invoking the OOM killer. The list grows while a buffer as large as
/// userspace asked for is being allocated, when the allocator falls back to
/// smaller blocks: that is when memory runs out, and a plain `GFP_KERNEL`
/// growth there would have the OOM killer pick a victim for a request that
/// must simply fail with `ENOMEM`. The caller's flags are not used (it
/// may sleep): for process context only.
pub(crate) struct MayFail;

// SAFETY: every call is `kvrealloc_node_align()` with a `Kmalloc`-compatible
// layout, exactly as the kernel crate's `KVmalloc` (only the flags differ):
// memory stays valid until passed back here, contents are preserved up to
// the smaller size, a failure leaves the old allocation valid, and size 0
// frees.
unsafe impl Allocator for MayFail {
    const MIN_ALIGN: usize = KVmalloc::MIN_ALIGN;

    unsafe fn realloc(
        ptr: Option<NonNull<u8>>,
        layout: Layout,
        old_layout: Layout,
        _flags: Flags,
        _nid: NumaNode,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let layout = Kmalloc::aligned_layout(layout);
        let size = layout.size();
        let old = match ptr {
            Some(p) if old_layout.size() != 0 => p.as_ptr().cast_const(),
            _ => core::ptr::null(),
        };
        // SAFETY: `old` is NULL or an allocation of this allocator (the
        // caller's contract), i.e. of `kvrealloc_node_align()`.
        let raw = unsafe {
            bindings::kvrealloc_node_align(
                old.cast(),
                size,
                layout.align(),
                gfp::KERNEL_MAYFAIL,
                bindings::NUMA_NO_NODE,
            )
        };
        let ptr = if size == 0 {
            // Freed; a well-aligned dangling pointer, as the kernel crate's.
            NonNull::new(core::ptr::without_provenance_mut(layout.align())).ok_or(AllocError)?
        } else {
            NonNull::new(raw.cast::<u8>()).ok_or(AllocError)?
        };
        Ok(NonNull::slice_from_raw_parts(ptr, size))
    }
}

/// A list of page runs that grows without invoking the OOM killer.
type RunVec = Vec<PageRun, MayFail>;

/// A new run as a heap gets it: zeroed ([`Zeroed`]), or not ([`Dirty`], for
/// memory a read will overwrite); the runs of a buffer are all of one kind.
pub(crate) trait Fresh: Sized {
    /// The buffer's runs of this kind.
    type Runs;

    /// A buddy block (see [`PageRun::alloc_buddy`]).
    fn buddy(order: u32, effort: Effort, account: bool) -> Option<Self>;

    /// A zeroed run (a pool's clean block) as this kind.
    fn from_zeroed(run: Zeroed<PageRun>) -> Self;

    /// The run.
    fn run(&self) -> &PageRun;

    /// The run, its promise (if any) dropped: for [`FreshRuns`].
    fn into_run(self) -> PageRun;

    /// `runs` as this kind.
    ///
    /// # Safety
    ///
    /// Every run of `runs` was a `Self`.
    unsafe fn wrap(runs: PageRuns) -> Self::Runs;

    /// The same runs, given to `recycler` when dropped.
    fn recycled(runs: Self::Runs, recycler: Arc<dyn Recycle>) -> Self::Runs;
}

impl Fresh for Zeroed<PageRun> {
    type Runs = Zeroed<PageRuns>;

    #[inline(always)]
    fn buddy(order: u32, effort: Effort, account: bool) -> Option<Self> {
        PageRun::alloc_buddy(order, effort, account)
    }

    #[inline(always)]
    fn from_zeroed(run: Zeroed<PageRun>) -> Self {
        run
    }

    #[inline(always)]
    fn run(&self) -> &PageRun {
        self
    }

    #[inline(always)]
    fn into_run(self) -> PageRun {
        self.into_inner()
    }

    #[inline(always)]
    unsafe fn wrap(runs: PageRuns) -> Zeroed<PageRuns> {
        // SAFETY: every run was zeroed and unseen (the caller's promise).
        unsafe { Zeroed::new_unchecked(runs) }
    }

    #[inline(always)]
    fn recycled(runs: Zeroed<PageRuns>, recycler: Arc<dyn Recycle>) -> Zeroed<PageRuns> {
        runs.recycled_by(recycler)
    }
}

impl Fresh for Dirty<PageRun> {
    type Runs = Dirty<PageRuns>;

    #[inline(always)]
    fn buddy(order: u32, effort: Effort, account: bool) -> Option<Self> {
        PageRun::alloc_buddy_dirty(order, effort, account)
    }

    #[inline(always)]
    fn from_zeroed(run: Zeroed<PageRun>) -> Self {
        Dirty(run.into_inner())
    }

    #[inline(always)]
    fn run(&self) -> &PageRun {
        self
    }

    #[inline(always)]
    fn into_run(self) -> PageRun {
        self.into_inner()
    }

    #[inline(always)]
    unsafe fn wrap(runs: PageRuns) -> Dirty<PageRuns> {
        Dirty(runs)
    }

    #[inline(always)]
    fn recycled(runs: Dirty<PageRuns>, recycler: Arc<dyn Recycle>) -> Dirty<PageRuns> {
        let mut runs = runs.into_inner();
        runs.recycler = Some(recycler);
        Dirty(runs)
    }
}

/// A list of new runs of one kind `F` (see [`RunVec`]), for
/// [`PageRuns::from_runs`].
pub(crate) struct FreshRuns<F>(RunVec, core::marker::PhantomData<F>);

impl<F: Fresh> FreshRuns<F> {
    /// An empty list with room for `n` runs.
    #[inline]
    pub(crate) fn with_capacity(n: usize) -> Result<Self> {
        Ok(Self(
            RunVec::with_capacity(n, GFP_KERNEL)?,
            core::marker::PhantomData,
        ))
    }

    /// Appends `run`.
    #[inline]
    pub(crate) fn push(&mut self, run: F) -> Result {
        self.0.push(run.into_run(), GFP_KERNEL)?;
        Ok(())
    }
}

/// The runs of a buffer: one (every contiguous heap, and small system-heap
/// buffers) is kept inline, saving an allocation on the hot path.
enum RunList {
    One(PageRun),
    Many(RunVec),
    /// Given back (while being dropped).
    None,
}

/// Takes back the runs of a buffer when it is freed (a page pool).
pub(crate) trait Recycle: Send + Sync {
    /// Takes every run of `runs`, keeping or freeing each.
    fn recycle(self: Arc<Self>, runs: &mut dyn Iterator<Item = PageRun>);
}

/// The memory of one buffer: an ordered list of page runs.
///
/// Immutable once built; owned by its buffer, which drops every scatter
/// list and kernel mapping pointing into the pages before them (see
/// [`super::dmabuf`]).
pub(crate) struct PageRuns {
    runs: RunList,
    len: usize,
    /// Where the runs go when dropped (freed otherwise).
    recycler: Option<Arc<dyn Recycle>>,
    /// Write-combined for every CPU mapping, with no cache upkeep (set
    /// only by [`super::cache::CacheCleaner`], once no CPU cache holds a
    /// line of the pages).
    caching: Caching,
}

/// How CPU mappings of a buffer's pages are made. A word, not a `bool`:
/// the struct then has no padding, which every move would copy with a
/// call to `memcpy`.
#[repr(usize)]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caching {
    Cached = 0,
    WriteCombined = 1,
}

impl PageRuns {
    /// Wraps the runs a heap allocated, of one kind.
    #[inline]
    pub(crate) fn from_runs<F: Fresh>(runs: FreshRuns<F>) -> F::Runs {
        let runs = runs.0;
        let len = runs.iter().map(PageRun::size).sum();
        let this = Self {
            runs: RunList::Many(runs),
            len,
            recycler: None,
            caching: Caching::Cached,
        };
        // SAFETY: every run of `FreshRuns<F>` was an `F`.
        unsafe { F::wrap(this) }
    }

    /// Wraps a single run a heap allocated.
    #[inline]
    pub(crate) fn one<F: Fresh>(run: F) -> F::Runs {
        let run = run.into_run();
        let this = Self {
            len: run.size(),
            runs: RunList::One(run),
            recycler: None,
            caching: Caching::Cached,
        };
        // SAFETY: the run was an `F`.
        unsafe { F::wrap(this) }
    }
}

impl PageRuns {
    /// The runs of `pieces`, in order, as one buffer's (going where the
    /// first piece that has a recycler would have gone); not zeroed.
    pub(crate) fn concat(pieces: KVec<Dirty<PageRuns>>) -> Result<Dirty<PageRuns>> {
        if pieces.len() == 1 {
            if let Some(piece) = pieces.into_iter().next() {
                return Ok(piece);
            }
            return Err(EINVAL);
        }
        let n = pieces.iter().map(|p| p.runs().len()).sum();
        let mut all = RunVec::with_capacity(n, GFP_KERNEL)?;
        let mut recycler = None;
        for piece in pieces {
            let mut piece = piece.into_inner();
            if recycler.is_none() {
                recycler = piece.recycler.take();
            }
            // Taken out: the piece's drop has nothing to give back.
            piece.recycler = None;
            match core::mem::replace(&mut piece.runs, RunList::None) {
                RunList::One(run) => all.push(run, GFP_KERNEL)?,
                RunList::Many(runs) => {
                    for run in runs {
                        all.push(run, GFP_KERNEL)?;
                    }
                }
                RunList::None => {}
            }
        }
        let len = all.iter().map(PageRun::size).sum();
        Ok(Dirty(Self {
            runs: RunList::Many(all),
            len,
            recycler,
            caching: Caching::Cached,
        }))
    }
}

impl Zeroed<PageRuns> {
    /// The same runs, given to `recycler` when dropped.
    #[inline]
    pub(crate) fn recycled_by(self, recycler: Arc<dyn Recycle>) -> Self {
        let mut runs = self.into_inner();
        runs.recycler = Some(recycler);
        // SAFETY: the same zeroed, unseen runs.
        unsafe { Zeroed::new_unchecked(runs) }
    }
}

/// Page runs whose contents are a promise ([`Zeroed`], [`Loaded`]): changed
/// in place by this layer without access to their bytes.
pub(crate) trait CleanRuns: Sized {
    /// The same runs, with `f` applied to them in place (it may not read
    /// or write their memory: it gets no access to it).
    fn map(self, f: impl FnOnce(&mut PageRuns) -> Result) -> Result<Self>;
}

impl CleanRuns for Zeroed<PageRuns> {
    fn map(self, f: impl FnOnce(&mut PageRuns) -> Result) -> Result<Self> {
        let mut runs = self.into_inner();
        f(&mut runs)?;
        // SAFETY: `f` cannot reach the pages' bytes through `PageRuns`.
        Ok(unsafe { Zeroed::new_unchecked(runs) })
    }
}

impl CleanRuns for Loaded<PageRuns> {
    fn map(self, f: impl FnOnce(&mut PageRuns) -> Result) -> Result<Self> {
        let mut runs = self.into_inner();
        f(&mut runs)?;
        // INVARIANT: `f` cannot reach the pages' bytes through `PageRuns`.
        Ok(Loaded(runs))
    }
}

impl PageRuns {
    /// Total size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the runs are one physically contiguous range.
    pub(crate) fn contiguous(&self) -> bool {
        self.runs()
            .windows(2)
            .all(|w| w[1].pfn() == w[0].pfn() + w[0].count)
    }

    /// Whether every device of `devices` reaches every page.
    pub(crate) fn reachable_by(&self, devices: &super::device::Devices<'_>) -> bool {
        self.runs().iter().all(|r| {
            devices.reach(
                (r.pfn() as u64) << kernel::page::PAGE_SHIFT,
                r.size() as u64,
            )
        })
    }

    /// Whether CPU mappings are write-combined (no cache upkeep).
    pub(crate) fn write_combined(&self) -> bool {
        self.caching == Caching::WriteCombined
    }

    /// Marks the runs write-combined: for the cache cleaner, once it has
    /// cleaned them.
    pub(super) fn set_write_combined(&mut self) {
        self.caching = Caching::WriteCombined;
    }

    /// The path of the memory cgroup the pages are charged to (that of
    /// the first: a buffer's pages are charged together), written into
    /// `buf`; `None` when they are not charged.
    pub(crate) fn memcg_path<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let first = self.runs().first()?.page(0);
        // SAFETY: the page is ours (type invariant of `PageRun`) and live
        // while `self` is; returns NULL or a css with a reference for us.
        let css = NonNull::new(unsafe { ffi_helpers::rdh_page_memcg_css(first) })?;
        // SAFETY: the reference just taken.
        unsafe { Css::from_raw(css) }.path(buf)
    }

    /// The runs, in buffer order.
    pub(crate) fn runs(&self) -> &[PageRun] {
        match &self.runs {
            RunList::One(run) => core::slice::from_ref(run),
            RunList::Many(runs) => runs,
            RunList::None => &[],
        }
    }

    /// Calls `f(page)` for every page of the buffer, in order.
    pub(super) fn for_each_page(&self, mut f: impl FnMut(*mut bindings::page) -> Result) -> Result {
        for run in self.runs() {
            for i in 0..run.count {
                f(run.page(i))?;
            }
        }
        Ok(())
    }
}

impl Drop for PageRuns {
    #[inline]
    fn drop(&mut self) {
        let Some(recycler) = self.recycler.take() else {
            return;
        };
        match core::mem::replace(&mut self.runs, RunList::None) {
            RunList::One(run) => recycler.recycle(&mut core::iter::once(run)),
            RunList::Many(runs) => recycler.recycle(&mut runs.into_iter()),
            RunList::None => {}
        }
    }
}

/// Buddy blocks of one order kept off the page allocator (a pool's free
/// list), linked through their first page's `private` field: pushing and
/// popping allocate nothing. While on a stack, a block's pages count as
/// reclaimable kernel memory (`KReclaimable` in `/proc/meminfo`,
/// `NR_KERNEL_MISC_RECLAIMABLE`).
///
/// # Invariants
///
/// `head` is `None` or the first page of the first of `len` buddy blocks of
/// order `order` owned by the stack, uncharged, each linking to the next
/// through `private` (0 after the last); each is counted in
/// `NR_KERNEL_MISC_RECLAIMABLE`.
struct BlockStack {
    head: Option<NonNull<bindings::page>>,
    len: usize,
    order: u32,
}

// SAFETY: the blocks are plain memory owned by the stack.
unsafe impl Send for BlockStack {}

impl BlockStack {
    /// An empty stack of blocks of `order`.
    const fn new(order: u32) -> Self {
        Self {
            head: None,
            len: 0,
            order,
        }
    }

    /// Blocks on the stack.
    fn len(&self) -> usize {
        self.len
    }

    /// Pushes `run`; gives it back when it is not an uncharged buddy block
    /// of the stack's order.
    fn push(&mut self, run: PageRun) -> Result<(), PageRun> {
        if run.order() != Some(self.order) || run.memcg_charged() {
            return Err(run);
        }
        let page = run.first;
        core::mem::forget(run);
        let next = self.head.map_or(0, |p| p.as_ptr() as ffi::c_ulong);
        // SAFETY: the block is ours now (we took the run, which owned it);
        // its owner may use `private`; the stat is adjusted by its size.
        unsafe {
            (*page.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.private = next;
            ffi_helpers::rdh_mod_reclaimable(page.as_ptr(), 1 << self.order);
        }
        // INVARIANT: linked in front, counted.
        self.head = Some(page);
        self.len += 1;
        Ok(())
    }

    /// Pops the block pushed last.
    fn pop(&mut self) -> Option<PageRun> {
        let page = self.head?;
        // SAFETY: `page` is the first block, owned by the stack (type
        // invariant): its `private` links the next; cleared before the block
        // leaves, uncounted as it leaves.
        let next = unsafe {
            let p = &raw mut (*page.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.private;
            let next = *p;
            *p = 0;
            ffi_helpers::rdh_mod_reclaimable(page.as_ptr(), -(1 << self.order));
            next
        };
        self.head = NonNull::new(next as *mut bindings::page);
        self.len -= 1;
        // INVARIANT: a buddy block of this order, owned by the new run.
        Some(PageRun {
            first: page,
            count: 1 << self.order,
            source: Source::Buddy { order: self.order },
        })
    }
}

impl Drop for BlockStack {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

/// Freed buddy blocks of one order (a pool's), their previous users' bytes
/// still in them (see [`BlockStack`]).
pub(crate) struct DirtyBlocks(BlockStack);

impl DirtyBlocks {
    /// An empty stack of blocks of `order`.
    pub(crate) const fn new(order: u32) -> Self {
        Self(BlockStack::new(order))
    }

    /// Blocks on the stack.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Pushes a freed `run`; gives it back when it is not an uncharged
    /// buddy block of the stack's order.
    pub(crate) fn push(&mut self, run: PageRun) -> Result<(), PageRun> {
        self.0.push(run)
    }

    /// Pops the block pushed last, to be zeroed before anyone sees it.
    pub(crate) fn pop(&mut self) -> Option<Dirty<PageRun>> {
        self.0.pop().map(Dirty)
    }
}

/// Zeroed buddy blocks of one order (a pool's, see [`BlockStack`]).
///
/// # Invariants
///
/// Every block on the stack is zeroed and unseen since.
pub(crate) struct CleanBlocks(BlockStack);

impl CleanBlocks {
    /// An empty stack of blocks of `order`.
    pub(crate) const fn new(order: u32) -> Self {
        Self(BlockStack::new(order))
    }

    /// Pushes a zeroed `run`; gives it back when it is not an uncharged
    /// buddy block of the stack's order.
    pub(crate) fn push(&mut self, run: Zeroed<PageRun>) -> Result<(), Zeroed<PageRun>> {
        // INVARIANT: zeroed and unseen, kept so on the stack.
        self.0.push(run.into_inner()).map_err(|run| {
            // SAFETY: the same run, given back untouched.
            unsafe { Zeroed::new_unchecked(run) }
        })
    }

    /// Pops the block pushed last.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Zeroed<PageRun>> {
        // SAFETY: blocks on the stack are zeroed and unseen (type
        // invariant).
        self.0
            .pop()
            .map(|run| unsafe { Zeroed::new_unchecked(run) })
    }
}

#[cfg(CONFIG_RUST_DMA_HEAP_KUNIT_TEST)]
#[kunit_tests(rust_dma_heap_block_stack)]
mod tests {
    use super::*;

    fn block(order: u32) -> Result<PageRun> {
        Ok(PageRun::alloc_buddy(order, Effort::Normal, false)
            .ok_or(ENOMEM)?
            .into_inner())
    }

    #[test]
    fn last_in_first_out() -> Result {
        let mut stack = BlockStack::new(0);
        let (a, b) = (block(0)?, block(0)?);
        let (pa, pb) = (a.pfn(), b.pfn());
        assert!(stack.push(a).is_ok());
        assert!(stack.push(b).is_ok());
        assert_eq!(stack.len(), 2);
        let first = stack.pop().ok_or(EINVAL)?;
        let second = stack.pop().ok_or(EINVAL)?;
        assert_eq!((first.pfn(), second.pfn()), (pb, pa));
        assert!(stack.pop().is_none());
        assert_eq!(stack.len(), 0);
        Ok(())
    }

    #[test]
    fn popped_block_is_whole_and_unlinked() -> Result {
        let mut stack = BlockStack::new(4);
        let run = block(4)?;
        let pfn = run.pfn();
        assert!(stack.push(run).is_ok());
        assert!(stack.push(block(4)?).is_ok());
        // The bottom block: its link was 0 when pushed.
        stack.pop();
        let run = stack.pop().ok_or(EINVAL)?;
        assert_eq!((run.pfn(), run.order(), run.count()), (pfn, Some(4), 16));
        // SAFETY: the block is `run`'s; reading its first page's field.
        let private = unsafe { (*run.page(0)).__bindgen_anon_1.__bindgen_anon_1.private };
        assert_eq!(private, 0);
        Ok(())
    }

    #[test]
    fn other_order_is_given_back() -> Result {
        let mut stack = BlockStack::new(0);
        let run = block(1)?;
        let pfn = run.pfn();
        match stack.push(run) {
            Err(back) => assert_eq!(back.pfn(), pfn),
            Ok(()) => assert!(false),
        }
        assert_eq!(stack.len(), 0);
        Ok(())
    }

    #[test]
    fn clean_blocks_keep_the_proof() -> Result {
        let mut clean = CleanBlocks::new(0);
        let run = PageRun::alloc_buddy(0, Effort::Normal, false).ok_or(ENOMEM)?;
        let pfn = run.pfn();
        assert!(clean.push(run).is_ok());
        let back: Zeroed<PageRun> = clean.pop().ok_or(EINVAL)?;
        assert_eq!(back.pfn(), pfn);
        assert!(clean.pop().is_none());
        Ok(())
    }

    #[test]
    fn dirty_blocks_come_back_dirty() -> Result {
        let mut dirty = DirtyBlocks::new(0);
        assert!(dirty.push(block(0)?).is_ok());
        assert_eq!(dirty.len(), 1);
        let run: Dirty<PageRun> = dirty.pop().ok_or(EINVAL)?;
        let zeroed = run.zero()?;
        assert_eq!(zeroed.order(), Some(0));
        assert_eq!(dirty.len(), 0);
        Ok(())
    }
}
