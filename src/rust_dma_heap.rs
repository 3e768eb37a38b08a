// SPDX-License-Identifier: GPL-2.0

//! rust-dma-heap: the dma-heap allocator (`/dev/dma_heap/<name>`,
//! `DMA_HEAP_IOCTL_ALLOC`) in Rust.

use kernel::prelude::*;

mod wrappers;

module! {
    type: RustDmaHeap,
    name: "rust_dma_heap",
    authors: ["rust-dma-heap developers"],
    description: "DMA-BUF heaps in Rust",
    license: "GPL",
}

struct RustDmaHeap;

impl kernel::Module for RustDmaHeap {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!(
            "loaded ({} MiB of RAM managed)\n",
            wrappers::totalram_pages() >> (20 - kernel::page::PAGE_SHIFT)
        );
        Ok(RustDmaHeap)
    }
}

impl Drop for RustDmaHeap {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
