// SPDX-License-Identifier: GPL-2.0
/*
 * dma-heap-bench: upstream's C heaps against rust-dma-heap, in one boot.
 *
 * Usage: dma-heap-bench [--short] KIND:UPSTREAM_NODE:RUST_NODE:MAX_BYTES...
 *
 * For each pair of heap nodes of one KIND (system, uncached, auto, cma) and each
 * size up to
 * MAX_BYTES (4 KiB, 64 KiB, 1 MiB, 16 MiB, 256 MiB), times the operations
 * below many times, alternating which heap goes first, and prints medians:
 *
 *   alloc             DMA_HEAP_IOCTL_ALLOC + close, back to back (a pool
 *                     has every block back, not yet zeroed by its worker)
 *   realloc           the same after a 16 ms pause (a pipeline at 60 frames
 *                     per second; a pool's worker has zeroed the blocks)
 *   first_alloc       the same after drop_caches (a pool is empty)
 *   alloc_mmap_touch  alloc, mmap, write one byte per page, munmap, close
 *   mmap_touch        the same on a buffer allocated beforehand (untimed)
 *   import_vgem       DRM_IOCTL_PRIME_FD_TO_HANDLE + GEM_CLOSE on vgem
 *                     (import and attach)
 *   attach_map        attach, map for DMA, unmap, detach through the
 *                     selftests' importer (/dev/rdh_importer)
 *   sync              begin + end CPU access (what DMA_BUF_IOCTL_SYNC does)
 *                     with the importer's device attached and mapped, timed
 *                     in the kernel: the cache maintenance a sync costs
 *   sg_entries        scatterlist entries of the mapped buffer (a count)
 *
 * KIND "charged" is not upstream against ours but, both nodes ours, an
 * ordinary allocation (the "upstream" column) against one charged to
 * another process by a pidfd (charge_pid_fd, the proposal's 32-byte
 * DMA_HEAP_IOCTL_ALLOC: the "rust" column), both charged to the same
 * memory cgroup (the bench's own, which it makes for the pair and whose
 * other process it charges): the price of the pidfd alone. Only the
 * allocation ops run for it.
 *
 * (RDH_BENCH_OPS="op,op" runs only those; RDH_BENCH_ITERS=N sets the
 * iterations; RDH_BENCH_DECILES=1 adds each side's deciles), and the
 * guest's memset of the same sizes, the floor of any allocation that must
 * zero its memory, and the cost of one atomic operation. Output is KTAP,
 * one result per KIND and size,
 * with a "# RDH-BENCH heap,op,size_bytes,upstream_ns,rust_ns,n" line per
 * median; tools/testing/vm/bench/report.py turns those into the CSV, the
 * markdown table and the plot.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm/drm.h>
#include <linux/dma-heap.h>

#include "../../selftests/rust_dma_heap/rdh_importer.h"

#define PAGE 4096UL
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_PAIRS 8
#define MAX_ITERS 512

struct pair {
	char kind[16];
	const char *node[2];	/* 0: upstream, 1: rust */
	int fd[2];
	uint64_t max_bytes;
};

static const uint64_t sizes[] = {
	4UL << 10, 64UL << 10, 1UL << 20, 16UL << 20, 256UL << 20,
};
static int vgem_fd = -1, importer_fd = -1;
/* Per side (0, 1): a pidfd to charge allocations to, or 0. */
static int charge_pidfd[2];
static int short_mode;
static unsigned int tests, failures;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * RDH_BENCH_DECILES=1: after each median, the deciles of both sides' sorted
 * samples (median() sorted them), in microseconds, "# RDH-DECILES heap,op,
 * size_bytes,upstream|rust,d0,...,d10" (d0 the fastest, d10 the slowest):
 * whether a median sits in one mode or between two.
 */
static void deciles(const char *heap, const char *op, uint64_t size, int who,
		    const uint64_t *v, int n)
{
	static int on = -1;
	int k;

	if (on < 0)
		on = getenv("RDH_BENCH_DECILES") != NULL;
	if (!on)
		return;
	printf("# RDH-DECILES %s,%s,%llu,%s", heap, op, (unsigned long long)size,
	       who ? "rust" : "upstream");
	for (k = 0; k <= 10; k++)
		printf(",%llu", (unsigned long long)v[k < 10 ? k * n / 10 : n - 1] / 1000);
	printf("\n");
}

