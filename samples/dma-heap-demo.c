// SPDX-License-Identifier: GPL-2.0
/*
 * dma-heap-demo: allocate a buffer from a dma-heap, map it, write a
 * pattern under DMA_BUF_IOCTL_SYNC, read it back, and say what happened.
 *
 * Usage: dma-heap-demo [heap name] [size in bytes]
 *        (default: system, 1 MiB; heaps live in /dev/dma_heap/)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>

static int sync_buf(int fd, __u64 flags)
{
	struct dma_buf_sync sync = { .flags = flags };

	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync);
}

int main(int argc, char **argv)
{
	const char *heap = argc > 1 ? argv[1] : "system";
	size_t size = argc > 2 ? strtoull(argv[2], NULL, 0) : 1 << 20;
	struct dma_heap_allocation_data data = {
		.len = size,
		.fd_flags = O_RDWR | O_CLOEXEC,
	};
	char path[128];
	uint32_t *p;
	size_t i, n = size / sizeof(*p);
	int heap_fd, ret = 1;

	snprintf(path, sizeof(path), "/dev/dma_heap/%s", heap);
	heap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (heap_fd < 0) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data) < 0) {
		fprintf(stderr, "DMA_HEAP_IOCTL_ALLOC(%zu bytes): %s\n", size,
			strerror(errno));
		goto out_heap;
	}
	printf("allocated %zu bytes from %s: dma-buf fd %u\n", size, path, data.fd);

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, data.fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mmap: %s\n", strerror(errno));
		goto out_buf;
	}
	for (i = 0; i < n; i++) {
		if (p[i]) {
			fprintf(stderr, "word %zu is %#x, not zero\n", i, p[i]);
			goto out_map;
		}
	}
	printf("mapped it: all %zu bytes read back as zero\n", size);

	if (sync_buf(data.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE) < 0)
		goto out_sync;
	for (i = 0; i < n; i++)
		p[i] = (uint32_t)i ^ 0xdeadbeef;
	if (sync_buf(data.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE) < 0)
		goto out_sync;
	printf("wrote a pattern of %zu words (DMA_BUF_IOCTL_SYNC around it)\n", n);

	if (sync_buf(data.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ) < 0)
		goto out_sync;
	for (i = 0; i < n; i++) {
		if (p[i] != ((uint32_t)i ^ 0xdeadbeef)) {
			fprintf(stderr, "word %zu reads %#x\n", i, p[i]);
			goto out_map;
		}
	}
	if (sync_buf(data.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ) < 0)
		goto out_sync;
	printf("read it back: all %zu words match\n", n);
	ret = 0;
	goto out_map;

out_sync:
	fprintf(stderr, "DMA_BUF_IOCTL_SYNC: %s\n", strerror(errno));
out_map:
	munmap(p, size);
out_buf:
	close(data.fd);
	if (!ret)
		printf("closed the buffer: %s\n", "done");
out_heap:
	close(heap_fd);
	return ret;
}
