// SPDX-License-Identifier: GPL-2.0
/*
 * The registry as userspace and udev see it, and the module's lifetime:
 * sysfs class, node mode, unload refused while a buffer or node is in use,
 * reload under another class name, heaps disabled at load time, loads
 * that fail while another thread opens every node, and RDH_MODULE_CYCLES
 * (default 100) unload/reload cycles that leave no memory or kmemleak
 * report behind.
 *
 * Needs the module at RDH_KO (default /lib/modules/rust_dma_heap.ko),
 * loaded with default parameters; leaves it so.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "rdh.h"
#include "../kselftest_harness.h"

/*
 * Most tests here unload and load the module, which takes seconds on the
 * debug kernel (KASAN under TCG, and each unload waits for the module's
 * kobject release, which DEBUG_KOBJECT_RELEASE makes 1-3 s late): the
 * harness's 30 s is not enough for a test of several loads there.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300


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

TEST(attributes_also_under_sys_kernel)
{
	char a[64], b[64], path[160];
	int heap = rdh_open_heap("system", O_RDONLY | O_CLOEXEC), buf;

	ASSERT_LE(0, heap);
	buf = rdh_alloc(heap, 3 * 4096, O_RDWR | O_CLOEXEC, 0);
	ASSERT_LE(0, buf);
	/* The same values at both paths (provider mode has only the second). */
	snprintf(path, sizeof(path), "/sys/class/%s/system/used", rdh_class());
	ASSERT_EQ(0, rdh_read_text(path, a, sizeof(a)));
	ASSERT_EQ(0, rdh_read_text("/sys/kernel/rust_dma_heap/heaps/system/used", b, sizeof(b)));
	EXPECT_STREQ(a, b);
	EXPECT_LE(3 * 4096, atoll(b));
	close(buf);
	close(heap);
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

TEST(mem_accounting_readable_in_sysfs)
{
	const char *path = "/sys/module/rust_dma_heap/parameters/mem_accounting";
	struct stat st;
	char text[8];

	/*
	 * As upstream's dma-heap.c: module_param(mem_accounting, bool, 0444),
	 * but on by default here; mem_accounting=0 restores upstream's.
	 */
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(0444, st.st_mode & 0777);
	ASSERT_EQ(0, rdh_read_text(path, text, sizeof(text)));
	EXPECT_STREQ("Y", text);
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module("mem_accounting=0"));
	ASSERT_EQ(0, rdh_read_text(path, text, sizeof(text)));
	EXPECT_STREQ("N", text);
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module(""));
}

TEST(mode_param)
{
	/* With the kernel's framework a provider load would pin the module. */
	if (!access("/sys/module/dma_heap/parameters/mem_accounting", F_OK))
		SKIP(return, "this kernel has the dma-heap framework");
	ASSERT_EQ(0, rdh_unload_module());
	/* Nothing to provide to here; a mode nobody knows. */
	EXPECT_EQ(-EINVAL, rdh_load_module("mode=provider"));
	EXPECT_TRUE(rdh_kmsg_has("mode=provider: this kernel has no dma-heap framework"));
	EXPECT_EQ(-EINVAL, rdh_load_module("mode=bogus"));
	EXPECT_EQ(-ENOENT, access("/dev/dma_heap/system", F_OK) ? -errno : 0);
	/* Standalone is what auto gives here: our own /dev/dma_heap. */
	ASSERT_EQ(0, rdh_load_module("mode=standalone"));
	EXPECT_EQ(0, access("/dev/dma_heap/system", F_OK));
	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module(""));
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

/* An opener thread's state: it runs until `stop`. */
struct opener {
	atomic_bool stop;
	atomic_long tries, opened, allocated;
	char (*names)[RDH_NAME_LEN];
	int n;
};

/* Opens every heap's node (the names the module had before), again and
 * again, allocating 4 KiB from each that opens: what a program starting
 * while the module loads does.
 */
static void *open_every_node(void *arg)
{
	struct opener *o = arg;
	int fd, buf, h;

	while (!atomic_load(&o->stop)) {
		for (h = 0; h < o->n; h++) {
			atomic_fetch_add(&o->tries, 1);
			fd = rdh_open_heap(o->names[h], O_RDONLY);
			if (fd < 0)
				continue;
			atomic_fetch_add(&o->opened, 1);
			buf = rdh_alloc(fd, PAGE, O_RDWR, 0);
			if (buf >= 0) {
				atomic_fetch_add(&o->allocated, 1);
				close(buf);
			}
			close(fd);
		}
	}
	return NULL;
}

/*
 * A load that fails (a bad carveout=, found after the other heaps were set
 * up) while another thread opens every node in a loop, RDH_FAILED_LOADS
 * (default 100) times: no node may ever be visible during a load that
 * fails (a file opened then would outlive the module's code), and nothing
 * may warn.
 */
FIXTURE(loads) {
	int unused;
};

FIXTURE_SETUP(loads)
{
}

FIXTURE_TEARDOWN(loads)
{
}

