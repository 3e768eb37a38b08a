// SPDX-License-Identifier: GPL-2.0
/*
 * RUST_DMA_HEAP_IOCTL_FILL: a buffer allocated and read from a file in one
 * call, on the heap's node, or on the control node (/dev/rust_dma_heap_ctl,
 * naming the heap by an fd of its node; the only way in provider mode). Contents byte-exact against the file (odd lengths, offsets, past
 * its end) on every heap with struct pages, through mmap and through an
 * importer; direct I/O from a block device (brd's /dev/ram0) without
 * growing the page cache; every bad input's errno, with nothing left
 * behind; a killed filler and concurrent fillers.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <linux/rust-dma-heap.h>

#include "../kselftest_harness.h"
#include "rdh.h"
#include "rdh_importer.h"

#define KIB 1024UL
#define MIB (1024UL * 1024)
#define RAMDISK "/dev/ram0"
#define CONTROL "/dev/rust_dma_heap_ctl"

/* The control node, when the fills go through it (provider mode). */
static int ctl = -1;

/*
 * The fill ioctl on heap node @heap (through the control node when it is
 * open); the dma-buf fd or -errno, @data as the kernel left it.
 */
static int fill(int heap, struct rust_dma_heap_fill_data *data)
{
	int node = heap;

	if (ctl >= 0) {
		data->heap_fd = heap;
		node = ctl;
	}
	if (ioctl(node, RUST_DMA_HEAP_IOCTL_FILL, data))
		return -errno;
	return data->fd;
}

/* In provider mode the fills go through the control node. */
static int use_control(void)
{
	if (!rdh_provider() || ctl >= 0)
		return 0;
	ctl = open(CONTROL, O_RDWR | O_CLOEXEC);
	return ctl < 0 ? -errno : 0;
}

static int fill_simple(int heap, uint64_t len, int file, uint64_t offset,
		       struct rust_dma_heap_fill_data *out)
{
	struct rust_dma_heap_fill_data data = {
		.len = len,
		.fd_flags = O_RDWR | O_CLOEXEC,
		.file_fd = file,
		.offset = offset,
	};
	int ret = fill(heap, &data);

	if (out)
		*out = data;
	return ret;
}

/* A memfd of @size random bytes (its contents in *@bytes, malloc'ed). */
static int random_file(size_t size, unsigned char **bytes)
{
	/* Page-aligned: O_DIRECT writes it too. */
	unsigned char *b = aligned_alloc(PAGE, (size + PAGE) & ~(PAGE - 1));
	int fd = memfd_create("rdh-fill", MFD_CLOEXEC);
	size_t i;
	uint64_t s = rdh_random_seed();

	if (!b || fd < 0)
		return -ENOMEM;
	for (i = 0; i < size; i++)
		b[i] = rnd(&s);
	if (size && pwrite(fd, b, size, 0) != (ssize_t)size)
		return -EIO;
	*bytes = b;
	return fd;
}

/*
 * Whether buffer @buf (@len bytes) holds @want (@n bytes) then zeros;
 * the offset of the first difference, or -1.
 */
static long first_mismatch(int buf, size_t len, const unsigned char *want, size_t n)
{
	unsigned char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, buf, 0);
	long bad = -1;
	size_t i;

	if (p == MAP_FAILED)
		return -2;
	for (i = 0; i < len && bad < 0; i++)
		if (p[i] != (i < n ? want[i] : 0))
			bad = i;
	munmap(p, len);
	return bad;
}

FIXTURE(fill) {
	int heap, bufs;
	const char *name;
};

FIXTURE_VARIANT(fill) {
	const char *heap;
};

FIXTURE_VARIANT_ADD(fill, system) { .heap = "system" };
FIXTURE_VARIANT_ADD(fill, uncached) { .heap = "system-uncached" };
FIXTURE_VARIANT_ADD(fill, cma) { .heap = "default_cma_region" };
/* Memory placed at the fill, for the CPU (system pages). */
FIXTURE_VARIANT_ADD(fill, auto) { .heap = "auto" };
/* The runner's carve-out left in the linear map (struct pages). */
FIXTURE_VARIANT_ADD(fill, carveout_mapped) { .heap = "carveout@b4000000" };

