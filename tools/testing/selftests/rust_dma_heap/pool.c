// SPDX-License-Identifier: GPL-2.0
/*
 * The system heap's page pool: freed buffers' blocks are kept (up to
 * pool_max_kb), zeroed by a worker off the caller's path, reused before the
 * page allocator, given back under memory pressure and at unload, and only
 * when no memory cgroup is charged for them.
 *
 * Every test starts from an empty pool (drop_caches runs the shrinker).
 */
#include <signal.h>
#include <sys/stat.h>

#include "../kselftest_harness.h"
#include "rdh.h"

#define KIB 1024L
#define MIB (1024L * 1024)
#define CG_ROOT "/sys/fs/cgroup"
#define ZEROING_PARAM "/sys/module/rust_dma_heap/parameters/pool_zeroing"

static void attr_path(char *buf, size_t len, const char *heap, const char *attr)
{
	rdh_attr_path(buf, len, heap, attr);
}

/* The pool in bytes (-1 when the attribute is missing). */
static long pool_bytes(void)
{
	char path[256], text[64];

	attr_path(path, sizeof(path), "system", "pool");
	if (rdh_read_text(path, text, sizeof(text)))
		return -1;
	return strtol(text, NULL, 10);
}

/* /sys/kernel/<class>/total_pools_kb (-1 when missing). */
static long pools_total_kb(void)
{
	char path[256], text[64];

	snprintf(path, sizeof(path), "/sys/kernel/%s/total_pools_kb", rdh_class());
	if (rdh_read_text(path, text, sizeof(text)))
		return -1;
	return strtol(text, NULL, 10);
}

/*
 * Empty the pool through its shrinker; its size afterwards. A block the
 * worker is zeroing at that moment is not reclaimable until it is done:
 * dropped again then (up to 2 s).
 */
static long drain(void)
{
	long left = -1;
	int i;

	for (i = 0; i < 20; i++) {
		rdh_write_text("/proc/sys/vm/drop_caches", "3\n");
		left = pool_bytes();
		if (left <= 0)
			break;
		usleep(100000);
	}
	return left;
}

FIXTURE(pool) {
	int fd;
};

FIXTURE_SETUP(pool)
{
	self->fd = rdh_open_heap("system", O_RDONLY);
	if (self->fd < 0)
		SKIP(return, "no system heap");
	if (pool_bytes() < 0)
		SKIP(return, "no pool attribute");
	ASSERT_EQ(0, drain());
}

FIXTURE_TEARDOWN(pool)
{
	rdh_write_text(ZEROING_PARAM, "Y\n");
	if (self->fd >= 0)
		close(self->fd);
}

/* Only the system heap has a pool; its attribute is read-only. */
TEST_F(pool, attribute_on_system_heap_only)
{
	char names[16][RDH_NAME_LEN], path[2048];
	struct stat st;
	int n = rdh_list_heaps(names, 16), i;

	ASSERT_LT(0, n);
	for (i = 0; i < n; i++) {
		attr_path(path, sizeof(path), names[i], "pool");
		if (!strcmp(names[i], "system")) {
			ASSERT_EQ(0, stat(path, &st));
			EXPECT_EQ(0444, st.st_mode & 0777);
		} else {
			EXPECT_EQ(-1, stat(path, &st)) TH_LOG("%s has a pool", names[i]);
		}
	}
}

/*
 * A closed buffer's 1 MiB and 64 KiB blocks go to the pool (counted as
 * reclaimable kernel memory; single pages go back to the page allocator),
 * the next buffers of the same sizes take them all, and MemFree does not
 * move by more than the single pages meanwhile.
 *
 * The worker is held back (pool_zeroing=N): a block it is zeroing is off
 * the lists for that time, and an allocation then falls back to the page
 * allocator, which would make the counts below a race.
 */
