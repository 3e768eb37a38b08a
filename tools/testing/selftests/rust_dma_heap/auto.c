// SPDX-License-Identifier: GPL-2.0
/*
 * The auto heap: a buffer has no memory until its first use, which
 * chooses it. The test importer is a device without IOMMU (it needs one
 * contiguous range) with the DMA mask a test asks for; the guest's RAM
 * spans 0x40000000-0xc0000000 and its device tree puts the "video" CMA
 * area below 0x80000000, the default area above.
 *
 * Which memory a buffer got shows in the debugfs "buffers" file (column
 * "memory"); where it is, in /proc/self/pagemap.
 */
#include "../kselftest_harness.h"
#include "rdh.h"
#include "rdh_importer.h"

#define MIB (1024UL * 1024)
#define MASK31 0x7fffffffULL
#define DEFAULT_CMA "default_cma_region"

FIXTURE(autoheap) {
	int heap, imp, bufs;
};

FIXTURE_SETUP(autoheap)
{
	self->imp = -1;
	self->heap = rdh_fixture_open("auto", &self->bufs);
	if (self->heap == RDH_MISSING)
		SKIP(return, "no auto heap");
	ASSERT_LE(0, self->heap);
	self->imp = rdh_open_importer();
	if (self->imp == -ENOENT && rdh_missing_ok())
		SKIP(return, RDH_NO_IMPORTER);
	ASSERT_LE(0, self->imp) TH_LOG("test importer not loaded");
}

FIXTURE_TEARDOWN(autoheap)
{
	if (self->imp >= 0)
		close(self->imp);
	RDH_TEARDOWN_HEAP(self->heap, self->bufs, "auto");
}

/* The importer attaches and maps @fd with @mask (0: 64 bits) only. */
static int import_map(int imp, int fd, uint64_t mask, struct rdh_import *req)
{
	memset(req, 0, sizeof(*req));
	req->fd = fd;
	req->dma_mask = mask;
	req->flags = RDH_IMPORT_MAP_ONLY;
	return ioctl(imp, RDH_IMPORT_CHECK, req) ? -errno : 0;
}

/*
 * No memory until first use: MemFree does not move for 64 MiB of buffers,
 * their memory column says "-", and the heap counts them as used.
 */
TEST_F(autoheap, no_memory_until_first_use)
{
	long free0 = rdh_meminfo("MemFree+pool"), free1;
	char mem[64];
	int bufs[8], i;

	for (i = 0; i < 8; i++) {
		bufs[i] = rdh_alloc(self->heap, 8 * MIB, O_RDWR, 0);
		ASSERT_LE(0, bufs[i]);
	}
	free1 = rdh_meminfo("MemFree+pool");
	EXPECT_GE(free1, free0 - 4096) TH_LOG("MemFree %ld -> %ld KiB", free0, free1);
	ASSERT_EQ(0, rdh_buffer_memory(bufs[0], mem, sizeof(mem)));
	EXPECT_STREQ("-", mem);
	for (i = 0; i < 8; i++)
		close(bufs[i]);
}

/*
 * The CPU first (mmap): system-heap pages, zeroed. A device that needs one
 * contiguous range cannot map it afterwards if the pages are scattered:
 * EINVAL and a log line naming it; if they happen to be one range, it can.
 */
TEST_F(autoheap, cpu_first_gets_system_pages)
{
	size_t len = 2 * MIB + 64 * 1024 + PAGE;
	uint64_t first, last;
	struct rdh_import req;
	bool contiguous;
	char mem[64];
	int buf, n;

	for (n = 0; n < 8; n++) {
		buf = rdh_alloc(self->heap, len, O_RDWR, 0);
		ASSERT_LE(0, buf);
		EXPECT_EQ(-1, rdh_first_nonzero(buf, len));
		ASSERT_EQ(0, rdh_buffer_memory(buf, mem, sizeof(mem)));
		EXPECT_STREQ("system", mem);
		ASSERT_EQ(0, rdh_pfn_span(buf, len, &first, &last, &contiguous));
		ASSERT_EQ(0, import_map(self->imp, buf, 0, &req));
		if (!contiguous) {
			EXPECT_EQ(EINVAL, req.map_err);
			EXPECT_TRUE(rdh_kmsg_has("cannot map a buffer whose memory was chosen at its first use: it needs one contiguous range"));
			close(buf);
			return;
		}
		EXPECT_EQ(0, req.map_err);
		close(buf);
	}
	ksft_print_msg("8 buffers in a row came out contiguous\n");
}

/*
 * A device first (no IOMMU, 64-bit mask): one contiguous range from the
 * default CMA area, zeroed, mapped as one entry.
 */
TEST_F(autoheap, device_first_gets_contiguous_cma)
{
	size_t len = 4 * MIB + 3 * PAGE;
	uint64_t first, last;
	struct rdh_import req;
	bool contiguous;
	char mem[64];
	int buf;

	buf = rdh_alloc(self->heap, len, O_RDWR, 0);
	ASSERT_LE(0, buf);
	ASSERT_EQ(0, import_map(self->imp, buf, 0, &req));
	EXPECT_EQ(0, req.map_err);
	EXPECT_EQ(1, req.nents);
	EXPECT_EQ(len, req.dma_len);
	ASSERT_EQ(0, rdh_buffer_memory(buf, mem, sizeof(mem)));
	EXPECT_STREQ(DEFAULT_CMA, mem);
	ASSERT_EQ(0, rdh_pfn_span(buf, len, &first, &last, &contiguous));
	EXPECT_TRUE(contiguous);
	EXPECT_EQ(-1, rdh_first_nonzero(buf, len));
	close(buf);
}