FIXTURE_SETUP(fill)
{
	self->heap = -1;
	self->name = variant->heap;
	ASSERT_EQ(0, use_control());
	self->heap = rdh_fixture_open(self->name, &self->bufs);
	if (self->heap == RDH_MISSING)
		SKIP(return, "no %s heap", self->name);
	ASSERT_LE(0, self->heap);
}

FIXTURE_TEARDOWN(fill)
{
	RDH_TEARDOWN_HEAP(self->heap, self->bufs, self->name);
}

/*
 * Byte-exact: lengths of a page, odd and of several blocks; offsets 0,
 * odd (read through the page cache) and sector-aligned; the buffer
 * ending before the file, with it, and past it (zero there, though the
 * heap does not zero what a fill overwrites); an offset at and past the
 * end (all zero, nothing read).
 */
TEST_F(fill, contents_exact)
{
	static const struct { size_t file, len; uint64_t offset; } c[] = {
		{ 4096, 4096, 0 },
		{ 3 * MIB + 123, 3 * MIB + 123, 0 },
		{ 3 * MIB + 123, 1 * MIB + 7, 511 },
		{ 2 * MIB, 2 * MIB, 64 * KIB },
		{ 100000, 256 * KIB, 4096 },
		{ 100000, 8192, 100000 },
		{ 100000, 8192, 200000 },
		{ 0, 4096, 0 },
	};
	unsigned char *bytes;
	size_t i, expect;
	int file, buf;

	for (i = 0; i < ARRAY_SIZE(c); i++) {
		struct rust_dma_heap_fill_data out;
		size_t len = (c[i].len + PAGE - 1) & ~(PAGE - 1);

		file = random_file(c[i].file, &bytes);
		ASSERT_LE(0, file);
		/*
		 * Memory of that size written and freed just before: what the
		 * fill gets next may be those pages (a CMA area's first fit, the
		 * page allocator's per-CPU lists), not zeroed by the heap.
		 */
		buf = rdh_alloc(self->heap, len, O_RDWR, 0);
		ASSERT_LE(0, buf);
		ASSERT_EQ(0, rdh_fill(buf, len, 0xa5));
		close(buf);
		buf = fill_simple(self->heap, c[i].len, file, c[i].offset, &out);
		ASSERT_LE(0, buf) TH_LOG("case %zu: %s", i, strerror(-buf));
		expect = c[i].offset >= c[i].file ? 0 : c[i].file - c[i].offset;
		if (expect > len)
			expect = len;
		EXPECT_EQ(expect, out.read) TH_LOG("case %zu", i);
		EXPECT_EQ(-1, first_mismatch(buf, len, bytes + (expect ? c[i].offset : 0),
					     expect))
			TH_LOG("case %zu", i);
		close(buf);
		close(file);
		free(bytes);
	}
}

/*
 * An importer (the test importer's vmap, after its DMA map and CPU-access
 * sync) reads what the file holds. (The auto heap places a filled buffer
 * for the CPU, in system pages, which the importer's device, needing one
 * contiguous range, may map only as one block: 64 KiB there.)
 */
TEST_F(fill, importer_reads_the_file)
{
	size_t len = strcmp(self->name, "auto") ? 1 * MIB + 64 * KIB : 64 * KIB, i;
	struct rdh_import req = { .seed = 0x5eed1234 };
	uint32_t *words = malloc(len);
	int file, imp;

	imp = rdh_open_importer();
	if (imp == -ENOENT && rdh_missing_ok())
		SKIP(return, RDH_NO_IMPORTER);
	ASSERT_LE(0, imp) TH_LOG("test importer not loaded");
	ASSERT_NE(NULL, words);
	for (i = 0; i < len / 4; i++)
		words[i] = i ^ req.seed;
	file = memfd_create("rdh-fill", MFD_CLOEXEC);
	ASSERT_LE(0, file);
	ASSERT_EQ((ssize_t)len, pwrite(file, words, len, 0));
	req.fd = fill_simple(self->heap, len, file, 0, NULL);
	ASSERT_LE(0, req.fd);
	ASSERT_EQ(0, ioctl(imp, RDH_IMPORT_CHECK, &req));
	EXPECT_EQ(0, req.map_err);
	EXPECT_EQ(~0U, req.bad_word);
	close(req.fd);
	close(file);
	close(imp);
	free(words);
}

