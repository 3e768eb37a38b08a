// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel API (include/linux/rust-dma-heap.h), driven through the
 * test importer: a driver finds a heap by name, allocates a zeroed dma-buf
 * from it and maps it; bad requests get the ioctl's errnos; a held heap
 * keeps the module loaded.
 */
#include "../kselftest_harness.h"
#include "rdh.h"
#include "rdh_importer.h"

#define MIB (1024UL * 1024)

/* One request through the importer: 0 or -errno. */
static int heap_req(int imp, struct rdh_heap_req *req, const char *name, __u32 op)
{
	snprintf(req->name, sizeof(req->name), "%s", name);
	req->op = op;
	return ioctl(imp, RDH_IMPORT_HEAP, req) ? -errno : 0;
}

/* fdinfo's exp_name of @fd into @buf (empty when missing). */
static void exporter_of(int fd, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "exp_name: %63s", buf) == 1)
			break;
	fclose(f);
}

FIXTURE(kapi) {
	int imp;
};

FIXTURE_SETUP(kapi)
{
	self->imp = rdh_open_importer();
	if (self->imp < 0)
		SKIP(return, RDH_NO_IMPORTER);
}

FIXTURE_TEARDOWN(kapi)
{
	if (self->imp >= 0)
		close(self->imp);
}

/* Every heap: a zeroed buffer of the size asked, mapped, named, counted. */
TEST_F(kapi, alloc_from_every_heap)
{
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	size_t len = MIB + 4096 + 100, want = MIB + 8192;
	char got[64];
	int n, h;

	ASSERT_NE(NULL, names);
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n);
	for (h = 0; h < n; h++) {
		struct rdh_heap_req req = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
		int bufs = rdh_bufinfo_count(names[h]);
		unsigned char *p;
		size_t i;

		ASSERT_EQ(0, heap_req(self->imp, &req, names[h], RDH_HEAP_ALLOC))
			TH_LOG("%s", names[h]);
		EXPECT_STREQ(names[h], req.got_name);
		EXPECT_EQ(want, req.size) TH_LOG("%s", names[h]);
		EXPECT_EQ(1, req.zeroed) TH_LOG("%s", names[h]);
		EXPECT_LE(1, req.nents) TH_LOG("%s", names[h]);
		ASSERT_LE(0, req.fd);
		exporter_of(req.fd, got, sizeof(got));
		EXPECT_STREQ(names[h], got);
		if (bufs >= 0)
			EXPECT_EQ(bufs + 1, rdh_bufinfo_count(names[h]));
		p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, req.fd, 0);
		ASSERT_NE(MAP_FAILED, p) TH_LOG("%s: %s", names[h], strerror(errno));
		for (i = 0; i < want && !p[i]; i++)
			;
		EXPECT_EQ(want, i) TH_LOG("%s: byte %zu not zero", names[h], i);
		munmap(p, want);
		close(req.fd);
		if (bufs >= 0)
			EXPECT_EQ(bufs, rdh_bufinfo_count(names[h]));
	}
	free(names);
}

/* The ioctl's errnos, and nothing left behind. */
TEST_F(kapi, bad_requests)
{
	struct rdh_heap_req req = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
	int bufs = rdh_bufinfo_count("system"), fds = rdh_count_fds();
	int heap = rdh_open_heap("system", O_RDONLY);

	if (heap < 0)
		SKIP(return, "no system heap");
	close(heap);
	EXPECT_EQ(-ENOENT, heap_req(self->imp, &req, "no-such-heap", RDH_HEAP_ALLOC));
	EXPECT_EQ(-ENOENT, heap_req(self->imp, &req, "", RDH_HEAP_ALLOC));
	req.len = 0;
	EXPECT_EQ(-EINVAL, heap_req(self->imp, &req, "system", RDH_HEAP_ALLOC));
	req.len = 4096;
	req.heap_flags = 1;
	EXPECT_EQ(-EINVAL, heap_req(self->imp, &req, "system", RDH_HEAP_ALLOC));
	req.heap_flags = 0;
	req.fd_flags = O_RDWR | O_NONBLOCK;
	EXPECT_EQ(-EINVAL, heap_req(self->imp, &req, "system", RDH_HEAP_ALLOC));
	req.fd_flags = O_RDWR;
	req.len = 1ULL << 50;
	EXPECT_EQ(-ENOMEM, heap_req(self->imp, &req, "system", RDH_HEAP_ALLOC));
	EXPECT_EQ(-ENOENT, heap_req(self->imp, &req, "system", RDH_HEAP_RELEASE));
	EXPECT_EQ(bufs, rdh_bufinfo_count("system"));
	EXPECT_EQ(fds, rdh_count_fds());
}

/*
 * A held heap keeps the module loaded; putting it (or closing the holder)
 * lets it go. Without the module the API finds nothing.
 */
TEST_F(kapi, held_heap_pins_module)
{
	struct rdh_heap_req req = { .len = 4096, .fd_flags = O_RDWR | O_CLOEXEC };
	int refs = rdh_module_refcnt(), imp2;

	if (refs < 0)
		SKIP(return, "module not loaded as a module");
	ASSERT_EQ(0, heap_req(self->imp, &req, "system", RDH_HEAP_HOLD));
	EXPECT_STREQ("system", req.got_name);
	EXPECT_LT(refs, rdh_module_refcnt());
	EXPECT_EQ(-EBUSY, heap_req(self->imp, &req, "system", RDH_HEAP_HOLD));
	EXPECT_EQ(-EWOULDBLOCK, rdh_unload_module());
	/* Still usable meanwhile. */
	ASSERT_EQ(0, heap_req(self->imp, &req, "system", RDH_HEAP_ALLOC));
	close(req.fd);
	ASSERT_EQ(0, heap_req(self->imp, &req, "system", RDH_HEAP_RELEASE));
	EXPECT_EQ(refs, rdh_module_refcnt());

	/* Closing the holder puts the heap too. */
	imp2 = open("/dev/rdh_importer", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, imp2);
	ASSERT_EQ(0, heap_req(imp2, &req, "system", RDH_HEAP_HOLD));
	EXPECT_LT(refs, rdh_module_refcnt());
	close(imp2);
	EXPECT_EQ(refs, rdh_module_refcnt());

	/* Gone: nothing to find; back: found again. */
	if (rdh_provider())
		SKIP(return, RDH_PINNED);
	ASSERT_EQ(0, rdh_unload_module());
	EXPECT_EQ(-ENODEV, heap_req(self->imp, &req, "system", RDH_HEAP_ALLOC));
	ASSERT_EQ(0, rdh_load_module(""));
	ASSERT_EQ(0, heap_req(self->imp, &req, "system", RDH_HEAP_ALLOC));
	close(req.fd);
}

TEST_HARNESS_MAIN
