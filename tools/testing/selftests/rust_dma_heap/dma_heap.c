// SPDX-License-Identifier: GPL-2.0
/*
 * DMA_HEAP_IOCTL_ALLOC and the exported dma-buf, on every heap: exact
 * errnos for every bad input, sizes, fd flags, mmap offsets and
 * protections, CPU-access syncs, the exporter name, import by vgem,
 * zeroing and the return of memory.
 */
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "rdh.h"
#include "../kselftest_harness.h"

FIXTURE(heap) {
	int fd;
	int bufs;
};

FIXTURE_VARIANT(heap) {
	const char *name;
	/* Largest buffer the tests may take. */
	size_t big;
	/* Bytes the heap can ever hold; 0: all RAM. */
	size_t capacity;
	/* Memory set aside at boot: not counted in MemFree. */
	bool reserved;
	/* Exists only when the module was loaded with carveout=. */
	bool param;
	/* Memory only at first use (auto): a CPU-access sync takes it. */
	bool deferred;
};

FIXTURE_VARIANT_ADD(heap, system) {
	.name = "system",
	.big = 256UL << 20,
};

/* Memory at first use; the CPU first: the system heap's pages. */
FIXTURE_VARIANT_ADD(heap, auto) {
	.name = "auto",
	.big = 256UL << 20,
	.deferred = true,
};

/* The system heap's pages, mapped write-combined. */
FIXTURE_VARIANT_ADD(heap, system_uncached) {
	.name = "system-uncached",
	.big = 256UL << 20,
};

/* The runner's device tree: linux,cma (default, 128 MiB), video (64 MiB). */
FIXTURE_VARIANT_ADD(heap, default_cma_region) {
	.name = "default_cma_region",
	.big = 32UL << 20,
	.capacity = 128UL << 20,
};

FIXTURE_VARIANT_ADD(heap, linux_cma) {
	.name = "linux,cma",
	.big = 32UL << 20,
	.capacity = 128UL << 20,
};

FIXTURE_VARIANT_ADD(heap, video) {
	.name = "video",
	.big = 32UL << 20,
	.capacity = 64UL << 20,
};

/* The runner's carve-outs: no-map, and left in the linear map. */
FIXTURE_VARIANT_ADD(heap, carveout_nomap) {
	.name = "carveout@b0000000",
	.big = 8UL << 20,
	.capacity = 64UL << 20,
	.reserved = true,
};

FIXTURE_VARIANT_ADD(heap, carveout_mapped) {
	.name = "carveout@b4000000",
	.big = 8UL << 20,
	.capacity = 64UL << 20,
	.reserved = true,
};

/* The x86_64 runner's: carveout= over a memmap= range (no device tree). */
FIXTURE_VARIANT_ADD(heap, carveout_param) {
	.name = "carveout@40000000",
	.big = 8UL << 20,
	.capacity = 64UL << 20,
	.reserved = true,
	.param = true,
};

FIXTURE_SETUP(heap)
{
	char param[64] = "";

	self->fd = -1;
	if (variant->param &&
	    (rdh_read_text("/sys/module/rust_dma_heap/parameters/carveout", param, sizeof(param)) ||
	     !param[0]))
		SKIP(return, "the module was loaded without carveout=");
	self->fd = rdh_fixture_open(variant->name, &self->bufs);
	if (self->fd == RDH_MISSING)
		SKIP(return, "no heap %s of ours on this machine", variant->name);
	ASSERT_LE(0, self->fd) TH_LOG("heap %s: %s", variant->name, strerror(-self->fd));
}

FIXTURE_TEARDOWN(heap)
{
	RDH_TEARDOWN_HEAP(self->fd, self->bufs, variant->name);
}

/* Index of the first word of @p[0..n) that is not @base + index. */
static size_t first_off_sequence(const uint32_t *p, size_t n, uint32_t base)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != base + i)
			break;
	return i;
}

/* Index of the first non-zero word of @p[0..n). */
static size_t first_nonzero(const uint64_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			break;
	return i;
}

static off_t buf_size(int fd)
{
	return lseek(fd, 0, SEEK_END);
}