/*
 * The default area above a 31-bit mask (the test board's): a buffer chosen
 * for a 64-bit device lands there and is refused to a 31-bit one, EIO and
 * a log line. A buffer a 31-bit device maps first gets every page below
 * the mask (the board's "video" area), and a later 64-bit device maps it
 * too. Skipped where the default area is under the mask.
 */
TEST_F(autoheap, dma_mask_respected)
{
	size_t len = 2 * MIB;
	uint64_t first, last;
	struct rdh_import req;
	bool contiguous;
	char mem[64];
	int buf;

	/* Chosen for a 64-bit device: the default area. */
	buf = rdh_alloc(self->heap, len, O_RDWR, 0);
	ASSERT_LE(0, buf);
	ASSERT_EQ(0, import_map(self->imp, buf, 0, &req));
	EXPECT_EQ(0, req.map_err);
	ASSERT_EQ(0, rdh_buffer_memory(buf, mem, sizeof(mem)));
	EXPECT_STREQ(DEFAULT_CMA, mem);
	ASSERT_EQ(0, rdh_pfn_span(buf, len, &first, &last, &contiguous));
	if (last <= MASK31 / PAGE) {
		close(buf);
		SKIP(return, "the default CMA area is under the 31-bit mask: nothing to show");
	}
	ASSERT_EQ(0, import_map(self->imp, buf, MASK31, &req));
	EXPECT_EQ(EIO, req.map_err);
	EXPECT_TRUE(rdh_kmsg_has("cannot map a buffer whose memory was chosen at its first use: it cannot reach it under its DMA mask"));
	close(buf);

	/* A 31-bit device first: an area under the mask. */
	buf = rdh_alloc(self->heap, len, O_RDWR, 0);
	ASSERT_LE(0, buf);
	ASSERT_EQ(0, import_map(self->imp, buf, MASK31, &req));
	EXPECT_EQ(0, req.map_err);
	EXPECT_EQ(1, req.nents);
	EXPECT_GE(MASK31, req.dma_addr + req.dma_len - 1);
	ASSERT_EQ(0, rdh_buffer_memory(buf, mem, sizeof(mem)));
	EXPECT_STRNE(DEFAULT_CMA, mem);
	ASSERT_EQ(0, rdh_pfn_span(buf, len, &first, &last, &contiguous));
	EXPECT_TRUE(contiguous);
	EXPECT_GT((MASK31 + 1) / PAGE, last) TH_LOG("pfn %#llx", (unsigned long long)last);
	ASSERT_EQ(0, import_map(self->imp, buf, 0, &req));
	EXPECT_EQ(0, req.map_err);
	close(buf);
}

/* A mask no CMA area fits under: ENOMEM at map, nothing allocated. */
TEST_F(autoheap, no_area_under_mask_enomem)
{
	struct rdh_import req;
	char mem[64];
	int buf;

	buf = rdh_alloc(self->heap, MIB, O_RDWR, 0);
	ASSERT_LE(0, buf);
	/* 0x40000000 is the start of RAM: below it, no area at all. */
	ASSERT_EQ(0, import_map(self->imp, buf, 0x3fffffffULL, &req));
	EXPECT_EQ(ENOMEM, req.map_err);
	ASSERT_EQ(0, rdh_buffer_memory(buf, mem, sizeof(mem)));
	EXPECT_STREQ("-", mem);
	/* Still usable by the CPU afterwards. */
	EXPECT_EQ(-1, rdh_first_nonzero(buf, MIB));
	ASSERT_EQ(0, rdh_buffer_memory(buf, mem, sizeof(mem)));
	EXPECT_STREQ("system", mem);
	close(buf);
}

/* The value for @region in cgroup @cg's dmem.current; -1 if not listed. */
static long long dmem_current(const char *cg, const char *region)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/dmem.current", cg);
	return rdh_keyed(region, path, ' ');
}

/*
 * Charged to the allocating task from the allocation on: its size is
 * reserved in the task's dmem cgroup on the default area's region
 * ("cma/linux,cma" from a device tree, "cma/reserved" from cma=) before
 * any memory exists; a CMA range chosen at a device's first map keeps that
 * charge, which goes with the buffer.
 */
TEST_F(autoheap, charged_to_its_allocator)
{
	const char *region = rdh_default_cma_region();
	long long got[3] = { -2, -2, -2 };
	size_t len = 4 * MIB;
	int pipefd[2], status;
	char cg[128];
	pid_t pid;

	rdh_write_text("/sys/fs/cgroup/cgroup.subtree_control", "+dmem");
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/rdh-auto-%d", getpid());
	ASSERT_EQ(0, mkdir(cg, 0755));
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char procs[160], mem[64] = "";
		struct rdh_import req;
		int buf;

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
		if (rdh_write_text(procs, "0\n"))
			_exit(2);
		buf = rdh_alloc(self->heap, len, O_RDWR, 0);
		if (buf < 0)
			_exit(3);
		got[0] = dmem_current(cg, region);
		if (import_map(self->imp, buf, 0, &req) || req.map_err ||
		    rdh_buffer_memory(buf, mem, sizeof(mem)) || strcmp(mem, DEFAULT_CMA))
			_exit(4);
		got[1] = dmem_current(cg, region);
		close(buf);
		got[2] = dmem_current(cg, region);
		_exit(write(pipefd[1], got, sizeof(got)) == sizeof(got) ? 0 : 5);
	}
	close(pipefd[1]);
	EXPECT_EQ(sizeof(got), read(pipefd[0], got, sizeof(got)));
	close(pipefd[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ((long long)len, got[0]);
	EXPECT_EQ((long long)len, got[1]);
	EXPECT_EQ(0, got[2]);
	EXPECT_EQ(0, rmdir(cg));
}

TEST_HARNESS_MAIN