/*
 * From a block device with direct I/O: the bytes match, the call says
 * they came by direct I/O, and the page cache did not grow by 1 % of
 * what was read.
 */
TEST_F(fill, block_device_direct)
{
	size_t len = 16 * MIB;
	unsigned char *bytes;
	long before, after;
	int dev, file, buf;
	struct rust_dma_heap_fill_data out;

	dev = open(RAMDISK, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (dev < 0 && errno == ENOENT)
		SKIP(return, "no %s (CONFIG_BLK_DEV_RAM)", RAMDISK);
	ASSERT_LE(0, dev);
	file = random_file(len, &bytes);
	ASSERT_LE(0, file);
	/* Written past the page cache, then dropped from it in any case. */
	ASSERT_EQ((ssize_t)len, pwrite(dev, bytes, len, 0));
	close(dev);
	dev = open(RAMDISK, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, rdh_write_text("/proc/sys/vm/drop_caches", "1\n"));
	before = rdh_meminfo("Buffers:") + rdh_meminfo("Cached:");
	buf = fill_simple(self->heap, len, dev, 0, &out);
	ASSERT_LE(0, buf) TH_LOG("%s", strerror(-buf));
	after = rdh_meminfo("Buffers:") + rdh_meminfo("Cached:");
	EXPECT_EQ(len, out.read);
	EXPECT_EQ(RUST_DMA_HEAP_FILL_DIRECT, out.flags);
	EXPECT_GT((long)(len / KIB / 100), after - before)
		TH_LOG("page cache grew by %ld KiB", after - before);
	EXPECT_EQ(-1, first_mismatch(buf, len, bytes, len));
	close(buf);
	/* An odd offset goes through the page cache, bytes still exact. */
	buf = fill_simple(self->heap, MIB, dev, 4097, &out);
	ASSERT_LE(0, buf);
	EXPECT_EQ(0, out.flags);
	EXPECT_EQ(MIB, out.read);
	EXPECT_EQ(-1, first_mismatch(buf, MIB, bytes + 4097, MIB));
	close(buf);
	close(dev);
	close(file);
	free(bytes);
}

/* Every bad input: its errno, no fd, no buffer (the teardown counts). */
TEST_F(fill, bad_input)
{
	int fds = rdh_count_fds(), file, wronly, pipes[2], dir, null;
	unsigned char *bytes;
	struct rust_dma_heap_fill_data d;
	char path[64];

	file = random_file(8192, &bytes);
	ASSERT_LE(0, file);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", file);
	wronly = open(path, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, wronly);
	ASSERT_EQ(0, pipe2(pipes, O_CLOEXEC));
	dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, dir);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, null);
	fds = rdh_count_fds();

	EXPECT_EQ(-EBADF, fill_simple(self->heap, 4096, -1, 0, NULL));
	EXPECT_EQ(-EBADF, fill_simple(self->heap, 4096, 9999, 0, NULL));
	EXPECT_EQ(-EBADF, fill_simple(self->heap, 4096, wronly, 0, NULL));
	EXPECT_EQ(-EINVAL, fill_simple(self->heap, 4096, pipes[0], 0, NULL));
	EXPECT_EQ(-EINVAL, fill_simple(self->heap, 4096, dir, 0, NULL));
	EXPECT_EQ(-EINVAL, fill_simple(self->heap, 4096, null, 0, NULL));
	EXPECT_EQ(-EINVAL, fill_simple(self->heap, 0, file, 0, NULL));
	EXPECT_EQ(-EOVERFLOW, fill_simple(self->heap, 4096, file, INT64_MAX - 100, NULL));
	EXPECT_EQ(-EOVERFLOW, fill_simple(self->heap, 8192, file, UINT64_MAX - 4096, NULL));
	EXPECT_EQ(-ENOMEM, fill_simple(self->heap, 1ULL << 50, file, 0, NULL));
	d = (struct rust_dma_heap_fill_data){ .len = 4096, .file_fd = file, .fd = 3 };
	EXPECT_EQ(-EINVAL, fill(self->heap, &d));
	d = (struct rust_dma_heap_fill_data){ .len = 4096, .file_fd = file, .flags = 1 };
	EXPECT_EQ(-EINVAL, fill(self->heap, &d));
	d = (struct rust_dma_heap_fill_data){ .len = 4096, .file_fd = file, .reserved = 1 };
	EXPECT_EQ(-EINVAL, fill(self->heap, &d));
	d = (struct rust_dma_heap_fill_data){ .len = 4096, .file_fd = file, .fd_flags = O_TRUNC };
	EXPECT_EQ(-EINVAL, fill(self->heap, &d));
	d = (struct rust_dma_heap_fill_data){ .len = 4096, .file_fd = file, .heap_flags = 1 };
	EXPECT_EQ(-EINVAL, fill(self->heap, &d));
	EXPECT_EQ(fds, rdh_count_fds());

	close(null);
	close(dir);
	close(pipes[0]);
	close(pipes[1]);
	close(wronly);
	close(file);
	free(bytes);
}