/*
 * Iterations per size: many for small buffers, a few for huge ones;
 * RDH_BENCH_ITERS=<n> overrides (a profile wants a handful).
 */
static int iterations(uint64_t size)
{
	const char *env = getenv("RDH_BENCH_ITERS");
	int n;

	if (env && atoi(env) > 0 && atoi(env) <= MAX_ITERS)
		return atoi(env);
	if (size <= (64UL << 10))
		n = 501;
	else if (size <= (1UL << 20))
		n = 201;
	else if (size <= (16UL << 20))
		n = 51;
	else
		n = 15;
	return short_mode ? (n > 11 ? 11 : 3) : n;
}

/* The proposal's allocation argument, with charge_pid_fd. */
struct charged_allocation_data {
	__u64 len;
	__u32 fd;
	__u32 fd_flags;
	__u64 heap_flags;
	__u32 charge_pid_fd;
	__u32 padding;
};

static int alloc_buf(int heap_fd, uint64_t size, int who)
{
	struct dma_heap_allocation_data data = {
		.len = size,
		.fd_flags = O_RDWR | O_CLOEXEC,
	};
	struct charged_allocation_data charged = {
		.len = size,
		.fd_flags = O_RDWR | O_CLOEXEC,
		.charge_pid_fd = charge_pidfd[who],
	};

	if (charge_pidfd[who]) {
		if (ioctl(heap_fd, _IOWR(DMA_HEAP_IOC_MAGIC, 0x0, struct charged_allocation_data),
			  &charged))
			return -errno;
		return charged.fd;
	}
	if (ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data))
		return -errno;
	return data.fd;
}

/* The "charged" pair's cgroup and the process it charges. */
#define CHARGE_CG "/sys/fs/cgroup/rdh-bench-charge"
static pid_t charged_child;

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Into a memory cgroup of the pair's own, with a process to charge. */
static int charged_setup(void)
{
	int ret;

	if (mkdir(CHARGE_CG, 0755) && errno != EEXIST)
		return -errno;
	ret = write_file(CHARGE_CG "/cgroup.procs", "0\n");
	if (ret)
		return ret;
	charged_child = fork();
	if (charged_child < 0)
		return -errno;
	if (charged_child == 0) {
		pause();
		_exit(0);
	}
	charge_pidfd[1] = syscall(SYS_pidfd_open, charged_child, 0);
	return charge_pidfd[1] < 0 ? -errno : 0;
}

static void charged_teardown(void)
{
	if (charge_pidfd[1] > 0)
		close(charge_pidfd[1]);
	charge_pidfd[1] = 0;
	if (charged_child > 0) {
		kill(charged_child, SIGKILL);
		waitpid(charged_child, NULL, 0);
	}
	charged_child = 0;
	write_file("/sys/fs/cgroup/cgroup.procs", "0\n");
	rmdir(CHARGE_CG);
}

static int touch(int buf_fd, uint64_t size)
{
	uint8_t *p;
	uint64_t off;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, buf_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* One store per page; munmap() sees them all (p escapes). */
	for (off = 0; off < size; off += PAGE)
		p[off] = 1;
	munmap(p, size);
	return 0;
}

static int import_vgem(int buf_fd)
{
	struct drm_prime_handle prime = { .fd = buf_fd };
	struct drm_gem_close gc = { 0 };

	if (ioctl(vgem_fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &prime))
		return -errno;
	gc.handle = prime.handle;
	if (ioctl(vgem_fd, DRM_IOCTL_GEM_CLOSE, &gc))
		return -errno;
	return 0;
}

/* Attach + map + unmap + detach; the entry count, or -errno. */
static int attach_map(int buf_fd)
{
	struct rdh_import req = { .fd = buf_fd, .flags = RDH_IMPORT_MAP_ONLY };

	if (ioctl(importer_fd, RDH_IMPORT_CHECK, &req))
		return -errno;
	if (req.map_err)
		return -(int)req.map_err;
	return req.nents;
}

/*
 * DMA_BUF_IOCTL_SYNC's work with a device attached and mapped: the
 * importer times begin + end CPU access (ns), or -errno.
 */
