// SPDX-License-Identifier: GPL-2.0

//! One exported buffer: its memory, its attachments and its kernel
//! mapping. Implements the dma-buf operations once, for every heap.

use crate::{
    registry::Heap,
    wrappers::{
        dmabuf::{Exporter, UserMapping},
        pages::{KernelMapping, PageRuns},
        sgtable::SgTable,
        DeviceRef,
    },
};
use kernel::{
    bindings,
    dma::DataDirection,
    ffi, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    str::CStr,
    sync::{Arc, Mutex},
};

/// What a heap hands back: the memory of one buffer.
pub(crate) enum Backing {
    /// Runs of pages with `struct page` (system heap, CMA).
    Pages(PageRuns),
}

impl Backing {
    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Backing::Pages(runs) => runs.len(),
        }
    }
}

/// One device's attachment to a buffer.
#[pin_data]
pub(crate) struct Attachment {
    /// The device's own table, so mappings of different devices never
    /// share DMA addresses.
    #[pin]
    sgt: Mutex<SgTable>,
}

/// The mutable state of a buffer.
struct Inner {
    /// Every live attachment; CPU-access syncs visit the mapped ones.
    attachments: KVec<Arc<Attachment>>,
    /// The kernel mapping and its reference count, while vmapped.
    vmap: Option<(KernelMapping, usize)>,
}

/// A buffer exported as a dma-buf.
///
/// # Invariants
///
/// - Every page of `runs` was zeroed after its previous user freed it.
/// - `inner.vmap` holds `Some((_, n))` with `n > 0` exactly while vmaps
///   outnumber vunmaps.
#[pin_data]
pub(crate) struct Buffer {
    /// Keeps the heap (and so the exporter name) alive.
    heap: Arc<dyn Heap>,
    runs: Arc<PageRuns>,
    #[pin]
    inner: Mutex<Inner>,
}

impl Buffer {
    /// Wraps a heap's backing in a buffer ready for export.
    pub(crate) fn new(heap: Arc<dyn Heap>, backing: Backing) -> Result<Arc<Self>> {
        let Backing::Pages(runs) = backing;
        let runs = Arc::new(runs, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                heap,
                runs,
                inner <- new_mutex!(Inner {
                    attachments: KVec::new(),
                    vmap: None,
                }),
            }),
            GFP_KERNEL,
        )
    }

    fn pages(&self) -> usize {
        self.runs.len() / PAGE_SIZE
    }
}

impl Exporter for Buffer {
    type Attachment = Attachment;

    fn exp_name(&self) -> &CStr {
        self.heap.name()
    }

    fn attach(&self, dev: &DeviceRef) -> Result<Arc<Attachment>> {
        let sgt = SgTable::new(&self.runs, dev)?;
        let att = Arc::pin_init(pin_init!(Attachment { sgt <- new_mutex!(sgt) }), GFP_KERNEL)?;
        self.inner
            .lock()
            .attachments
            .push(att.clone(), GFP_KERNEL)?;
        Ok(att)
    }

    fn detach(&self, att: &Arc<Attachment>) {
        let mut inner = self.inner.lock();
        if let Some(i) = inner.attachments.iter().position(|a| Arc::ptr_eq(a, att)) {
            drop(inner.attachments.remove(i));
        }
    }

    fn map(&self, att: &Attachment, dir: DataDirection) -> Result<*mut bindings::sg_table> {
        let mut sgt = att.sgt.lock();
        sgt.map(dir)?;
        Ok(sgt.as_raw())
    }

    fn unmap(&self, att: &Attachment) {
        att.sgt.lock().unmap();
    }

    fn begin_cpu_access(&self, dir: DataDirection) -> Result {
        let inner = self.inner.lock();
        if let Some((km, _)) = &inner.vmap {
            km.invalidate();
        }
        for a in inner.attachments.iter() {
            a.sgt.lock().sync_for_cpu(dir);
        }
        Ok(())
    }

    fn end_cpu_access(&self, dir: DataDirection) -> Result {
        let inner = self.inner.lock();
        if let Some((km, _)) = &inner.vmap {
            km.flush();
        }
        for a in inner.attachments.iter() {
            a.sgt.lock().sync_for_device(dir);
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
        self.runs.map_user(vma, pgoff)?;
        Ok(())
    }

    fn vmap(&self) -> Result<*mut ffi::c_void> {
        let mut inner = self.inner.lock();
        if let Some((km, count)) = &mut inner.vmap {
            *count += 1;
            return Ok(km.addr());
        }
        let km = KernelMapping::new(self.runs.clone())?;
        let addr = km.addr();
        inner.vmap = Some((km, 1));
        Ok(addr)
    }

    fn vunmap(&self) {
        let mut inner = self.inner.lock();
        if let Some((_, count)) = &mut inner.vmap {
            *count -= 1;
            if *count == 0 {
                inner.vmap = None;
            }
        }
    }
}
