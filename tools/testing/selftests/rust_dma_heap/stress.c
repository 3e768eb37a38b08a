// SPDX-License-Identifier: GPL-2.0
/*
 * Eight threads of mixed work on every heap for RDH_STRESS_SECONDS (default
 * 60): allocations of 4 KiB to 4 MiB, mmap, zero checks, patterns written
 * and read back between CPU-access syncs, imports by vgem and by the test
 * importer (which checks the pattern through vmap and writes its own),
 * buffers handed from thread to thread. Only ENOMEM from the contiguous
 * heaps is allowed (counted); afterwards no fd, no buffer and no memory
 * (MemFree, CmaFree) is left behind and the kernel log holds no warning.
 * Then: SIGKILL in the middle of an allocation of most of the memory ends
 * it at once and gives everything back; an allocation of more than is free
 * (but less than all RAM) fails with ENOMEM, without the OOM killer.
 */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>

#include "rdh.h"
#include "rdh_importer.h"
#include "../kselftest_harness.h"

#define THREADS 8
#define MAX_LEN (4UL << 20)
/* Buffers handed between threads wait here. */
#define SLOTS 16
/* The longest run RDH_STRESS_SECONDS may ask for. */
#define STRESS_MAX_SECONDS 3600
/* Slack for what the rest of the system does meanwhile (KiB). */
#define MEM_SLACK_KB (16 << 10)
#define CMA_SLACK_KB (8 << 10)

enum op {
	OP_ALLOC, OP_ENOMEM, OP_MMAP, OP_ZERO_PAGES, OP_PATTERN, OP_SYNC,
	OP_VERIFY_PAGES, OP_VGEM, OP_IMPORTER, OP_REFUSED, OP_HANDED, OP_TAKEN, OP_CLOSE,
	OPS,
};

static const char *const op_names[OPS] = {
	"alloc", "ENOMEM", "mmap", "zero-pages", "pattern", "sync",
	"verified-pages", "vgem-import", "importer-check", "importer-refused",
	"handed-over", "taken-over", "close",
};

/* What a buffer holds: zeros, word i = i ^ seed, or its complement. */
enum content { ZERO, SEEDED, FLIPPED };

struct slot {
	int fd;
	size_t len;
	uint32_t seed;
	enum content content;
};

struct shared {
	char (*names)[RDH_NAME_LEN];
	int nheaps;
	bool contiguous[RDH_MAX_HEAPS];
	/* Memory chosen at first use (auto). */
	bool deferred[RDH_MAX_HEAPS];
	double deadline;
	pthread_mutex_t lock;
	struct slot slots[SLOTS];
	bool importer;
};

struct worker {
	struct shared *sh;
	pthread_t thread;
	int id;
	uint64_t rng;
	int heaps[RDH_MAX_HEAPS];
	int vgem, imp;
	unsigned long ops[OPS];
	unsigned long heap_allocs[RDH_MAX_HEAPS];
	int errors;
	char first_error[256];
};

/* What the system had before a test. */
struct baseline {
	char (*names)[RDH_NAME_LEN];
	int nheaps;
	int bufs[RDH_MAX_HEAPS];
	int fds;
	long memfree, cmafree;
	int kmsg;
};

FIXTURE(stress) {
	struct shared sh;
	char (*names)[RDH_NAME_LEN];
	struct baseline base;
};

FIXTURE_SETUP(stress)
{
	int i;

	struct baseline *b = &self->base;

	b->kmsg = -1;
	self->names = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	ASSERT_NE(NULL, self->names);
	b->names = self->sh.names = self->names;
	b->nheaps = self->sh.nheaps = rdh_list_heaps(self->names, RDH_MAX_HEAPS);
	ASSERT_LT(0, b->nheaps) TH_LOG("no heap in %s", rdh_dir());
	for (i = 0; i < b->nheaps; i++) {
		self->sh.deferred[i] = !strcmp(self->names[i], "auto");
		self->sh.contiguous[i] = strcmp(self->names[i], "system") &&
					 strcmp(self->names[i], "system-uncached") &&
					 !self->sh.deferred[i];
		b->bufs[i] = rdh_bufinfo_count(self->names[i]);
		ASSERT_LE(0, b->bufs[i]) TH_LOG("no debugfs bufinfo");
	}
	b->kmsg = rdh_kmsg_mark();
	ASSERT_LE(0, b->kmsg);
	b->fds = rdh_count_fds();
	b->memfree = rdh_meminfo("MemFree+pool");
	b->cmafree = rdh_meminfo("CmaFree");
}