/*
 * The argument is size-versioned as the allocation's: a 40-byte struct
 * (up to @heap_fd, @read not written back) fills too.
 */
TEST_F(fill, shorter_argument)
{
	struct rust_dma_heap_fill_data d = { .len = 8192, .fd_flags = O_RDWR | O_CLOEXEC };
	unsigned long cmd = _IOC(_IOC_READ | _IOC_WRITE, 'H', 0x40, 40);
	unsigned char *bytes;
	int file;

	file = random_file(8192, &bytes);
	ASSERT_LE(0, file);
	d.file_fd = file;
	d.heap_fd = self->heap;
	d.read = 77;
	ASSERT_EQ(0, ioctl(ctl >= 0 ? ctl : self->heap, cmd, &d));
	EXPECT_EQ(77, d.read);
	EXPECT_EQ(-1, first_mismatch(d.fd, 8192, bytes, 8192));
	close(d.fd);
	close(file);
	free(bytes);
}

struct filler {
	int heap, file, id;
	const unsigned char *bytes;
	long bad;
};

static void *fill_thread(void *arg)
{
	struct filler *f = arg;
	int i, buf;

	for (i = 0; i < 8 && f->bad < 0; i++) {
		uint64_t offset = (uint64_t)(f->id * 8 + i) * 64 * KIB;

		buf = fill_simple(f->heap, 256 * KIB, f->file, offset, NULL);
		if (buf < 0) {
			f->bad = buf;
			break;
		}
		f->bad = first_mismatch(buf, 256 * KIB, f->bytes + offset, 256 * KIB);
		close(buf);
	}
	return NULL;
}

/* Four threads fill from one file at once, each buffer byte-exact. */
TEST_F(fill, concurrent)
{
	struct filler f[4];
	pthread_t t[4];
	unsigned char *bytes;
	int i, file;

	file = random_file(4 * 8 * 64 * KIB + 256 * KIB, &bytes);
	ASSERT_LE(0, file);
	for (i = 0; i < 4; i++) {
		f[i] = (struct filler){ .heap = self->heap, .file = file, .id = i,
					.bytes = bytes, .bad = -1 };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, fill_thread, &f[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(-1, f[i].bad) TH_LOG("thread %d", i);
	}
	close(file);
	free(bytes);
}

/*
 * A filler killed while it fills (a large buffer from a block device, over
 * and over) leaves no buffer and no memory behind: the teardown counts the
 * heap's buffers; MemFree comes back.
 */
TEST_F(fill, killed_filler_leaves_nothing)
{
	long free_before, free_after;
	size_t len = 32 * MIB;
	pid_t pid;
	int dev, status;

	dev = open(RAMDISK, O_RDONLY | O_CLOEXEC);
	if (dev < 0 && errno == ENOENT)
		SKIP(return, "no %s (CONFIG_BLK_DEV_RAM)", RAMDISK);
	ASSERT_LE(0, dev);
	free_before = rdh_meminfo("MemFree:");
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		for (;;) {
			int buf = fill_simple(self->heap, len, dev, 0, NULL);

			if (buf >= 0)
				close(buf);
		}
	}
	usleep(300 * 1000);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	close(dev);
	/* Freed pages may pass through the pool's worker first. */
	rdh_write_text("/proc/sys/vm/drop_caches", "3\n");
	free_after = rdh_meminfo_wait("MemFree:", free_before - rdh_mem_slack(4096), 5000);
	EXPECT_LE(free_before - rdh_mem_slack(4096), free_after)
		TH_LOG("MemFree %ld KiB before, %ld after", free_before, free_after);
}