/* A raw ioctl with an argument of any size and direction. */
static int raw_ioctl(int fd, unsigned int dir, unsigned int type,
		     unsigned int nr, unsigned int size, void *arg)
{
	return ioctl(fd, _IOC(dir, type, nr, size), arg) < 0 ? -errno : 0;
}

TEST_F(heap, one_byte_is_one_page)
{
	int buf = rdh_alloc(self->fd, 1, O_RDWR, 0);

	ASSERT_LE(0, buf);
	EXPECT_EQ(PAGE, buf_size(buf));
	close(buf);
}

TEST_F(heap, length_rounds_up_to_pages)
{
	int buf = rdh_alloc(self->fd, 3 * PAGE + 1, O_RDWR, 0);

	ASSERT_LE(0, buf);
	EXPECT_EQ(4 * PAGE, buf_size(buf));
	close(buf);
	buf = rdh_alloc(self->fd, 5 * PAGE, O_RDWR, 0);
	ASSERT_LE(0, buf);
	EXPECT_EQ(5 * PAGE, buf_size(buf));
	close(buf);
}

TEST_F(heap, sizes_one_byte_to_large)
{
	size_t sizes[] = { 1, PAGE - 1, PAGE + 1, (64 << 10) + 1, (1 << 20) + 1, variant->big };
	unsigned int s;

	for (s = 0; s < ARRAY_SIZE(sizes); s++) {
		size_t want = (sizes[s] + PAGE - 1) / PAGE * PAGE;
		int buf = rdh_alloc(self->fd, sizes[s], O_RDWR, 0);
		uint8_t *p;

		ASSERT_LE(0, buf) TH_LOG("size %zu", sizes[s]);
		EXPECT_EQ(want, buf_size(buf));
		p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
		ASSERT_NE(MAP_FAILED, p);
		/* First and last byte: zeroed, and writable. */
		EXPECT_EQ(0, p[0]);
		EXPECT_EQ(0, p[want - 1]);
		p[want - 1] = 0xa5;
		EXPECT_EQ(0xa5, p[want - 1]);
		munmap(p, want);
		close(buf);
	}
}

TEST_F(heap, zero_length_einval)
{
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, 0, O_RDWR, 0));
}

TEST_F(heap, length_wrapping_on_page_align_einval)
{
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, UINT64_MAX, O_RDWR, 0));
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, UINT64_MAX - PAGE + 2, O_RDWR, 0));
}

TEST_F(heap, nonzero_fd_on_input_einval)
{
	struct dma_heap_allocation_data d = { .len = PAGE, .fd = 3, .fd_flags = O_RDWR };

	ASSERT_EQ(-1, ioctl(self->fd, DMA_HEAP_IOCTL_ALLOC, &d));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(3, d.fd);
}

TEST_F(heap, invalid_fd_flags_einval)
{
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, PAGE, O_RDWR | O_NONBLOCK, 0));
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, PAGE, O_RDWR | O_APPEND, 0));
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, PAGE, O_RDWR | O_CREAT, 0));
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, PAGE, 0x80000000u, 0));
}

TEST_F(heap, invalid_heap_flags_einval)
{
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, PAGE, O_RDWR, 1));
	EXPECT_EQ(-EINVAL, rdh_alloc(self->fd, PAGE, O_RDWR, 1ULL << 63));
}

TEST_F(heap, null_argument_efault)
{
	ASSERT_EQ(-1, ioctl(self->fd, DMA_HEAP_IOCTL_ALLOC, NULL));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(heap, unmapped_argument_efault)
{
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p, PAGE));
	ASSERT_EQ(-1, ioctl(self->fd, DMA_HEAP_IOCTL_ALLOC, p));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(heap, failed_copy_out_leaks_nothing)
{
	struct dma_heap_allocation_data *d;
	int fds, bufs;

	d = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, d);
	d->len = 16 * PAGE;
	d->fd_flags = O_RDWR | O_CLOEXEC;
	ASSERT_EQ(0, mprotect(d, PAGE, PROT_READ));
	fds = rdh_count_fds();
	bufs = rdh_bufinfo_count(variant->name);
	ASSERT_LE(0, bufs);
	ASSERT_EQ(-1, ioctl(self->fd, DMA_HEAP_IOCTL_ALLOC, d));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(fds, rdh_count_fds());
	EXPECT_EQ(bufs, rdh_bufinfo_count(variant->name));
	munmap(d, PAGE);
}

