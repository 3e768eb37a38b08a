// SPDX-License-Identifier: GPL-2.0
/*
 * Every allocation a DMA_HEAP_IOCTL_ALLOC makes, failed in turn (a debug
 * kernel with CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC and
 * FAULT_INJECTION_DEBUG_FS; kmemleak too if it has it): for every heap and
 * sizes of 4 KiB, 64 KiB, 1 MiB and 16 MiB, /proc/thread-self/fail-nth
 * fails the Nth slab or page allocation of the call, for N = 1, 2, ...
 * until a call makes fewer than N. A failed call answers ENOMEM (nothing
 * else: not EINTR, not a crash), a call that absorbed the failure returns
 * a good buffer, and nothing is left behind: no buffer, no fd, no memory,
 * no kernel warning, no kmemleak report.
 *
 * The knobs (Documentation/fault-injection/fault-injection.rst): fail-nth
 * overrides probability, interval, times and task-filter, but not the
 * per-kind filters, so failslab's and fail_page_alloc's ignore-gfp-wait,
 * fail_page_alloc's ignore-gfp-highmem and min-order are opened up to
 * GFP_KERNEL, GFP_HIGHUSER and order 0; probability 0 keeps every other
 * task unharmed, verbose 0 keeps stack dumps out of the kernel log. All are
 * put back afterwards.
 *
 * Each heap's sweep runs in a cgroup of its own (memory and dmem
 * controllers, when the kernel has cgroup v2 mounted at /sys/fs/cgroup),
 * so the charge paths run under injection too: afterwards its dmem.current
 * is 0 for every region and its memory.current is back to almost nothing
 * (no charge leaked).
 *
 * Then the same over an importer's first map of a buffer (the test
 * importer, RDH_IMPORT_MAP_RETRY): an attachment whose first map failed
 * maps whole on the retry; and over RUST_DMA_HEAP_IOCTL_FILL from a file,
 * on every heap that fills: ENOMEM or a buffer holding the file's bytes.
 */
#include <inttypes.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <time.h>

#include <linux/rust-dma-heap.h>

#include "rdh.h"
#include "rdh_importer.h"
#include "../kselftest_harness.h"

#define DEBUGFS "/sys/kernel/debug"
#define FAIL_NTH "/proc/thread-self/fail-nth"

/* No call makes this many allocations: the sweep is stuck. */
#define MAX_NTH 20000
/* An allocation size's injections must all be found by then. */
#define SWEEP_TIMEOUT 3000
/* Slack for what the rest of the system does meanwhile (KiB). */
#define MEM_SLACK_KB (8 << 10)

/* The knobs set for the sweep, and what they get. */
static const struct {
	const char *path;
	const char *value;
} knobs[] = {
	{ DEBUGFS "/failslab/probability", "0" },
	{ DEBUGFS "/failslab/interval", "1" },
	{ DEBUGFS "/failslab/times", "-1" },
	{ DEBUGFS "/failslab/space", "0" },
	{ DEBUGFS "/failslab/verbose", "0" },
	{ DEBUGFS "/failslab/task-filter", "N" },
	{ DEBUGFS "/failslab/ignore-gfp-wait", "N" },
	{ DEBUGFS "/failslab/cache-filter", "N" },
	{ DEBUGFS "/fail_page_alloc/probability", "0" },
	{ DEBUGFS "/fail_page_alloc/interval", "1" },
	{ DEBUGFS "/fail_page_alloc/times", "-1" },
	{ DEBUGFS "/fail_page_alloc/space", "0" },
	{ DEBUGFS "/fail_page_alloc/verbose", "0" },
	{ DEBUGFS "/fail_page_alloc/task-filter", "N" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-wait", "N" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-highmem", "N" },
	{ DEBUGFS "/fail_page_alloc/min-order", "0" },
};

#define KNOBS ARRAY_SIZE(knobs)

static const size_t sizes[] = { 4 << 10, 64 << 10, 1 << 20, 16 << 20 };

FIXTURE(inject) {
	char saved[KNOBS][64];
	bool set[KNOBS];
	bool kmemleak;
	/* fail_usercopy: copy_from_user is a fault-injection point too. */
	bool usercopy;
	int kmsg;
};

