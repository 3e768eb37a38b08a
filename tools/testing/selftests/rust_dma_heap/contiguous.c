// SPDX-License-Identifier: GPL-2.0
/*
 * The contiguous heaps: buffers are one physically contiguous run inside
 * their own area (pfns from /proc/self/pagemap, area bounds from the
 * kernel's reserved-memory log), aligned like upstream's CMA heap, and an
 * exhausted area answers ENOMEM and recovers fully after frees.
 */
#include <inttypes.h>

#include "rdh.h"
#include "../kselftest_harness.h"

/* CONFIG_CMA_ALIGNMENT's default: CMA alignment is capped at 2^8 pages. */
#define CMA_MAX_ALIGN_PAGES 256

FIXTURE(contig) {
	int fd;
	int bufs;
	uint64_t area_start, area_end; /* physical, [start, end] */
};

FIXTURE_VARIANT(contig) {
	const char *name;
	const char *area; /* reserved-memory node */
	size_t capacity;
	/* Alignment cap, in pages (1: page-granular). */
	size_t max_align;
	/* Nothing but this heap uses the region. */
	bool exclusive;
};

FIXTURE_VARIANT_ADD(contig, default_cma_region) {
	.name = "default_cma_region", .area = "linux,cma", .capacity = 128UL << 20,
	.max_align = CMA_MAX_ALIGN_PAGES,
};

FIXTURE_VARIANT_ADD(contig, linux_cma) {
	.name = "linux,cma", .area = "linux,cma", .capacity = 128UL << 20,
	.max_align = CMA_MAX_ALIGN_PAGES,
};

FIXTURE_VARIANT_ADD(contig, video) {
	.name = "video", .area = "video", .capacity = 64UL << 20,
	.max_align = CMA_MAX_ALIGN_PAGES,
};

FIXTURE_VARIANT_ADD(contig, carveout_nomap) {
	.name = "carveout@b0000000", .area = "carveout@b0000000",
	.capacity = 64UL << 20, .max_align = 1, .exclusive = true,
};

FIXTURE_VARIANT_ADD(contig, carveout_mapped) {
	.name = "carveout@b4000000", .area = "carveout@b4000000",
	.capacity = 64UL << 20, .max_align = 1, .exclusive = true,
};

/*
 * "OF: reserved mem: 0x...a000000..0x...bffffff (32768 KiB) map reusable video"
 * or, for the default area without a device tree (cma= on the command
 * line: x86_64), "cma: Reserved 128 MiB at 0x0000000076800000".
 */
static int area_bounds(const char *area, uint64_t *start, uint64_t *end)
{
	char rec[1024], tail[128];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK), found = -ENOENT;
	uint64_t size = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	snprintf(tail, sizeof(tail), " %s\n", area);
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		char *p;
		size_t len;

		if (n <= 0)
			continue;
		rec[n] = '\0';
		p = strstr(rec, "reserved mem: 0x");
		len = strlen(rec);
		if (!p || len < strlen(tail) || strcmp(rec + len - strlen(tail), tail))
			continue;
		if (sscanf(p, "reserved mem: %" SCNx64 "..%" SCNx64, start, end) == 2)
			found = 0;
	}
	close(fd);
	if (found && !strcmp(area, "linux,cma") && !rdh_cmdline_cma(start, &size)) {
		*end = *start + size - 1;
		found = 0;
	}
	return found;
}

FIXTURE_SETUP(contig)
{
	self->fd = rdh_fixture_open(variant->name, &self->bufs);
	if (self->fd == RDH_MISSING)
		SKIP(return, "no heap %s of ours on this machine", variant->name);
	ASSERT_LE(0, self->fd) TH_LOG("heap %s: %s", variant->name, strerror(-self->fd));
	if (area_bounds(variant->area, &self->area_start, &self->area_end) && rdh_missing_ok())
		SKIP(return, "no reserved-memory node %s on this machine", variant->area);
	ASSERT_EQ(0, area_bounds(variant->area, &self->area_start, &self->area_end));
	ASSERT_EQ(variant->capacity, self->area_end + 1 - self->area_start);
}

FIXTURE_TEARDOWN(contig)
{
	RDH_TEARDOWN_HEAP(self->fd, self->bufs, variant->name);
}

