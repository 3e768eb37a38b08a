// SPDX-License-Identifier: GPL-2.0

//! One exported buffer: its memory, its attachments and its kernel
//! mapping. Implements the dma-buf operations once, for every heap.

use crate::{
    registry::Heap,
    wrappers::{
        carveout::PhysSgTable,
        dmabuf::{Exporter, UserMapping},
        pages::{KernelMapping, PageRuns},
        sgtable::SgTable,
        DeviceRef,
    },
};
use kernel::{
    bindings,
    dma::DataDirection,
    ffi,
    list::{List, ListArc, ListLinks},
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    str::CStr,
    sync::{Arc, Mutex},
};

/// The owner of physical memory without `struct page` lent to a buffer.
pub(crate) trait PhysOwner: Send + Sync {
    /// Takes back `[base, base + len)`.
    fn give_back(&self, base: u64, len: usize);
    /// The kernel address of physical address `base` (the owner keeps its
    /// memory mapped while it lives).
    fn kernel_addr(&self, base: u64) -> *mut ffi::c_void;
}

/// Physical memory without `struct page`, zeroed, lent by its owner until
/// dropped (a no-map carveout). Mapped write-combined everywhere.
pub(crate) struct PhysRange {
    pub(crate) base: u64,
    pub(crate) len: usize,
    pub(crate) owner: Arc<dyn PhysOwner>,
}

impl Drop for PhysRange {
    fn drop(&mut self) {
        self.owner.give_back(self.base, self.len);
    }
}

/// What a heap hands back: the memory of one buffer.
pub(crate) enum Backing {
    /// Runs of pages with `struct page` (system heap, CMA, mapped
    /// carveouts).
    Pages(PageRuns),
    /// A physical range without `struct page` (no-map carveouts).
    Phys(PhysRange),
}

impl Backing {
    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Backing::Pages(runs) => runs.len(),
            Backing::Phys(range) => range.len,
        }
    }
}

/// A buffer's memory, shared with the tables and mappings that point
/// into it.
enum Memory {
    Pages(Arc<PageRuns>),
    Phys(PhysRange),
}

/// An attachment's scatter-gather table, built when it is first mapped:
/// importers that only attach (to check a buffer, or to map it much later)
/// cost no table.
enum Table {
    /// Attached, never mapped: the device, for the table to come.
    Unbuilt(Option<DeviceRef>),
    Pages(SgTable),
    Phys(PhysSgTable),
}

impl Table {
    fn map(&mut self, memory: &Memory, dir: DataDirection) -> Result<*mut bindings::sg_table> {
        if let Table::Unbuilt(dev) = self {
            let dev = dev.take().ok_or(ENODEV)?;
            *self = match memory {
                Memory::Pages(runs) => Table::Pages(SgTable::new(runs, dev)?),
                Memory::Phys(range) => Table::Phys(PhysSgTable::new(range.base, range.len, dev)?),
            };
        }
        match self {
            Table::Unbuilt(_) => Err(ENODEV),
            Table::Pages(t) => t.map(dir).map(|()| t.as_raw()),
            Table::Phys(t) => t.map(dir).map(|()| t.as_raw()),
        }
    }

    fn unmap(&mut self) {
        match self {
            Table::Unbuilt(_) => {}
            Table::Pages(t) => t.unmap(),
            Table::Phys(t) => t.unmap(),
        }
    }
}

/// One device's attachment to a buffer.
#[pin_data]
pub(crate) struct Attachment {
    /// The device's own table, so mappings of different devices never
    /// share DMA addresses.
    #[pin]
    table: Mutex<Table>,
    /// In its buffer's list of attachments.
    #[pin]
    links: ListLinks,
}

kernel::list::impl_list_arc_safe! {
    impl ListArcSafe<0> for Attachment { untracked; }
}
kernel::list::impl_list_item! {
    impl ListItem<0> for Attachment { using ListLinks { self.links }; }
}

/// The mutable state of a buffer.
struct Inner {
    /// Every live attachment (intrusive: attaching allocates no list
    /// node); CPU-access syncs visit the mapped ones.
    attachments: List<Attachment>,
    /// Outstanding vmaps.
    vmaps: usize,
    /// The kernel mapping of page-backed memory, while vmapped.
    kmap: Option<KernelMapping>,
}

/// A buffer exported as a dma-buf.
///
/// # Invariants
///
/// - Every byte of `memory` was zeroed after its previous user freed it.
/// - `inner.vmaps` counts vmaps not yet vunmapped; for page-backed memory
///   `inner.kmap` is `Some` exactly while it is non-zero.
#[pin_data]
pub(crate) struct Buffer {
    /// Keeps the heap (and so the exporter name) alive.
    heap: Arc<dyn Heap>,
    memory: Memory,
    len: usize,
    #[pin]
    inner: Mutex<Inner>,
}