FIXTURE_SETUP(inject)
{
	unsigned int i;

	self->kmsg = -1;
	if (access(FAIL_NTH, W_OK))
		SKIP(return, "no %s: needs CONFIG_FAULT_INJECTION", FAIL_NTH);
	for (i = 0; i < KNOBS; i++)
		if (access(knobs[i].path, W_OK))
			SKIP(return, "no %s: needs CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC and CONFIG_FAULT_INJECTION_DEBUG_FS (debugfs at " DEBUGFS ")",
			     knobs[i].path);
	for (i = 0; i < KNOBS; i++)
		ASSERT_EQ(0, rdh_read_text(knobs[i].path, self->saved[i],
					   sizeof(self->saved[i])));
	self->usercopy = !access(DEBUGFS "/fail_usercopy", F_OK);
	self->kmemleak = !access(RDH_KMEMLEAK, W_OK);
	if (self->kmemleak) {
		/* What leaked before (old enough to be seen) is not this test's. */
		sleep(6);
		ASSERT_EQ(0, rdh_kmemleak("scan"));
		ASSERT_EQ(0, rdh_kmemleak("clear"));
	}
	for (i = 0; i < KNOBS; i++) {
		self->set[i] = true;
		ASSERT_EQ(0, rdh_write_text(knobs[i].path, knobs[i].value))
			TH_LOG("%s", knobs[i].path);
	}
	self->kmsg = rdh_kmsg_mark();
}

