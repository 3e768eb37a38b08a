// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel API's C face: the exported symbols, their kernel-doc, and
 * the module reference a held heap keeps. The heaps are found and buffers
 * allocated in Rust (src/wrappers/kapi.rs), through the registry that
 * publishes itself here while the module's nodes exist.
 */
#include <linux/dma-buf.h>
#include <linux/err.h>
#include <linux/export.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rust-dma-heap.h>

#include "helpers.h"

static DEFINE_MUTEX(kapi_lock);
static const void *kapi_heaps;

void rdh_kapi_publish(const void *heaps)
{
	mutex_lock(&kapi_lock);
	kapi_heaps = heaps;
	mutex_unlock(&kapi_lock);
}

/**
 * rust_dma_heap_find() - find one of this module's heaps by name
 * @name: the heap's name, as in /dev/<class>/<name>
 *
 * A heap found keeps the module loaded until rust_dma_heap_put().
 * Context: process context; may sleep.
 * Return: the heap, or NULL when there is none of that name (or the
 * module is going away).
 */
struct rust_dma_heap *rust_dma_heap_find(const char *name)
{
	struct rust_dma_heap *heap = NULL;

	mutex_lock(&kapi_lock);
	if (kapi_heaps && try_module_get(THIS_MODULE)) {
		heap = rdh_kapi_find(kapi_heaps, name);
		if (!heap)
			module_put(THIS_MODULE);
	}
	mutex_unlock(&kapi_lock);
	return heap;
}
EXPORT_SYMBOL_NS_GPL(rust_dma_heap_find, "RUST_DMA_HEAP");

/**
 * rust_dma_heap_get_name() - the name of a heap
 * @heap: a heap from rust_dma_heap_find()
 *
 * Return: its name, valid until rust_dma_heap_put().
 */
const char *rust_dma_heap_get_name(struct rust_dma_heap *heap)
{
	return rdh_kapi_name(heap);
}
EXPORT_SYMBOL_NS_GPL(rust_dma_heap_get_name, "RUST_DMA_HEAP");

/**
 * rust_dma_heap_buffer_alloc() - allocate a zeroed buffer from a heap
 * @heap: a heap from rust_dma_heap_find()
 * @len: size in bytes, rounded up to whole pages
 * @fd_flags: flags of the dma-buf's file (O_CLOEXEC and access mode only)
 * @heap_flags: heap flags (none are defined: 0)
 *
 * The same checks, limits and accounting as DMA_HEAP_IOCTL_ALLOC (the
 * memory is charged to the current task's cgroups).
 * Context: process context; may sleep.
 * Return: a dma-buf with one reference for the caller (dma_buf_put() it,
 * or dma_buf_fd() to hand it to userspace), or an ERR_PTR(): -EINVAL for
 * a zero length or unknown flags, -ENOMEM when the memory is not there.
 */
struct dma_buf *rust_dma_heap_buffer_alloc(struct rust_dma_heap *heap, size_t len,
					   u32 fd_flags, u64 heap_flags)
{
	return rdh_kapi_alloc(heap, len, fd_flags, heap_flags);
}
EXPORT_SYMBOL_NS_GPL(rust_dma_heap_buffer_alloc, "RUST_DMA_HEAP");

/**
 * rust_dma_heap_buffer_fill() - allocate a buffer from a heap, filled from a file
 * @heap: a heap from rust_dma_heap_find()
 * @len: size in bytes, rounded up to whole pages
 * @fd_flags: flags of the dma-buf's file (O_CLOEXEC and access mode only)
 * @heap_flags: heap flags (none are defined: 0)
 * @file: the file to read, open for reading: a regular file or a block device
 * @offset: the file offset of the buffer's first byte
 * @read: if not NULL, set to the number of bytes read on success
 *
 * As rust_dma_heap_buffer_alloc(), the buffer then read from @file: with
 * direct I/O straight into its pages when the file takes it and @offset
 * is sector-aligned, otherwise through the page cache. Past the file's end
 * the buffer is zero. For drivers that load weights or firmware.
 * Context: process context; may sleep.
 * Return: a dma-buf with one reference for the caller, or an ERR_PTR():
 * those of rust_dma_heap_buffer_alloc(); -EBADF when @file is not open for
 * reading; -EINVAL when it is neither a regular file nor a block device,
 * or @offset is negative; -EOVERFLOW when @offset + @len is past the
 * largest file offset; -EOPNOTSUPP for a heap whose memory has no struct
 * page; the file's I/O error; -EINTR on a fatal signal. A failure leaves
 * no memory and no charge behind.
 */
struct dma_buf *rust_dma_heap_buffer_fill(struct rust_dma_heap *heap, size_t len,
					  u32 fd_flags, u64 heap_flags, struct file *file,
					  loff_t offset, size_t *read)
{
	return rdh_kapi_fill(heap, len, fd_flags, heap_flags, file, offset, read);
}
EXPORT_SYMBOL_NS_GPL(rust_dma_heap_buffer_fill, "RUST_DMA_HEAP");

/**
 * rust_dma_heap_put() - release a heap from rust_dma_heap_find()
 * @heap: the heap
 *
 * Buffers allocated from it stay valid (each holds the module itself).
 */
void rust_dma_heap_put(struct rust_dma_heap *heap)
{
	rdh_kapi_put(heap);
	module_put(THIS_MODULE);
}
EXPORT_SYMBOL_NS_GPL(rust_dma_heap_put, "RUST_DMA_HEAP");
