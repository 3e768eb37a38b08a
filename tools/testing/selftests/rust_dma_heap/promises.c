// SPDX-License-Identifier: GPL-2.0
/*
 * What the module promises beyond the basic uAPI: reports that nobody can
 * forge, mappings that behave as memory, a read-only buffer that stays
 * read-only whoever maps it, carve-outs that never overlap, and buffers of
 * the auto heap charged to whoever allocated them.
 *
 * report_forged_name: a buffer named "x\tfake\n4242\tz" (DMA_BUF_SET_NAME)
 *	adds no field and no line to debugfs <class>/buffers: its name is
 *	written escaped (a backslash and three octal digits for every byte
 *	below 0x20, 0x7f, 0x80 and above, and the backslash), every line has
 *	10 fields, none names pid 4242.
 * report_forged_comm: the same for a process named "a\tb\nc\\d"
 *	(PR_SET_NAME): its line names it escaped, with its pid.
 * mmap_dontneed: on every heap, MADV_DONTNEED on a mapping succeeds and the
 *	same memory faults back in (no SIGBUS, the data still there), also in
 *	a forked child's copy of the mapping; what the child writes the
 *	parent reads through its mapping and through a new one.
 * mmap_readonly_importer: a buffer allocated O_RDONLY and mapped by a
 *	driver for userspace (the test importer's mmap, dma_buf_mmap()) is
 *	mapped read-only: PROT_WRITE is refused (EACCES), and so is an
 *	mprotect() to it later; a buffer allocated O_RDWR maps writable.
 * carveout_overlap: carveout= refuses a range overlapping a carve-out heap
 *	(EBUSY, and a log line naming it) and takes one in a spare reserved
 *	range.
 * auto_memcg: the auto heap's memory, chosen at first use by another
 *	process, is charged to the memory cgroup of the process that
 *	allocated the buffer, and limited by it (memory.max 32 MiB: 3 or 4 of
 *	8 MiB map, the rest fail ENOMEM); uncharged when the buffers go.
 * auto_dmem: an auto buffer reserves its size on the default CMA area's
 *	dmem region at allocation (dmem.max 16 MiB: two of 8 MiB, the third
 *	ENOMEM); memory chosen from the system heap gives the reservation
 *	back and is charged to the allocator's memory cgroup instead.
 *
 * Needs root; the cgroup tests need cgroup v2 at /sys/fs/cgroup with the
 * memory (and dmem) controllers, and remove the cgroups they made; the
 * carve-out test reloads the module with default parameters at its end,
 * also when it fails; mmap_readonly_importer needs the test importer.
 */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "rdh.h"
#include "rdh_importer.h"
#include "../kselftest_harness.h"

#define KIB (1LL << 10)
#define MIB (1LL << 20)

#define CG_ROOT RDH_CG_ROOT
#define CG_LEN 128

/*
 * SIGBUS, caught: an access that raises it fails the test, not the program.
 * The accesses are relaxed atomics: each is made, in order (a word written
 * and read back is read from the mapping).
 */

static sigjmp_buf bus_env;
static atomic_int bus_armed;

#define LOAD(p)		__atomic_load_n(p, __ATOMIC_RELAXED)
#define STORE(p, v)	__atomic_store_n(p, v, __ATOMIC_RELAXED)

static void on_sigbus(int sig)
{
	if (atomic_exchange(&bus_armed, 0))
		siglongjmp(bus_env, 1);
	/* Not ours: the default action, when the access is retried. */
	signal(sig, SIG_DFL);
}

static int catch_sigbus(void)
{
	struct sigaction sa = { .sa_handler = on_sigbus };

	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) ? -errno : 0;
}

/* What the accesses below return when one raised SIGBUS. */
#define SIGBUSED (-1L)

/*
 * Words @p[0..@n) against word i = i ^ @seed, written so first when
 * @write: the first that differs, @n when none does, or SIGBUSED.
 */
static long words(uint32_t *p, size_t n, uint32_t seed, bool write)
{
	size_t i;

	if (sigsetjmp(bus_env, 1))
		return SIGBUSED;
	atomic_store(&bus_armed, 1);
	if (write)
		for (i = 0; i < n; i++)
			STORE(&p[i], (uint32_t)(i ^ seed));
	for (i = 0; i < n; i++)
		if (LOAD(&p[i]) != (uint32_t)(i ^ seed))
			break;
	atomic_store(&bus_armed, 0);
	return i;
}