FIXTURE_TEARDOWN_PARENT(inject)
{
	unsigned int i;

	for (i = 0; i < KNOBS; i++) {
		if (self->set[i]) {
			EXPECT_EQ(0, rdh_write_text(knobs[i].path, self->saved[i]))
				TH_LOG("restoring %s", knobs[i].path);
		}
	}
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* What one heap's sweep found. */
struct sweep {
	unsigned long calls;		/* ioctls made */
	unsigned long injected;		/* failures the kernel consumed */
	unsigned long failed;		/* of which the call failed (ENOMEM) */
	unsigned long absorbed;		/* of which the call still succeeded */
	unsigned long bad;		/* wrong answers */
	char first_bad[256];
};

static void __printf(2, 3) bad(struct sweep *sw, const char *fmt, ...)
{
	va_list ap;

	if (sw->bad++)
		return;
	va_start(ap, fmt);
	vsnprintf(sw->first_bad, sizeof(sw->first_bad), fmt, ap);
	va_end(ap);
}

/* Whether all of buffer @fd (@len bytes) maps and reads as zeros. */
static bool zeroed(int fd, size_t len)
{
	uint64_t *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	size_t i;

	if (p == MAP_FAILED)
		return false;
	for (i = 0; i < len / 8; i++)
		if (p[i])
			break;
	munmap(p, len);
	return i == len / 8;
}

/*
 * fail-nth = N for one ALLOC of @len from @heap, N = 1, 2, ... until the
 * call no longer reaches an Nth fault-injection point.
 */
#define CGROUP_ROOT "/sys/fs/cgroup"

/* Makes cgroup @path and moves this process into it: 0 or -errno. */
static int enter_cgroup(const char *path)
{
	char procs[128];

	if (access(CGROUP_ROOT "/cgroup.subtree_control", W_OK))
		return -ENOENT;
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	return rdh_write_text(procs, "0");
}

/* Back to the root cgroup, and @path removed. */
static void leave_cgroup(const char *path)
{
	rdh_write_text(CGROUP_ROOT "/cgroup.procs", "0");
	rmdir(path);
}

/*
 * The bytes charged to cgroup @path: the sum over its dmem.current's
 * regions (@dmem), its memory.current (!@dmem); -1 if unreadable.
 */
static long long cgroup_charged(const char *path, bool dmem)
{
	char file[128], text[4096], *line, *save = NULL;
	long long sum = 0;

	snprintf(file, sizeof(file), "%s/%s", path, dmem ? "dmem.current" : "memory.current");
	if (rdh_read_text(file, text, sizeof(text)))
		return -1;
	if (!dmem)
		return atoll(text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *value = strrchr(line, ' ');

		if (value)
			sum += atoll(value + 1);
	}
	return sum;
}

/*
 * ioctl(@fd, @cmd, @arg) with fail-nth (@nth: /proc/thread-self/fail-nth,
 * open) armed to fail the @n-th allocation; then what is left is read back
 * and fail-nth disarmed, before anything else. *@ret and *@err: the call's
 * result and errno; *@consumed: whether the failure was injected. 0, or
 * -errno of the fail-nth file.
 */
static int ioctl_failing_nth(int nth, unsigned int n, int fd, unsigned long cmd, void *arg,
			     int *ret, int *err, bool *consumed)
{
	char num[16], left[16] = "";
	int k;

	k = snprintf(num, sizeof(num), "%u", n);
	if (pwrite(nth, num, k, 0) != k)
		return -errno;
	*ret = ioctl(fd, cmd, arg);
	*err = errno;
	k = pread(nth, left, sizeof(left) - 1, 0);
	if (pwrite(nth, "0", 1, 0) != 1 || k <= 0)
		return k < 0 ? -errno : -EIO;
	left[k] = '\0';
	*consumed = atoi(left) == 0;
	return 0;
}

static void sweep_size(struct sweep *sw, int nth, int heap, size_t len, bool usercopy)
{
	unsigned int n;

	for (n = 1; n <= MAX_NTH; n++) {
		struct dma_heap_allocation_data d = {
			.len = len,
			.fd_flags = O_RDWR | O_CLOEXEC,
		};
		int ret, err, k;
		bool consumed;

		k = ioctl_failing_nth(nth, n, heap, DMA_HEAP_IOCTL_ALLOC, &d, &ret, &err, &consumed);
		if (k) {
			bad(sw, "fail-nth: %s", strerror(-k));
			return;
		}
		sw->calls++;
		if (!ret) {
			/* A buffer that absorbed a failure is whole and zeroed. */
			if (d.fd < 0 || lseek(d.fd, 0, SEEK_END) != (off_t)len)
				bad(sw, "%zu bytes, fail-nth %u: a bad buffer (fd %d)", len, n, d.fd);
			else if (consumed && !zeroed(d.fd, len))
				bad(sw, "%zu bytes, fail-nth %u: buffer not mapped or not zeroed",
				    len, n);
			close(d.fd);
		}
		if (consumed) {
			sw->injected++;
			if (ret)
				sw->failed++;
			else
				sw->absorbed++;
		}
		if (ret && !consumed)
			bad(sw, "%zu bytes, fail-nth %u: failed (%s) without an injected failure",
			    len, n, strerror(err));
		else if (ret && err != ENOMEM && !(usercopy && err == EFAULT))
			bad(sw, "%zu bytes, fail-nth %u: %s, want ENOMEM", len, n, strerror(err));
		if (!ret && !consumed)
			return;
	}
	bad(sw, "%zu bytes: still failing at fail-nth %u", len, n);
}

TEST_F_TIMEOUT(inject, alloc_fail_nth_sweep, SWEEP_TIMEOUT)
{
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	unsigned long injected = 0, failed = 0;
	long slack = rdh_mem_slack(MEM_SLACK_KB);
	int n, h, nth, fds;
	char first[2048];
	long bad_kmsg;

	ASSERT_NE(NULL, names);
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n) TH_LOG("no heap in %s", rdh_dir());
	nth = open(FAIL_NTH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, nth);
	fds = rdh_count_fds();

	/*
	 * Every heap in a cgroup of its own (charge paths), then the system
	 * heap once more in the root cgroup, where freed blocks go to its
	 * pool and allocations take them back (pool paths; pool warm).
	 */
	for (h = 0; h <= n; h++) {
		bool pooled = h == n;
		const char *name = pooled ? "system" : names[h];
		long mem, cma, mem2, cma2 = 0;
		int heap, bufs;
		struct sweep sw = { 0 };
		double t0 = now();
		unsigned int s;
		char cg[64];
		bool in_cg = false;

		if (pooled) {
			int i;

			for (i = 0; i < n && strcmp(names[i], "system"); i++)
				;
			if (i == n)
				break;
		}
		mem = rdh_meminfo("MemFree+pool");
		cma = rdh_meminfo("CmaFree");
		heap = rdh_open_heap(name, O_RDONLY);
		bufs = rdh_bufinfo_count(name);
		ASSERT_LE(0, heap) TH_LOG("%s: %s", name, strerror(errno));
		ASSERT_LE(0, bufs);
		snprintf(cg, sizeof(cg), CGROUP_ROOT "/rdh-faultinject-%d", h);
		if (!pooled)
			in_cg = !enter_cgroup(cg);
		for (s = 0; s < ARRAY_SIZE(sizes); s++)
			sweep_size(&sw, nth, heap, sizes[s], self->usercopy);
		close(heap);
		if (in_cg) {
			long long charged = cgroup_charged(cg, false);
			int tries;

			/* Nothing stays charged: no buffer lives. */
			EXPECT_EQ(0, cgroup_charged(cg, true)) TH_LOG("%s: dmem.current", name);
			/* Only this process's own pages (freed files go after RCU). */
			for (tries = 0; tries < 50 && charged > 2 << 20; tries++) {
				usleep(100000);
				charged = cgroup_charged(cg, false);
			}
			EXPECT_GE(2 << 20, charged) TH_LOG("%s: memory.current %lld", name,
							    charged);
			leave_cgroup(cg);
		} else if (!pooled) {
			ksft_print_msg("%s: no cgroup v2: charge paths not swept\n", name);
		}
		ksft_print_msg("%-20s%s %4lu calls, %4lu injected: %4lu failed (ENOMEM), %4lu absorbed, %.0f s\n",
			       name, pooled ? " (pool)" : "", sw.calls, sw.injected, sw.failed,
			       sw.absorbed, now() - t0);
		EXPECT_EQ(0, sw.bad) TH_LOG("%s: %lu wrong, first: %s", name, sw.bad,
					    sw.first_bad);
		/* Each heap fails somewhere, and comes back clean. */
		EXPECT_LT(0, sw.failed) TH_LOG("%s", name);
		EXPECT_EQ(bufs, rdh_bufinfo_count(name)) TH_LOG("%s", name);
		EXPECT_EQ(fds, rdh_count_fds()) TH_LOG("%s", name);
		mem2 = rdh_meminfo_wait("MemFree+pool", mem - slack, 5000);
		EXPECT_GE(mem2, mem - slack) TH_LOG("%s: MemFree %ld -> %ld KiB", name,
							   mem, mem2);
		if (cma >= 0) {
			cma2 = rdh_meminfo_wait("CmaFree", cma - MEM_SLACK_KB, 5000);
			EXPECT_GE(cma2, cma - MEM_SLACK_KB)
				TH_LOG("%s: CmaFree %ld -> %ld KiB", name, cma, cma2);
		}
		injected += sw.injected;
		failed += sw.failed;
	}
	close(nth);
	ksft_print_msg("%lu failures injected, %lu of them failed the call\n", injected, failed);
	EXPECT_LE(200, injected);

	if (self->kmemleak) {
		char *report = calloc(1, 16384);
		long len;

		ASSERT_NE(NULL, report);
		len = rdh_kmemleak_report(report, 16384);
		EXPECT_EQ(0, len) TH_LOG("kmemleak:\n%s", report);
		free(report);
	} else {
		ksft_print_msg("no kmemleak on this kernel: leak check skipped\n");
	}
	bad_kmsg = rdh_kmsg_bad_since(self->kmsg, first, sizeof(first));
	self->kmsg = -1;
	EXPECT_EQ(0, bad_kmsg) TH_LOG("kernel log: %s", first);
	free(names);
}