TEST_F(heap, smaller_struct_compat)
{
	/* An older ABI: len, fd, fd_flags; no heap_flags. */
	struct { uint64_t len; uint32_t fd, fd_flags; } d = { PAGE, 0, O_RDWR };

	ASSERT_EQ(0, raw_ioctl(self->fd, _IOC_READ | _IOC_WRITE, 'H', 0, sizeof(d), &d));
	ASSERT_LT(0, d.fd);
	EXPECT_EQ(PAGE, buf_size(d.fd));
	close(d.fd);
}

TEST_F(heap, larger_struct_compat)
{
	/* A newer ABI with fields this kernel does not know: ignored, and
	 * written back as they came. (A 32-byte argument is the
	 * charge-the-client proposal's, see charge.c: 40 bytes here.)
	 */
	struct {
		struct dma_heap_allocation_data d;
		uint64_t extra[2];
	} a = { { .len = 2 * PAGE, .fd_flags = O_RDWR },
		{ 0xa5a5a5a5a5a5a5a5ULL, 0x5a5a5a5a5a5a5a5aULL } };

	ASSERT_EQ(0, raw_ioctl(self->fd, _IOC_READ | _IOC_WRITE, 'H', 0, sizeof(a), &a));
	ASSERT_LT(0, a.d.fd);
	EXPECT_EQ(2 * PAGE, buf_size(a.d.fd));
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, a.extra[0]);
	EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, a.extra[1]);
	close(a.d.fd);
}

TEST_F(heap, unknown_command_enotty)
{
	struct dma_heap_allocation_data d = { .len = PAGE, .fd_flags = O_RDWR };

	if (getenv("RDH_PROVIDER")) {
		/* The kernel's framework answers (upstream's EINVAL). */
		EXPECT_EQ(-EINVAL, raw_ioctl(self->fd, _IOC_READ | _IOC_WRITE, 'H', 1, sizeof(d), &d));
		EXPECT_EQ(-EINVAL, raw_ioctl(self->fd, _IOC_READ | _IOC_WRITE, 'H', 0xff, sizeof(d), &d));
		EXPECT_EQ(0, d.fd);
		return;
	}
	/* Another command number of the heap's magic. */
	EXPECT_EQ(-ENOTTY, raw_ioctl(self->fd, _IOC_READ | _IOC_WRITE, 'H', 1, sizeof(d), &d));
	EXPECT_EQ(-ENOTTY, raw_ioctl(self->fd, _IOC_READ | _IOC_WRITE, 'H', 0xff, sizeof(d), &d));
	/* Another magic. */
	EXPECT_EQ(-ENOTTY, raw_ioctl(self->fd, _IOC_READ | _IOC_WRITE, 'X', 0, sizeof(d), &d));
	/* The ALLOC number without input reads as len 0, as upstream. */
	EXPECT_EQ(-EINVAL, raw_ioctl(self->fd, _IOC_NONE, 'H', 0, 0, NULL));
	EXPECT_EQ(0, d.fd);
}

TEST_F(heap, fd_flags_cloexec)
{
	int buf = rdh_alloc(self->fd, PAGE, O_RDWR | O_CLOEXEC, 0);

	ASSERT_LE(0, buf);
	EXPECT_EQ(FD_CLOEXEC, fcntl(buf, F_GETFD) & FD_CLOEXEC);
	close(buf);
	buf = rdh_alloc(self->fd, PAGE, O_RDWR, 0);
	ASSERT_LE(0, buf);
	EXPECT_EQ(0, fcntl(buf, F_GETFD) & FD_CLOEXEC);
	close(buf);
}