/* A load takes about a second on the debug kernel (KASAN under TCG). */
TEST_F_TIMEOUT(loads, failed_load_publishes_nothing, 1200)
{
	const char *env = getenv("RDH_FAILED_LOADS");
	int loads = env && *env ? atoi(env) : 100, kmsg, i, bad;
	struct opener o = { 0 };
	pthread_t t;
	char first[2048];

	ASSERT_LT(0, loads);

	o.names = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	ASSERT_NE(NULL, o.names);
	o.n = rdh_list_heaps(o.names, RDH_MAX_HEAPS);
	ASSERT_LT(0, o.n);
	ASSERT_EQ(0, rdh_unload_module());
	kmsg = rdh_kmsg_mark();
	ASSERT_EQ(0, pthread_create(&t, NULL, open_every_node, &o));
	for (i = 0; i < loads; i++)
		/* The start of QEMU virt's RAM: refused. */
		ASSERT_EQ(-EINVAL, rdh_load_module("carveout=1M@0x40000000")) TH_LOG("load %d", i);
	atomic_store(&o.stop, true);
	pthread_join(t, NULL);
	ksft_print_msg("%d failed loads: %ld opens of %d nodes tried, %ld succeeded, %ld buffers\n",
		       loads, atomic_load(&o.tries), o.n, atomic_load(&o.opened),
		       atomic_load(&o.allocated));
	free(o.names);
	EXPECT_EQ(0, atomic_load(&o.opened));
	EXPECT_EQ(0, atomic_load(&o.allocated));
	EXPECT_EQ(-1, rdh_module_refcnt());
	bad = rdh_kmsg_bad_since(kmsg, first, sizeof(first));
	EXPECT_EQ(0, bad) TH_LOG("kernel log: %s", first);
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

/* The longest cycle count RDH_MODULE_CYCLES may ask for. */
#define MAX_CYCLES 10000

FIXTURE(cycles) {
	int kmsg;
};

FIXTURE_SETUP(cycles)
{
	self->kmsg = rdh_kmsg_mark();
}

FIXTURE_TEARDOWN(cycles)
{
	if (self->kmsg >= 0)
		close(self->kmsg);
}

/*
 * RDH_MODULE_CYCLES (default 100) unloads and reloads, a buffer from every
 * heap in each; after them the memory is back (MemFree, CmaFree) and
 * nothing leaked (kmemleak, where the kernel has it) or warned.
 */
TEST_F_TIMEOUT(cycles, unload_reload_cycles, 1800)
{
	const char *env = getenv("RDH_MODULE_CYCLES");
	int cycles = env && *env ? atoi(env) : 100, i, h, n, heap, buf, bad;
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	long mem, cma, mem2, cma2 = 0, slack = rdh_mem_slack(4096);
	char first[2048];
	bool kmemleak = !access(RDH_KMEMLEAK, W_OK);

	if (cycles < 1 || cycles > MAX_CYCLES)
		cycles = 100;
	ASSERT_NE(NULL, names);
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n);
	if (kmemleak) {
		/* What leaked before (old enough to be seen) is not ours. */
		sleep(6);
		ASSERT_EQ(0, rdh_kmemleak("scan"));
		ASSERT_EQ(0, rdh_kmemleak("clear"));
	}
	mem = rdh_meminfo("MemFree+pool");
	cma = rdh_meminfo("CmaFree");
	ksft_print_msg("start: MemFree %ld KiB, Slab %ld KiB, VmallocUsed %ld KiB\n", mem,
		       rdh_meminfo("Slab"), rdh_meminfo("VmallocUsed"));
	for (i = 0; i < cycles; i++) {
		ASSERT_EQ(0, rdh_unload_module()) TH_LOG("cycle %d", i);
		ASSERT_EQ(0, rdh_load_module("")) TH_LOG("cycle %d", i);
		for (h = 0; h < n; h++) {
			heap = rdh_open_heap(names[h], O_RDONLY);
			ASSERT_LE(0, heap) TH_LOG("cycle %d: %s: %s", i, names[h], strerror(errno));
			buf = rdh_alloc(heap, 16 * PAGE, O_RDWR, 0);
			ASSERT_LE(0, buf) TH_LOG("cycle %d: %s: %s", i, names[h], strerror(-buf));
			close(buf);
			close(heap);
		}
		if ((i + 1) % 25 == 0)
			ksft_print_msg("cycle %d: MemFree %ld KiB, Slab %ld KiB, VmallocUsed %ld KiB\n",
				       i + 1, rdh_meminfo("MemFree+pool"), rdh_meminfo("Slab"),
				       rdh_meminfo("VmallocUsed"));
	}
	EXPECT_EQ(0, rdh_module_refcnt());
	mem2 = rdh_meminfo_wait("MemFree+pool", mem - slack, 5000);
	if (cma >= 0)
		cma2 = rdh_meminfo_wait("CmaFree", cma - 4096, 5000);
	ksft_print_msg("%d cycles over %d heaps: MemFree %ld -> %ld KiB (slack %ld), CmaFree %ld -> %ld KiB\n",
		       cycles, n, mem, mem2, slack, cma, cma2);
	EXPECT_GE(mem2, mem - slack);
	if (cma >= 0)
		EXPECT_GE(cma2, cma - 4096);
	if (kmemleak) {
		char *report = calloc(1, 16384);

		ASSERT_NE(NULL, report);
		EXPECT_EQ(0, rdh_kmemleak_report(report, 16384)) TH_LOG("kmemleak:\n%s", report);
		free(report);
	}
	bad = rdh_kmsg_bad_since(self->kmsg, first, sizeof(first));
	self->kmsg = -1;
	EXPECT_EQ(0, bad) TH_LOG("kernel log: %s", first);
	free(names);
}

TEST_HARNESS_MAIN
