// SPDX-License-Identifier: GPL-2.0

//! rust-dma-heap: the dma-heap allocator (`/dev/dma_heap/<name>`,
//! `DMA_HEAP_IOCTL_ALLOC`) in Rust.
//!
//! Layers, top to bottom: [`registry`] (nodes, ioctl), [`heaps`] (memory
//! backends), [`buffer`] (the dma-buf exporter), [`wrappers`] (the only
//! `unsafe` code, over kernel C APIs).

use kernel::{prelude::*, sync::Arc, ThisModule};

mod buffer;
mod heaps;
mod pool;
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
        auto_heap: bool {
            default: true,
            description: "Register the auto heap (default: true)",
        },
        uncached_heap: bool {
            default: true,
            description: "Register the system-uncached heap (default: true)",
        },
        cma_heaps: bool {
            default: true,
            description: "Register a heap per CMA area (default: true)",
        },
        carveout_heaps: bool {
            default: true,
            description: "Register a heap per carved-out region (default: true)",
        },
    },
}

struct RustDmaHeap {
    _registry: registry::Registry,
}

/// Every heap this load registers, set up before any node exists. A bad
/// `carveout=` fails the load here, before userspace can see anything.
fn all_heaps() -> Result<KVec<Arc<dyn heaps::Heap>>> {
    let mut all: KVec<Arc<dyn heaps::Heap>> = KVec::new();
    // Whether buffers are charged to the allocating task's cgroups: the
    // system heap's pages to its memory cgroup, CMA and carve-out buffers
    // to its dmem cgroup (whose regions are registered only then).
    #[cfg(any(
        CONFIG_RUST_DMA_HEAP_SYSTEM,
        CONFIG_RUST_DMA_HEAP_CMA,
        CONFIG_RUST_DMA_HEAP_CARVEOUT
    ))]
    let charged = wrappers::mem_accounting_param();
    #[cfg(CONFIG_RUST_DMA_HEAP_SYSTEM)]
    let system = {
        let mut uncached =
            cfg!(CONFIG_RUST_DMA_HEAP_SYSTEM_UNCACHED) && module_parameters::uncached_heap.value();
        // Every DMA mapping of a confidential guest bounces through shared
        // memory: a device would never see what the CPU wrote past its
        // caches, nor the CPU what the device wrote.
        if uncached && wrappers::cc_guest() {
            pr_info!("confidential guest: DMA bounces, system-uncached not registered\n");
            uncached = false;
        }
        let auto = cfg!(CONFIG_RUST_DMA_HEAP_AUTO) && module_parameters::auto_heap.value();
        if module_parameters::system_heap.value() || uncached || auto {
            let system = Arc::new(heaps::system::SystemHeap::new(charged)?, GFP_KERNEL)?;
            #[cfg(CONFIG_RUST_DMA_HEAP_SYSTEM_UNCACHED)]
            if uncached {
                match heaps::system_uncached::UncachedHeap::new(system.clone()) {
                    Ok(heap) => all.push(Arc::new(heap, GFP_KERNEL)?, GFP_KERNEL)?,
                    Err(e) if e == EOPNOTSUPP => {
                        pr_info!("DMA bounces through swiotlb: system-uncached not registered\n")
                    }
                    Err(e) => return Err(e),
                }
            }
            if module_parameters::system_heap.value() {
                all.push(system.clone(), GFP_KERNEL)?;
            }
            auto.then_some(system)
        } else {
            None
        }
    };
    #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
    let mut cma = KVec::new();
    #[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
    if module_parameters::cma_heaps.value() {
        for heap in heaps::cma::CmaHeap::all(charged)? {
            let heap = Arc::new(heap, GFP_KERNEL)?;
            all.push(heap.clone(), GFP_KERNEL)?;
            cma.push(heap, GFP_KERNEL)?;
        }
    }
    // Without a CMA area, `auto` could only ever give system pages, and
    // fail every device that needs one contiguous range: not registered.
    #[cfg(CONFIG_RUST_DMA_HEAP_AUTO)]
    if let Some(system) = system {
        if cma.is_empty() {
            pr_info!("no CMA area: auto not registered\n");
        } else {
            let heap = heaps::auto::AutoHeap::new(system, &cma)?;
            all.push(Arc::new(heap, GFP_KERNEL)?, GFP_KERNEL)?;
        }
    }
    #[cfg(CONFIG_RUST_DMA_HEAP_CARVEOUT)]
    if module_parameters::carveout_heaps.value() {
        #[cfg(CONFIG_OF_RESERVED_MEM)]
        for heap in heaps::carveout::CarveoutHeap::from_device_tree(charged)? {
            all.push(Arc::new(heap, GFP_KERNEL)?, GFP_KERNEL)?;
        }
        if let Some(heap) = heaps::carveout::CarveoutHeap::from_param(charged)? {
            all.push(Arc::new(heap, GFP_KERNEL)?, GFP_KERNEL)?;
        }
    }
    Ok(all)
}

impl kernel::Module for RustDmaHeap {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let class_name = wrappers::class_name_param();
        let framework = cfg!(CONFIG_DMABUF_HEAPS);
        // Through the kernel's framework where it has one, unless another
        // class is asked for (side by side with upstream's heaps).
        let provider = match wrappers::mode_param().to_bytes() {
            b"auto" => framework && class_name == c"dma_heap",
            b"provider" if framework => true,
            b"provider" => {
                pr_err!(
                    "mode=provider: this kernel has no dma-heap framework (CONFIG_DMABUF_HEAPS)\n"
                );
                return Err(EINVAL);
            }
            b"standalone" => false,
            _ => {
                pr_err!("mode: auto, provider or standalone\n");
                return Err(EINVAL);
            }
        };
        // Upstream's framework owns "dma_heap" when built in: say so before
        // the driver core complains about a duplicate class. (The module
        // loader turns an init's EEXIST into EBUSY.)
        if !provider && framework && class_name == c"dma_heap" {
            pr_err!(
                "this kernel has CONFIG_DMABUF_HEAPS: /dev/dma_heap is upstream's; \
                 load with class_name=<another name>, or mode=provider\n"
            );
            return Err(EEXIST);
        }
        let registry =
            registry::Registry::new(class_name, all_heaps()?, provider).inspect_err(|e| {
                if *e == EEXIST {
                    pr_err!(
                        "device class '{}' exists already: load with class_name=<another name>\n",
                        class_name
                    );
                }
            })?;
        if provider {
            pr_info!(
                "{} heaps added to the kernel's /dev/dma_heap/; the module stays loaded until reboot\n",
                registry.len()
            );
        } else {
            pr_info!(
                "{} heaps registered under /dev/{}/\n",
                registry.len(),
                class_name
            );
        }
        Ok(RustDmaHeap {
            _registry: registry,
        })
    }
}