static int64_t sync_mapped(int buf_fd)
{
	struct rdh_import req = { .fd = buf_fd, .flags = RDH_IMPORT_TIME_SYNC };

	if (ioctl(importer_fd, RDH_IMPORT_CHECK, &req))
		return -errno;
	if (req.map_err)
		return -(int)req.map_err;
	return req.sync_ns;
}

enum op {
	ALLOC, REALLOC, FIRST_ALLOC, ALLOC_MMAP_TOUCH, MMAP_TOUCH, IMPORT_VGEM, ATTACH_MAP,
	SYNC, NR_OPS
};
static const char *const op_names[] = {
	"alloc", "realloc", "first_alloc", "alloc_mmap_touch", "mmap_touch", "import_vgem",
	"attach_map", "sync",
};

/* Empty every cache the kernel can drop, a pool's included. */
static void empty_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, "3\n", 2) != 2)
			perror("drop_caches");
		close(fd);
	}
}

/*
 * RDH_BENCH_MARKS=1 ("vmtest bench --profile"): each timed call is framed
 * by calls to marker pages that tools/testing/vm/bench/insn-profile.c
 * watches for; page W opens window W (1 + 2 * op + implementation), page 0
 * closes it. The process stays on CPU 0 (a window is per vCPU).
 */
#define MARK_BASE 0x5a5a0000UL
#define MARK_PAGES 32
static char *marks;

static void setup_marks(void)
{
	const char *env = getenv("RDH_BENCH_MARKS");
	cpu_set_t cpus;
	char *p;
	int i;

	if (!env || strcmp(env, "1"))
		return;
	p = mmap((void *)MARK_BASE, MARK_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)MARK_BASE) {
		perror("marker pages");
		return;
	}
	for (i = 0; i < MARK_PAGES; i++) {
#if defined(__aarch64__)
		*(uint32_t *)(p + i * PAGE) = 0xd65f03c0;	/* ret */
#else
		*(uint8_t *)(p + i * PAGE) = 0xc3;		/* ret */
#endif
	}
	__builtin___clear_cache(p, p + MARK_PAGES * PAGE);
	if (mprotect(p, MARK_PAGES * PAGE, PROT_READ | PROT_EXEC)) {
		perror("marker pages");
		return;
	}
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus))
		perror("sched_setaffinity");
	marks = p;
	printf("# markers at %#lx\n", MARK_BASE);
}

/*
 * Whether @p runs @size: every size up to its largest; with markers only
 * the largest (a window is per op, not per size).
 */
static int runs_size(const struct pair *p, uint64_t size)
{
	return marks ? size == p->max_bytes : size <= p->max_bytes;
}

static void mark(unsigned int window)
{
	if (marks && window < MARK_PAGES)
		((void (*)(void))(marks + window * PAGE))();
}

/*
 * One timed run of @op on heap @heap_fd (@who: 0 upstream, 1 ours); ns in
 * *ns, or -errno.
 */
static int run_once(enum op op, int who, int heap_fd, uint64_t size, uint64_t *ns)
{
	int buf = -1, ret = 0;
	uint64_t t0;

	if (op >= MMAP_TOUCH) {
		buf = alloc_buf(heap_fd, size, who);
		if (buf < 0)
			return buf;
	}
	if (op == REALLOC)
		usleep(16000);
	if (op == FIRST_ALLOC)
		empty_caches();
	t0 = now_ns();
	mark(1 + 2 * op + who);
	switch (op) {
	case ALLOC:
	case REALLOC:
	case FIRST_ALLOC:
		buf = alloc_buf(heap_fd, size, who);
		if (buf < 0)
			return buf;
		close(buf);
		buf = -1;
		break;
	case ALLOC_MMAP_TOUCH:
		buf = alloc_buf(heap_fd, size, who);
		if (buf < 0)
			return buf;
		ret = touch(buf, size);
		close(buf);
		buf = -1;
		break;
	case MMAP_TOUCH:
		ret = touch(buf, size);
		break;
	case IMPORT_VGEM:
		ret = import_vgem(buf);
		break;
	case ATTACH_MAP:
		ret = attach_map(buf);
		if (ret > 0)
			ret = 0;
		break;
	case SYNC: {
		int64_t t = sync_mapped(buf);

		mark(0);
		close(buf);
		if (t < 0)
			return t;
		*ns = t;
		return 0;
	}
	default:
		ret = -EINVAL;
	}
	mark(0);
	*ns = now_ns() - t0;
	if (buf >= 0)
		close(buf);
	return ret;
}