FIXTURE_TEARDOWN(stress)
{
	if (self->base.kmsg >= 0)
		close(self->base.kmsg);
	free(self->names);
}

/* Leak checks after a test: fds, buffers, memory, the kernel log. */
static void check_nothing_left(struct __test_metadata *_metadata, struct baseline *b)
{
	long mem, cma = 0, slack = rdh_mem_slack(MEM_SLACK_KB);
	char first[2048];
	int i, bad;

	EXPECT_EQ(b->fds, rdh_count_fds());
	for (i = 0; i < b->nheaps; i++) {
		EXPECT_EQ(b->bufs[i], rdh_bufinfo_count(b->names[i]))
			TH_LOG("heap %s", b->names[i]);
	}
	mem = rdh_meminfo_wait("MemFree+pool", b->memfree - slack, 5000);
	if (b->cmafree >= 0)
		cma = rdh_meminfo_wait("CmaFree", b->cmafree - CMA_SLACK_KB, 5000);
	ksft_print_msg("MemFree+pool+pcp %ld -> %ld KiB (pcp %ld), CmaFree %ld -> %ld KiB\n",
		       b->memfree, mem, rdh_pcp_kb(), b->cmafree, cma);
	EXPECT_GE(mem, b->memfree - slack);
	if (b->cmafree >= 0)
		EXPECT_GE(cma, b->cmafree - CMA_SLACK_KB);
	bad = rdh_kmsg_bad_since(b->kmsg, first, sizeof(first));
	b->kmsg = -1;
	EXPECT_EQ(0, bad) TH_LOG("kernel log: %s", first);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void __printf(2, 3) fail(struct worker *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->errors++)
		return;
	n = snprintf(w->first_error, sizeof(w->first_error), "thread %d: ", w->id);
	va_start(ap, fmt);
	vsnprintf(w->first_error + n, sizeof(w->first_error) - n, fmt, ap);
	va_end(ap);
}

static uint32_t word(enum content c, size_t i, uint32_t seed)
{
	switch (c) {
	case SEEDED:
		return i ^ seed;
	case FLIPPED:
		return ~(i ^ seed);
	default:
		return 0;
	}
}

/*
 * Check page @pg of mapping @p (between syncs); returns the first bad word
 * or -1.
 */
static long check_page(const uint32_t *p, size_t pg, enum content c, uint32_t seed)
{
	size_t i, first = pg * PAGE / 4;

	for (i = first; i < first + PAGE / 4; i++)
		if (p[i] != word(c, i, seed))
			return i;
	return -1;
}

/* Check the first, the last and two random pages of @buf. */
static void verify(struct worker *w, int buf, size_t len, enum content c, uint32_t seed)
{
	size_t pages = len / PAGE, pick[4] = { 0, pages - 1 }, k;
	uint32_t *p = mmap(NULL, len, PROT_READ, MAP_SHARED, buf, 0);
	long bad;

	w->ops[OP_MMAP]++;
	if (p == MAP_FAILED) {
		fail(w, "mmap of %zu bytes: %s", len, strerror(errno));
		return;
	}
	pick[2] = below(&w->rng, pages);
	pick[3] = below(&w->rng, pages);
	if (rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ))
		fail(w, "SYNC_START: %s", strerror(errno));
	for (k = 0; k < 4; k++) {
		bad = check_page(p, pick[k], c, seed);
		if (bad >= 0)
			fail(w, "buffer of %zu bytes, content %d: word %ld is %#x", len, c,
			     bad, p[bad]);
		w->ops[c == ZERO ? OP_ZERO_PAGES : OP_VERIFY_PAGES]++;
	}
	if (rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ))
		fail(w, "SYNC_END: %s", strerror(errno));
	w->ops[OP_SYNC] += 2;
	munmap(p, len);
}

/* Write word i = i ^ seed everywhere, between syncs. */
static void write_pattern(struct worker *w, int buf, size_t len, uint32_t seed)
{
	uint32_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	size_t i;

	w->ops[OP_MMAP]++;
	if (p == MAP_FAILED) {
		fail(w, "mmap RW of %zu bytes: %s", len, strerror(errno));
		return;
	}
	if (rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE))
		fail(w, "SYNC_START: %s", strerror(errno));
	for (i = 0; i < len / 4; i++)
		p[i] = i ^ seed;
	if (rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE))
		fail(w, "SYNC_END: %s", strerror(errno));
	w->ops[OP_SYNC] += 2;
	w->ops[OP_PATTERN]++;
	munmap(p, len);
}

