// SPDX-License-Identifier: GPL-2.0
/*
 * Beside upstream's dma-heap framework (CONFIG_DMABUF_HEAPS=y): upstream
 * owns /dev/dma_heap, this module loads under class_name=rust_dma_heap, and
 * both allocate in one boot. Loading standalone (mode=standalone) with the
 * default name is refused (EBUSY) with a message naming the parameter, and
 * leaves upstream's heaps intact, with no warning in the kernel log. (A
 * default load would add our heaps to upstream's framework and pin the
 * module: provider.c tests that, in boots of its own.)
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include "rdh.h"
#include "../kselftest_harness.h"

#define OURS "/dev/rust_dma_heap/system"
#define UPSTREAM "/dev/dma_heap/system"

static int alloc_from(const char *node, size_t len)
{
	int heap = open(node, O_RDONLY | O_CLOEXEC), buf;

	if (heap < 0)
		return -errno;
	buf = rdh_alloc(heap, len, O_RDWR | O_CLOEXEC, 0);
	close(heap);
	return buf;
}

TEST(both_frameworks_have_a_system_heap)
{
	struct stat a, b;

	ASSERT_EQ(0, stat(UPSTREAM, &a));
	ASSERT_EQ(0, stat(OURS, &b));
	EXPECT_TRUE(S_ISCHR(a.st_mode));
	EXPECT_TRUE(S_ISCHR(b.st_mode));
	EXPECT_NE(a.st_rdev, b.st_rdev);
	EXPECT_EQ(0, access("/sys/class/dma_heap/system", F_OK));
	EXPECT_EQ(0, access("/sys/class/rust_dma_heap/system", F_OK));
}

TEST(both_allocate_side_by_side)
{
	int up = alloc_from(UPSTREAM, 1 << 20), ours;
	uint8_t *p, *q;

	ASSERT_LE(0, up);
	EXPECT_EQ(0, rdh_module_refcnt());
	ours = alloc_from(OURS, 1 << 20);
	ASSERT_LE(0, ours);
	/* Only our buffer pins our module. */
	EXPECT_EQ(1, rdh_module_refcnt());
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, up, 0);
	q = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, ours, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(MAP_FAILED, q);
	memset(p, 0x11, 1 << 20);
	memset(q, 0x22, 1 << 20);
	EXPECT_EQ(0x11, p[12345]);
	EXPECT_EQ(0x22, q[12345]);
	munmap(p, 1 << 20);
	munmap(q, 1 << 20);
	close(up);
	close(ours);
	EXPECT_EQ(0, rdh_module_refcnt());
}

TEST(default_class_name_refused_with_hint)
{
	int buf;

	ASSERT_EQ(0, rdh_unload_module());
	/* The loader reserves EEXIST for "already loaded": EBUSY it is. */
	EXPECT_EQ(-EBUSY, rdh_load_module("mode=standalone"));
	EXPECT_TRUE(rdh_kmsg_has("class_name="));
	EXPECT_TRUE(rdh_kmsg_has("mode=provider"));
	/* Upstream's heaps are untouched by the failed load. */
	buf = alloc_from(UPSTREAM, PAGE);
	EXPECT_LE(0, buf);
	close(buf);
	ASSERT_EQ(0, rdh_load_module("class_name=rust_dma_heap"));
	buf = alloc_from(OURS, PAGE);
	EXPECT_LE(0, buf);
	close(buf);
}

TEST_HARNESS_MAIN