/* The first of @n words of @p that is not zero, @n if none, or SIGBUSED. */
static long nonzero_word(const uint32_t *p, size_t n)
{
	size_t i;

	if (sigsetjmp(bus_env, 1))
		return SIGBUSED;
	atomic_store(&bus_armed, 1);
	for (i = 0; i < n; i++)
		if (LOAD(&p[i]))
			break;
	atomic_store(&bus_armed, 0);
	return i;
}

/* Write a byte to each page of @p: 0, or SIGBUSED. */
static long touch_pages(char *p, size_t len)
{
	size_t i;

	if (sigsetjmp(bus_env, 1))
		return SIGBUSED;
	atomic_store(&bus_armed, 1);
	for (i = 0; i < len; i += PAGE)
		STORE(&p[i], 1);
	atomic_store(&bus_armed, 0);
	return 0;
}

/* debugfs <class>/buffers */

#define BUFFERS_HEADER \
	"inode\theap\tsize\tpid\tcomm\tcgroup\tattachments\tvmaps\tname\tmemory\tcharged"
#define FIELDS 11
#define F_INODE 0
#define F_PID 3
#define F_COMM 4
#define F_NAME 8

/* The whole of file @path as a string (malloc'd), or NULL with errno. */
static char *read_all(const char *path)
{
	size_t len = 0, cap = 64 * KIB;
	char *text = malloc(cap), *more;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;
	ssize_t n;

	if (fd < 0 || !text)
		goto fail;
	while ((n = read(fd, text + len, cap - 1 - len)) > 0) {
		len += n;
		if (len < cap - 1)
			continue;
		more = realloc(text, 2 * cap);
		if (!more)
			goto fail;
		text = more;
		cap *= 2;
	}
	if (n < 0)
		goto fail;
	close(fd);
	text[len] = '\0';
	return text;
fail:
	err = errno ? errno : ENOMEM;
	if (fd >= 0)
		close(fd);
	free(text);
	errno = err;
	return NULL;
}

/* What the report says of one buffer, and of its own shape. */
struct scan {
	bool header;		/* the first line is the documented header */
	int lines;		/* lines, the header too */
	int bad;		/* lines without exactly FIELDS fields */
	char first_bad[512];	/* the first of them */
	int found;		/* lines of the inode asked for */
	char pid[32];		/* its fields */
	char comm[128];
	char name[256];
	int pid_lines;		/* lines whose pid field is the pid asked for */
};

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

/*
 * Read the report: the shape of every line, the line of inode @ino and
 * the lines naming pid @pid. 0, or -errno when it cannot be read.
 */
static int scan_report(unsigned long long ino, long long pid, struct scan *s)
{
	char path[128], ino_text[32], pid_text[32], *text, *rest, *line;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/sys/kernel/debug/%s/buffers", rdh_class());
	text = read_all(path);
	if (!text)
		return -errno;
	snprintf(ino_text, sizeof(ino_text), "%llu", ino);
	snprintf(pid_text, sizeof(pid_text), "%lld", pid);
	rest = text;
	while ((line = strsep(&rest, "\n"))) {
		char whole[512], *field[FIELDS + 1], *p = line;
		int n = 0;

		/* The text ends with a newline: nothing after it. */
		if (!rest && !*line)
			break;
		copy(whole, sizeof(whole), line);
		if (!s->lines++)
			s->header = !strcmp(line, BUFFERS_HEADER);
		while (p && n <= FIELDS)
			field[n++] = strsep(&p, "\t");
		if (n != FIELDS || p) {
			if (!s->bad++)
				copy(s->first_bad, sizeof(s->first_bad), whole);
			continue;
		}
		if (s->lines == 1)
			continue;
		if (!strcmp(field[F_PID], pid_text))
			s->pid_lines++;
		if (strcmp(field[F_INODE], ino_text))
			continue;
		s->found++;
		copy(s->pid, sizeof(s->pid), field[F_PID]);
		copy(s->comm, sizeof(s->comm), field[F_COMM]);
		copy(s->name, sizeof(s->name), field[F_NAME]);
	}
	free(text);
	return 0;
}

/* A forged name: fields and a line of its own, pid 4242. */
#define FORGED_NAME "x\tfake\n4242\tz"
#define FORGED_NAME_ESCAPED "x\\011fake\\0124242\\011z"
#define FORGED_PID 4242
_Static_assert(sizeof(FORGED_NAME) <= DMA_BUF_NAME_LEN, "the name fits, with its NUL");

