// SPDX-License-Identifier: GPL-2.0

//! rust-dma-heap: the dma-heap allocator (`/dev/dma_heap/<name>`,
//! `DMA_HEAP_IOCTL_ALLOC`) in Rust.
//!
//! Layers, top to bottom: [`registry`] (nodes, ioctl), [`heaps`] (memory
//! backends), [`buffer`] (the dma-buf exporter), [`wrappers`] (the only
//! `unsafe` code, over kernel C APIs).

use kernel::{prelude::*, sync::Arc};

mod buffer;
mod heaps;
mod registry;
mod wrappers;

module! {
    type: RustDmaHeap,
    name: "rust_dma_heap",
    authors: ["rust-dma-heap developers"],
    description: "DMA-BUF heaps in Rust",
    license: "GPL",
    imports_ns: ["DMA_BUF"],
    params: {
        system_heap: bool {
            default: true,
            description: "Register the system heap (default: true)",
        },
        cma_heaps: bool {
            default: true,
            description: "Register a heap per CMA area (default: true)",
        },
        carveout_heaps: bool {
            default: true,
            description: "Register a heap per carved-out region (default: true)",
        },
        mem_accounting: bool {
            default: false,
            description: "Charge system heap buffers to the allocating task's memory cgroup (default: false)",
        },
    },
}

struct RustDmaHeap {
    _registry: Pin<KBox<registry::Registry>>,
}

impl kernel::Module for RustDmaHeap {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let class_name = wrappers::class_name_param();
        // Upstream's framework owns "dma_heap" when built in: say so before
        // the driver core complains about a duplicate class. (The module
        // loader turns an init's EEXIST into EBUSY.)
        if cfg!(CONFIG_DMABUF_HEAPS) && class_name == c"dma_heap" {
            pr_err!(
                "this kernel has CONFIG_DMABUF_HEAPS: /dev/dma_heap is upstream's; \
                 load with class_name=<another name>\n"
            );
            return Err(EEXIST);
        }
        let registry = registry::Registry::new(class_name, module).inspect_err(|e| {
            if *e == EEXIST {
                pr_err!(
                    "device class '{}' exists already: load with class_name=<another name>\n",
                    class_name
                );
            }
        })?;
        #[cfg(CONFIG_RUST_DMA_HEAP_SYSTEM)]
        if module_parameters::system_heap.value() {
            let heap: Arc<dyn registry::Heap> = Arc::new(
                heaps::system::SystemHeap {
                    account: module_parameters::mem_accounting.value(),
                },
                GFP_KERNEL,
            )?;
            registry.add(heap)?;
        }
        #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
        if module_parameters::cma_heaps.value() {
            for heap in heaps::cma::CmaHeap::all()? {
                let heap: Arc<dyn registry::Heap> = Arc::new(heap, GFP_KERNEL)?;
                // A name taken already (two areas alike) costs that heap only.
                if let Err(e) = registry.add(heap) {
                    if e != EEXIST {
                        return Err(e);
                    }
                }
            }
        }
        #[cfg(CONFIG_RUST_DMA_HEAP_CARVEOUT)]
        if module_parameters::carveout_heaps.value() {
            #[cfg(CONFIG_OF_RESERVED_MEM)]
            for heap in heaps::carveout::CarveoutHeap::from_device_tree()? {
                registry.add(Arc::new(heap, GFP_KERNEL)?)?;
            }
            if let Some(heap) =
                heaps::carveout::CarveoutHeap::from_param(wrappers::carveout_param())?
            {
                registry.add(Arc::new(heap, GFP_KERNEL)?)?;
            }
        }
        pr_info!("heaps registered under /dev/{}/\n", class_name);
        Ok(RustDmaHeap {
            _registry: registry,
        })
    }
}