TEST_F(pool, freed_blocks_are_reused)
{
	long rec0 = rdh_vmstat("nr_kernel_misc_reclaimable"), free0, free1;
	size_t sizes[] = { 4096, 64 * KIB, MIB, 4 * MIB + 68 * KIB };
	/* Pooled: the 1 MiB and 64 KiB blocks, not the single pages. */
	size_t pooled = 64 * KIB + MIB + 4 * MIB + 64 * KIB;
	int bufs[4], i;

	ASSERT_EQ(0, rdh_write_text(ZEROING_PARAM, "N\n"));
	for (i = 0; i < 4; i++) {
		bufs[i] = rdh_alloc(self->fd, sizes[i], O_RDWR, 0);
		ASSERT_LE(0, bufs[i]);
	}
	EXPECT_EQ(0, pool_bytes());
	for (i = 0; i < 4; i++)
		close(bufs[i]);
	EXPECT_EQ((long)pooled, pool_bytes());
	EXPECT_EQ((long)pooled / KIB, pools_total_kb());
	EXPECT_EQ(rec0 + (long)(pooled / 4096), rdh_vmstat("nr_kernel_misc_reclaimable"));
	free0 = rdh_meminfo("MemFree");
	for (i = 0; i < 4; i++) {
		bufs[i] = rdh_alloc(self->fd, sizes[i], O_RDWR, 0);
		ASSERT_LE(0, bufs[i]);
	}
	free1 = rdh_meminfo("MemFree");
	/* All of it came from the pool, none from the page allocator. */
	EXPECT_EQ(0, pool_bytes());
	EXPECT_EQ(0, pools_total_kb());
	EXPECT_EQ(rec0, rdh_vmstat("nr_kernel_misc_reclaimable"));
	EXPECT_GE(free1, free0 - 2048) TH_LOG("MemFree %ld -> %ld KiB", free0, free1);
	for (i = 0; i < 4; i++)
		close(bufs[i]);
	EXPECT_EQ(0, drain());
	EXPECT_EQ(rec0, rdh_vmstat("nr_kernel_misc_reclaimable"));
}

/*
 * With the worker held back (pool_zeroing=N), every reused block is one
 * not zeroed since its last user: the allocation must zero it. Buffers of
 * every block size are filled with a pattern, closed, and allocated again;
 * not one byte of the pattern may show.
 */
TEST_F(pool, zeroed_while_worker_lags)
{
	size_t sizes[] = { 64 * KIB, 128 * KIB, 192 * KIB, MIB, 2 * MIB, 3 * MIB + 64 * KIB };
	int n = ARRAY_SIZE(sizes), bufs[6], i, round;
	long pooled;

	ASSERT_EQ(0, rdh_write_text(ZEROING_PARAM, "N\n"));
	for (round = 0; round < 3; round++) {
		for (i = 0; i < n; i++) {
			bufs[i] = rdh_alloc(self->fd, sizes[i], O_RDWR, 0);
			ASSERT_LE(0, bufs[i]);
			EXPECT_EQ(-1, rdh_first_nonzero(bufs[i], sizes[i]))
				TH_LOG("round %d: %zu-byte buffer not zeroed", round, sizes[i]);
			ASSERT_EQ(0, rdh_fill(bufs[i], sizes[i], 0xa5 + round));
		}
		for (i = 0; i < n; i++)
			close(bufs[i]);
		pooled = pool_bytes();
		/* Everything freed is in the pool, not zeroed yet. */
		EXPECT_LE((long)(4 * MIB), pooled);
	}
	ASSERT_EQ(0, rdh_write_text(ZEROING_PARAM, "Y\n"));
}

/*
 * The worker zeroes in the background: reused blocks read as zero too.
 * A block the worker is zeroing is not counted as reclaimable until it is
 * back on a list: the test waits for all of it to be counted again.
 */
TEST_F(pool, zeroed_by_worker)
{
	size_t len = 2 * MIB + 64 * KIB;
	long rec0 = rdh_vmstat("nr_kernel_misc_reclaimable"), rec = -1;
	int buf = rdh_alloc(self->fd, len, O_RDWR, 0), i;

	ASSERT_LE(0, buf);
	ASSERT_EQ(0, rdh_fill(buf, len, 0x5a));
	close(buf);
	usleep(500000);
	for (i = 0; i < 50; i++) {
		if (i)
			usleep(100000);
		rec = rdh_vmstat("nr_kernel_misc_reclaimable");
		if (rec == rec0 + (long)(len / 4096))
			break;
	}
	ASSERT_EQ(rec0 + (long)(len / 4096), rec);
	EXPECT_EQ((long)len, pool_bytes());
	buf = rdh_alloc(self->fd, len, O_RDWR, 0);
	ASSERT_LE(0, buf);
	EXPECT_EQ(-1, rdh_first_nonzero(buf, len));
	EXPECT_EQ(0, pool_bytes());
	close(buf);
}