impl Buffer {
    /// Wraps a heap's backing in a buffer ready for export.
    pub(crate) fn new(heap: Arc<dyn Heap>, backing: Backing) -> Result<Arc<Self>> {
        let len = backing.len();
        let memory = match backing {
            Backing::Pages(runs) => Memory::Pages(Arc::new(runs, GFP_KERNEL)?),
            Backing::Phys(range) => Memory::Phys(range),
        };
        Arc::pin_init(
            pin_init!(Self {
                heap,
                memory,
                len,
                inner <- new_mutex!(Inner {
                    attachments: List::new(),
                    vmaps: 0,
                    kmap: None,
                }),
            }),
            GFP_KERNEL,
        )
    }

    fn pages(&self) -> usize {
        self.len / PAGE_SIZE
    }
}

impl Exporter for Buffer {
    type Attachment = Attachment;

    fn exp_name(&self) -> &CStr {
        self.heap.name()
    }

    fn attach(&self, dev: DeviceRef) -> Result<Arc<Attachment>> {
        let table = Table::Unbuilt(Some(dev));
        let att = ListArc::pin_init::<Error>(
            try_pin_init!(Attachment {
                table <- new_mutex!(table),
                links <- ListLinks::new(),
            }),
            GFP_KERNEL,
        )?;
        let arc = att.clone_arc();
        self.inner.lock().attachments.push_back(att);
        Ok(arc)
    }

    fn detach(&self, att: &Arc<Attachment>) {
        let mut inner = self.inner.lock();
        let mut cursor = inner.attachments.cursor_front();
        while let Some(next) = cursor.peek_next() {
            if core::ptr::eq(&*next.arc(), &**att) {
                drop(next.remove());
                return;
            }
            cursor.move_next();
        }
    }

    fn map(&self, att: &Attachment, dir: DataDirection) -> Result<*mut bindings::sg_table> {
        att.table.lock().map(&self.memory, dir)
    }

    fn unmap(&self, att: &Attachment) {
        att.table.lock().unmap();
    }

    /// Write-combined physical memory needs no cache upkeep; page-backed
    /// memory is synced for every mapped attachment and the kernel mapping.
    fn begin_cpu_access(&self, dir: DataDirection) -> Result {
        let inner = self.inner.lock();
        if let Some(km) = &inner.kmap {
            km.invalidate();
        }
        for a in inner.attachments.iter() {
            if let Table::Pages(t) = &*a.table.lock() {
                t.sync_for_cpu(dir);
            }
        }
        Ok(())
    }

    fn end_cpu_access(&self, dir: DataDirection) -> Result {
        let inner = self.inner.lock();
        if let Some(km) = &inner.kmap {
            km.flush();
        }
        for a in inner.attachments.iter() {
            if let Table::Pages(t) = &*a.table.lock() {
                t.sync_for_device(dir);
            }
        }
        Ok(())
    }

    fn mmap(&self, vma: &UserMapping<'_>) -> Result {
        let pgoff = vma.pgoff();
        let len = vma.len();
        // The core checks this too; a mapping past the end is refused.
        if pgoff
            .checked_add(len.div_ceil(PAGE_SIZE))
            .is_none_or(|end| end > self.pages())
        {
            return Err(EINVAL);
        }
        match &self.memory {
            Memory::Pages(runs) => runs.map_user(vma, pgoff),
            Memory::Phys(range) => {
                vma.set_pfn_mapping();
                vma.set_writecombine();
                let pfn = range.base as usize / PAGE_SIZE + pgoff;
                vma.insert_pfns(0, pfn, len / PAGE_SIZE)
            }
        }
    }

    fn vmap(&self) -> Result<*mut ffi::c_void> {
        let mut inner = self.inner.lock();
        let addr = match &self.memory {
            Memory::Phys(range) => range.owner.kernel_addr(range.base),
            Memory::Pages(runs) => match &inner.kmap {
                Some(km) => km.addr(),
                None => {
                    let km = KernelMapping::new(runs.clone())?;
                    let addr = km.addr();
                    inner.kmap = Some(km);
                    addr
                }
            },
        };
        inner.vmaps += 1;
        Ok(addr)
    }

    fn vunmap(&self) {
        let mut inner = self.inner.lock();
        if inner.vmaps > 0 {
            inner.vmaps -= 1;
            if inner.vmaps == 0 {
                inner.kmap = None;
            }
        }
    }
}
