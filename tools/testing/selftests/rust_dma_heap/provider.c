// SPDX-License-Identifier: GPL-2.0
/*
 * Provider mode (a kernel with the dma-heap framework, CONFIG_DMABUF_HEAPS,
 * and this module loaded with its default parameters): our heaps are the
 * kernel's /dev/dma_heap/<name>, served through the framework's own ioctl.
 * A buffer of ours holds a reference on our module, one of another
 * provider does not: that tells whose a node is. A name the kernel had
 * before (RDH_TAKEN=<name>: upstream's heap loaded first) stays the other
 * provider's, with one line in the log; the module refuses to unload.
 */
#include <sys/stat.h>

#include "rdh.h"
#include "../kselftest_harness.h"

/*
 * Whether a buffer of /dev/dma_heap/@name pins our module: 1 ours, 0 not,
 * -errno when the heap cannot allocate.
 */
static int ours(const char *name)
{
	char path[128];
	int heap, buf, before, after;

	snprintf(path, sizeof(path), "/dev/dma_heap/%s", name);
	heap = open(path, O_RDONLY | O_CLOEXEC);
	if (heap < 0)
		return -errno;
	before = rdh_module_refcnt();
	buf = rdh_alloc(heap, 4096, O_RDWR | O_CLOEXEC, 0);
	close(heap);
	if (buf < 0)
		return buf;
	after = rdh_module_refcnt();
	close(buf);
	return after == before + 1;
}

static const char *taken(void)
{
	const char *name = getenv("RDH_TAKEN");

	return name && *name ? name : NULL;
}

TEST(every_heap_of_ours_is_in_dev_dma_heap)
{
	static const char *const names[] = { "system", "system-uncached", "auto",
					     "default_cma_region" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		int r = ours(names[i]);
		char dir[128];

		/* Our heaps, and only they, have attributes of ours. */
		snprintf(dir, sizeof(dir), "/sys/kernel/rust_dma_heap/heaps/%s", names[i]);
		if (taken() && !strcmp(names[i], taken())) {
			/* The kernel's own, untouched by our load. */
			EXPECT_EQ(0, r) TH_LOG("%s", names[i]);
			EXPECT_EQ(-1, access(dir, F_OK)) TH_LOG("%s", names[i]);
		} else {
			EXPECT_EQ(1, r) TH_LOG("%s", names[i]);
			EXPECT_EQ(0, access(dir, F_OK)) TH_LOG("%s", names[i]);
		}
	}
}

TEST(the_framework_ioctl_validates)
{
	int heap = open("/dev/dma_heap/system-uncached", O_RDONLY | O_CLOEXEC);

	ASSERT_LE(0, heap);
	/* The framework's checks, before our allocate is called. */
	EXPECT_EQ(-EINVAL, rdh_alloc(heap, 0, O_RDWR | O_CLOEXEC, 0));
	EXPECT_EQ(-EINVAL, rdh_alloc(heap, 4096, O_RDWR | O_CLOEXEC, 1));
	close(heap);
}

TEST(taken_names_logged)
{
	char line[128];

	if (!taken()) {
		/* Nothing loaded before ours: every name was ours to add. */
		EXPECT_FALSE(rdh_kmsg_has("already: ours not added"));
		return;
	}
	snprintf(line, sizeof(line), "the kernel has a heap named %s already", taken());
	EXPECT_TRUE(rdh_kmsg_has(line));
}

/* An attribute of /sys/kernel/rust_dma_heap/heaps/@heap/, or -1. */
static long long attr(const char *heap, const char *name)
{
	char path[160], buf[32];

	snprintf(path, sizeof(path), "/sys/kernel/rust_dma_heap/heaps/%s/%s", heap, name);
	if (rdh_read_text(path, buf, sizeof(buf)))
		return -1;
	return strtoll(buf, NULL, 10);
}

TEST(attributes_under_sys_kernel)
{
	int heap = open("/dev/dma_heap/default_cma_region", O_RDONLY | O_CLOEXEC), buf;
	long long used;

	ASSERT_LE(0, heap);
	EXPECT_EQ(1, attr("default_cma_region", "contiguous"));
	EXPECT_EQ(1, attr("default_cma_region", "cached"));
	EXPECT_LT(0, attr("default_cma_region", "size"));
	EXPECT_EQ(0, attr("system-uncached", "cached"));
	if (!taken() || strcmp(taken(), "system"))
		EXPECT_LE(0, attr("system", "pool"));
	/* Only the system heap keeps a pool. */
	EXPECT_EQ(-1, attr("default_cma_region", "pool"));
	used = attr("default_cma_region", "used");
	ASSERT_LE(0, used);
	buf = rdh_alloc(heap, 1 << 20, O_RDWR | O_CLOEXEC, 0);
	ASSERT_LE(0, buf);
	EXPECT_EQ(used + (1 << 20), attr("default_cma_region", "used"));
	close(buf);
	EXPECT_EQ(used, attr("default_cma_region", "used"));
	close(heap);
}

TEST(the_module_stays)
{
	EXPECT_TRUE(rdh_kmsg_has("the module stays loaded until reboot"));
	/* Pinned: the loader would wait for the references to go (EWOULDBLOCK). */
	EXPECT_EQ(-EWOULDBLOCK, rdh_unload_module());
	/* Still serving. */
	EXPECT_EQ(1, ours("system-uncached"));
}

TEST_HARNESS_MAIN
