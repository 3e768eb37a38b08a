// SPDX-License-Identifier: GPL-2.0
/*
 * fill-bench: a file into a dma-buf, four ways, in one boot (vmtest bench
 * --fill). The guest has two virtio-blk disks: an ext4 file system whose
 * file "data" holds random bytes, and a raw disk of the same bytes.
 *
 * Usage: fill-bench UPSTREAM_HEAP RUST_HEAP SIZE_MIB... [--pressure SIZE_MIB...]
 *
 * For each source (the ext4 file, the raw disk) and size, with the page
 * cache dropped before every run:
 *
 *   fill      RUST_DMA_HEAP_IOCTL_FILL on RUST_HEAP (through the control
 *             node): allocation and read in one call
 *   mmap_read upstream's route: DMA_HEAP_IOCTL_ALLOC on UPSTREAM_HEAP,
 *             mmap, read() (buffered) into the mapping
 *   udmabuf   the route maintainers suggest: memfd, UDMABUF_CREATE, mmap
 *             the memfd, read() with O_DIRECT into it
 *   floor     O_DIRECT read() into anonymous memory touched beforehand
 *             (untimed): the device's and the guest's own limit
 *
 * and the page cache's growth over the fill. After --pressure, the same
 * with a process holding half of RAM (anonymous, touched).
 * Output: "# RDH-FILL source,route,size_bytes,ns,cache_growth_kb,pressure"
 * lines (medians of RDH_FILL_ITERS runs, 3 by default) and a KTAP result
 * per source and size.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <linux/dma-heap.h>
#include <linux/rust-dma-heap.h>
#include <linux/udmabuf.h>

#define MIB (1024UL * 1024)
#define MAX_ITERS 9
#define MNT "/mnt"
#define CONTROL "/dev/rust_dma_heap_ctl"

enum route { FILL, MMAP_READ, UDMABUF, FLOOR, ROUTES };
static const char *const route_name[ROUTES] = { "fill", "mmap_read", "udmabuf", "floor" };

struct source {
	const char *name;	/* "ext4" or "raw" */
	char path[64];
	uint64_t size;
};

static int ctl, heaps[2];	/* heaps[0] upstream's, heaps[1] ours */
/* Each route's last buffer: a word of every page summed (untimed). */
static uint64_t sums[ROUTES];

/* The sum of the first word of every page of @p (@len bytes). */
static uint64_t page_sum(const void *p, size_t len)
{
	uint64_t sum = 0, word;
	size_t i;

	for (i = 0; i < len; i += 4096) {
		memcpy(&word, (const char *)p + i, sizeof(word));
		sum += word * (i / 4096 + 1);
	}
	return sum;
}
static int failures, results;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void drop_page_cache(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd >= 0) {
		if (write(fd, "3\n", 2) != 2)
			perror("drop_caches");
		close(fd);
	}
}

static long meminfo_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n))
			v = atol(line + n);
	if (f)
		fclose(f);
	return v;
}

/* read() @len bytes at 0 of @fd into @p, in 64 MiB calls; 0 or -errno. */
static int read_all(int fd, void *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < 64 * MIB ? len - done : 64 * MIB;
		ssize_t r = pread(fd, (char *)p + done, n, done);

		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		done += r;
	}
	return 0;
}

