// SPDX-License-Identifier: GPL-2.0
/*
 * Every heap through a real in-kernel importer (importer/rdh_importer.ko, a
 * faux device): attach, DMA map (one entry for contiguous heaps), CPU
 * access with mapped attachments, vmap (twice: refcounted, same address)
 * reading what userspace wrote and writing what userspace then reads, two
 * attachments at once, detach while mapped, a limited DMA mask, memory
 * without struct page refused to a static (not peer2peer) importer.
 */
#include "rdh.h"
#include "rdh_importer.h"
#include "../kselftest_harness.h"

FIXTURE(imp) {
	int heap, imp, bufs;
};

FIXTURE_VARIANT(imp) {
	const char *name;
	bool contiguous;
	/* No struct page behind the memory (no-map carve-out). */
	bool pageless;
};

FIXTURE_VARIANT_ADD(imp, system) { .name = "system" };
FIXTURE_VARIANT_ADD(imp, system_uncached) { .name = "system-uncached" };
FIXTURE_VARIANT_ADD(imp, default_cma_region) { .name = "default_cma_region", .contiguous = true };
FIXTURE_VARIANT_ADD(imp, linux_cma) { .name = "linux,cma", .contiguous = true };
FIXTURE_VARIANT_ADD(imp, video) { .name = "video", .contiguous = true };
FIXTURE_VARIANT_ADD(imp, carveout_nomap) {
	.name = "carveout@b0000000", .contiguous = true, .pageless = true,
};
FIXTURE_VARIANT_ADD(imp, carveout_mapped) { .name = "carveout@b4000000", .contiguous = true };

FIXTURE_SETUP(imp)
{
	self->imp = -1;
	self->heap = rdh_fixture_open(variant->name, &self->bufs);
	if (self->heap == RDH_MISSING)
		SKIP(return, "no heap %s of ours on this machine", variant->name);
	ASSERT_LE(0, self->heap) TH_LOG("heap %s: %s", variant->name, strerror(-self->heap));
	self->imp = rdh_open_importer();
	if (self->imp == -ENOENT && rdh_missing_ok())
		SKIP(return, RDH_NO_IMPORTER);
	ASSERT_LE(0, self->imp) TH_LOG("test importer not loaded");
}

FIXTURE_TEARDOWN(imp)
{
	if (self->imp >= 0)
		close(self->imp);
	/* Nothing outlives the test: the importer dropped every reference. */
	RDH_TEARDOWN_HEAP(self->heap, self->bufs, variant->name);
}

/* A buffer of @len holding word i = i ^ seed; returns its fd. */
static int filled(int heap, size_t len, uint32_t seed)
{
	int buf = rdh_alloc(heap, len, O_RDWR | O_CLOEXEC, 0);
	uint32_t *p;
	size_t i;

	if (buf < 0)
		return buf;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (p == MAP_FAILED) {
		close(buf);
		return -errno;
	}
	rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	for (i = 0; i < len / 4; i++)
		p[i] = i ^ seed;
	rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	munmap(p, len);
	return buf;
}

/* First word of @buf that is not ~(i ^ seed), or len / 4. */
static size_t first_unwritten(int buf, size_t len, uint32_t seed)
{
	uint32_t *p = mmap(NULL, len, PROT_READ, MAP_SHARED, buf, 0);
	size_t i;

	if (p == MAP_FAILED)
		return 0;
	rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	for (i = 0; i < len / 4; i++)
		if (p[i] != (uint32_t)~(i ^ seed))
			break;
	rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	munmap(p, len);
	return i;
}

static int check(int imp, struct rdh_import *req)
{
	return ioctl(imp, RDH_IMPORT_CHECK, req) ? -errno : 0;
}

TEST_F(imp, map_sync_vmap_both_ways)
{
	size_t len = (1 << 20) + (64 << 10) + PAGE;
	struct rdh_import req = { .seed = 0x5eed1234 };
	int buf = filled(self->heap, len, req.seed);

	ASSERT_LE(0, buf);
	req.fd = buf;
	ASSERT_EQ(0, check(self->imp, &req));
	EXPECT_EQ(0, req.map_err);
	EXPECT_EQ(len, req.size);
	EXPECT_EQ(len, req.dma_len);
	EXPECT_LE(1, req.nents);
	if (variant->contiguous)
		EXPECT_EQ(1, req.nents);
	/* The kernel read what userspace wrote... */
	EXPECT_EQ(~0u, req.bad_word);
	/* ...vmap is refcounted... */
	EXPECT_EQ(1, req.vmap_same);
	/* ...and userspace reads what the kernel wrote. */
	EXPECT_EQ(len / 4, first_unwritten(buf, len, req.seed));
	close(buf);
}

TEST_F(imp, two_attachments_at_once)
{
	struct rdh_import req = { .seed = 7, .flags = RDH_IMPORT_TWICE };
	int buf = filled(self->heap, 64 << 10, req.seed);

	ASSERT_LE(0, buf);
	req.fd = buf;
	ASSERT_EQ(0, check(self->imp, &req));
	EXPECT_EQ(0, req.map_err);
	EXPECT_EQ(~0u, req.bad_word);
	close(buf);
}

TEST_F(imp, detach_while_mapped)
{
	struct rdh_import req = { .seed = 9, .flags = RDH_IMPORT_DETACH_MAPPED };
	int buf = filled(self->heap, 16 * PAGE, req.seed), bufs;

	ASSERT_LE(0, buf);
	bufs = rdh_bufinfo_count(variant->name);
	req.fd = buf;
	ASSERT_EQ(0, check(self->imp, &req));
	EXPECT_EQ(0, req.map_err);
	close(buf);
	EXPECT_EQ(bufs - 1, rdh_bufinfo_count(variant->name));
}

TEST_F(imp, limited_dma_mask_32bit)
{
	/* QEMU virt's RAM sits below 4 GiB: a 32-bit device reaches all. */
	struct rdh_import req = { .seed = 3, .dma_mask = 0xffffffffULL };
	int buf = filled(self->heap, 1 << 20, req.seed);

	ASSERT_LE(0, buf);
	req.fd = buf;
	ASSERT_EQ(0, check(self->imp, &req));
	EXPECT_EQ(0, req.map_err);
	EXPECT_GE(0xffffffffULL, req.dma_addr + (1 << 20) - 1);
	close(buf);
}

/*
 * Memory without struct page (a no-map carve-out) maps only for an
 * importer that declared allow_peer2peer (it uses DMA addresses, never
 * sg_page()): a static importer gets EIO, and the buffer stays usable.
 */
TEST_F(imp, static_importer_needs_pages)
{
	struct rdh_import req = { .seed = 5, .flags = RDH_IMPORT_MAP_ONLY | RDH_IMPORT_NO_P2P };
	int buf = filled(self->heap, 1 << 20, req.seed);

	ASSERT_LE(0, buf);
	req.fd = buf;
	ASSERT_EQ(0, check(self->imp, &req));
	EXPECT_EQ(variant->pageless ? EIO : 0, req.map_err);
	/* (The importer reports a map's errno; 0 stays 0 when it maps.) */
	req.flags = RDH_IMPORT_MAP_ONLY;
	req.map_err = 0;
	ASSERT_EQ(0, check(self->imp, &req));
	EXPECT_EQ(0, req.map_err);
	close(buf);
}

TEST_F(imp, not_a_dma_buf_einval)
{
	struct rdh_import req = { .fd = self->heap };

	EXPECT_EQ(-EINVAL, check(self->imp, &req));
	req.fd = -1;
	EXPECT_EQ(-EBADF, check(self->imp, &req));
}

TEST_HARNESS_MAIN