TEST(report_forged_name)
{
	struct stat st;
	struct scan s;
	int heap, buf;
	bool taken;

	if (geteuid())
		SKIP(return, "needs root (debugfs)");
	if (rdh_taken("system"))
		SKIP(return, RDH_SYSTEM_TAKEN);
	heap = rdh_open_heap("system", O_RDONLY);
	ASSERT_LE(0, heap) TH_LOG("system: %s", strerror(errno));
	buf = rdh_alloc(heap, 4 * KIB, O_RDWR | O_CLOEXEC, 0);
	close(heap);
	ASSERT_LE(0, buf) TH_LOG("%s", strerror(-buf));
	ASSERT_EQ(0, ioctl(buf, DMA_BUF_SET_NAME_B, FORGED_NAME)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, fstat(buf, &st));

	ASSERT_EQ(0, scan_report(st.st_ino, FORGED_PID, &s));
	EXPECT_TRUE(s.header);
	EXPECT_EQ(0, s.bad) TH_LOG("%d of %d lines; the first: %s", s.bad, s.lines, s.first_bad);
	EXPECT_EQ(1, s.found) TH_LOG("inode %llu", (unsigned long long)st.st_ino);
	EXPECT_STREQ(FORGED_NAME_ESCAPED, s.name);
	EXPECT_EQ(getpid(), atoll(s.pid));
	/* (Unless a process 4242 holds a buffer of its own.) */
	taken = !kill(FORGED_PID, 0) || errno == EPERM;
	if (taken)
		TH_LOG("pid %d is a live process: not checking for its lines", FORGED_PID);
	/* (The harness's checks are two statements: never an if's body.) */
	EXPECT_EQ(0, taken ? 0 : s.pid_lines);
	close(buf);
}

#define FORGED_COMM "a\tb\nc\\d"
#define FORGED_COMM_ESCAPED "a\\011b\\012c\\134d"

/*
 * The child of report_forged_comm: names itself, allocates, sends its
 * buffer's inode (0 and an exit status on failure) over @up, and keeps the
 * buffer until @down has a word or is closed.
 */
static int forged_comm_child(int up, int down)
{
	unsigned long long ino = 0;
	int heap, buf, ret = 0;
	struct stat st;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (prctl(PR_SET_NAME, FORGED_COMM))
		ret = 10;
	heap = ret ? -1 : rdh_open_heap("system", O_RDONLY);
	if (!ret && heap < 0)
		ret = 11;
	buf = ret ? -1 : rdh_alloc(heap, 4 * KIB, O_RDWR | O_CLOEXEC, 0);
	if (!ret && buf < 0)
		ret = 12;
	if (!ret && fstat(buf, &st))
		ret = 13;
	if (!ret)
		ino = st.st_ino;
	if (write(up, &ino, sizeof(ino)) != sizeof(ino))
		return 14;
	if (read(down, &c, 1) < 0)
		return 15;
	return ret;
}