static void vgem_import(struct worker *w, int buf)
{
	struct drm_prime_handle imp = { .fd = buf, .flags = DRM_CLOEXEC };
	struct drm_prime_handle again = { .fd = buf };
	struct drm_gem_close gc = { 0 };

	if (ioctl(w->vgem, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp)) {
		fail(w, "vgem import: %s", strerror(errno));
		return;
	}
	if (ioctl(w->vgem, DRM_IOCTL_PRIME_FD_TO_HANDLE, &again) || again.handle != imp.handle)
		fail(w, "vgem import again: %s, handle %u vs %u", strerror(errno),
		     again.handle, imp.handle);
	gc.handle = imp.handle;
	if (ioctl(w->vgem, DRM_IOCTL_GEM_CLOSE, &gc))
		fail(w, "GEM_CLOSE: %s", strerror(errno));
	w->ops[OP_VGEM]++;
}

/*
 * The importer reads i ^ seed through vmap and writes ~(i ^ seed). An
 * auto heap buffer the CPU used first has scattered pages the importer
 * (no IOMMU) may refuse (EINVAL): then the buffer is as it was.
 */
static bool importer_check(struct worker *w, int buf, size_t len, uint32_t seed, bool deferred)
{
	struct rdh_import req = { .fd = buf, .seed = seed };

	if (ioctl(w->imp, RDH_IMPORT_CHECK, &req)) {
		fail(w, "RDH_IMPORT_CHECK: %s", strerror(errno));
		return false;
	}
	if (deferred && req.map_err == EINVAL) {
		w->ops[OP_REFUSED]++;
		return false;
	}
	if (req.map_err || req.bad_word != ~0u || req.size != len || req.dma_len != len)
		fail(w, "importer: map_err %d, bad word %u, size %llu, dma_len %llu, want %zu",
		     req.map_err, req.bad_word, (unsigned long long)req.size,
		     (unsigned long long)req.dma_len, len);
	w->ops[OP_IMPORTER]++;
	return true;
}

/* Hand @buf to another thread, or keep it (returns false) if no slot is free. */
static bool hand_over(struct worker *w, int buf, size_t len, uint32_t seed, enum content c)
{
	struct shared *sh = w->sh;
	int i;

	pthread_mutex_lock(&sh->lock);
	for (i = 0; i < SLOTS; i++)
		if (sh->slots[i].fd < 0)
			break;
	if (i < SLOTS)
		sh->slots[i] = (struct slot){ .fd = buf, .len = len, .seed = seed, .content = c };
	pthread_mutex_unlock(&sh->lock);
	if (i == SLOTS)
		return false;
	w->ops[OP_HANDED]++;
	return true;
}