#define FILL_CG RDH_CG_ROOT "/rdh-fill"

/*
 * A fill is charged as an allocation from the same heap is: from a cgroup
 * whose limit is 32 MiB (memory.max for the system heaps, dmem.max on the
 * default area's region for CMA), 16 MiB fill and raise the charge by as
 * much, 48 MiB are ENOMEM; the charge goes with the buffer.
 */
TEST_F(fill, charged_within_limits)
{
	bool dmem = !strcmp(self->name, "default_cma_region");
	const char *region = rdh_default_cma_region();
	char limit[128], text[256] = "";
	unsigned char *bytes;
	long long before, during, after;
	int file, buf;

	if (strcmp(self->name, "system") && !dmem)
		SKIP(return, "the system and default CMA variants check the charge");
	if (rdh_read_text(RDH_CG_ROOT "/cgroup.controllers", text, sizeof(text)) ||
	    !rdh_has_word(text, dmem ? "dmem" : "memory"))
		SKIP(return, "no %s controller", dmem ? "dmem" : "memory");
	rdh_write_text(RDH_CG_ROOT "/cgroup.subtree_control", dmem ? "+dmem" : "+memory");
	ASSERT_TRUE(!mkdir(FILL_CG, 0755) || errno == EEXIST);
	if (dmem)
		snprintf(limit, sizeof(limit), "%s %lu\n", region, 32 * MIB);
	else
		snprintf(limit, sizeof(limit), "%lu\n", 32 * MIB);
	ASSERT_EQ(0, rdh_cg_set(FILL_CG, dmem ? "dmem.max" : "memory.max", limit));
	file = random_file(48 * MIB, &bytes);
	ASSERT_LE(0, file);
	ASSERT_EQ(0, rdh_cg_set(FILL_CG, "cgroup.procs", "0\n"));
#define CHARGED() (dmem ? rdh_keyed(region, FILL_CG "/dmem.current", ' ') \
		   : rdh_cg_num(FILL_CG, "memory.current"))
	before = CHARGED();
	buf = fill_simple(self->heap, 16 * MIB, file, 0, NULL);
	during = CHARGED();
	EXPECT_LE(0, buf);
	EXPECT_LE(before + (long long)(16 * MIB), during)
		TH_LOG("charged %lld before, %lld with the buffer", before, during);
	EXPECT_EQ(-ENOMEM, fill_simple(self->heap, 48 * MIB, file, 0, NULL));
	if (buf >= 0)
		close(buf);
	after = CHARGED();
#undef CHARGED
	EXPECT_GT(before + (long long)(8 * MIB), after) TH_LOG("%lld charged after the close", after);
	rdh_cg_set(RDH_CG_ROOT, "cgroup.procs", "0\n");
	EXPECT_EQ(0, rdh_cg_remove(FILL_CG));
	close(file);
	free(bytes);
}

#define FAIL_REQ "/sys/kernel/debug/fail_make_request"
#define RAMDISK_FAIL "/sys/block/ram0/make-it-fail"

/*
 * An I/O error mid-fill (the debug kernel's fail_make_request: the
 * ramdisk's requests fail once 4 MiB of them went through) is the call's
 * error, EIO, and leaves no fd, no buffer and no memory behind; the same
 * fill succeeds once the device is well again.
 */