TEST_F(heap, read_only_fd_refuses_writable_map)
{
	int buf = rdh_alloc(self->fd, 2 * PAGE, O_RDONLY, 0);
	void *p;

	ASSERT_LE(0, buf);
	EXPECT_EQ(O_RDONLY, fcntl(buf, F_GETFL) & O_ACCMODE);
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EACCES, errno);
	p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, ((char *)p)[PAGE]);
	/* Nor can a read-only map become writable. */
	EXPECT_EQ(-1, mprotect(p, 2 * PAGE, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	munmap(p, 2 * PAGE);
	close(buf);
}

TEST_F(heap, beyond_capacity_enomem_at_once)
{
	struct timespec t0, t1;
	uint64_t capacity = variant->capacity;

	if (!capacity)
		capacity = (uint64_t)rdh_meminfo("MemTotal") * 1024;
	ASSERT_LT(0, (int64_t)capacity);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(-ENOMEM, rdh_alloc(self->fd, 1ULL << 50, O_RDWR, 0));
	EXPECT_EQ(-ENOMEM, rdh_alloc(self->fd, capacity * 2, O_RDWR, 0));
	EXPECT_EQ(-ENOMEM, rdh_alloc(self->fd, capacity + PAGE, O_RDWR, 0));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Refused up front: no reclaim, no OOM killer. */
	EXPECT_GT(2, t1.tv_sec - t0.tv_sec);
}

TEST_F(heap, mmap_page_offsets)
{
	int buf = rdh_alloc(self->fd, 4 * PAGE, O_RDWR, 0);
	uint32_t *p, *q;
	int i;

	ASSERT_LE(0, buf);
	p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 4; i++)
		p[i * PAGE / 4] = 0x1000 + i;
	q = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, buf, 2 * PAGE);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0x1002, q[0]);
	EXPECT_EQ(0x1003, q[PAGE / 4]);
	munmap(q, 2 * PAGE);
	q = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, buf, 3 * PAGE);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0x1003, q[0]);
	munmap(q, PAGE);
	munmap(p, 4 * PAGE);
	close(buf);
}

TEST_F(heap, mapped_pages_cannot_be_pinned)
{
	/* A pinned page could outlive the buffer: mappings are VM_IO, and
	 * get_user_pages (here through vmsplice) refuses them.
	 */
	int buf = rdh_alloc(self->fd, 2 * PAGE, O_RDWR, 0), pipefd[2];
	static char normal[PAGE];
	struct iovec iov;
	void *p;

	ASSERT_LE(0, buf);
	ASSERT_EQ(0, pipe(pipefd));
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* Ordinary memory can be spliced: the check below can tell. */
	iov.iov_base = normal;
	iov.iov_len = 64;
	EXPECT_EQ(64, vmsplice(pipefd[1], &iov, 1, 0));
	iov.iov_base = p;
	EXPECT_EQ(-1, vmsplice(pipefd[1], &iov, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	munmap(p, 2 * PAGE);
	close(pipefd[0]);
	close(pipefd[1]);
	close(buf);
}

TEST_F(heap, mmap_past_end_einval)
{
	int buf = rdh_alloc(self->fd, 4 * PAGE, O_RDWR, 0);

	ASSERT_LE(0, buf);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 5 * PAGE, PROT_READ, MAP_SHARED, buf, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, buf, 3 * PAGE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ, MAP_SHARED, buf, 4 * PAGE));
	EXPECT_EQ(EINVAL, errno);
	close(buf);
}

TEST_F(heap, mmap_private_einval)
{
	int buf = rdh_alloc(self->fd, 4 * PAGE, O_RDWR, 0);
	uint8_t *p;

	ASSERT_LE(0, buf);
	/* A private copy of a device buffer never sees the device's writes. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, buf, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, buf, PAGE));
	EXPECT_EQ(EINVAL, errno);
	/* The buffer is unharmed: shared mappings still work, and read zero. */
	p = mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, p[0]);
	EXPECT_EQ(0, p[4 * PAGE - 1]);
	munmap(p, 4 * PAGE);
	close(buf);
}

TEST_F(heap, mmap_across_blocks)
{
	/* 1 MiB + 64 KiB + 4 KiB: a block of each size on the system heap. */
	size_t len = (1 << 20) + (64 << 10) + PAGE, i;
	int buf = rdh_alloc(self->fd, len, O_RDWR, 0);
	uint32_t *p, *q;

	ASSERT_LE(0, buf);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < len / 4; i++)
		p[i] = i;
	/* Straddle the first block boundary, then the second. */
	q = mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, buf, 255 * PAGE);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(3 * PAGE / 4, first_off_sequence(q, 3 * PAGE / 4, 255 * PAGE / 4));
	munmap(q, 3 * PAGE);
	q = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, buf, 271 * PAGE);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(2 * PAGE / 4, first_off_sequence(q, 2 * PAGE / 4, 271 * PAGE / 4));
	munmap(q, 2 * PAGE);
	munmap(p, len);
	close(buf);
}