/* Take a buffer another thread handed over, check what it holds, close it. */
static void take_over(struct worker *w)
{
	struct shared *sh = w->sh;
	struct slot s = { .fd = -1 };
	int i, start = below(&w->rng, SLOTS);

	pthread_mutex_lock(&sh->lock);
	for (i = 0; i < SLOTS; i++) {
		struct slot *t = &sh->slots[(start + i) % SLOTS];

		if (t->fd >= 0) {
			s = *t;
			t->fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	if (s.fd < 0)
		return;
	w->ops[OP_TAKEN]++;
	verify(w, s.fd, s.len, s.content, s.seed);
	if (chance(&w->rng, 30))
		vgem_import(w, s.fd);
	close(s.fd);
	w->ops[OP_CLOSE]++;
}

static void one_round(struct worker *w)
{
	struct shared *sh = w->sh;
	int h = below(&w->rng, sh->nheaps), buf;
	size_t pages = 1UL << below(&w->rng, 11), len;
	uint32_t seed = rnd(&w->rng);
	enum content c = ZERO;

	pages += below(&w->rng, pages);
	if (pages > MAX_LEN / PAGE)
		pages = MAX_LEN / PAGE;
	len = pages * PAGE;
	buf = rdh_alloc(w->heaps[h], len, O_RDWR | O_CLOEXEC, 0);
	if (buf == -ENOMEM && sh->contiguous[h]) {
		w->ops[OP_ENOMEM]++;
		return;
	}
	if (buf < 0) {
		fail(w, "%s: alloc of %zu bytes: %s", sh->names[h], len, strerror(-buf));
		return;
	}
	w->ops[OP_ALLOC]++;
	w->heap_allocs[h]++;
	if (chance(&w->rng, 60))
		verify(w, buf, len, ZERO, 0);
	if (chance(&w->rng, 70)) {
		write_pattern(w, buf, len, seed);
		c = SEEDED;
		if (chance(&w->rng, 50))
			verify(w, buf, len, c, seed);
	}
	if (chance(&w->rng, 25))
		vgem_import(w, buf);
	if (c == SEEDED && w->imp >= 0 && chance(&w->rng, 25) &&
	    importer_check(w, buf, len, seed, sh->deferred[h])) {
		c = FLIPPED;
		verify(w, buf, len, c, seed);
	}
	if (chance(&w->rng, 15))
		take_over(w);
	if (chance(&w->rng, 15) && hand_over(w, buf, len, seed, c))
		return;
	close(buf);
	w->ops[OP_CLOSE]++;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	int i;

	for (i = 0; i < sh->nheaps; i++) {
		w->heaps[i] = rdh_open_heap(sh->names[i], O_RDONLY);
		if (w->heaps[i] < 0)
			fail(w, "open %s: %s", sh->names[i], strerror(errno));
	}
	w->vgem = rdh_open_vgem();
	if (w->vgem < 0)
		fail(w, "no vgem device");
	w->imp = sh->importer ? open("/dev/rdh_importer", O_RDWR | O_CLOEXEC) : -1;
	if (sh->importer && w->imp < 0)
		fail(w, "open /dev/rdh_importer: %s", strerror(errno));
	while (!w->errors && now() < sh->deadline)
		one_round(w);
	if (w->imp >= 0)
		close(w->imp);
	if (w->vgem >= 0)
		close(w->vgem);
	for (i = 0; i < sh->nheaps; i++)
		if (w->heaps[i] >= 0)
			close(w->heaps[i]);
	return NULL;
}

TEST_F_TIMEOUT(stress, mixed_threads, STRESS_MAX_SECONDS + 300)
{
	const char *env = getenv("RDH_STRESS_SECONDS");
	int seconds = env && *env ? atoi(env) : 60, i, k, h;
	uint64_t seed = rdh_random_seed();
	unsigned long total[OPS] = { 0 }, allocs, left = 0;
	struct worker *w;
	char line[1024];
	double t0;
	int n;

	if (seconds < 1 || seconds > STRESS_MAX_SECONDS)
		seconds = 60;
	{
		int imp = rdh_open_importer();

		self->sh.importer = imp >= 0;
		if (imp >= 0)
			close(imp);
	}
	ASSERT_EQ(0, pthread_mutex_init(&self->sh.lock, NULL));
	for (k = 0; k < SLOTS; k++)
		self->sh.slots[k].fd = -1;
	w = calloc(THREADS, sizeof(*w));
	ASSERT_NE(NULL, w);
	ksft_print_msg("%d threads, %d s, %d heaps, importer %s, seed %#" PRIx64 "\n",
		       THREADS, seconds, self->sh.nheaps,
		       self->sh.importer ? "yes" : "no", seed);
	alarm(seconds + 240);
	t0 = now();
	self->sh.deadline = t0 + seconds;
	for (i = 0; i < THREADS; i++) {
		w[i].sh = &self->sh;
		w[i].id = i;
		w[i].rng = seed + i;
		ASSERT_EQ(0, pthread_create(&w[i].thread, NULL, work, &w[i]));
	}
	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_join(w[i].thread, NULL));
	/* What was handed over and never taken. */
	for (k = 0; k < SLOTS; k++) {
		if (self->sh.slots[k].fd >= 0) {
			close(self->sh.slots[k].fd);
			left++;
		}
	}
	alarm(0);

	for (i = 0; i < THREADS; i++)
		for (k = 0; k < OPS; k++)
			total[k] += w[i].ops[k];
	n = 0;
	for (k = 0; k < OPS; k++)
		n += snprintf(line + n, sizeof(line) - n, " %s %lu", op_names[k], total[k]);
	ksft_print_msg("ops in %.1f s:%s\n", now() - t0, line);
	for (h = 0; h < self->sh.nheaps; h++) {
		for (allocs = 0, i = 0; i < THREADS; i++)
			allocs += w[i].heap_allocs[h];
		ksft_print_msg("  %-20s %6lu buffers\n", self->names[h], allocs);
	}
	for (i = 0; i < THREADS; i++) {
		EXPECT_EQ(0, w[i].errors) TH_LOG("%d errors, first: %s", w[i].errors,
						 w[i].first_error);
	}
	/* Every kind of work was done. */
	EXPECT_LT(0, total[OP_ALLOC]);
	EXPECT_LT(0, total[OP_ZERO_PAGES]);
	EXPECT_LT(0, total[OP_VERIFY_PAGES]);
	EXPECT_LT(0, total[OP_VGEM]);
	EXPECT_LT(0, total[OP_TAKEN]);
	if (self->sh.importer)
		EXPECT_LT(0, total[OP_IMPORTER]);
	EXPECT_EQ(total[OP_ALLOC], total[OP_CLOSE] + left);
	free(w);
	check_nothing_left(_metadata, &self->base);
}

/*
 * A child that allocates @len bytes from the system heap: it writes 's' to
 * @pipefd when it starts, 'd' when the buffer is its (then waits to die),
 * 'f' when the allocation failed.
 */
static pid_t huge_allocator(uint64_t len, int pipefd[2])
{
	pid_t pid = fork();
	int heap, buf;

	if (pid)
		return pid;
	close(pipefd[0]);
	heap = rdh_open_heap("system", O_RDONLY);
	if (write(pipefd[1], "s", 1) != 1)
		_exit(2);
	buf = rdh_alloc(heap, len, O_RDWR, 0);
	if (write(pipefd[1], buf < 0 ? "f" : "d", 1) != 1)
		_exit(3);
	pause();
	_exit(0);
}

/* The next byte from the child, waiting at most @ms (0: none yet). */
static char child_says(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, ms) != 1 || read(fd, &c, 1) != 1)
		return 0;
	return c;
}