TEST_F(contig, one_run_inside_its_area)
{
	size_t sizes[] = { PAGE, 3 * PAGE, 64 << 10, 1 << 20, 5 << 20 };
	unsigned int s;

	for (s = 0; s < ARRAY_SIZE(sizes); s++) {
		size_t pages = sizes[s] / PAGE, i;
		uint64_t *pfn = calloc(pages, sizeof(*pfn));
		int buf = rdh_alloc(self->fd, sizes[s], O_RDWR, 0);
		void *p;

		ASSERT_NE(NULL, pfn);
		ASSERT_LE(0, buf);
		p = mmap(NULL, sizes[s], PROT_READ, MAP_SHARED, buf, 0);
		ASSERT_NE(MAP_FAILED, p);
		ASSERT_EQ(0, rdh_pfns_of(p, pages, pfn));
		for (i = 1; i < pages; i++)
			if (pfn[i] != pfn[0] + i)
				break;
		EXPECT_EQ(pages, i) TH_LOG("size %zu: pfn %zu is %#" PRIx64, sizes[s], i, pfn[i]);
		EXPECT_LE(self->area_start / PAGE, pfn[0]);
		EXPECT_GE(self->area_end / PAGE, pfn[pages - 1]);
		munmap(p, sizes[s]);
		close(buf);
		free(pfn);
	}
}

TEST_F(contig, aligned_to_its_order)
{
	size_t sizes[] = { 2 * PAGE, 3 * PAGE, 64 << 10, 1 << 20, 4 << 20 };
	unsigned int s;

	for (s = 0; s < ARRAY_SIZE(sizes); s++) {
		size_t pages = sizes[s] / PAGE, align = 1;
		int buf = rdh_alloc(self->fd, sizes[s], O_RDWR, 0);
		uint64_t pfn = 0;
		void *p;

		while (align < pages)
			align <<= 1;
		if (align > variant->max_align)
			align = variant->max_align;
		ASSERT_LE(0, buf);
		p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, buf, 0);
		ASSERT_NE(MAP_FAILED, p);
		ASSERT_EQ(0, rdh_pfns_of(p, 1, &pfn));
		EXPECT_EQ(0, pfn % align) TH_LOG("size %zu at pfn %#" PRIx64, sizes[s], pfn);
		munmap(p, PAGE);
		close(buf);
	}
}

TEST_F(contig, exhaustion_enomem_then_full_recovery)
{
	size_t chunk = 1 << 20, max = variant->capacity / chunk + 1, n = 0, i;
	int *bufs = calloc(max, sizeof(int)), ret = 0;

	ASSERT_NE(NULL, bufs);
	while (n < max) {
		ret = rdh_alloc(self->fd, chunk, O_RDWR | O_CLOEXEC, 0);
		if (ret < 0)
			break;
		bufs[n++] = ret;
	}
	EXPECT_EQ(-ENOMEM, ret);
	/* Most of the area was handed out before it ran dry. */
	EXPECT_LE(variant->capacity / chunk / 2, n);
	for (i = 0; i < n; i++)
		close(bufs[i]);
	/* All of it comes back: the same buffers fit again. */
	for (i = 0; i < n; i++) {
		bufs[i] = rdh_alloc(self->fd, chunk, O_RDWR | O_CLOEXEC, 0);
		if (bufs[i] < 0)
			break;
	}
	EXPECT_EQ(n, i);
	while (i--)
		close(bufs[i]);
	free(bufs);
}

TEST_F(contig, fragmentation_loses_nothing)
{
	size_t chunk = 1 << 20, max = variant->capacity / chunk + 1, n = 0, i;
	int *bufs = calloc(max, sizeof(int)), ret;

	ASSERT_NE(NULL, bufs);
	while (n < max && (ret = rdh_alloc(self->fd, chunk, O_RDWR, 0)) >= 0)
		bufs[n++] = ret;
	EXPECT_EQ(-ENOMEM, ret);
	if (variant->exclusive)
		ASSERT_EQ(variant->capacity / chunk, n);
	/* Every other one back: 1 MiB holes, no 2 MiB run anywhere. */
	for (i = 0; i < n; i += 2)
		close(bufs[i]);
	EXPECT_EQ(-ENOMEM, rdh_alloc(self->fd, 2 * chunk, O_RDWR, 0));
	/* Every hole is reused. */
	for (i = 0; i < n; i += 2) {
		bufs[i] = rdh_alloc(self->fd, chunk, O_RDWR, 0);
		if (bufs[i] < 0)
			break;
	}
	EXPECT_LE(n, i);
	for (i = 0; i < n; i++)
		close(bufs[i]);
	/* Coalesced: the whole region in one buffer (where nobody else can
	 * hold a page of it).
	 */
	if (variant->exclusive) {
		ret = rdh_alloc(self->fd, variant->capacity, O_RDWR, 0);
		EXPECT_LE(0, ret);
		close(ret);
	}
	free(bufs);
}

TEST_HARNESS_MAIN