TEST_F(heap, zeroed_after_reuse)
{
	size_t len = 4 << 20;
	int round;

	for (round = 0; round < 8; round++) {
		int buf = rdh_alloc(self->fd, len, O_RDWR, 0);
		uint64_t *p;

		ASSERT_LE(0, buf);
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
		ASSERT_NE(MAP_FAILED, p);
		ASSERT_EQ(len / 8, first_nonzero(p, len / 8)) TH_LOG("round %d", round);
		memset(p, 0xff, len);
		munmap(p, len);
		close(buf);
	}
}

TEST_F(heap, sync_valid_flags)
{
	int buf = rdh_alloc(self->fd, PAGE, O_RDWR, 0);

	ASSERT_LE(0, buf);
	EXPECT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
	EXPECT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW));
	EXPECT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
	EXPECT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
	EXPECT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE));
	EXPECT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE));
	close(buf);
}

TEST_F(heap, sync_invalid_flags_einval)
{
	int buf = rdh_alloc(self->fd, PAGE, O_RDWR, 0);

	ASSERT_LE(0, buf);
	EXPECT_EQ(-EINVAL, rdh_sync(buf, 0x10));
	EXPECT_EQ(-EINVAL, rdh_sync(buf, DMA_BUF_SYNC_START));
	EXPECT_EQ(-EINVAL, rdh_sync(buf, DMA_BUF_SYNC_END));
	close(buf);
}

TEST_F(heap, exporter_name_in_fdinfo)
{
	int buf = rdh_alloc(self->fd, 2 * PAGE, O_RDWR, 0);
	char path[64], text[1024], want[64];
	ssize_t n;
	int f;

	ASSERT_LE(0, buf);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", buf);
	f = open(path, O_RDONLY);
	ASSERT_LE(0, f);
	n = read(f, text, sizeof(text) - 1);
	ASSERT_LT(0, n);
	text[n] = '\0';
	snprintf(want, sizeof(want), "exp_name:\t%s\n", variant->name);
	EXPECT_NE(NULL, strstr(text, want)) TH_LOG("%s", text);
	EXPECT_NE(NULL, strstr(text, "size:\t8192\n")) TH_LOG("%s", text);
	close(f);
	close(buf);
}

TEST_F(heap, bufinfo_lists_live_buffers_only)
{
	int before = rdh_bufinfo_count(variant->name), buf;

	ASSERT_LE(0, before);
	buf = rdh_alloc(self->fd, PAGE, O_RDWR, 0);
	ASSERT_LE(0, buf);
	EXPECT_EQ(before + 1, rdh_bufinfo_count(variant->name));
	close(buf);
	EXPECT_EQ(before, rdh_bufinfo_count(variant->name));
}

TEST_F(heap, vgem_imports_and_reexports)
{
	struct drm_prime_handle imp = { .flags = DRM_CLOEXEC };
	struct drm_prime_handle again = { 0 };
	struct drm_prime_handle exp = { .flags = DRM_CLOEXEC | DRM_RDWR };
	struct drm_gem_close gc = { 0 };
	struct stat a, b;
	size_t len = 64 << 10, i;
	uint32_t *p, *q;
	int buf, vgem, bufs;

	vgem = rdh_open_vgem();
	ASSERT_LE(0, vgem) TH_LOG("no vgem device");
	bufs = rdh_bufinfo_count(variant->name);
	buf = rdh_alloc(self->fd, len, O_RDWR, 0);
	ASSERT_LE(0, buf);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE));
	for (i = 0; i < len / 4; i++)
		p[i] = i * 2654435761u;
	ASSERT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE));

	/* vgem attaches to the buffer: a real importer. */
	imp.fd = buf;
	ASSERT_EQ(0, ioctl(vgem, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp));
	/* Importing again gives the same object. */
	again.fd = buf;
	ASSERT_EQ(0, ioctl(vgem, DRM_IOCTL_PRIME_FD_TO_HANDLE, &again));
	EXPECT_EQ(imp.handle, again.handle);
	/* The buffer outlives our fd while vgem holds it... */
	ASSERT_EQ(0, fstat(buf, &b));
	munmap(p, len);
	close(buf);
	EXPECT_EQ(bufs + 1, rdh_bufinfo_count(variant->name));
	/* ...and vgem hands back the very same dma-buf, bytes and all. */
	exp.handle = imp.handle;
	ASSERT_EQ(0, ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp));
	ASSERT_EQ(0, fstat(exp.fd, &a));
	q = mmap(NULL, len, PROT_READ, MAP_SHARED, exp.fd, 0);
	ASSERT_NE(MAP_FAILED, q);
	for (i = 0; i < len / 4; i++)
		if (q[i] != (uint32_t)(i * 2654435761u))
			break;
	EXPECT_EQ(len / 4, i);
	munmap(q, len);
	EXPECT_EQ(b.st_ino, a.st_ino);
	close(exp.fd);
	gc.handle = imp.handle;
	EXPECT_EQ(0, ioctl(vgem, DRM_IOCTL_GEM_CLOSE, &gc));
	close(vgem);
	/* Detached and released: nothing left. */
	EXPECT_EQ(bufs, rdh_bufinfo_count(variant->name));
}