TEST_F_TIMEOUT(stress, sigkill_during_huge_allocation, 600)
{
	/* When to kill, in percent of the time a whole allocation takes. */
	static const int at_percent[] = { 2, 5, 10, 20, 50 };
	long total = rdh_meminfo("MemTotal"), avail, after, slack = rdh_mem_slack(MEM_SLACK_KB);
	int heap = rdh_open_heap("system", O_RDONLY), status, pipefd[2], mid = 0;
	double t0, alloc_s = 0;
	unsigned int r;
	uint64_t len;
	pid_t pid;

	if (heap < 0 && errno == ENOENT && rdh_missing_ok())
		SKIP(return, "no system heap");
	ASSERT_LE(0, heap);
	close(heap);
	if (rdh_taken("system"))
		SKIP(return, RDH_SYSTEM_TAKEN);
	ASSERT_LT(0, total);
	avail = rdh_meminfo("MemAvailable");
	ASSERT_LT(0, avail);
	/* Three quarters of the memory (of what is available, if less). */
	len = (uint64_t)(total < avail ? total : avail) * 1024 / 4 * 3;
	len &= ~(PAGE - 1);

	/* How long the whole allocation takes, unhindered (the best of two). */
	for (r = 0; r < 2; r++) {
		double t;

		ASSERT_EQ(0, pipe(pipefd));
		pid = huge_allocator(len, pipefd);
		ASSERT_LE(0, pid);
		close(pipefd[1]);
		ASSERT_EQ('s', child_says(pipefd[0], 60000));
		t0 = now();
		ASSERT_EQ('d', child_says(pipefd[0], 300000));
		t = now() - t0;
		alloc_s = r && alloc_s < t ? alloc_s : t;
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		close(pipefd[0]);
		after = rdh_meminfo_wait("MemAvailable", avail - slack, 10000);
		ksft_print_msg("%" PRIu64 " MiB from system in %.0f ms; MemAvailable %ld -> %ld KiB\n",
			       len >> 20, t * 1000, avail, after);
		ASSERT_GE(after, avail - slack);
	}

	for (r = 0; r < ARRAY_SIZE(at_percent); r++) {
		double t_kill, t_reaped, t_back;
		long reap_ms, delay_ms = alloc_s * 10 * at_percent[r];
		char said;

		avail = rdh_meminfo("MemAvailable");
		ASSERT_EQ(0, pipe(pipefd));
		pid = huge_allocator(len, pipefd);
		ASSERT_LE(0, pid);
		close(pipefd[1]);
		ASSERT_EQ('s', child_says(pipefd[0], 60000));
		usleep(delay_ms * 1000);
		said = child_says(pipefd[0], 0);
		t_kill = now();
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		t_reaped = now();
		close(pipefd[0]);
		EXPECT_TRUE(WIFSIGNALED(status));
		if (WIFSIGNALED(status))
			EXPECT_EQ(SIGKILL, WTERMSIG(status));
		after = rdh_meminfo_wait("MemAvailable", avail - slack, 10000);
		t_back = now();
		reap_ms = (t_reaped - t_kill) * 1000;
		mid += !said;
		ksft_print_msg("killed at %ld ms (%d%%, %s): reaped in %ld ms\n", delay_ms,
			       at_percent[r], said ? "allocation done" : "mid-allocation",
			       reap_ms);
		ksft_print_msg("  MemAvailable %ld -> %ld KiB in %.0f ms\n", avail, after,
			       (t_back - t_kill) * 1000);
		/* Everything the killed allocation took comes back... */
		EXPECT_GE(after, avail - slack);
		EXPECT_NE('f', said);
		/* ...and a kill early in the allocation ends it early. */
		if (!said && at_percent[r] <= 10 && alloc_s > 0.5)
			EXPECT_GT(alloc_s * 1000 / 2, reap_ms);
	}
	/* The kills did land inside allocations. */
	EXPECT_LE(2, mid);
	check_nothing_left(_metadata, &self->base);
}