/* One timed run of @route from @src, @len bytes; ns, or 0 on failure. */
static uint64_t run(enum route route, const struct source *src, size_t len, long *growth)
{
	int file = -1, buf = -1, memfd = -1, dev;
	uint64_t t0, t = 0;
	void *p = MAP_FAILED;
	long before;

	drop_page_cache();
	switch (route) {
	case FILL: {
		struct rust_dma_heap_fill_data d = {
			.len = len, .fd_flags = O_RDWR | O_CLOEXEC, .heap_fd = heaps[1],
		};

		file = open(src->path, O_RDONLY | O_CLOEXEC);
		if (file < 0)
			break;
		d.file_fd = file;
		before = meminfo_kb("Cached:") + meminfo_kb("Buffers:");
		t0 = now_ns();
		if (ioctl(ctl, RUST_DMA_HEAP_IOCTL_FILL, &d) == 0 && d.read == len) {
			t = now_ns() - t0;
			buf = d.fd;
		}
		*growth = meminfo_kb("Cached:") + meminfo_kb("Buffers:") - before;
		if (buf >= 0)
			p = mmap(NULL, len, PROT_READ, MAP_SHARED, buf, 0);
		break;
	}
	case MMAP_READ: {
		struct dma_heap_allocation_data d = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };

		file = open(src->path, O_RDONLY | O_CLOEXEC);
		if (file < 0)
			break;
		t0 = now_ns();
		if (ioctl(heaps[0], DMA_HEAP_IOCTL_ALLOC, &d))
			break;
		buf = d.fd;
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
		if (p != MAP_FAILED && !read_all(file, p, len))
			t = now_ns() - t0;
		break;
	}
	case UDMABUF: {
		struct udmabuf_create c = { .flags = UDMABUF_FLAGS_CLOEXEC, .size = len };

		file = open(src->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
		dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
		if (file < 0 || dev < 0) {
			if (dev >= 0)
				close(dev);
			break;
		}
		t0 = now_ns();
		memfd = memfd_create("fill-bench", MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (memfd >= 0 && !ftruncate(memfd, len) &&
		    !fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
			c.memfd = memfd;
			buf = ioctl(dev, UDMABUF_CREATE, &c);
			p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
			if (buf >= 0 && p != MAP_FAILED && !read_all(file, p, len))
				t = now_ns() - t0;
		}
		close(dev);
		break;
	}
	case FLOOR:
		file = open(src->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (file < 0 || p == MAP_FAILED)
			break;
		memset(p, 1, len);
		t0 = now_ns();
		if (!read_all(file, p, len))
			t = now_ns() - t0;
		break;
	default:
		break;
	}
	if (p != MAP_FAILED) {
		sums[route] = page_sum(p, len);
		munmap(p, len);
	} else {
		sums[route] = 0;
	}
	if (buf >= 0)
		close(buf);
	if (memfd >= 0)
		close(memfd);
	if (file >= 0)
		close(file);
	return t;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void measure(const struct source *src, size_t mib, int iters, bool pressure)
{
	uint64_t ns[ROUTES][MAX_ITERS], med[ROUTES];
	long growth[MAX_ITERS], g;
	size_t len = mib * MIB;
	int r, i;
	bool ok = true;

	if (len > src->size) {
		printf("ok %d %s %zu MiB%s # SKIP the source holds %llu bytes\n", ++results,
		       src->name, mib, pressure ? " pressure" : "",
		       (unsigned long long)src->size);
		return;
	}
	/* Rounds alternate the routes' order (a boot's drift hits all). */
	for (i = 0; i < iters; i++) {
		for (r = 0; r < ROUTES; r++) {
			int k = i % 2 ? ROUTES - 1 - r : r;

			growth[i] = 0;
			ns[k][i] = run(k, src, len, k == FILL ? &g : &growth[i]);
			if (k == FILL)
				growth[i] = g;
			if (!ns[k][i])
				ok = false;
		}
		/* Every route read the same bytes. */
		for (r = 1; r < ROUTES; r++) {
			if (sums[r] != sums[FILL]) {
				printf("# %s %zu MiB: %s read other bytes than fill\n", src->name, mib,
				       route_name[r]);
				ok = false;
			}
		}
	}
	for (r = 0; r < ROUTES; r++) {
		qsort(ns[r], iters, sizeof(ns[r][0]), cmp_u64);
		med[r] = ns[r][iters / 2];
		printf("# RDH-FILL %s,%s,%zu,%llu,%ld,%d\n", src->name, route_name[r], len,
		       (unsigned long long)med[r], r == FILL ? growth[iters / 2] : 0L, pressure);
	}
	printf("# %s %zu MiB%s: fill %.1f ms, mmap_read %.1f, udmabuf %.1f, floor %.1f; fill/mmap_read %.2f, fill/udmabuf %.2f, floor/fill throughput %.2f, page cache +%ld KiB\n",
	       src->name, mib, pressure ? " (pressure)" : "", med[FILL] / 1e6, med[MMAP_READ] / 1e6,
	       med[UDMABUF] / 1e6, med[FLOOR] / 1e6,
	       med[MMAP_READ] ? (double)med[FILL] / med[MMAP_READ] : 0,
	       med[UDMABUF] ? (double)med[FILL] / med[UDMABUF] : 0,
	       med[FILL] ? (double)med[FLOOR] / med[FILL] : 0, growth[iters / 2]);
	if (!ok)
		failures++;
	printf("%s %d %s %zu MiB%s\n", ok ? "ok" : "not ok", ++results, src->name, mib,
	       pressure ? " pressure" : "");
}

/* Mounts the ext4 disk and finds the raw one: vda and vdb, either way. */
static int sources(struct source *s)
{
	static const char *const devs[] = { "/dev/vda", "/dev/vdb" };
	int i, fd, raw = -1;
	struct stat st;

	mkdir(MNT, 0755);
	for (i = 0; i < 2; i++) {
		if (mount(devs[i], MNT, "ext4", MS_RDONLY, NULL) == 0)
			continue;
		raw = i;
	}
	if (raw < 0 || stat(MNT "/data", &st))
		return -ENOENT;
	s[0] = (struct source){ .name = "ext4", .size = st.st_size };
	snprintf(s[0].path, sizeof(s[0].path), MNT "/data");
	s[1] = (struct source){ .name = "raw" };
	snprintf(s[1].path, sizeof(s[1].path), "%s", devs[raw]);
	fd = open(devs[raw], O_RDONLY);
	if (fd < 0 || ioctl(fd, _IOR(0x12, 114, size_t), &s[1].size))
		return -errno;
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	int iters = getenv("RDH_FILL_ITERS") ? atoi(getenv("RDH_FILL_ITERS")) : 3;
	struct source src[2];
	int i, s, first_pressure = argc;
	pid_t hog = -1;

	if (argc < 4) {
		fprintf(stderr, "usage: %s UPSTREAM_HEAP RUST_HEAP SIZE_MIB... [--pressure SIZE_MIB...]\n",
			argv[0]);
		return 2;
	}
	if (iters < 1 || iters > MAX_ITERS)
		iters = 3;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	heaps[0] = open(argv[1], O_RDONLY | O_CLOEXEC);
	heaps[1] = open(argv[2], O_RDONLY | O_CLOEXEC);
	ctl = open(CONTROL, O_RDWR | O_CLOEXEC);
	if (heaps[0] < 0 || heaps[1] < 0 || ctl < 0 || sources(src)) {
		printf("1..0 # SKIP no heaps, control node or disks (%s)\n", strerror(errno));
		return 4;
	}
	for (i = 3; i < argc; i++)
		if (!strcmp(argv[i], "--pressure"))
			first_pressure = i;
	printf("1..%d\n", 2 * (argc - 3 - (first_pressure < argc)));
	printf("# sources: %s (%llu bytes), %s (%llu bytes); %d runs each, medians\n", src[0].path,
	       (unsigned long long)src[0].size, src[1].path, (unsigned long long)src[1].size,
	       iters);
	for (i = 3; i < argc; i++) {
		if (i == first_pressure) {
			size_t half = meminfo_kb("MemTotal:") * 1024 / 2;

			hog = fork();
			if (hog == 0) {
				char *p = mmap(NULL, half, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

				if (p != MAP_FAILED)
					memset(p, 1, half);
				pause();
				_exit(0);
			}
			sleep(2);
			printf("# a process holds %zu MiB from here on\n", half / MIB);
			continue;
		}
		for (s = 0; s < 2; s++)
			measure(&src[s], strtoul(argv[i], NULL, 0), iters, hog > 0);
	}
	if (hog > 0) {
		kill(hog, SIGKILL);
		waitpid(hog, NULL, 0);
	}
	umount(MNT);
	return failures ? 1 : 0;
}