/*
 * drop_caches empties the pool; an anonymous-memory hog that needs the
 * pool's memory gets it, without an OOM kill anywhere.
 */
TEST_F_TIMEOUT(pool, shrinks_under_pressure, 300)
{
	long oom0 = rdh_vmstat("oom_kill"), pooled, avail, hog_kb, left;
	size_t chunk = 16 * MIB;
	int bufs[64], n = 0, i, status;
	pid_t pid;

	/* Fill the pool with 512 MiB or what the limit keeps. */
	for (n = 0; n < 32; n++) {
		bufs[n] = rdh_alloc(self->fd, chunk, O_RDWR, 0);
		if (bufs[n] < 0)
			break;
	}
	ASSERT_LT(8, n);
	for (i = 0; i < n; i++)
		close(bufs[i]);
	pooled = pool_bytes();
	ASSERT_LE((long)(128 * MIB), pooled);
	EXPECT_EQ(0, drain());

	for (i = 0; i < n; i++)
		bufs[i] = rdh_alloc(self->fd, chunk, O_RDWR, 0);
	for (i = 0; i < n; i++)
		close(bufs[i]);
	pooled = pool_bytes();
	ASSERT_LE((long)(128 * MIB), pooled);
	/* A hog of all free memory plus most of the pool. */
	avail = rdh_meminfo("MemFree");
	hog_kb = avail + pooled / KIB - 96 * 1024;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		size_t len = (size_t)hog_kb * KIB, off;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		if (p == MAP_FAILED)
			_exit(2);
		for (off = 0; off < len; off += 4096)
			p[off] = 1;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("hog of %ld KiB: status %#x", hog_kb, status);
	left = pool_bytes();
	ksft_print_msg("pool %ld KiB, hog %ld KiB: pool %ld KiB after\n", pooled / KIB, hog_kb,
		       left / KIB);
	EXPECT_LE(left, (long)(128 * MIB));
	EXPECT_EQ(oom0, rdh_vmstat("oom_kill"));
	EXPECT_EQ(0, drain());
}

/*
 * Buffers charged to a memory cgroup never enter the pool (their charge
 * cannot move), and pooled pages never go to a charged caller: memory.current
 * rises and falls by each buffer.
 */
