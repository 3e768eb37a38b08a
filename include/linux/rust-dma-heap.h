/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rust-dma-heap's in-kernel API: allocate a dma-buf from one of the
 * module's heaps by name, as Android's dma_heap_find() /
 * dma_heap_buffer_alloc() / dma_heap_put() do. Symbols in namespace
 * "RUST_DMA_HEAP" (MODULE_IMPORT_NS("RUST_DMA_HEAP"), or symbol_get()).
 */
#ifndef _LINUX_RUST_DMA_HEAP_H
#define _LINUX_RUST_DMA_HEAP_H

#include <linux/types.h>

struct dma_buf;
struct file;
struct rust_dma_heap;

struct rust_dma_heap *rust_dma_heap_find(const char *name);
const char *rust_dma_heap_get_name(struct rust_dma_heap *heap);
struct dma_buf *rust_dma_heap_buffer_alloc(struct rust_dma_heap *heap, size_t len,
					   u32 fd_flags, u64 heap_flags);
struct dma_buf *rust_dma_heap_buffer_fill(struct rust_dma_heap *heap, size_t len,
					  u32 fd_flags, u64 heap_flags, struct file *file,
					  loff_t offset, size_t *read);
void rust_dma_heap_put(struct rust_dma_heap *heap);

#endif /* _LINUX_RUST_DMA_HEAP_H */