TEST_F(fill, io_error_leaves_nothing)
{
	static const char *const knobs[] = {
		FAIL_REQ "/probability", FAIL_REQ "/interval", FAIL_REQ "/times",
		FAIL_REQ "/space", FAIL_REQ "/verbose",
	};
	static const char *const values[] = { "100", "1", "-1", "4194304", "0" };
	char saved[ARRAY_SIZE(knobs)][32];
	size_t len = 16 * MIB, i;
	long before, after;
	int dev, buf, fds;

	if (access(RAMDISK_FAIL, W_OK) || access(FAIL_REQ, F_OK))
		SKIP(return, "no %s or %s (CONFIG_FAIL_MAKE_REQUEST, debugfs)", RAMDISK_FAIL,
		     FAIL_REQ);
	dev = open(RAMDISK, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, dev);
	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		ASSERT_EQ(0, rdh_read_text(knobs[i], saved[i], sizeof(saved[i])));
	fds = rdh_count_fds();
	rdh_write_text("/proc/sys/vm/drop_caches", "3\n");
	before = rdh_meminfo("MemFree+pool");
	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		ASSERT_EQ(0, rdh_write_text(knobs[i], values[i]));
	ASSERT_EQ(0, rdh_write_text(RAMDISK_FAIL, "1"));
	buf = fill_simple(self->heap, len, dev, 0, NULL);
	rdh_write_text(RAMDISK_FAIL, "0");
	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		EXPECT_EQ(0, rdh_write_text(knobs[i], saved[i]));
	EXPECT_EQ(-EIO, buf);
	if (buf >= 0)
		close(buf);
	EXPECT_EQ(fds, rdh_count_fds());
	rdh_write_text("/proc/sys/vm/drop_caches", "3\n");
	after = rdh_meminfo_wait("MemFree+pool", before - rdh_mem_slack(4096), 5000);
	EXPECT_LE(before - rdh_mem_slack(4096), after)
		TH_LOG("MemFree+pool %ld KiB before, %ld after", before, after);
	buf = fill_simple(self->heap, len, dev, 0, NULL);
	EXPECT_LE(0, buf);
	if (buf >= 0)
		close(buf);
	close(dev);
}

/*
 * A no-map carve-out refuses, EOPNOTSUPP (no struct page a read could
 * name), leaving nothing.
 */
TEST(nomap_refuses)
{
	unsigned char *bytes;
	int heap, file, bufs = 0;

	ASSERT_EQ(0, use_control());
	heap = rdh_fixture_open("carveout@b0000000", &bufs);
	if (heap == RDH_MISSING)
		SKIP(return, "no no-map carve-out here");
	ASSERT_LE(0, heap);
	file = random_file(4096, &bytes);
	ASSERT_LE(0, file);
	EXPECT_EQ(-EOPNOTSUPP, fill_simple(heap, 4096, file, 0, NULL));
	close(file);
	free(bytes);
	RDH_TEARDOWN_HEAP(heap, bufs, "carveout@b0000000");
}

/*
 * The control node, in every mode: it fills from the heap whose node
 * heap_fd is open on, byte-exact; an fd that is not open is EBADF, one of
 * a file, of another char device or of the control node itself EINVAL;
 * another ioctl ENOTTY. Nothing is left behind.
 */
TEST(control_node)
{
	struct rust_dma_heap_fill_data d;
	int c, heap, file, null, bufs = 0, fds;
	unsigned char *bytes;

	if (rdh_taken("system"))
		SKIP(return, RDH_SYSTEM_TAKEN);
	c = open(CONTROL, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, c) TH_LOG("no %s: %s", CONTROL, strerror(errno));
	heap = rdh_fixture_open("system", &bufs);
	ASSERT_LE(0, heap);
	file = random_file(3 * PAGE + 5, &bytes);
	ASSERT_LE(0, file);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, null);
	fds = rdh_count_fds();

	d = (struct rust_dma_heap_fill_data){ .len = 4 * PAGE, .fd_flags = O_RDWR | O_CLOEXEC,
					      .file_fd = file, .heap_fd = heap };
	ASSERT_EQ(0, ioctl(c, RUST_DMA_HEAP_IOCTL_FILL, &d));
	EXPECT_EQ(3 * PAGE + 5, d.read);
	EXPECT_EQ(-1, first_mismatch(d.fd, 4 * PAGE, bytes, 3 * PAGE + 5));
	close(d.fd);
	d = (struct rust_dma_heap_fill_data){ .len = PAGE, .file_fd = file, .heap_fd = -1 };
	EXPECT_EQ(-1, ioctl(c, RUST_DMA_HEAP_IOCTL_FILL, &d));
	EXPECT_EQ(EBADF, errno);
	d.heap_fd = 9999;
	EXPECT_EQ(-1, ioctl(c, RUST_DMA_HEAP_IOCTL_FILL, &d));
	EXPECT_EQ(EBADF, errno);
	d.heap_fd = file;
	EXPECT_EQ(-1, ioctl(c, RUST_DMA_HEAP_IOCTL_FILL, &d));
	EXPECT_EQ(EINVAL, errno);
	d.heap_fd = null;
	EXPECT_EQ(-1, ioctl(c, RUST_DMA_HEAP_IOCTL_FILL, &d));
	EXPECT_EQ(EINVAL, errno);
	d.heap_fd = c;
	EXPECT_EQ(-1, ioctl(c, RUST_DMA_HEAP_IOCTL_FILL, &d));
	EXPECT_EQ(EINVAL, errno);
	d.heap_fd = heap;
	EXPECT_EQ(-1, ioctl(c, DMA_HEAP_IOCTL_ALLOC, &d));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(fds, rdh_count_fds());

	close(null);
	close(file);
	free(bytes);
	close(c);
	RDH_TEARDOWN_HEAP(heap, bufs, "system");
}