TEST_F(pool, charged_buffers_bypass_pool)
{
	char cg[128], path[256], text[64];
	long cur0, cur1, cur2;
	int up[2], down[2], buf, status;
	pid_t pid;
	char c;

	if (access(CG_ROOT "/cgroup.controllers", F_OK))
		SKIP(return, "no cgroup v2");
	rdh_write_text(CG_ROOT "/cgroup.subtree_control", "+memory");
	snprintf(cg, sizeof(cg), CG_ROOT "/rdh-pool-%d", getpid());
	ASSERT_EQ(0, mkdir(cg, 0755));
	snprintf(path, sizeof(path), "%s/memory.current", cg);

	/* Something in the pool that a charged caller must not get. */
	buf = rdh_alloc(self->fd, 8 * MIB, O_RDWR, 0);
	ASSERT_LE(0, buf);
	close(buf);
	ASSERT_EQ((long)(8 * MIB), pool_bytes());

	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	ASSERT_EQ(0, rdh_read_text(path, text, sizeof(text)));
	cur0 = strtol(text, NULL, 10);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char p2[256];

		snprintf(p2, sizeof(p2), "%s/cgroup.procs", cg);
		if (rdh_write_text(p2, "0\n"))
			_exit(1);
		buf = rdh_alloc(self->fd, 8 * MIB, O_RDWR, 0);
		if (buf < 0)
			_exit(2);
		/* allocated; wait; closed; wait */
		if (write(up[1], "a", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(3);
		close(buf);
		if (write(up[1], "b", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(1, read(up[0], &c, 1));
	/* The child's buffer: fresh pages, charged; the pool untouched. */
	ASSERT_EQ(0, rdh_read_text(path, text, sizeof(text)));
	cur1 = strtol(text, NULL, 10);
	EXPECT_EQ((long)(8 * MIB), pool_bytes());
	EXPECT_LE(cur0 + 8 * MIB - 512 * KIB, cur1) TH_LOG("%ld -> %ld", cur0, cur1);
	ASSERT_EQ(1, write(down[1], "x", 1));
	ASSERT_EQ(1, read(up[0], &c, 1));
	ASSERT_EQ(0, rdh_read_text(path, text, sizeof(text)));
	cur2 = strtol(text, NULL, 10);
	/* Freed to the page allocator (uncharged), not to the pool. */
	EXPECT_EQ((long)(8 * MIB), pool_bytes());
	EXPECT_GE(cur1 - 8 * MIB + 512 * KIB, cur2) TH_LOG("%ld -> %ld", cur1, cur2);
	ASSERT_EQ(1, write(down[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	for (int i = 0; i < 50 && rmdir(cg); i++)
		usleep(100000);
}

/* The pool never holds more than pool_max_kb. */
TEST(limit_holds)
{
	char text[64];
	int heap, bufs[4], i;
	long pooled;

	if (rdh_provider())
		SKIP(return, RDH_PINNED);
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module("pool_max_kb=8192"));
	ASSERT_EQ(0, rdh_read_text("/sys/module/rust_dma_heap/parameters/pool_max_kb", text,
				   sizeof(text)));
	EXPECT_STREQ("8192", text);
	heap = rdh_open_heap("system", O_RDONLY);
	ASSERT_LE(0, heap);
	for (i = 0; i < 4; i++) {
		bufs[i] = rdh_alloc(heap, 4 * MIB, O_RDWR, 0);
		ASSERT_LE(0, bufs[i]);
	}
	for (i = 0; i < 4; i++)
		close(bufs[i]);
	pooled = pool_bytes();
	EXPECT_EQ((long)(8 * MIB), pooled);
	close(heap);
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module(""));
}

/*
 * total_pools_kb counts the pool the system heaps share even when the
 * system heap itself is not registered (system_heap=0): system-uncached
 * draws from it.
 */
TEST(total_counts_a_pool_without_the_system_heap)
{
	char path[128], text[32];
	int heap, buf;
	long kb;

	if (rdh_provider())
		SKIP(return, RDH_PINNED);
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module("system_heap=0"));
	EXPECT_EQ(-1, rdh_open_heap("system", O_RDONLY));
	heap = rdh_open_heap("system-uncached", O_RDONLY);
	if (heap < 0) {
		ASSERT_EQ(0, rdh_unload_module());
		ASSERT_EQ(0, rdh_load_module(""));
		SKIP(return, "no system-uncached heap");
	}
	buf = rdh_alloc(heap, 4 * MIB, O_RDWR, 0);
	ASSERT_LE(0, buf);
	close(buf);
	close(heap);
	snprintf(path, sizeof(path), "/sys/kernel/%s/total_pools_kb", rdh_class());
	ASSERT_EQ(0, rdh_read_text(path, text, sizeof(text)));
	kb = strtol(text, NULL, 10);
	/* 4 MiB of 1 MiB blocks back in the pool (the worker zeroes them). */
	EXPECT_EQ(4096, kb);
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module(""));
}

/* Unloading with a full pool gives every page back. */
TEST(unload_frees_pool)
{
	long rec0, free0, free1, pooled;
	int heap, bufs[16], i;

	if (rdh_provider())
		SKIP(return, RDH_PINNED);
	heap = rdh_open_heap("system", O_RDONLY);
	if (heap < 0)
		SKIP(return, "no system heap");
	rdh_write_text("/proc/sys/vm/drop_caches", "3\n");
	rec0 = rdh_vmstat("nr_kernel_misc_reclaimable");
	for (i = 0; i < 16; i++) {
		bufs[i] = rdh_alloc(heap, 8 * MIB, O_RDWR, 0);
		ASSERT_LE(0, bufs[i]);
	}
	for (i = 0; i < 16; i++)
		close(bufs[i]);
	close(heap);
	pooled = pool_bytes();
	ASSERT_EQ((long)(128 * MIB), pooled);
	free0 = rdh_meminfo("MemFree");
	ASSERT_EQ(0, rdh_unload_module());
	free1 = rdh_meminfo("MemFree");
	EXPECT_LE(free0 + pooled / KIB - 8192, free1) TH_LOG("MemFree %ld -> %ld", free0, free1);
	EXPECT_EQ(rec0, rdh_vmstat("nr_kernel_misc_reclaimable"));
	ASSERT_EQ(0, rdh_load_module(""));
}

TEST_HARNESS_MAIN