static void report(const char *heap, const char *op, uint64_t size,
		   uint64_t up, uint64_t rust, int n)
{
	printf("# RDH-BENCH %s,%s,%llu,%llu,%llu,%d\n", heap, op,
	       (unsigned long long)size, (unsigned long long)up,
	       (unsigned long long)rust, n);
	fflush(stdout);
}

/*
 * Whether @op runs: every op, or only those named in RDH_BENCH_OPS
 * (comma-separated, e.g. "realloc,alloc"), to study one op alone.
 */
static int op_selected(int op)
{
	const char *env = getenv("RDH_BENCH_OPS"), *s;
	size_t n = strlen(op_names[op]);

	if (!env || !*env)
		return 1;
	for (s = env; (s = strstr(s, op_names[op])); s += n)
		if ((s == env || s[-1] == ',') && (s[n] == ',' || s[n] == '\0'))
			return 1;
	return 0;
}

/* Every op on one pair and size, A/B interleaved; 0 or -errno. */
static int bench_size(struct pair *p, uint64_t size)
{
	static uint64_t samples[2][MAX_ITERS];
	int n = iterations(size), op, i, s, ret, nents[2];

	for (op = 0; op < NR_OPS; op++) {
		/* Paused ops: fewer rounds (each costs a pause or a drop). */
		int rounds = (op == REALLOC || op == FIRST_ALLOC) && n > 101 ? 101 : n;

		if (!op_selected(op))
			continue;
		if (!strcmp(p->kind, "charged") && op > FIRST_ALLOC)
			continue;
		if (op == IMPORT_VGEM && vgem_fd < 0)
			continue;
		if ((op == ATTACH_MAP || op == SYNC) && importer_fd < 0)
			continue;
		/* A warm pool: one buffer of the size freed before. */
		if (op == REALLOC)
			for (s = 0; s < 2; s++) {
				ret = alloc_buf(p->fd[s], size, s);
				if (ret < 0)
					return ret;
				close(ret);
			}
		for (i = 0; i < rounds; i++) {
			for (s = 0; s < 2; s++) {
				/* Odd iterations run Rust first. */
				int who = (i & 1) ? 1 - s : s;

				ret = run_once(op, who, p->fd[who], size, &samples[who][i]);
				if (ret) {
					printf("# %s %s %s %llu: %s\n", p->kind,
					       who ? "rust" : "upstream", op_names[op],
					       (unsigned long long)size, strerror(-ret));
					return ret;
				}
			}
		}
		report(p->kind, op_names[op], size, median(samples[0], rounds),
		       median(samples[1], rounds), rounds);
		for (s = 0; s < 2; s++)
			deciles(p->kind, op_names[op], size, s, samples[s], rounds);
	}
	if (importer_fd >= 0 && strcmp(p->kind, "charged")) {
		for (s = 0; s < 2; s++) {
			int buf = alloc_buf(p->fd[s], size, s);

			if (buf < 0)
				return buf;
			nents[s] = attach_map(buf);
			close(buf);
			if (nents[s] < 0)
				return nents[s];
		}
		report(p->kind, "sg_entries", size, nents[0], nents[1], 1);
	}
	return 0;
}

/* The floor: memset of @size bytes of already-faulted memory. */
static void bench_memset(uint64_t size)
{
	static uint64_t samples[MAX_ITERS];
	int n = iterations(size), i;
	uint64_t t0;
	void *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return;
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		memset(p, 0, size);
		samples[i] = now_ns() - t0;
		/* Keep the stores from being optimised away. */
		__asm__ volatile("" : : "r"(p) : "memory");
	}
	munmap(p, size);
	report("cpu", "memset", size, median(samples, n), median(samples, n), n);
}

/*
 * The guest CPU's cost of one atomic read-modify-write (what a refcount
 * get/put or an uncontended lock/unlock does), in ns: explains constant
 * per-call differences between the two implementations.
 */