TEST_F(heap, memory_returns_after_close)
{
	size_t len = variant->big < (64UL << 20) ? variant->big : 64UL << 20;
	long before = 0, during = 0, after = 0;
	int buf, tries;

	if (variant->reserved) {
		/* The whole region, twice: the first buffer gave it all back. */
		buf = rdh_alloc(self->fd, variant->capacity, O_RDWR, 0);
		ASSERT_LE(0, buf);
		EXPECT_EQ(-ENOMEM, rdh_alloc(self->fd, PAGE, O_RDWR, 0));
		close(buf);
		buf = rdh_alloc(self->fd, variant->capacity, O_RDWR, 0);
		ASSERT_LE(0, buf);
		close(buf);
		return;
	}
	/* MemFree is the whole system's: memory a previous test still gives
	 * back (deferred frees) moves it too, so a measurement that other
	 * traffic spoiled is taken again, up to three times.
	 */
	for (tries = 1; tries <= 3; tries++) {
		before = rdh_meminfo("MemFree+pool");
		buf = rdh_alloc(self->fd, len, O_RDWR, 0);
		ASSERT_LE(0, buf);
		if (variant->deferred)
			ASSERT_EQ(0, rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
		during = rdh_meminfo("MemFree+pool");
		close(buf);
		after = rdh_meminfo("MemFree+pool");
		/* The buffer took its size, and gave it all back (4 MiB of
		 * slack for whatever else the system did meanwhile).
		 */
		if (during <= before - (long)(len >> 10) + 4096 && after >= before - 4096)
			break;
		ksft_print_msg("try %d: MemFree %ld -> %ld -> %ld KiB, buffer %zu KiB\n",
			       tries, before, during, after, len >> 10);
		usleep(500000);
	}
	EXPECT_LE(during, before - (long)(len >> 10) + 4096);
	EXPECT_GE(after, before - 4096);
}

TEST_F(heap, fatal_signal_stops_large_allocation)
{
	long avail = rdh_meminfo("MemAvailable"), after;
	uint64_t len;
	int status, i;
	pid_t pid;

	ASSERT_LT(0, avail);
	len = (uint64_t)avail * 1024 / 4 * 3;
	if (len > variant->big * 4)
		len = variant->big * 4;
	if (variant->capacity && len > variant->capacity / 2)
		len = variant->capacity / 2;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = rdh_open_heap(variant->name, O_RDONLY);
		int buf = rdh_alloc(fd, len, O_RDWR, 0);

		/* Killed during the allocation, or holding the buffer after. */
		if (buf < 0)
			_exit(1);
		if (variant->deferred && rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW))
			_exit(1);
		pause();
		_exit(0);
	}
	usleep(20000);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGKILL, WTERMSIG(status));
	/* Everything the killed allocation took comes back. */
	for (i = 0; i < 50; i++) {
		after = rdh_meminfo("MemAvailable");
		if (after >= avail - 16384)
			break;
		usleep(100000);
	}
	EXPECT_GE(after, avail - 16384) TH_LOG("MemAvailable %ld KiB, was %ld", after, avail);
}

TEST_HARNESS_MAIN