/* Whether buffer @fd (@len bytes) holds @want's @n bytes, then zeros. */
static bool holds(int fd, size_t len, const unsigned char *want, size_t n)
{
	unsigned char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	size_t i;

	if (p == MAP_FAILED)
		return false;
	for (i = 0; i < len; i++)
		if (p[i] != (i < n ? want[i] : 0))
			break;
	munmap(p, len);
	return i == len;
}

/*
 * fail-nth = N, N = 1, 2, ..., over fills of 64 KiB and 1 MiB (+ 1 page
 * past the file's end) from a memfd, on every heap that fills, each from a
 * cgroup of its own: each call fails ENOMEM or returns the file's bytes
 * then zeros; nothing is left (buffers, fds, memory, memcg and dmem
 * charges).
 */
TEST_F_TIMEOUT(inject, fill_fail_nth_sweep, SWEEP_TIMEOUT)
{
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	static const size_t lens[] = { 64 << 10, (1 << 20) + 4096 };
	size_t flen = 1 << 20, i;
	unsigned char *bytes = malloc(flen);
	long slack = rdh_mem_slack(MEM_SLACK_KB);
	unsigned long injected = 0, failed = 0;
	int n, h, nth, fds, file;
	uint64_t seed = rdh_random_seed();

	ASSERT_NE(NULL, names);
	ASSERT_NE(NULL, bytes);
	for (i = 0; i < flen; i++)
		bytes[i] = rnd(&seed);
	file = memfd_create("rdh-fill", MFD_CLOEXEC);
	ASSERT_LE(0, file);
	ASSERT_EQ((ssize_t)flen, pwrite(file, bytes, flen, 0));
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n) TH_LOG("no heap in %s", rdh_dir());
	nth = open(FAIL_NTH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, nth);
	fds = rdh_count_fds();

	for (h = 0; h < n; h++) {
		long mem = rdh_meminfo("MemFree+pool"), mem2;
		int heap = rdh_open_heap(names[h], O_RDONLY), bufs = rdh_bufinfo_count(names[h]);
		unsigned long sw_injected = 0, sw_failed = 0;
		unsigned int k, l;
		bool in_cg;
		char cg[64];

		ASSERT_LE(0, heap) TH_LOG("%s: %s", names[h], strerror(errno));
		/* In a cgroup of its own: the charges come back too. */
		snprintf(cg, sizeof(cg), CGROUP_ROOT "/rdh-faultinject-fill-%d", h);
		in_cg = !enter_cgroup(cg);
		{
			/* A heap that does not fill (no struct page) is refused first. */
			struct rust_dma_heap_fill_data d = {
				.len = 4096, .fd_flags = O_RDWR | O_CLOEXEC, .file_fd = file,
			};

			if (ioctl(heap, RUST_DMA_HEAP_IOCTL_FILL, &d)) {
				EXPECT_EQ(EOPNOTSUPP, errno) TH_LOG("%s", names[h]);
				goto next_heap;
			}
			close(d.fd);
		}
		for (l = 0; l < ARRAY_SIZE(lens); l++) {
			for (k = 1; k <= MAX_NTH; k++) {
				struct rust_dma_heap_fill_data d = {
					.len = lens[l], .fd_flags = O_RDWR | O_CLOEXEC, .file_fd = file,
				};
				bool consumed;
				int ret, err;

				ASSERT_EQ(0, ioctl_failing_nth(nth, k, heap, RUST_DMA_HEAP_IOCTL_FILL,
							       &d, &ret, &err, &consumed));
				if (!ret) {
					EXPECT_TRUE(holds(d.fd, lens[l], bytes,
							  lens[l] < flen ? lens[l] : flen))
						TH_LOG("%s, %zu bytes, fail-nth %u", names[h],
						       lens[l], k);
					close(d.fd);
				} else {
					EXPECT_TRUE(consumed)
						TH_LOG("%s, fail-nth %u: %s without an injected failure",
						       names[h], k, strerror(err));
					EXPECT_TRUE(err == ENOMEM || (self->usercopy && err == EFAULT))
						TH_LOG("%s, fail-nth %u: %s, want ENOMEM", names[h],
						       k, strerror(err));
					sw_failed++;
				}
				if (!consumed)
					break;
				sw_injected++;
			}
		}
		ksft_print_msg("%-20s fill: %4lu injected: %4lu failed\n", names[h], sw_injected,
			       sw_failed);
		EXPECT_LT(0, sw_failed) TH_LOG("%s", names[h]);
		injected += sw_injected;
		failed += sw_failed;
next_heap:
		close(heap);
		if (in_cg) {
			long long charged = cgroup_charged(cg, false);
			int tries;

			EXPECT_EQ(0, cgroup_charged(cg, true)) TH_LOG("%s: dmem.current", names[h]);
			for (tries = 0; tries < 50 && charged > 2 << 20; tries++) {
				usleep(100000);
				charged = cgroup_charged(cg, false);
			}
			EXPECT_GE(2 << 20, charged) TH_LOG("%s: memory.current %lld", names[h],
							    charged);
			leave_cgroup(cg);
		}
		EXPECT_EQ(bufs, rdh_bufinfo_count(names[h])) TH_LOG("%s", names[h]);
		EXPECT_EQ(fds, rdh_count_fds()) TH_LOG("%s", names[h]);
		mem2 = rdh_meminfo_wait("MemFree+pool", mem - slack, 5000);
		EXPECT_GE(mem2, mem - slack) TH_LOG("%s: MemFree %ld -> %ld KiB", names[h], mem,
						    mem2);
	}
	close(nth);
	close(file);
	ksft_print_msg("fills: %lu failures injected, %lu of them failed the call\n", injected,
		       failed);
	EXPECT_LE(50, injected);
	free(bytes);
	free(names);
}

