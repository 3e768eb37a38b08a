// SPDX-License-Identifier: GPL-2.0
/*
 * dma-heap-load: load a file (model weights, a tuning file, an image) into
 * a buffer of a dma-heap with RUST_DMA_HEAP_IOCTL_FILL, in one call, and
 * print the time and the rate. The bytes go from the file straight into
 * the heap's pages (direct I/O where the file takes it): no mmap, no
 * read() copy, no page cache left behind.
 *
 * Usage: dma-heap-load FILE [heap name] [offset] [length]
 *        (default: system, offset 0, the rest of the file)
 *
 * The heap is /dev/dma_heap/<heap name> (RDH_DEV_DIR overrides the
 * directory). The fill goes through the module's control node,
 * /dev/rust_dma_heap_ctl, which works whether the module serves its own
 * nodes or the kernel's dma-heap framework serves them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/rust-dma-heap.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("RDH_DEV_DIR") ? getenv("RDH_DEV_DIR") : "/dev/dma_heap";
	const char *heap = argc > 2 ? argv[2] : "system";
	uint64_t offset = argc > 3 ? strtoull(argv[3], NULL, 0) : 0;
	struct rust_dma_heap_fill_data data = {
		.fd_flags = O_RDWR | O_CLOEXEC,
		.offset = offset,
	};
	int file, heap_fd, ctl, ret = 1;
	char path[256];
	struct stat st;
	double t0, t;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE [heap] [offset] [length]\n", argv[0]);
		return 2;
	}
	file = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (file < 0 || fstat(file, &st)) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (argc > 4)
		data.len = strtoull(argv[4], NULL, 0);
	else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > offset)
		data.len = st.st_size - offset;
	else if (ioctl(file, _IOR(0x12, 114, size_t), &data.len) == 0 && data.len > offset)
		data.len -= offset;	/* BLKGETSIZE64 */
	else
		data.len = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, heap);
	heap_fd = open(path, O_RDONLY | O_CLOEXEC);
	ctl = open("/dev/rust_dma_heap_ctl", O_RDWR | O_CLOEXEC);
	if (heap_fd < 0 || ctl < 0) {
		fprintf(stderr, "open %s: %s\n", heap_fd < 0 ? path : "/dev/rust_dma_heap_ctl",
			strerror(errno));
		return 1;
	}
	data.file_fd = file;
	data.heap_fd = heap_fd;
	t0 = now();
	if (ioctl(ctl, RUST_DMA_HEAP_IOCTL_FILL, &data) < 0) {
		fprintf(stderr, "RUST_DMA_HEAP_IOCTL_FILL(%s, %llu bytes at %llu): %s\n", path,
			(unsigned long long)data.len, (unsigned long long)offset, strerror(errno));
		goto out;
	}
	t = now() - t0;
	printf("loaded %llu bytes of %s at offset %llu into a %llu-byte buffer of %s (fd %u)%s\n",
	       (unsigned long long)data.read, argv[1], (unsigned long long)offset,
	       (unsigned long long)data.len, path, data.fd,
	       data.flags & RUST_DMA_HEAP_FILL_DIRECT ? ", by direct I/O" : ", through the page cache");
	printf("%.3f ms, %.1f MB/s\n", t * 1e3, t > 0 ? data.read / t / 1e6 : 0.0);
	close(data.fd);
	ret = 0;
out:
	close(ctl);
	close(heap_fd);
	close(file);
	return ret;
}