/* rust_dma_heap_buffer_fill() through the test importer; fd or -errno. */
static int kapi_fill(int imp, const char *heap, uint64_t len, int file, int64_t offset,
		     uint64_t *read)
{
	struct rdh_heap_req req = {
		.op = RDH_HEAP_FILL, .len = len, .fd_flags = O_RDWR,
		.file_fd = file, .offset = offset,
	};

	snprintf(req.name, sizeof(req.name), "%s", heap);
	if (ioctl(imp, RDH_IMPORT_HEAP, &req))
		return -errno;
	*read = req.read;
	return req.fd;
}

/*
 * The in-kernel API's fill (a driver loading weights or firmware): the
 * bytes of the file, zero past its end; its errors as the ioctl's, a
 * negative offset EINVAL; nothing left behind.
 */
TEST(kernel_api_fill)
{
	unsigned char *bytes;
	int imp, file, wronly, pipes[2], buf, bufs = 0, heap;
	uint64_t read = 0;
	char path[64];

	if (rdh_taken("system"))
		SKIP(return, RDH_SYSTEM_TAKEN);
	heap = rdh_fixture_open("system", &bufs);
	ASSERT_LE(0, heap);
	imp = rdh_open_importer();
	if (imp == -ENOENT && rdh_missing_ok())
		SKIP(return, RDH_NO_IMPORTER);
	ASSERT_LE(0, imp) TH_LOG("test importer not loaded");
	file = random_file(5 * PAGE + 99, &bytes);
	ASSERT_LE(0, file);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", file);
	wronly = open(path, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, wronly);
	ASSERT_EQ(0, pipe2(pipes, O_CLOEXEC));

	buf = kapi_fill(imp, "system", 8 * PAGE, file, PAGE, &read);
	ASSERT_LE(0, buf) TH_LOG("%s", strerror(-buf));
	EXPECT_EQ(4 * PAGE + 99, read);
	EXPECT_EQ(-1, first_mismatch(buf, 8 * PAGE, bytes + PAGE, 4 * PAGE + 99));
	close(buf);
	EXPECT_EQ(-EBADF, kapi_fill(imp, "system", PAGE, wronly, 0, &read));
	EXPECT_EQ(-EINVAL, kapi_fill(imp, "system", PAGE, pipes[0], 0, &read));
	EXPECT_EQ(-EINVAL, kapi_fill(imp, "system", PAGE, file, -PAGE, &read));
	EXPECT_EQ(-EOVERFLOW, kapi_fill(imp, "system", 2 * PAGE, file, INT64_MAX - PAGE, &read));
	EXPECT_EQ(-EINVAL, kapi_fill(imp, "system", 0, file, 0, &read));

	close(pipes[0]);
	close(pipes[1]);
	close(wronly);
	close(file);
	free(bytes);
	close(imp);
	RDH_TEARDOWN_HEAP(heap, bufs, "system");
}

TEST_HARNESS_MAIN
