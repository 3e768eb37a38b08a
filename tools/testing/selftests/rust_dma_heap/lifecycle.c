// SPDX-License-Identifier: GPL-2.0
/*
 * The registry as userspace and udev see it, and the module's lifetime:
 * sysfs class, node mode, unload refused while a buffer or node is in use,
 * reload under another class name, heaps disabled at load time.
 *
 * Needs the module at RDH_KO (default /lib/modules/rust_dma_heap.ko),
 * loaded with default parameters; leaves it so.
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include "rdh.h"
#include "../kselftest_harness.h"


static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

TEST(class_in_sysfs_like_upstream)
{
	char buf[512], link[256];
	ssize_t n;

	n = readlink("/sys/class/dma_heap/system/subsystem", link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = '\0';
	/* udev rules match SUBSYSTEM=="dma_heap". */
	EXPECT_STREQ("dma_heap", strrchr(link, '/') + 1);
	ASSERT_EQ(0, rdh_read_text("/sys/class/dma_heap/system/uevent", buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "DEVNAME=dma_heap/system")) TH_LOG("%s", buf);
	ASSERT_EQ(0, rdh_read_text("/sys/class/dma_heap/system/dev", buf, sizeof(buf)));
	EXPECT_NE(NULL, strchr(buf, ':'));
}

TEST(node_is_root_0600_char_device)
{
	struct stat st;

	ASSERT_EQ(0, stat("/dev/dma_heap/system", &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
}

TEST(node_is_not_seekable)
{
	int fd = rdh_open_heap("system", O_RDONLY);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, lseek(fd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
	close(fd);
}

TEST(unload_refused_while_buffer_lives)
{
	int heap = rdh_open_heap("system", O_RDONLY), buf;
	uint32_t *p;

	ASSERT_LE(0, heap);
	buf = rdh_alloc(heap, 2 * PAGE, O_RDWR, 0);
	ASSERT_LE(0, buf);
	close(heap);
	/* The buffer pins the module (the exporter's owner). */
	EXPECT_EQ(1, rdh_module_refcnt());
	EXPECT_EQ(-EWOULDBLOCK, rdh_unload_module());
	/* ...and stays fully usable. */
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[PAGE / 4] = 0xfeedface;
	EXPECT_EQ(0xfeedface, p[PAGE / 4]);
	EXPECT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
	EXPECT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW));
	munmap(p, 2 * PAGE);
	close(buf);
	EXPECT_EQ(0, rdh_module_refcnt());
}

TEST(unload_refused_while_node_open)
{
	int heap = rdh_open_heap("system", O_RDONLY);

	ASSERT_LE(0, heap);
	EXPECT_EQ(-EWOULDBLOCK, rdh_unload_module());
	close(heap);
	EXPECT_EQ(0, rdh_module_refcnt());
}

TEST(reload_under_another_class_name)
{
	int heap, buf;

	ASSERT_EQ(0, rdh_unload_module());
	EXPECT_FALSE(exists("/dev/dma_heap/system"));
	EXPECT_FALSE(exists("/sys/class/dma_heap"));
	ASSERT_EQ(0, rdh_load_module("class_name=rdh_alt"));
	EXPECT_TRUE(exists("/sys/class/rdh_alt/system"));
	EXPECT_FALSE(exists("/dev/dma_heap/system"));
	heap = open("/dev/rdh_alt/system", O_RDONLY | O_CLOEXEC);
	EXPECT_LE(0, heap);
	if (heap >= 0) {
		buf = rdh_alloc(heap, PAGE, O_RDWR, 0);
		EXPECT_LE(0, buf);
		close(buf);
		close(heap);
	}
	ASSERT_EQ(0, rdh_unload_module());
	EXPECT_FALSE(exists("/dev/rdh_alt/system"));
	ASSERT_EQ(0, rdh_load_module(""));
	EXPECT_TRUE(exists("/dev/dma_heap/system"));
}

TEST(heap_disabled_at_load_time)
{
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module("system_heap=0"));
	EXPECT_TRUE(exists("/sys/class/dma_heap"));
	EXPECT_FALSE(exists("/dev/dma_heap/system"));
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module(""));
	EXPECT_TRUE(exists("/dev/dma_heap/system"));
}

TEST(carveout_param_refuses_system_ram)
{
	ASSERT_EQ(0, rdh_unload_module());
	/* The start of QEMU virt's RAM: the kernel's own memory. */
	EXPECT_EQ(-EINVAL, rdh_load_module("carveout=16M@0x40000000"));
	EXPECT_TRUE(rdh_kmsg_has("carveout=16M@0x40000000: the range holds ordinary RAM"));
	/* Not memory at all: QEMU virt's PL011 registers. */
	if (exists("/proc/device-tree/pl011@9000000")) {
		EXPECT_EQ(-EINVAL, rdh_load_module("carveout=4K@0x9000000"));
		EXPECT_TRUE(rdh_kmsg_has("carveout=4K@0x9000000: the range is not memory"));
	}
	EXPECT_EQ(-EINVAL, rdh_load_module("carveout=16M"));
	EXPECT_EQ(-EINVAL, rdh_load_module("carveout=0@0xa0000000"));
	ASSERT_EQ(0, rdh_load_module(""));
	EXPECT_TRUE(exists("/dev/dma_heap/system"));
}

TEST(carveout_param_declares_a_heap)
{
	const char *node = "/dev/dma_heap/carveout@a0000000";
	size_t len = 16 << 20, i;
	int heap, buf;
	uint64_t *p;

	if (!exists("/proc/device-tree/reserved-memory/spare@a0000000") && rdh_missing_ok())
		SKIP(return, "no spare reserved range on this machine");
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module("carveout=16M@0xa0000000"));
	heap = open(node, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, heap);
	buf = rdh_alloc(heap, len, O_RDWR, 0);
	ASSERT_LE(0, buf);
	EXPECT_EQ(-ENOMEM, rdh_alloc(heap, PAGE, O_RDWR, 0));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < len / 8; i++)
		if (p[i])
			break;
	EXPECT_EQ(len / 8, i);
	memset(p, 0x5a, len);
	munmap(p, len);
	close(buf);
	close(heap);
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module(""));
	EXPECT_FALSE(exists(node));
}

TEST(unload_reload_cycles)
{
	int i, heap, buf;

	for (i = 0; i < 10; i++) {
		ASSERT_EQ(0, rdh_unload_module());
		ASSERT_EQ(0, rdh_load_module(""));
		heap = rdh_open_heap("system", O_RDONLY);
		ASSERT_LE(0, heap);
		buf = rdh_alloc(heap, 16 * PAGE, O_RDWR, 0);
		ASSERT_LE(0, buf);
		close(buf);
		close(heap);
	}
}

TEST_HARNESS_MAIN