static void bench_atomic(void)
{
	static uint64_t samples[MAX_ITERS];
	static unsigned long counter;
	int n = iterations(1), i, j;
	uint64_t t0;

	for (i = 0; i < n; i++) {
		t0 = now_ns();
		for (j = 0; j < 1000; j++)
			__atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST);
		samples[i] = (now_ns() - t0) / 1000;
	}
	report("cpu", "atomic_add", sizeof(counter), median(samples, n), median(samples, n), n);
}

static int parse_pair(struct pair *p, char *arg)
{
	char *kind = strtok(arg, ":"), *up = strtok(NULL, ":");
	char *rust = strtok(NULL, ":"), *max = strtok(NULL, ":");

	if (!kind || !up || !rust || !max)
		return -1;
	snprintf(p->kind, sizeof(p->kind), "%s", kind);
	p->node[0] = up;
	p->node[1] = rust;
	p->max_bytes = strtoull(max, NULL, 0);
	return 0;
}

int main(int argc, char **argv)
{
	struct pair pairs[MAX_PAIRS];
	int npairs = 0, i, s, ret;
	unsigned int nsizes = ARRAY_SIZE(sizes), z;
	uint64_t start = now_ns();

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--short")) {
			short_mode = 1;
			continue;
		}
		if (npairs == MAX_PAIRS || parse_pair(&pairs[npairs], argv[i])) {
			fprintf(stderr, "usage: %s [--short] KIND:UPSTREAM:RUST:MAX_BYTES...\n",
				argv[0]);
			return 2;
		}
		npairs++;
	}
	vgem_fd = -1;
	for (i = 0; i < 16 && vgem_fd < 0; i++) {
		char path[32], name[16] = "";
		struct drm_version v = { .name = name, .name_len = sizeof(name) - 1 };

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		vgem_fd = open(path, O_RDWR | O_CLOEXEC);
		if (vgem_fd >= 0 && (ioctl(vgem_fd, DRM_IOCTL_VERSION, &v) ||
				     strcmp(name, "vgem"))) {
			close(vgem_fd);
			vgem_fd = -1;
		}
	}
	importer_fd = open("/dev/rdh_importer", O_RDWR | O_CLOEXEC);

	printf("TAP version 13\n");
	setup_marks();
	for (i = 0; i < npairs; i++)
		for (z = 0; z < nsizes; z++)
			tests += runs_size(&pairs[i], sizes[z]);
	printf("1..%u\n", tests + 1);
	printf("# vgem: %s, importer: %s, mode: %s\n", vgem_fd >= 0 ? "yes" : "no",
	       importer_fd >= 0 ? "yes" : "no", short_mode ? "short" : "full");

	tests = 0;
	for (i = 0; i < npairs; i++) {
		struct pair *p = &pairs[i];

		for (s = 0; s < 2; s++)
			p->fd[s] = open(p->node[s], O_RDONLY | O_CLOEXEC);
		if (!strcmp(p->kind, "charged") && charged_setup()) {
			printf("# charged: no memory cgroup or pidfd: %s\n", strerror(errno));
			charged_teardown();
			for (s = 0; s < 2; s++)
				close(p->fd[s]);
			p->fd[0] = p->fd[1] = -1;
		}
		for (z = 0; z < nsizes; z++) {
			if (!runs_size(p, sizes[z]))
				continue;
			ret = p->fd[0] < 0 || p->fd[1] < 0 ? -ENOENT : bench_size(p, sizes[z]);
			printf("%sok %u %s %llu\n", ret ? "not " : "", ++tests, p->kind,
			       (unsigned long long)sizes[z]);
			failures += !!ret;
		}
		for (s = 0; s < 2; s++)
			if (p->fd[s] >= 0)
				close(p->fd[s]);
		if (!strcmp(p->kind, "charged"))
			charged_teardown();
	}
	for (z = 0; z < nsizes; z++)
		bench_memset(sizes[z]);
	bench_atomic();
	printf("ok %u memset\n", ++tests);
	printf("# bench took %.1f s\n", (now_ns() - start) / 1e9);
	return failures ? 1 : 0;
}