/*
 * More than is free, less than all there is: the system heap answers
 * ENOMEM. It must not call in the OOM killer, which would kill whichever
 * process is biggest (the buffer is charged to nobody) to hand its memory
 * to the caller. (vm.oom_kill_allocating_task keeps a wrong answer's damage
 * to the child that asked.) Several attempts, because how the memory runs
 * out varies: the page allocator's blocks get smaller as it does, and the
 * buffer's list of them grows then; a growth allowed to invoke the OOM
 * killer killed the allocating task in some attempts only.
 * RDH_BEYOND_ATTEMPTS overrides the count.
 */
#define BEYOND_ATTEMPTS 4

TEST_F_TIMEOUT(stress, beyond_free_memory_enomem_without_oom_killer, 900)
{
	long total = rdh_meminfo("MemTotal"), avail, after;
	long slack = rdh_mem_slack(MEM_SLACK_KB);
	const char *sysctl = "/proc/sys/vm/oom_kill_allocating_task";
	int heap = rdh_open_heap("system", O_RDONLY), status, kmsg, attempts = BEYOND_ATTEMPTS;
	long oom_kills = rdh_vmstat("oom_kill");
	char saved[16], first[2048];
	const char *env = getenv("RDH_BEYOND_ATTEMPTS");
	uint64_t len;
	pid_t pid;

	if (heap < 0 && errno == ENOENT && rdh_missing_ok())
		SKIP(return, "no system heap");
	ASSERT_LE(0, heap);
	close(heap);
	if (rdh_taken("system"))
		SKIP(return, RDH_SYSTEM_TAKEN);
	if (env)
		attempts = atoi(env);
	ASSERT_EQ(0, rdh_read_text(sysctl, saved, sizeof(saved)));
	ASSERT_EQ(0, rdh_write_text(sysctl, "1"));
	kmsg = rdh_kmsg_mark();
	for (int i = 0; i < attempts; i++) {
		avail = rdh_meminfo("MemAvailable");
		ASSERT_LT(0, avail);
		ASSERT_LT(avail, total);
		/* Halfway between what is available and what there is. */
		len = ((uint64_t)avail + (total - avail) / 2) * 1024 & ~(PAGE - 1);
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			int buf = rdh_alloc(rdh_open_heap("system", O_RDONLY), len, O_RDWR, 0);

			_exit(buf == -ENOMEM ? 0 : buf >= 0 ? 1 : 2);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ksft_print_msg("%d: %" PRIu64 " MiB from system (MemAvailable %ld, MemTotal %ld KiB): %s %d\n",
			       i, len >> 20, avail, total,
			       WIFSIGNALED(status) ? "killed by signal" : "exit",
			       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		EXPECT_TRUE(WIFEXITED(status));
		if (WIFEXITED(status))
			EXPECT_EQ(0, WEXITSTATUS(status))
				TH_LOG("1: the allocation succeeded, 2: not ENOMEM");
		after = rdh_meminfo_wait("MemAvailable", avail - slack, 10000);
		EXPECT_GE(after, avail - slack);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			break;
	}
	EXPECT_EQ(0, rdh_write_text(sysctl, saved));
	EXPECT_EQ(oom_kills, rdh_vmstat("oom_kill"));
	EXPECT_EQ(0, rdh_kmsg_bad_since(kmsg, first, sizeof(first))) TH_LOG("%s", first);
	check_nothing_left(_metadata, &self->base);
}

TEST_HARNESS_MAIN