/*
 * fail-nth = N, N = 1, 2, ..., over the test importer's attach + map of a
 * 64 KiB buffer of every heap; when the first map fails, the importer maps
 * the same attachment again: that must work (the attachment is as it was),
 * with the whole buffer mapped.
 */
TEST_F_TIMEOUT(inject, map_fail_then_retry, SWEEP_TIMEOUT)
{
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	unsigned long retried = 0;
	int n, h, nth, imp, fds;
	char first[2048];
	long bad_kmsg;

	ASSERT_NE(NULL, names);
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n) TH_LOG("no heap in %s", rdh_dir());
	fds = rdh_count_fds();
	imp = rdh_open_importer();
	if (imp == -ENOENT && rdh_missing_ok())
		SKIP(return, RDH_NO_IMPORTER);
	ASSERT_LE(0, imp) TH_LOG("test importer not loaded");
	nth = open(FAIL_NTH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, nth);

	for (h = 0; h < n; h++) {
		int heap = rdh_open_heap(names[h], O_RDONLY);
		unsigned long first_failed = 0, injected = 0, retry_failed = 0;
		size_t len = 64 << 10;
		unsigned int k;
		int buf;

		ASSERT_LE(0, heap) TH_LOG("%s: %s", names[h], strerror(errno));
		buf = rdh_alloc(heap, len, O_RDWR, 0);
		ASSERT_LE(0, buf) TH_LOG("%s: %s", names[h], strerror(-buf));
		for (k = 1; k <= MAX_NTH; k++) {
			struct rdh_import req = {
				.fd = buf,
				.flags = RDH_IMPORT_MAP_ONLY | RDH_IMPORT_MAP_RETRY,
			};
			bool consumed;
			int ret, err;

			ASSERT_EQ(0, ioctl_failing_nth(nth, k, imp, RDH_IMPORT_CHECK, &req, &ret, &err,
						       &consumed));
			if (!consumed)
				break;	/* nothing left to fail: swept */
			injected++;
			if (ret) {
				/* The attach (or the dma-buf lookup) failed. */
				EXPECT_EQ(ENOMEM, err) TH_LOG("%s, fail-nth %u", names[h], k);
				continue;
			}
			if (!req.map_err)
				continue;	/* absorbed, or after the map */
			first_failed++;
			EXPECT_EQ(ENOMEM, req.map_err) TH_LOG("%s, fail-nth %u", names[h], k);
			retry_failed += req.retry_err != 0;
			EXPECT_EQ(0, req.retry_err) TH_LOG("%s, fail-nth %u: retry failed",
							   names[h], k);
			EXPECT_EQ(len, req.dma_len) TH_LOG("%s, fail-nth %u", names[h], k);
		}
		EXPECT_GE(MAX_NTH, k) TH_LOG("%s: still failing", names[h]);
		ksft_print_msg("%-20s %3lu injected, %2lu first maps failed, %2lu retries failed\n",
			       names[h], injected, first_failed, retry_failed);
		retried += first_failed;
		close(buf);
		close(heap);
	}
	close(nth);
	close(imp);
	EXPECT_EQ(fds, rdh_count_fds());
	ksft_print_msg("%lu attachments mapped on retry after a failed first map\n", retried);
	/*
	 * Building a table allocates, so first maps fail. Which fail-nth hits
	 * it varies from call to call on a debug kernel (KASAN's stack depot
	 * allocates pages now and then), so one heap's sweep may miss it; six
	 * do not all miss.
	 */
	EXPECT_LT(0, retried);
	bad_kmsg = rdh_kmsg_bad_since(self->kmsg, first, sizeof(first));
	self->kmsg = -1;
	EXPECT_EQ(0, bad_kmsg) TH_LOG("kernel log: %s", first);
	free(names);
}

TEST_HARNESS_MAIN
