// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded ioctl fuzzer over every heap node in rdh_dir(): random commands
 * (DMA_HEAP_IOCTL_ALLOC most often, else any direction, size, number and
 * type), argument pointers (valid, NULL, a guard page, read-only, a struct
 * straddling the end of a mapping, kernel addresses), lengths, fd fields
 * and flags. Each call's result is checked against a model of the ABI:
 * the exact errno wherever the inputs decide it (ENOTTY, EFAULT, EINVAL,
 * ENOMEM for lengths no heap can hold), else success or ENOMEM (in
 * provider mode, the kernel framework's rules: see model()); a success
 * hands out the lowest free fd, a buffer of the page-aligned length, and
 * writes back only the fd; a failure leaves no fd and the caller's memory
 * untouched. Buffers that come out go through mmap, DMA_BUF_IOCTL_SYNC and
 * DMA_BUF_SET_NAME with random arguments, each with its exact result.
 * Afterwards: no fd, no buffer, no memory and no kernel warning left.
 *
 * RDH_FUZZ_SEED: the seed (default: from the clock; printed, and a run is
 * repeated by passing it). RDH_FUZZ_CALLS (default 100000): the calls to
 * make. RDH_FUZZ_SECONDS (default 300): the run fails if the calls are not
 * all made by then.
 */
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <linux/rust-dma-heap.h>

#include "rdh.h"
#include "../kselftest_harness.h"

/* The longest run RDH_FUZZ_SECONDS may ask for, and the harness's limit. */
#define FUZZ_MAX_SECONDS 3600
#define FUZZ_TIMEOUT (FUZZ_MAX_SECONDS + 300)

/* Input lengths at or above this are more than any heap holds. */
#define HUGE_LEN (1ULL << 40)

/* The argument arena: a RW view and a read-only view of the same pages. */
#define ARENA (8 * PAGE)
/* The largest _IOC_SIZE. */
#define IOC_SIZE_MAX ((1 << _IOC_SIZEBITS) - 1)

/* Slack for what the rest of the system does meanwhile (KiB). */
#define MEM_SLACK_KB (16 << 10)

/* Stop reporting after this many mismatches. */
#define MAX_REPORTS 20

enum arg_kind {
	ARG_BUF,	/* RW memory, larger than any argument */
	ARG_EDGE,	/* RW, the last bytes before a PROT_NONE page */
	ARG_RO,		/* read-only */
	ARG_RO_EDGE,	/* read-only, the last bytes before PROT_NONE */
	ARG_NULL,
	ARG_GUARD,	/* a PROT_NONE page */
	ARG_KERNEL,	/* a kernel address */
	ARG_TOP,	/* the top of the address space */
	ARG_KINDS,
};

static const char *const arg_names[ARG_KINDS] = {
	"buf", "edge", "ro", "ro-edge", "null", "guard", "kernel", "top",
};

struct stats {
	unsigned long calls, ok, unreported_fd;
	unsigned long err[256];
	unsigned long heap_calls[RDH_MAX_HEAPS], heap_ok[RDH_MAX_HEAPS];
	unsigned long heap_enomem[RDH_MAX_HEAPS];
	unsigned long mmaps, mmap_ok, mmap_err[256], private_refused;
	unsigned long syncs, sync_ok, names, name_ok;
};

struct fuzz {
	char (*names)[RDH_NAME_LEN];
	int heaps[RDH_MAX_HEAPS];
	int nheaps;
	int bufs[RDH_MAX_HEAPS];
	int kmsg;
	uint8_t *rw, *ro;
	uint64_t rng;
	int reports;
	struct stats st;
};

FIXTURE(fuzz) {
	struct fuzz f;
};

FIXTURE_SETUP(fuzz)
{
	struct fuzz *f = &self->f;
	int i;

	f->kmsg = -1;
	f->names = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	ASSERT_NE(NULL, f->names);
	f->nheaps = rdh_list_heaps(f->names, RDH_MAX_HEAPS);
	ASSERT_LT(0, f->nheaps) TH_LOG("no heap in %s", rdh_dir());
	for (i = 0; i < f->nheaps; i++) {
		f->heaps[i] = rdh_open_heap(f->names[i], O_RDONLY);
		ASSERT_LE(0, f->heaps[i]) TH_LOG("%s: %s", f->names[i], strerror(errno));
		f->bufs[i] = rdh_bufinfo_count(f->names[i]);
		ASSERT_LE(0, f->bufs[i]) TH_LOG("no debugfs bufinfo");
	}
	f->kmsg = rdh_kmsg_mark();
	ASSERT_LE(0, f->kmsg);
}

FIXTURE_TEARDOWN(fuzz)
{
	struct fuzz *f = &self->f;
	int i;

	for (i = 0; i < f->nheaps; i++)
		if (f->heaps[i] >= 0)
			close(f->heaps[i]);
	free(f->names);
}

/* splitmix64 */
static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* A RW and a read-only view of one memfd, each followed by PROT_NONE. */
static int map_arena(uint8_t **rw, uint8_t **ro)
{
	int fd = memfd_create("rdh-fuzz", MFD_CLOEXEC), i;
	uint8_t **view[2] = { rw, ro };
	int prot[2] = { PROT_READ | PROT_WRITE, PROT_READ };

	if (fd < 0 || ftruncate(fd, ARENA))
		return -errno;
	for (i = 0; i < 2; i++) {
		void *res = mmap(NULL, ARENA + PAGE, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (res == MAP_FAILED)
			return -errno;
		*view[i] = mmap(res, ARENA, prot[i], MAP_SHARED | MAP_FIXED, fd, 0);
		if (*view[i] == MAP_FAILED)
			return -errno;
	}
	close(fd);
	return 0;
}

/* The ioctl types the VFS answers itself (FIOCLEX, FIGETBSZ, FS_IOC_*...). */
static bool vfs_type(unsigned int type)
{
	return type == 0 || type == 0x15 || type == 'T' || type == 'X' ||
	       type == 'f' || type == 0x94;
}

static unsigned int random_size(uint64_t *s)
{
	static const unsigned int sizes[] = {
		0, 1, 4, 8, 11, 12, 16, 20, 23, 24, 25, 32, 64, 4096, IOC_SIZE_MAX,
	};

	if (chance(s, 70))
		return sizes[below(s, ARRAY_SIZE(sizes))];
	return below(s, IOC_SIZE_MAX + 1);
}

static unsigned int random_cmd(uint64_t *s)
{
	unsigned int dir = below(s, 4), type, nr;
	unsigned int r = below(s, 100);

	if (r < 70)
		return DMA_HEAP_IOCTL_ALLOC;
	if (r < 85)
		return _IOC(dir, DMA_HEAP_IOC_MAGIC, 0, random_size(s));
	if (r < 95) {
		/*
		 * Not the fill's or the charged allocation's number: fill.c
		 * and charge.c check their inputs.
		 */
		do
			nr = 1 + below(s, 255);
		while (_IOC_NR(RUST_DMA_HEAP_IOCTL_FILL) == nr ||
		       _IOC_NR(RUST_DMA_HEAP_IOCTL_ALLOC) == nr);
		return _IOC(dir, DMA_HEAP_IOC_MAGIC, nr, random_size(s));
	}
	do
		type = below(s, 256);
	while (vfs_type(type) || type == DMA_HEAP_IOC_MAGIC);
	nr = below(s, 256);
	return _IOC(dir, type, nr, random_size(s));
}

static uint64_t random_len(uint64_t *s)
{
	static const uint64_t huge[] = {
		HUGE_LEN, HUGE_LEN + 1, 1ULL << 62, 1ULL << 63,
		~0ULL - 2 * PAGE + 1, ~0ULL - PAGE, ~0ULL - PAGE + 1,
		~0ULL - PAGE + 2, ~0ULL,
	};
	unsigned int r = below(s, 100);

	if (r < 10)
		return 0;
	if (r < 15)
		return 1;
	if (r < 45)
		return 1 + below(s, 64 << 10);
	if (r < 65)
		return PAGE * (1 + below(s, 16));
	if (r < 75)
		return 1 + below(s, 4 << 20);
	if (r < 80)
		return PAGE << below(s, 11);
	if (r < 92)
		return huge[below(s, ARRAY_SIZE(huge))];
	return rnd(s) | HUGE_LEN;
}

static uint32_t random_fd_flags(uint64_t *s)
{
	static const uint32_t valid[] = {
		O_RDWR | O_CLOEXEC, O_RDWR, O_RDONLY, O_RDONLY | O_CLOEXEC,
		O_WRONLY, O_WRONLY | O_CLOEXEC, O_ACCMODE, O_ACCMODE | O_CLOEXEC,
	};
	uint32_t f = valid[below(s, ARRAY_SIZE(valid))];

	if (chance(s, 75))
		return f;
	if (chance(s, 50))
		return f | 1u << below(s, 32);
	return rnd(s);
}

/* What one ALLOC call got. */
struct call {
	unsigned int cmd;
	enum arg_kind kind;
	int heap;
	uint8_t *arg;		/* the pointer passed */
	uint8_t *data;		/* where its bytes are written (RW view) */
	size_t rd, wr;		/* bytes readable, writable at @arg */
	size_t avail;		/* bytes of @data we wrote */
	uint8_t in[IOC_SIZE_MAX + 24];	/* what we wrote */
};

/* Pick an argument pointer for a command of @size bytes. */
static void random_arg(uint64_t *s, struct call *c, uint8_t *rw, uint8_t *ro,
		       unsigned int size)
{
	size_t off, k = 1 + below(s, size + 8);

	c->kind = below(s, 100) < 70 ? ARG_BUF : below(s, ARG_KINDS);
	c->data = NULL;
	c->rd = 0;
	c->wr = 0;
	switch (c->kind) {
	case ARG_BUF:
	case ARG_RO:
		off = below(s, 16);
		c->data = rw + off;
		c->arg = (c->kind == ARG_BUF ? rw : ro) + off;
		c->rd = ARENA - off;
		c->wr = c->kind == ARG_BUF ? c->rd : 0;
		break;
	case ARG_EDGE:
	case ARG_RO_EDGE:
		if (k > ARENA)
			k = ARENA;
		c->data = rw + ARENA - k;
		c->arg = (c->kind == ARG_EDGE ? rw : ro) + ARENA - k;
		c->rd = k;
		c->wr = c->kind == ARG_EDGE ? k : 0;
		break;
	case ARG_NULL:
		c->arg = NULL;
		break;
	case ARG_GUARD:
		c->arg = rw + ARENA + below(s, PAGE);
		break;
	case ARG_KERNEL:
		c->arg = (uint8_t *)(uintptr_t)(0xffff000000000000ULL + below(s, 1 << 20) * PAGE);
		break;
	default:
		c->arg = (uint8_t *)(uintptr_t)(~0ULL - below(s, 32));
		break;
	}
}

/* Fill the argument: the struct's fields, then random bytes. */
static void fill_arg(uint64_t *s, struct call *c, unsigned int size)
{
	struct dma_heap_allocation_data d = {
		.len = random_len(s),
		.fd = chance(s, 90) ? 0 : (chance(s, 50) ? ~0u : (uint32_t)rnd(s) | 1),
		.fd_flags = random_fd_flags(s),
		.heap_flags = chance(s, 90) ? 0 : (chance(s, 50) ? 1ULL << below(s, 64) : rnd(s) | 1),
	};
	size_t i, n = size > sizeof(d) ? size : sizeof(d);

	/*
	 * A struct shorter than len's 8 bytes gives the kernel its low bytes
	 * only: keep those moderate too. (A length between the free memory
	 * and all of it makes the system heap call in the OOM killer.)
	 */
	if (size < sizeof(d.len) && d.len > 64 << 10)
		d.len = 1 + below(s, 64 << 10);
	memcpy(c->in, &d, sizeof(d));
	for (i = sizeof(d); i < n; i++)
		c->in[i] = rnd(s);
	c->avail = 0;
	if (c->data) {
		c->avail = n < c->rd ? n : c->rd;
		memcpy(c->data, c->in, c->avail);
	}
}

/* The outcomes the ABI allows: an exact errno, or an allocation. */
struct expect {
	int err;		/* 0: the allocation is attempted */
	bool enomem_only;	/* no heap holds that much */
	bool out_fault;		/* the copy-out cannot succeed */
	size_t in, out;
	uint64_t len;		/* page-aligned */
	uint32_t fd_flags;	/* as the kernel read them */
};

static struct expect model(const struct call *c)
{
	unsigned int cmd = c->cmd, size = _IOC_SIZE(cmd);
	struct dma_heap_allocation_data d = { 0 };
	struct expect e = { 0 };

	if (rdh_provider()) {
		/*
		 * The kernel's framework answers: it matches the number
		 * alone (EINVAL past its table) and takes any type,
		 * direction and size of number 0 for the allocation.
		 */
		if (_IOC_NR(cmd) != 0) {
			e.err = EINVAL;
			return e;
		}
	} else if (_IOC_TYPE(cmd) != DMA_HEAP_IOC_MAGIC || _IOC_NR(cmd) != 0) {
		e.err = ENOTTY;
		return e;
	}
	e.in = _IOC_DIR(cmd) & _IOC_WRITE ? size : 0;
	e.out = _IOC_DIR(cmd) & _IOC_READ ? size : 0;
	if (e.in > c->rd) {
		e.err = EFAULT;
		return e;
	}
	/* A shorter struct reads as zeros past its end. */
	memcpy(&d, c->in, e.in < sizeof(d) ? e.in : sizeof(d));
	if (d.fd || d.fd_flags & ~(uint32_t)(O_CLOEXEC | O_ACCMODE) || d.heap_flags) {
		e.err = EINVAL;
		return e;
	}
	if (!d.len || d.len > ~0ULL - PAGE + 1) {
		e.err = EINVAL;
		return e;
	}
	e.len = (d.len + PAGE - 1) & ~(PAGE - 1);
	/*
	 * Ours (not the framework's): a 32-byte argument is the
	 * charge-the-client proposal's, whose last 8 bytes are charge_pid_fd
	 * and a padding word that must be 0; no fd of this program is a
	 * pidfd (EBADF), checked after the length.
	 */
	if (!rdh_provider() && e.in == sizeof(struct rust_dma_heap_alloc_data)) {
		uint32_t charge, padding;

		memcpy(&charge, c->in + 24, sizeof(charge));
		memcpy(&padding, c->in + 28, sizeof(padding));
		if (padding) {
			e.err = EINVAL;
			return e;
		}
		if (charge) {
			e.err = e.len >= HUGE_LEN ? ENOMEM : EBADF;
			return e;
		}
	}
	e.fd_flags = d.fd_flags;
	e.enomem_only = e.len >= HUGE_LEN;
	e.out_fault = e.out > c->wr;
	return e;
}

#define report(f, fmt, ...) do {					\
	if ((f)->reports++ < MAX_REPORTS)				\
		ksft_print_msg("mismatch: " fmt "\n", ##__VA_ARGS__);	\
} while (0)

static void describe(const struct call *c, char *buf, size_t len)
{
	struct dma_heap_allocation_data d;

	memcpy(&d, c->in, sizeof(d));
	snprintf(buf, len, "cmd %#x (dir %u type %#x nr %u size %u) arg %s %p, len %#" PRIx64
		 " fd %u fd_flags %#x heap_flags %#" PRIx64,
		 c->cmd, _IOC_DIR(c->cmd), _IOC_TYPE(c->cmd), _IOC_NR(c->cmd),
		 _IOC_SIZE(c->cmd), arg_names[c->kind], c->arg, (uint64_t)d.len,
		 d.fd, d.fd_flags, (uint64_t)d.heap_flags);
}

/* An mmap of @buf (@pages long, opened with @acc) with random arguments. */
static void poke_mmap(struct fuzz *f, int buf, uint64_t pages, int acc)
{
	uint64_t *s = &f->rng;
	bool readable = acc == O_RDONLY || acc == O_RDWR;
	bool writable = acc == O_WRONLY || acc == O_RDWR;
	bool shared = chance(s, 80);
	int prot = below(s, 4), want = 0, err = 0;
	uint64_t len, off;
	uint8_t *p;

	switch (below(s, 7)) {
	case 0:
		len = 0;
		break;
	case 1:
		len = pages * PAGE;
		break;
	case 2:
		len = (pages + 1) * PAGE;
		break;
	case 3:
		/* More than the address space; wrapping when page-aligned. */
		len = chance(s, 50) ? 1ULL << 62 : ~0ULL;
		break;
	default:
		len = 1 + below(s, (pages + 1) * PAGE);
		break;
	}
	switch (below(s, 6)) {
	case 0:
		off = PAGE / 2;
		break;
	case 1:
		off = 1ULL << 40;
		break;
	case 2:
		off = pages * PAGE;
		break;
	default:
		off = below(s, pages + 1) * PAGE;
		break;
	}
	if (!len || off % PAGE)
		want = EINVAL;
	else if (len >= 1ULL << 62)
		want = ENOMEM;
	else if (!readable || (shared && prot & PROT_WRITE && !writable))
		want = EACCES;
	else if (off / PAGE + (len + PAGE - 1) / PAGE > pages)
		want = EINVAL;
	else if (!shared)
		/* A private copy would never see a device's writes. */
		want = EINVAL;
	f->st.mmaps++;
	f->st.private_refused += !shared && want == EINVAL;
	p = mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, buf, off);
	if (p == MAP_FAILED)
		err = errno;
	f->st.mmap_err[err & 0xff]++;
	if (err != want)
		report(f, "mmap(len %#" PRIx64 ", prot %d, %s, off %#" PRIx64
		       ") of %" PRIu64 " pages (access %d): errno %d, want %d",
		       len, prot, shared ? "shared" : "private", off, pages, acc, err, want);
	if (err)
		return;
	f->st.mmap_ok++;
	if (prot & PROT_READ && p[0])
		report(f, "fresh buffer not zero at offset %#" PRIx64, off);
	munmap(p, len);
}

static void poke_sync(struct fuzz *f, int buf)
{
	uint64_t *s = &f->rng;
	struct dma_buf_sync sync = { .flags = below(s, 8) };
	int want = 0, ret;

	if (chance(s, 20))
		sync.flags = chance(s, 50) ? 1ULL << below(s, 64) : rnd(s);
	if (sync.flags & ~DMA_BUF_SYNC_VALID_FLAGS_MASK || !(sync.flags & DMA_BUF_SYNC_RW))
		want = EINVAL;
	if (chance(s, 5))
		want = EFAULT;
	f->st.syncs++;
	ret = ioctl(buf, DMA_BUF_IOCTL_SYNC, want == EFAULT ? NULL : &sync) ? errno : 0;
	if (ret != want)
		report(f, "SYNC flags %#llx: errno %d, want %d",
		       (unsigned long long)sync.flags, ret, want);
	f->st.sync_ok += !ret;
}

static void poke_name(struct fuzz *f, int buf)
{
	uint64_t *s = &f->rng;
	char name[48];
	unsigned int n = below(s, sizeof(name) - 1), i;
	int want = n < DMA_BUF_NAME_LEN ? 0 : EINVAL, ret;

	for (i = 0; i < n; i++)
		name[i] = 'a' + below(s, 26);
	name[n] = '\0';
	if (chance(s, 5))
		want = EFAULT;
	f->st.names++;
	ret = ioctl(buf, DMA_BUF_SET_NAME, want == EFAULT ? NULL : name) ? errno : 0;
	if (ret != want)
		report(f, "SET_NAME of %u chars: errno %d, want %d", n, ret, want);
	f->st.name_ok += !ret;
}

/* One random ALLOC-ish call on heap @h; @next_fd is the lowest free fd. */
static void one_call(struct fuzz *f, struct call *c, int h, int next_fd)
{
	uint64_t *s = &f->rng;
	struct expect e;
	char what[256];
	int ret, err;

	c->heap = h;
	c->cmd = random_cmd(s);
	random_arg(s, c, f->rw, f->ro, _IOC_SIZE(c->cmd));
	fill_arg(s, c, _IOC_SIZE(c->cmd));
	e = model(c);

	f->st.calls++;
	f->st.heap_calls[h]++;
	ret = ioctl(f->heaps[h], c->cmd, c->arg);
	err = ret ? errno : 0;
	f->st.err[err & 0xff]++;
	if (err == ENOMEM)
		f->st.heap_enomem[h]++;

	if (ret && ret != -1) {
		describe(c, what, sizeof(what));
		report(f, "%s: %s returned %d", f->names[h], what, ret);
		return;
	}
	/* Whatever happened, a failure hands out no fd. */
	if (err && fcntl(next_fd, F_GETFD) != -1) {
		describe(c, what, sizeof(what));
		report(f, "%s: %s failed (%d) but fd %d is open", f->names[h],
		       what, err, next_fd);
		close(next_fd);
	}
	if (e.err || e.enomem_only) {
		int want = e.err ? e.err : ENOMEM;

		if (err != want) {
			describe(c, what, sizeof(what));
			report(f, "%s: %s: errno %d, want %d", f->names[h], what, err, want);
		}
	} else if (err != ENOMEM && err != (e.out_fault ? EFAULT : 0)) {
		describe(c, what, sizeof(what));
		report(f, "%s: %s: errno %d, want %d or ENOMEM", f->names[h], what,
		       err, e.out_fault ? EFAULT : 0);
	}
	/* A refused call writes nothing back (a failed copy-out may). */
	if (err && err != EFAULT && c->avail && memcmp(c->data, c->in, c->avail)) {
		describe(c, what, sizeof(what));
		report(f, "%s: %s: errno %d and the argument changed", f->names[h],
		       what, err);
	}
	if (!err) {
		uint8_t want[IOC_SIZE_MAX + 24];
		int acc = e.fd_flags & O_ACCMODE;
		off_t size;

		f->st.ok++;
		f->st.heap_ok[h]++;
		/* The lowest free fd, the page-aligned size, only the fd
		 * written back.
		 */
		size = lseek(next_fd, 0, SEEK_END);
		if (size != (off_t)e.len) {
			describe(c, what, sizeof(what));
			report(f, "%s: %s: fd %d has size %lld, want %#" PRIx64,
			       f->names[h], what, next_fd, (long long)size, e.len);
		}
		memcpy(want, c->in, e.out);
		if (e.out > 8)
			memcpy(want + 8, &next_fd, e.out >= 12 ? 4 : e.out - 8);
		if (e.out < 12)
			f->st.unreported_fd++;
		if (memcmp(c->data, want, e.out)) {
			describe(c, what, sizeof(what));
			report(f, "%s: %s: written back wrong (fd %d)", f->names[h],
			       what, next_fd);
		}
		if (size > 0 && chance(s, 25)) {
			poke_mmap(f, next_fd, e.len / PAGE, acc);
			if (chance(s, 50))
				poke_sync(f, next_fd);
			if (chance(s, 50))
				poke_name(f, next_fd);
		}
		close(next_fd);
	}
}

TEST_F_TIMEOUT(fuzz, random_ioctls, FUZZ_TIMEOUT)
{
	uint64_t seed = env_u64("RDH_FUZZ_SEED", rdh_random_seed());
	uint64_t target = env_u64("RDH_FUZZ_CALLS", 100000);
	uint64_t seconds = env_u64("RDH_FUZZ_SECONDS", 300);
	struct fuzz *f = &self->f;
	long mem_before, mem_after, slack;
	double t0, deadline, elapsed, report_at;
	char first[2048];
	struct call *c;
	int fds, next_fd, h, i, bad;

	if (seconds > FUZZ_MAX_SECONDS)
		seconds = FUZZ_MAX_SECONDS;
	/* A call that never returns ends the run well before the harness. */
	alarm(seconds + 120);
	ksft_print_msg("seed %#" PRIx64 " (RDH_FUZZ_SEED=%#" PRIx64 " repeats this run), %" PRIu64
		       " calls over %d heaps, at most %" PRIu64 " s\n",
		       seed, seed, target, f->nheaps, seconds);
	f->rng = seed;
	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, map_arena(&f->rw, &f->ro));
	fds = rdh_count_fds();
	next_fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
	ASSERT_LE(0, next_fd);
	close(next_fd);
	mem_before = rdh_meminfo("MemFree+pool");

	t0 = now();
	deadline = t0 + seconds;
	report_at = t0 + 30;
	while (f->st.calls < target && f->reports < MAX_REPORTS) {
		if (!(f->st.calls & 63)) {
			double t = now();

			if (t >= deadline)
				break;
			if (t >= report_at) {
				ksft_print_msg("%lu calls in %.0f s\n", f->st.calls, t - t0);
				report_at = t + 30;
			}
		}
		h = below(&f->rng, f->nheaps);
		one_call(f, c, h, next_fd);
	}
	elapsed = now() - t0;
	alarm(0);

	ksft_print_msg("%lu calls in %.1f s (%.0f/s), %lu buffers (%lu fds not written back)\n",
		       f->st.calls, elapsed, f->st.calls / elapsed, f->st.ok,
		       f->st.unreported_fd);
	ksft_print_msg("EINVAL %lu, EFAULT %lu, ENOTTY %lu, ENOMEM %lu, other %lu\n",
		       f->st.err[EINVAL], f->st.err[EFAULT], f->st.err[ENOTTY],
		       f->st.err[ENOMEM], f->st.calls - f->st.ok - f->st.err[EINVAL] -
		       f->st.err[EFAULT] - f->st.err[ENOTTY] - f->st.err[ENOMEM]);
	for (h = 0; h < f->nheaps; h++)
		ksft_print_msg("  %-20s %7lu calls, %6lu buffers, %4lu ENOMEM\n", f->names[h],
			       f->st.heap_calls[h], f->st.heap_ok[h], f->st.heap_enomem[h]);
	ksft_print_msg("mmap %lu: %lu mapped, EINVAL %lu, EACCES %lu, ENOMEM %lu, %lu private refused\n",
		       f->st.mmaps, f->st.mmap_ok, f->st.mmap_err[EINVAL],
		       f->st.mmap_err[EACCES], f->st.mmap_err[ENOMEM], f->st.private_refused);
	ksft_print_msg("SYNC %lu (%lu ok), SET_NAME %lu (%lu ok)\n", f->st.syncs,
		       f->st.sync_ok, f->st.names, f->st.name_ok);

	EXPECT_EQ(0, f->reports) TH_LOG("seed %#" PRIx64, seed);
	EXPECT_GE(f->st.calls, target)
		TH_LOG("only %lu of %" PRIu64 " calls in %" PRIu64 " s", f->st.calls, target,
		       seconds);
	/* Every kind of outcome was reached. */
	EXPECT_LT(0, f->st.ok);
	EXPECT_LT(0, f->st.err[EINVAL]);
	EXPECT_LT(0, f->st.err[EFAULT]);
	/* (The framework has no ENOTTY for a heap's node.) */
	EXPECT_LT(0, f->st.err[ENOTTY] + rdh_provider());
	EXPECT_EQ(0, rdh_provider() ? f->st.err[ENOTTY] : 0);
	EXPECT_LT(0, f->st.err[ENOMEM]);

	/* Nothing outlived the run. */
	EXPECT_EQ(fds, rdh_count_fds());
	for (i = 0; i < f->nheaps; i++) {
		EXPECT_EQ(f->bufs[i], rdh_bufinfo_count(f->names[i]))
			TH_LOG("heap %s", f->names[i]);
	}
	slack = rdh_mem_slack(MEM_SLACK_KB);
	mem_after = rdh_meminfo_wait("MemFree+pool", mem_before - slack, 5000);
	ksft_print_msg("MemFree %ld KiB before, %ld KiB after\n", mem_before, mem_after);
	EXPECT_GE(mem_after, mem_before - slack);
	bad = rdh_kmsg_bad_since(f->kmsg, first, sizeof(first));
	f->kmsg = -1;
	EXPECT_EQ(0, bad) TH_LOG("kernel log: %s", first);
	free(c);
}

TEST_HARNESS_MAIN
