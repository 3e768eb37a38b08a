// SPDX-License-Identifier: GPL-2.0
/*
 * The system-uncached heap: the system heap's pages (its pool too), mapped
 * write-combined by mmap and vmap. The test importer asks the MMU which
 * memory type a mapping has (arm64: PAR_EL1.ATTR after an AT instruction,
 * the MAIR byte: 0xff normal write-back, 0x44 normal non-cacheable).
 */
#include <sys/ioctl.h>

#include "../kselftest_harness.h"
#include "rdh.h"
#include "rdh_importer.h"

#define KIB 1024UL
#define MIB (1024UL * 1024)
#define ATTR_WB 0xff
#define ATTR_NC 0x44
#define ZEROING_PARAM "/sys/module/rust_dma_heap/parameters/pool_zeroing"

FIXTURE(uncached) {
	int heap, system, imp;
};

FIXTURE_SETUP(uncached)
{
	self->imp = -1;
	self->system = -1;
	self->heap = -1;
	if (rdh_taken("system"))
		SKIP(return, RDH_SYSTEM_TAKEN);
	self->system = rdh_open_heap("system", O_RDONLY);
	self->heap = rdh_open_heap("system-uncached", O_RDONLY);
	if (self->heap == RDH_MISSING)
		SKIP(return, "no system-uncached heap");
	ASSERT_LE(0, self->heap);
	ASSERT_LE(0, self->system);
	self->imp = open("/dev/rdh_importer", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->imp) TH_LOG("test importer not loaded");
}

FIXTURE_TEARDOWN(uncached)
{
	rdh_write_text(ZEROING_PARAM, "Y\n");
	if (self->imp >= 0)
		close(self->imp);
	if (self->system >= 0)
		close(self->system);
	if (self->heap >= 0)
		close(self->heap);
}

/*
 * The memory type of buffer @buf's vmap and of its mmap at page @page;
 * 0 or -errno.
 */
static int memtype(int imp, int buf, size_t len, size_t page, int *kattr, int *uattr)
{
	struct rdh_memtype req = { .fd = buf };
	unsigned char *p;
	int ret = 0;

	*kattr = *uattr = -2;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Mapped at mmap already; written so the PTE is there in any case. */
	memset(p + page * PAGE, 1, 1);
	req.uaddr = (uintptr_t)(p + page * PAGE);
	if (ioctl(imp, RDH_IMPORT_MEMTYPE, &req))
		ret = -errno;
	*kattr = req.kernel_attr;
	*uattr = req.user_attr;
	munmap((void *)p, len);
	return ret;
}

/*
 * mmap and vmap of system-uncached buffers are write-combined, in every
 * block size (first and last page of a buffer of 1 MiB, 64 KiB and 4 KiB
 * blocks); the system heap's stay write-back.
 */
TEST_F(uncached, mappings_are_write_combined)
{
	size_t len = MIB + 64 * KIB + 4 * KIB, pages[] = { 0, len / PAGE - 1 };
	int heaps[2] = { self->heap, self->system }, want[2] = { ATTR_NC, ATTR_WB };
	int h, i, buf, kattr = -2, uattr = -2, ret;

	for (h = 0; h < 2; h++) {
		for (i = 0; i < 2; i++) {
			buf = rdh_alloc(heaps[h], len, O_RDWR, 0);
			ASSERT_LE(0, buf);
			ret = memtype(self->imp, buf, len, pages[i], &kattr, &uattr);
			close(buf);
			if (ret == -EOPNOTSUPP)
				SKIP(return, "no memory-type probe on this architecture");
			ASSERT_EQ(0, ret);
			EXPECT_EQ(want[h], kattr)
				TH_LOG("%s vmap: attr %#x", h ? "system" : "system-uncached", kattr);
			EXPECT_EQ(want[h], uattr)
				TH_LOG("%s mmap page %zu: attr %#x", h ? "system" : "system-uncached",
				       pages[i], uattr);
		}
	}
}

/*
 * Both heaps share one pool: blocks written through a write-combined
 * mapping and freed come back zeroed to either heap, and the other way
 * round (the worker held back: each allocation zeroes what it takes).
 */
TEST_F(uncached, pool_shared_and_zeroed)
{
	size_t len = 2 * MIB + 64 * KIB;
	int from[2] = { self->heap, self->system }, to[2] = { self->system, self->heap };
	int i, buf;

	ASSERT_EQ(0, rdh_write_text(ZEROING_PARAM, "N\n"));
	for (i = 0; i < 2; i++) {
		/* Empty the pool: the blocks freed next are the only ones. */
		rdh_write_text("/proc/sys/vm/drop_caches", "3\n");
		ASSERT_EQ(0, rdh_pool_kb());
		buf = rdh_alloc(from[i], len, O_RDWR, 0);
		ASSERT_LE(0, buf);
		ASSERT_EQ(0, rdh_fill(buf, len, 0x5a + i));
		close(buf);
		EXPECT_EQ((long)(len / KIB), rdh_pool_kb());
		buf = rdh_alloc(to[i], len, O_RDWR, 0);
		ASSERT_LE(0, buf);
		EXPECT_EQ(0, rdh_pool_kb());
		EXPECT_EQ(-1, rdh_first_nonzero(buf, len)) TH_LOG("pass %d", i);
		close(buf);
	}
}

/*
 * CPU-access syncs have nothing to do and still succeed, with a mapped
 * attachment too: what userspace writes through its mapping is what the
 * importer reads through vmap, and the other way round.
 */
TEST_F(uncached, data_through_both_mappings)
{
	size_t len = 4 * MIB, i, n = len / 4;
	struct rdh_import req = { .seed = 0x1234567 };
	uint32_t *w;
	int buf;

	buf = rdh_alloc(self->heap, len, O_RDWR, 0);
	ASSERT_LE(0, buf);
	w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, w);
	ASSERT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE));
	for (i = 0; i < n; i++)
		w[i] = i ^ req.seed;
	ASSERT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE));
	req.fd = buf;
	ASSERT_EQ(0, ioctl(self->imp, RDH_IMPORT_CHECK, &req));
	EXPECT_EQ(~0u, req.bad_word);
	EXPECT_EQ(0, req.map_err);
	ASSERT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
	for (i = 0; i < n; i++)
		if (w[i] != ~(uint32_t)(i ^ req.seed))
			break;
	EXPECT_EQ(n, i);
	ASSERT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
	munmap(w, len);
	close(buf);
}

TEST_HARNESS_MAIN