TEST(report_forged_comm)
{
	unsigned long long ino = 0;
	int up[2], down[2], status;
	struct scan s;
	pid_t pid;

	if (geteuid())
		SKIP(return, "needs root (debugfs)");
	if (rdh_taken("system"))
		SKIP(return, RDH_SYSTEM_TAKEN);
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(up[0]);
		close(down[1]);
		_exit(forged_comm_child(up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	EXPECT_EQ(sizeof(ino), read(up[0], &ino, sizeof(ino)));
	EXPECT_NE(0, ino);
	if (ino) {
		ASSERT_EQ(0, scan_report(ino, pid, &s));
		EXPECT_TRUE(s.header);
		EXPECT_EQ(0, s.bad) TH_LOG("%d of %d lines; the first: %s", s.bad, s.lines,
					   s.first_bad);
		EXPECT_EQ(1, s.found) TH_LOG("inode %llu", ino);
		EXPECT_STREQ(FORGED_COMM_ESCAPED, s.comm);
		EXPECT_EQ(pid, atoll(s.pid));
		EXPECT_EQ(1, s.pid_lines);
	}
	/* Its word to go: the end of the pipe. */
	close(down[1]);
	close(up[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child: status %#x", status);
}

/* mmap and MADV_DONTNEED */

#define DN_LEN (64 * KIB)
#define DN_WORDS (DN_LEN / 4)
#define DN_MID (16 * KIB)
#define PATTERN1 0x5a5a0000u
#define PATTERN2 0xa5a50000u
#define PATTERN3 0x3c3c0000u

/*
 * The forked child of mmap_dontneed, on its copy of the mapping: drop the
 * middle 16 KiB, find the parent's second pattern everywhere, write the
 * third. Its exit status: 0, or which step failed.
 */
static int dontneed_child(uint32_t *p)
{
	char *mid = (char *)p + (DN_LEN - DN_MID) / 2;

	if (madvise(mid, DN_MID, MADV_DONTNEED))
		return 1;
	if (words(p, DN_WORDS, PATTERN2, false) != DN_WORDS)
		return 2;
	if (words(p, DN_WORDS, PATTERN3, true) != DN_WORDS)
		return 3;
	return 0;
}

TEST(mmap_dontneed)
{
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	int i, n, heap, buf, status, tested = 0;
	uint32_t *p, *q;
	pid_t pid;

	ASSERT_NE(NULL, names);
	ASSERT_EQ(0, catch_sigbus());
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n) TH_LOG("no heap in %s", rdh_dir());
	for (i = 0; i < n; i++) {
		const char *name = names[i];

		heap = rdh_open_heap(name, O_RDONLY);
		ASSERT_LE(0, heap) TH_LOG("%s: %s", name, strerror(errno));
		buf = rdh_alloc(heap, DN_LEN, O_RDWR | O_CLOEXEC, 0);
		close(heap);
		if (buf == -ENOMEM) {
			TH_LOG("%s: no 64 KiB free (ENOMEM): not tested", name);
			continue;
		}
		ASSERT_LE(0, buf) TH_LOG("%s: %s", name, strerror(-buf));
		p = mmap(NULL, DN_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
		ASSERT_NE(MAP_FAILED, p) TH_LOG("%s: %s", name, strerror(errno));
		EXPECT_EQ(DN_WORDS, words(p, DN_WORDS, PATTERN1, true)) TH_LOG("%s", name);

		/* Dropped, then faulted back in: the same memory. */
		EXPECT_EQ(0, madvise(p, DN_LEN, MADV_DONTNEED)) TH_LOG("%s: %s", name,
								       strerror(errno));
		EXPECT_EQ(DN_WORDS, words(p, DN_WORDS, PATTERN1, false))
			TH_LOG("%s: after MADV_DONTNEED (%ld: SIGBUS)", name, SIGBUSED);
		EXPECT_EQ(DN_WORDS, words(p, DN_WORDS, PATTERN2, true)) TH_LOG("%s", name);

		/* A child's copy of the mapping, dropped in part. */
		fflush(NULL);
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(dontneed_child(p));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("%s: child status %#x (exit 1: madvise, 2: read, 3: write; signal %d)",
			       name, status, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		EXPECT_EQ(DN_WORDS, words(p, DN_WORDS, PATTERN3, false)) TH_LOG("%s", name);
		q = mmap(NULL, DN_LEN, PROT_READ, MAP_SHARED, buf, 0);
		ASSERT_NE(MAP_FAILED, q) TH_LOG("%s: %s", name, strerror(errno));
		EXPECT_EQ(DN_WORDS, words(q, DN_WORDS, PATTERN3, false)) TH_LOG("%s", name);
		munmap(q, DN_LEN);
		munmap(p, DN_LEN);
		close(buf);
		ksft_print_msg("%s: tested\n", name);
		tested++;
	}
	ksft_print_msg("%d of %d heaps tested\n", tested, n);
	free(names);
}

/* A buffer mapped through a driver (the test importer's mmap). */

#define RO_LEN (64 * KIB)

TEST(mmap_readonly_importer)
{
	int heap, ro, rw, imp, imp2, err;
	uint32_t *p, *q;

	imp = rdh_open_importer();
	if (imp < 0)
		SKIP(return, RDH_NO_IMPORTER);
	if (rdh_taken("system")) {
		close(imp);
		SKIP(return, RDH_SYSTEM_TAKEN);
	}
	ASSERT_EQ(0, catch_sigbus());
	heap = rdh_open_heap("system", O_RDONLY);
	ASSERT_LE(0, heap) TH_LOG("system: %s", strerror(errno));
	ro = rdh_alloc(heap, RO_LEN, O_RDONLY | O_CLOEXEC, 0);
	ASSERT_LE(0, ro) TH_LOG("%s", strerror(-ro));
	ASSERT_EQ(0, ioctl(imp, RDH_IMPORT_MMAP_FD, &ro)) TH_LOG("%s", strerror(errno));

	/* The importer's file is open for writing; the buffer is not. */
	p = mmap(NULL, RO_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, imp, 0);
	err = errno;
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EACCES, p == MAP_FAILED ? err : 0);
	if (p != MAP_FAILED)
		munmap(p, RO_LEN);
	p = mmap(NULL, RO_LEN, PROT_READ, MAP_SHARED, imp, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(RO_LEN / 4, nonzero_word(p, RO_LEN / 4)) TH_LOG("%ld: SIGBUS", SIGBUSED);
	/* ...nor later. */
	EXPECT_EQ(-1, mprotect(p, RO_LEN, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	munmap(p, RO_LEN);
	close(imp);
	close(ro);

	/* The control: a buffer open for writing maps writable. */
	imp2 = open("/dev/rdh_importer", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, imp2);
	/* Nothing selected: nothing to map. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, RO_LEN, PROT_READ, MAP_SHARED, imp2, 0));
	EXPECT_EQ(EINVAL, errno);
	rw = rdh_alloc(heap, RO_LEN, O_RDWR | O_CLOEXEC, 0);
	close(heap);
	ASSERT_LE(0, rw) TH_LOG("%s", strerror(-rw));
	ASSERT_EQ(0, ioctl(imp2, RDH_IMPORT_MMAP_FD, &rw)) TH_LOG("%s", strerror(errno));
	p = mmap(NULL, RO_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, imp2, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(RO_LEN / 4, words(p, RO_LEN / 4, PATTERN1, true));
	q = mmap(NULL, RO_LEN, PROT_READ, MAP_SHARED, rw, 0);
	ASSERT_NE(MAP_FAILED, q) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(RO_LEN / 4, words(q, RO_LEN / 4, PATTERN1, false));
	munmap(q, RO_LEN);
	munmap(p, RO_LEN);
	close(imp2);
	close(rw);
}

/* cgroups */

/*
 * Whether children of the root cgroup get controller @ctl (turned on
 * here): NULL when they do, else why a test is skipped; -EPROTO in *@err
 * when it is listed but cannot be enabled.
 */
static const char *cg_unavailable(const char *ctl, int *err)
{
	char text[512], plus[32];

	*err = 0;
	if (rdh_read_text(CG_ROOT "/cgroup.controllers", text, sizeof(text)))
		return "no cgroup v2 at " CG_ROOT;
	if (!rdh_has_word(text, ctl))
		return "a cgroup controller is missing";
	snprintf(plus, sizeof(plus), "+%s", ctl);
	rdh_write_text(CG_ROOT "/cgroup.subtree_control", plus);
	if (rdh_read_text(CG_ROOT "/cgroup.subtree_control", text, sizeof(text)) ||
	    !rdh_has_word(text, ctl))
		*err = -EPROTO;
	return NULL;
}

/* Line @key of a keyed cgroup file (dmem.current), or -1. */
static long long cg_keyed(const char *cg, const char *file, const char *key)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	return rdh_keyed(key, path, ' ');
}

/* Wait up to 2 s for @file to read below @limit: the last value. */
static long long cg_num_below(const char *cg, const char *file, long long limit)
{
	long long v = rdh_cg_num(cg, file);
	int i;

	for (i = 0; i < 20 && (v < 0 || v >= limit); i++) {
		usleep(100000);
		v = rdh_cg_num(cg, file);
	}
	return v;
}

/* The calling process's cgroup (v2), relative to the root, in @buf. */
static void own_cgroup(char *buf, size_t len)
{
	char text[512], *p;

	copy(buf, len, "?");
	if (rdh_read_text("/proc/self/cgroup", text, sizeof(text)))
		return;
	p = strstr(text, "0::");
	if (p)
		copy(buf, len, p + 3);
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * An allocator in a cgroup of its own: @count buffers of @size from the
 * auto heap; its tally, then each buffer it got, go to the test over a
 * SOCK_SEQPACKET socket, and it holds them until the test's word (or the
 * socket's end).
 */
#define MAX_BUFS 16

struct tally {
	int ok;			/* buffers allocated, sent in this order */
	int res[MAX_BUFS];	/* each allocation: 0, or its errno */
	int step;		/* what failed besides allocations (0: nothing) */
};

static int allocator(int sock, const char *cg, long long size, int count)
{
	struct tally t = { 0 };
	int heap, fds[MAX_BUFS], i, fd;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (rdh_cg_set(cg, "cgroup.procs", "0\n"))
		t.step = 1;
	heap = t.step ? -1 : rdh_open_heap("auto", O_RDONLY);
	if (!t.step && heap < 0)
		t.step = 2;
	for (i = 0; !t.step && i < count; i++) {
		fd = rdh_alloc(heap, size, O_RDWR | O_CLOEXEC, 0);
		t.res[i] = fd < 0 ? -fd : 0;
		if (fd >= 0)
			fds[t.ok++] = fd;
	}
	if (heap >= 0)
		close(heap);
	if (send(sock, &t, sizeof(t), MSG_NOSIGNAL) != sizeof(t))
		return 3;
	for (i = 0; i < t.ok; i++)
		if (rdh_send_fd(sock, fds[i]))
			return 4;
	if (read(sock, &c, 1) < 0)
		return 5;
	return 0;
}

/* The allocator's tally, within a minute: 0 or -errno. */
static int hear_tally(int sock, struct tally *t)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };

	if (poll(&p, 1, 60000) != 1)
		return -ETIMEDOUT;
	return recv(sock, t, sizeof(*t), 0) == sizeof(*t) ? 0 : -EPIPE;
}

/*
 * The fixture: what a test changed, for the teardown (in the harness's
 * parent, also after a failed assertion) to put back.
 */
FIXTURE(promise) {
	char cg[CG_LEN];	/* a cgroup made ("": none) */
	pid_t child;		/* a process in it (0: none) */
	bool reload;		/* the module is not as the runner loaded it */
};

FIXTURE_SETUP(promise)
{
	if (geteuid())
		SKIP(return, "needs root");
}

FIXTURE_TEARDOWN_PARENT(promise)
{
	if (self->child > 0)
		kill(self->child, SIGKILL);
	/* (The harness's checks are two statements: never an if's body.) */
	EXPECT_EQ(0, self->cg[0] ? rdh_cg_remove(self->cg) : 0) TH_LOG("rmdir %s", self->cg);
	if (self->reload) {
		rdh_unload_module();
		EXPECT_EQ(0, rdh_load_module("")) TH_LOG("loading the module back");
	}
}

/* Make cgroup rdh-promises-@tag under the root, in self->cg. */
static int cg_make(char *cg, const char *tag)
{
	snprintf(cg, CG_LEN, CG_ROOT "/rdh-promises-%s", tag);
	return mkdir(cg, 0755) && errno != EEXIST ? -errno : 0;
}

/*
 * Tell the allocator @pid to go (and close the socket, should the word not
 * arrive), wait for it: its exit status, 0 when it went well, or -errno.
 */
static int stop_allocator(int sock, pid_t pid, pid_t *child)
{
	int status, sent = send(sock, "x", 1, MSG_NOSIGNAL);

	close(sock);
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	*child = 0;
	if (sent != 1)
		return -EPIPE;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Start the allocator in @cg: its pid (recorded for the teardown), and the
 * test's end of the socket in *@sock; -errno on failure.
 */
static pid_t start_allocator(pid_t *child, const char *cg, long long size, int count,
			     int *sock)
{
	pid_t pid = rdh_fork_connected(sock);

	if (!pid)
		_exit(allocator(*sock, cg, size, count));
	if (pid > 0)
		*child = pid;
	return pid;
}

/* The carve-out parameter */

static bool heap_exists(const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", rdh_dir(), name);
	return !stat(path, &st);
}

#define OVERLAP "carveout=32M@0xb2000000"
#define SPARE "carveout=8M@0xa0800000"
#define SPARE_HEAP "carveout@a0800000"
#define SPARE_LEN (8 * MIB)

/* A load takes about a second on the debug kernel (KASAN under TCG). */
TEST_F_TIMEOUT(promise, carveout_overlap, 300)
{
	int kmsg, heap, buf;

	if (!heap_exists("carveout@b0000000"))
		SKIP(return, "no heap carveout@b0000000 on this machine");
	if (rdh_provider())
		SKIP(return, RDH_PINNED);
	ASSERT_EQ(0, rdh_unload_module());
	self->reload = true;

	/* The second half of carveout@b0000000's range: refused. */
	kmsg = rdh_kmsg_mark();
	EXPECT_EQ(-EBUSY, rdh_load_module(OVERLAP));
	EXPECT_TRUE(rdh_kmsg_scan(kmsg, OVERLAP ": overlaps"));
	EXPECT_EQ(-1, rdh_module_refcnt());

	/* Inside spare@a0000000, reserved with no heap: a heap of its own. */
	ASSERT_EQ(0, rdh_load_module(SPARE));
	EXPECT_TRUE(heap_exists("carveout@b0000000"));
	heap = rdh_open_heap(SPARE_HEAP, O_RDONLY);
	ASSERT_LE(0, heap) TH_LOG("%s/%s: %s", rdh_dir(), SPARE_HEAP, strerror(errno));
	buf = rdh_alloc(heap, SPARE_LEN, O_RDWR | O_CLOEXEC, 0);
	EXPECT_LE(0, buf) TH_LOG("%s", strerror(-buf));
	EXPECT_EQ(-ENOMEM, rdh_alloc(heap, PAGE, O_RDWR | O_CLOEXEC, 0));
	if (buf >= 0)
		close(buf);
	close(heap);

	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module(""));
	self->reload = false;
	EXPECT_TRUE(heap_exists("carveout@b0000000"));
	EXPECT_FALSE(heap_exists(SPARE_HEAP));
}

/* The auto heap's charges */

#define AUTO_LEN (8 * MIB)
#define MEMCG_MAX (32 * MIB)
#define MEMCG_BUFS 16

TEST_F_TIMEOUT(promise, auto_memcg, 300)
{
	long long cur, left;
	int sock = -1, fds[MEMCG_BUFS], i, n, err, mapped = 0;
	char *maps[MEMCG_BUFS] = { NULL }, own[256], path[300];
	struct tally t;
	const char *why;
	pid_t pid;

	if (!heap_exists("auto"))
		SKIP(return, "no auto heap");
	why = cg_unavailable("memory", &err);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, err) TH_LOG("memory not in %s/cgroup.subtree_control", CG_ROOT);
	ASSERT_EQ(0, catch_sigbus());
	ASSERT_EQ(0, cg_make(self->cg, "memcg"));
	ASSERT_EQ(0, rdh_cg_set(self->cg, "memory.max", "33554432\n"));
	ASSERT_EQ(MEMCG_MAX, rdh_cg_num(self->cg, "memory.max"));

	pid = start_allocator(&self->child, self->cg, AUTO_LEN, MEMCG_BUFS, &sock);
	ASSERT_LT(0, pid) TH_LOG("%s", strerror(-pid));
	ASSERT_EQ(0, hear_tally(sock, &t));
	ASSERT_EQ(0, t.step) TH_LOG("allocator step %d failed", t.step);
	/* Nothing is charged before first use: each one succeeds or ENOMEM. */
	for (i = 0; i < MEMCG_BUFS; i++) {
		EXPECT_TRUE(!t.res[i] || t.res[i] == ENOMEM)
			TH_LOG("buffer %d: %s", i, strerror(t.res[i]));
	}
	ksft_print_msg("%d of %d buffers of 8 MiB allocated under memory.max 32 MiB\n", t.ok,
		       MEMCG_BUFS);
	for (n = 0; n < t.ok; n++) {
		fds[n] = rdh_recv_fd(sock);
		ASSERT_LE(0, fds[n]) TH_LOG("buffer %d: %s", n, strerror(-fds[n]));
	}

	/* First use here, outside the cgroup: charged there all the same. */
	for (i = 0; i < n; i++) {
		maps[i] = mmap(NULL, AUTO_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (maps[i] == MAP_FAILED) {
			EXPECT_EQ(ENOMEM, errno) TH_LOG("buffer %d", i);
			maps[i] = NULL;
			continue;
		}
		EXPECT_EQ(0, touch_pages(maps[i], AUTO_LEN)) TH_LOG("buffer %d: SIGBUS", i);
		mapped++;
	}
	cur = rdh_cg_num(self->cg, "memory.current");
	own_cgroup(own, sizeof(own));
	snprintf(path, sizeof(path), CG_ROOT "%s", strcmp(own, "/") ? own : "");
	ksft_print_msg("%d of %d mapped; memory.current of %s: %lld; this process is in %s (memory.current %lld)\n",
		       mapped, n, self->cg, cur, own, rdh_cg_num(path, "memory.current"));
	EXPECT_GE(4, mapped);
	EXPECT_LE(3, mapped);
	EXPECT_LE(mapped * AUTO_LEN, cur);

	for (i = 0; i < n; i++) {
		if (maps[i])
			munmap(maps[i], AUTO_LEN);
		close(fds[i]);
	}
	EXPECT_EQ(0, stop_allocator(sock, pid, &self->child));
	left = cg_num_below(self->cg, "memory.current", MIB);
	EXPECT_LE(0, left);
	EXPECT_GT(MIB, left);
	EXPECT_EQ(0, rdh_cg_remove(self->cg));
	self->cg[0] = '\0';
}

#define DMEM_REGION rdh_default_cma_region()
#define DMEM_MAX (16 * MIB)

TEST_F_TIMEOUT(promise, auto_dmem, 300)
{
	long long mem0, mem1, slack;
	int sock = -1, fds[2], i, n, err;
	char limit[64], chosen[64];
	struct tally t;
	const char *why;
	pid_t pid;
	char *p;

	if (!heap_exists("auto"))
		SKIP(return, "no auto heap");
	if (!heap_exists("default_cma_region"))
		SKIP(return, "no default_cma_region heap");
	why = cg_unavailable("dmem", &err);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, err) TH_LOG("dmem not in %s/cgroup.subtree_control", CG_ROOT);
	why = cg_unavailable("memory", &err);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, err) TH_LOG("memory not in %s/cgroup.subtree_control", CG_ROOT);
	ASSERT_EQ(0, catch_sigbus());
	ASSERT_EQ(0, cg_make(self->cg, "dmem"));
	snprintf(limit, sizeof(limit), "%s %lld\n", DMEM_REGION, DMEM_MAX);
	ASSERT_EQ(0, rdh_cg_set(self->cg, "dmem.max", limit));
	ASSERT_EQ(DMEM_MAX, cg_keyed(self->cg, "dmem.max", DMEM_REGION));
	ASSERT_EQ(0, cg_keyed(self->cg, "dmem.current", DMEM_REGION));

	/* Reserved at allocation, on the default CMA area's region. */
	pid = start_allocator(&self->child, self->cg, AUTO_LEN, 3, &sock);
	ASSERT_LT(0, pid) TH_LOG("%s", strerror(-pid));
	ASSERT_EQ(0, hear_tally(sock, &t));
	ASSERT_EQ(0, t.step) TH_LOG("allocator step %d failed", t.step);
	EXPECT_EQ(0, t.res[0]) TH_LOG("%s", strerror(t.res[0]));
	EXPECT_EQ(0, t.res[1]) TH_LOG("%s", strerror(t.res[1]));
	EXPECT_EQ(ENOMEM, t.res[2]) TH_LOG("%s", strerror(t.res[2]));
	EXPECT_EQ(DMEM_MAX, cg_keyed(self->cg, "dmem.current", DMEM_REGION));
	ASSERT_EQ(2, t.ok);
	for (n = 0; n < t.ok; n++) {
		fds[n] = rdh_recv_fd(sock);
		ASSERT_LE(0, fds[n]) TH_LOG("buffer %d: %s", n, strerror(-fds[n]));
	}

	/* The CPU first: system pages; the reservation goes back... */
	mem0 = rdh_cg_num(self->cg, "memory.current");
	ASSERT_LE(0, mem0);
	p = mmap(NULL, AUTO_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, touch_pages(p, AUTO_LEN)) TH_LOG("SIGBUS");
	ASSERT_EQ(0, rdh_buffer_memory(fds[0], chosen, sizeof(chosen)));
	EXPECT_STREQ("system", chosen);
	EXPECT_EQ(AUTO_LEN, rdh_cg_keyed_wait(self->cg, "dmem.current", DMEM_REGION, AUTO_LEN));
	/*
	 * ...and the pages are charged to the allocator's memory cgroup. A
	 * charge may come from or leave pages in a CPU's stock of precharged
	 * pages (MEMCG_CHARGE_BATCH, 64 pages, plus a page of slab bytes):
	 * each reading may be off by that much per CPU.
	 */
	mem1 = rdh_cg_num(self->cg, "memory.current");
	slack = sysconf(_SC_NPROCESSORS_ONLN) * (64 + 1) * (long long)PAGE;
	ksft_print_msg("memory.current of %s: %lld -> %lld (slack %lld)\n", self->cg, mem0,
		       mem1, slack);
	EXPECT_LE(mem0 + AUTO_LEN - slack, mem1);

	munmap(p, AUTO_LEN);
	for (i = 0; i < n; i++)
		close(fds[i]);
	EXPECT_EQ(0, stop_allocator(sock, pid, &self->child));
	EXPECT_EQ(0, rdh_cg_keyed_wait(self->cg, "dmem.current", DMEM_REGION, 0));
	EXPECT_EQ(0, rdh_cg_remove(self->cg));
	self->cg[0] = '\0';
}

TEST_HARNESS_MAIN
