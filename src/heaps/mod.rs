// SPDX-License-Identifier: GPL-2.0

//! Heap backends: each turns a length into a [`crate::buffer::Backing`].

#[cfg(CONFIG_RUST_DMA_HEAP_CARVEOUT)]
pub(crate) mod carveout;
#[cfg(CONFIG_RUST_DMA_HEAP_CMA)]
pub(crate) mod cma;
#[cfg(CONFIG_RUST_DMA_HEAP_SYSTEM)]
pub(crate) mod system;
