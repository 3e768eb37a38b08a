/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the rust-dma-heap selftests.
 */
#ifndef RDH_SELFTEST_H
#define RDH_SELFTEST_H

#include <dirent.h>
#include <poll.h>
#include <stdbool.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <drm/drm.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>

#define PAGE 4096UL

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* Where the heaps are: /dev/dma_heap, or RDH_DEV_DIR when set. */
static inline const char *rdh_dir(void)
{
	const char *d = getenv("RDH_DEV_DIR");

	return d ? d : "/dev/dma_heap";
}

/*
 * Provider mode (the runner sets RDH_PROVIDER): the heaps are in the
 * kernel's own framework (its ioctl answers) and the module, pinned,
 * cannot be unloaded: what needs an unload is skipped there (RDH_PINNED).
 */
static inline bool rdh_provider(void)
{
	return getenv("RDH_PROVIDER") != NULL;
}

/*
 * Provider mode with the kernel's own heap of that name loaded first (the
 * runner sets RDH_TAKEN=<name>): that node is not ours, and the programs
 * leave it alone.
 */
static inline bool rdh_taken(const char *name)
{
	const char *taken = getenv("RDH_TAKEN");

	return taken && !strcmp(taken, name);
}

/* Why a case about the system heap is skipped when that name is taken. */
#define RDH_SYSTEM_TAKEN "system is the kernel's own heap here"

/* Why a case that needs an unload is skipped in provider mode. */
#define RDH_PINNED "provider mode: the module stays loaded"

/*
 * A heap's attribute, at the path it has in both modes:
 * /sys/kernel/rust_dma_heap/heaps/<heap>/<attr>.
 */
static inline void rdh_attr_path(char *buf, size_t len, const char *heap, const char *attr)
{
	snprintf(buf, len, "/sys/kernel/rust_dma_heap/heaps/%s/%s", heap, attr);
}

/*
 * Heaps a machine may lack (a CMA area, a carve-out, auto without CMA):
 * a missing one is skipped (KSFT_SKIP), so that the suite runs on any
 * board; the test bench, which knows its machine has every one, sets
 * RDH_REQUIRE_HEAPS=1 and a missing heap fails.
 */
static inline bool rdh_missing_ok(void)
{
	const char *require = getenv("RDH_REQUIRE_HEAPS");

	return !require || strcmp(require, "1");
}

/* Why a case that maps through the test importer is skipped without it. */
#define RDH_NO_IMPORTER "no test importer (importer/rdh_importer.ko beside the program)"

/*
 * The selftests' in-kernel importer, /dev/rdh_importer: loaded first from
 * importer/rdh_importer.ko beside the program (where kselftest installs
 * TEST_GEN_MODS_DIR) when it is not there yet. The fd, or -errno (-ENOENT:
 * neither loaded nor found).
 */
static inline int rdh_open_importer(void)
{
	char dir[PATH_MAX], ko_path[PATH_MAX + 32], *slash;
	int fd = open("/dev/rdh_importer", O_RDWR | O_CLOEXEC), ko;
	ssize_t n;

	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0)
		return -ENOENT;
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	snprintf(ko_path, sizeof(ko_path), "%s/importer/rdh_importer.ko", dir);
	ko = open(ko_path, O_RDONLY | O_CLOEXEC);
	if (ko < 0)
		return -ENOENT;
	/* EEXIST: another test loaded it meanwhile. */
	syscall(SYS_finit_module, ko, "", 0);
	close(ko);
	fd = open("/dev/rdh_importer", O_RDWR | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static inline int rdh_open_heap(const char *name, int flags)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", rdh_dir(), name);
	return open(path, flags | O_CLOEXEC);
}

/* Allocate; returns the dma-buf fd or -errno. */
static inline int rdh_alloc(int heap_fd, uint64_t len, uint32_t fd_flags,
			    uint64_t heap_flags)
{
	struct dma_heap_allocation_data data = {
		.len = len,
		.fd_flags = fd_flags,
		.heap_flags = heap_flags,
	};

	if (ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data) < 0)
		return -errno;
	return data.fd;
}

static inline int rdh_sync(int buf_fd, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags };

	return ioctl(buf_fd, DMA_BUF_IOCTL_SYNC, &sync) < 0 ? -errno : 0;
}

/* Number of open fds of this process. */
static inline int rdh_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static inline long rdh_pool_kb(void);

/*
 * The number after "@key@sep" on a line of file @path (the last such line),
 * or -1: /proc/meminfo ("MemFree:"), /proc/vmstat and cgroup keyed files
 * ("oom_kill ").
 */
static inline long long rdh_keyed(const char *key, const char *path, char sep)
{
	char line[256];
	size_t n = strlen(key);
	long long v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == sep)
			v = strtoll(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

/*
 * The dmem region of the default CMA area: "cma/linux,cma" from a device
 * tree, "cma/reserved" from cma= on the command line.
 */
static inline const char *rdh_default_cma_region(void)
{
	return rdh_keyed("cma/linux,cma", "/sys/fs/cgroup/dmem.capacity", ' ') >= 0 ?
		       "cma/linux,cma" : "cma/reserved";
}

/*
 * A field of /proc/meminfo, in KiB. "MemFree+pool" is MemFree plus the
 * system heap's page pool (freed pages it keeps for reuse and gives back
 * under memory pressure): what tests that check memory came back compare.
 */
/*
 * Free pages the per-CPU lists hold (/proc/zoneinfo's pagesets, "count:"),
 * in KiB: free memory that MemFree does not count. After a burst of frees
 * they can hold tens of MiB, given back only as the lists decay.
 */
static inline long rdh_pcp_kb(void)
{
	FILE *f = fopen("/proc/zoneinfo", "re");
	char line[256];
	long pages = 0, n;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %ld", &n) == 1)
			pages += n;
	fclose(f);
	return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline long rdh_meminfo(const char *field)
{
	/* Free memory, wherever it is kept: the pool, the per-CPU lists. */
	if (!strcmp(field, "MemFree+pool"))
		return rdh_meminfo("MemFree") + rdh_pool_kb() + rdh_pcp_kb();
	return rdh_keyed(field, "/proc/meminfo", ':');
}

/* Lines of debugfs bufinfo naming exporter @exp_name (-1: no debugfs). */
static inline int rdh_bufinfo_count(const char *exp_name)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *tok, *save;
		int col = 0;

		/* size flags mode count exp_name ino name */
		for (tok = strtok_r(line, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save), col++)
			if (col == 4 && !strcmp(tok, exp_name))
				n++;
	}
	fclose(f);
	return n;
}

/* Read a small text file into @buf, without a trailing newline. */
static inline int rdh_read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return 0;
}

/*
 * Write @text to an existing file (sysfs, cgroupfs, procfs) in one
 * write(): 0, or -errno of the open or the write.
 */
static inline int rdh_write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;
	ssize_t len = strlen(text);

	if (fd < 0)
		return -errno;
	errno = 0;
	if (write(fd, text, len) != len)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

/* A /proc/vmstat counter, per-CPU deltas folded in first (stat_refresh). */
static inline long rdh_vmstat(const char *key)
{
	rdh_write_text("/proc/sys/vm/stat_refresh", "1\n");
	return rdh_keyed(key, "/proc/vmstat", ' ');
}

/*
 * The heaps' class, as in /sys/class/<class> and debugfs: the last
 * component of rdh_dir() (dma_heap, or e.g. rust_dma_heap).
 */
static inline const char *rdh_class(void)
{
	const char *d = rdh_dir(), *slash = strrchr(d, '/');

	return slash ? slash + 1 : d;
}

/*
 * The system heap's sysfs "pool" (bytes) in KiB; where the heaps are the
 * kernel's framework's (provider mode: no attributes of ours in its
 * class), /sys/kernel/<class>/total_pools_kb (only the system heap has a
 * pool); 0 without either.
 */
static inline long rdh_pool_kb(void)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), "/sys/class/%s/system/pool", rdh_class());
	if (!rdh_read_text(path, buf, sizeof(buf)))
		return strtol(buf, NULL, 10) >> 10;
	snprintf(path, sizeof(path), "/sys/kernel/%s/total_pools_kb", rdh_class());
	if (!rdh_read_text(path, buf, sizeof(buf)))
		return strtol(buf, NULL, 10);
	return 0;
}

/* Pass @fd over unix socket @sock (SCM_RIGHTS): 0 or -errno. */
static inline int rdh_send_fd(int sock, int fd)
{
	char data = 'x', ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/*
 * The fd passed over unix socket @sock (SCM_RIGHTS), within a minute:
 * the fd, or -ETIMEDOUT, -EPIPE (nothing came), -EPROTO (no fd came).
 */
static inline int rdh_recv_fd(int sock)
{
	char data, ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	int fd;

	if (poll(&p, 1, 60000) != 1)
		return -ETIMEDOUT;
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -EPIPE;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/*
 * The default CMA area cma= on the command line made (no device tree):
 * "cma: Reserved 128 MiB at 0x0000000076800000". 0, or -ENOENT.
 */
static inline int rdh_cmdline_cma(uint64_t *base, uint64_t *size)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK), found = -ENOENT;
	char rec[1024], *p;
	uint64_t mib;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = '\0';
		p = strstr(rec, "cma: Reserved ");
		if (p && sscanf(p, "cma: Reserved %" SCNu64 " MiB at 0x%" SCNx64, &mib, base) == 2) {
			*size = mib << 20;
			found = 0;
		}
	}
	close(fd);
	return found;
}

/* Run "mdev -s" (busybox): its exit status, or 127 when there is none. */
static inline int rdh_mdev_scan(void)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 1);
		execl("/bin/busybox", "mdev", "-s", (char *)NULL);
		execlp("mdev", "mdev", "-s", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * Whether a kernel log record read from @fd (a non-blocking /dev/kmsg, from
 * where it stands) to the end contains @needle; closes @fd.
 */
static inline bool rdh_kmsg_scan(int fd, const char *needle)
{
	char rec[2048];
	bool found = false;
	ssize_t n;

	if (fd < 0)
		return false;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = '\0';
		if (strstr(rec, needle))
			found = true;
	}
	close(fd);
	return found;
}

/* Whether a kernel log record since boot contains @needle. */
static inline bool rdh_kmsg_has(const char *needle)
{
	return rdh_kmsg_scan(open("/dev/kmsg", O_RDONLY | O_NONBLOCK), needle);
}

/*
 * Fork a child connected to the caller by a SOCK_SEQPACKET socket pair: the
 * child gets 0 and its end in *@sock (it should end with _exit()), the
 * caller the child's pid and the other end; -errno on failure.
 */
static inline pid_t rdh_fork_connected(int *sock)
{
	pid_t pid;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	close(pid ? sv[1] : sv[0]);
	*sock = pid ? sv[0] : sv[1];
	return pid;
}

/* Whether space-separated @text (cgroup.controllers) has the word @word. */
static inline bool rdh_has_word(const char *text, const char *word)
{
	size_t n = strlen(word);
	const char *p = text;

	while ((p = strstr(p, word))) {
		if ((p == text || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

#define RDH_CG_ROOT "/sys/fs/cgroup"

/* Write @text to file @file of cgroup @cg (a path): 0 or -errno. */
static inline int rdh_cg_set(const char *cg, const char *file, const char *text)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	return rdh_write_text(path, text);
}

/*
 * A cgroup file holding one number (memory.current, memory.max; "max" is
 * LLONG_MAX), or -errno.
 */
static inline long long rdh_cg_num(const char *cg, const char *file)
{
	char path[512], text[64], *end;
	long long v;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	ret = rdh_read_text(path, text, sizeof(text));
	if (ret)
		return ret;
	if (!strcmp(text, "max"))
		return LLONG_MAX;
	errno = 0;
	v = strtoll(text, &end, 10);
	return errno || end == text || *end ? -EPROTO : v;
}

/*
 * Wait up to 2 s for line @key of numeric keyed cgroup file @file of @cg
 * (dmem.current) to read @want: the last value read (-1 if none).
 */
static inline long long rdh_cg_keyed_wait(const char *cg, const char *file, const char *key,
					  long long want)
{
	char path[512];
	long long v;
	int i;

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	v = rdh_keyed(key, path, ' ');
	for (i = 0; i < 20 && v != want; i++) {
		usleep(100000);
		v = rdh_keyed(key, path, ' ');
	}
	return v;
}

/* Remove cgroup @cg once its processes are gone (up to 5 s): 0 or -errno. */
static inline int rdh_cg_remove(const char *cg)
{
	int i;

	for (i = 0; i < 50; i++) {
		if (!rmdir(cg) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		usleep(100000);
	}
	return -EBUSY;
}

/* The module under test: RDH_KO, or where the runner puts it. */
static inline int rdh_load_module(const char *params)
{
	const char *ko = getenv("RDH_KO");
	char all[512];
	int fd, ret;

	/* Back under the class the suite runs against (rdh_class()). */
	if (strcmp(rdh_class(), "dma_heap") && !strstr(params, "class_name=")) {
		snprintf(all, sizeof(all), "%s%sclass_name=%s", params,
			 *params ? " " : "", rdh_class());
		params = all;
	}
	fd = open(ko ? ko : "/lib/modules/rust_dma_heap.ko", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static inline int rdh_unload_module(void)
{
	return syscall(__NR_delete_module, "rust_dma_heap", O_NONBLOCK) ? -errno : 0;
}

/* The module's reference count, or -1. */
static inline int rdh_module_refcnt(void)
{
	char buf[32];

	if (rdh_read_text("/sys/module/rust_dma_heap/refcnt", buf, sizeof(buf)))
		return -1;
	return atoi(buf);
}

/* Open vgem's card node, or -1. */
static inline int rdh_open_vgem(void)
{
	char name[16], path[32];
	int i, fd;

	for (i = 0; i < 16; i++) {
		struct drm_version v = { .name = name, .name_len = sizeof(name) - 1 };

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(name, 0, sizeof(name));
		if (!ioctl(fd, DRM_IOCTL_VERSION, &v) && !strcmp(name, "vgem"))
			return fd;
		close(fd);
	}
	return -1;
}

/* The most heaps one registry holds (the module's MAX_HEAPS). */
#define RDH_MAX_HEAPS 128

/*
 * The heap nodes in rdh_dir(), sorted by name: fills @names (each
 * RDH_NAME_LEN bytes) and returns how many, or -errno.
 */
#define RDH_NAME_LEN 64

static inline int rdh_cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

static inline int rdh_list_heaps(char (*names)[RDH_NAME_LEN], int max)
{
	DIR *d = opendir(rdh_dir());
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= RDH_NAME_LEN ||
		    rdh_taken(e->d_name))
			continue;
		strcpy(names[n++], e->d_name);
	}
	closedir(d);
	qsort(names, n, RDH_NAME_LEN, rdh_cmp_names);
	return n;
}

/*
 * Wait up to @ms milliseconds for meminfo @field to reach @want KiB;
 * returns the last value read.
 */
static inline long rdh_meminfo_wait(const char *field, long want, int ms)
{
	long v = rdh_meminfo(field);

	while (v < want && ms > 0) {
		usleep(100000);
		ms -= 100;
		v = rdh_meminfo(field);
	}
	return v;
}

/* A seed for a test's random choices (the guest has no clock to use). */
static inline uint64_t rdh_random_seed(void)
{
	struct timespec t;
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) == sizeof(seed))
		return seed;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_nsec << 32 ^ t.tv_sec ^ (uint64_t)getpid() << 16;
}

/* Whether the kernel is built with KASAN (its boot message, or its symbols). */
static inline bool rdh_kasan(void)
{
	static int kasan = -1;
	char line[256];
	FILE *f;

	if (kasan >= 0)
		return kasan;
	kasan = rdh_kmsg_has("KernelAddressSanitizer initialized");
	f = kasan ? NULL : fopen("/proc/kallsyms", "r");
	while (f && !kasan && fgets(line, sizeof(line), f))
		kasan = strstr(line, " kasan_report\n") != NULL;
	if (f)
		fclose(f);
	return kasan;
}

/*
 * How much less free memory (KiB) a test may leave behind without having
 * leaked any: @slack_kb for what the rest of the system does meanwhile,
 * plus, under KASAN, its quarantine of freed slab objects, which holds up
 * to 1/32 of RAM back from the allocator (mm/kasan/quarantine.c). (Its
 * leaks are kmemleak's to find.)
 */
static inline long rdh_mem_slack(long slack_kb)
{
	return slack_kb + (rdh_kasan() ? rdh_meminfo("MemTotal") / 32 : 0);
}

/* A reader of the kernel log that sees only records written from now on. */
static inline int rdh_kmsg_mark(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/*
 * Records since rdh_kmsg_mark() that show a kernel warning, bug, oops or
 * leak (what the runner's verdict rejects); copies the first to @first
 * and closes @fd.
 */
static inline int rdh_kmsg_bad_since(int fd, char *first, size_t len)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Oops", "Call trace", "Kernel panic",
		"refcount_t:", "unreferenced object", "memory leak", "KASAN:",
		"UBSAN:", "possible circular locking", "inconsistent lock state",
		"sleeping function called from invalid context",
		"list_add corruption", "list_del corruption",
		"general protection fault", "Unable to handle kernel",
	};
	char rec[2048];
	unsigned int i;
	ssize_t n;
	int found = 0;

	if (len)
		first[0] = '\0';
	if (fd < 0)
		return 0;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = '\0';
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			if (!strstr(rec, bad[i]))
				continue;
			if (!found++ && len)
				snprintf(first, len, "%s", rec);
			break;
		}
	}
	close(fd);
	return found;
}

#define RDH_KMEMLEAK "/sys/kernel/debug/kmemleak"

/* Write a command ("scan", "clear") to kmemleak: 0 or -errno. */
static inline int rdh_kmemleak(const char *cmd)
{
	int fd = open(RDH_KMEMLEAK, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, cmd, strlen(cmd)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * kmemleak's report after two scans (an object is reported only when it
 * is older than kmemleak's minimum age, 5 s, and still unreferenced in the
 * latest scan): copies its start to @buf and returns its length in bytes
 * (0: no leak), or -errno.
 */
static inline long rdh_kmemleak_report(char *buf, size_t len)
{
	long total = 0;
	ssize_t n;
	int fd, ret;

	sleep(6);
	ret = rdh_kmemleak("scan");
	if (!ret)
		ret = rdh_kmemleak("scan");
	if (ret)
		return ret;
	fd = open(RDH_KMEMLEAK, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf[0] = '\0';
	while ((n = read(fd, buf + total, len - 1 - total)) > 0) {
		total += n;
		if ((size_t)total == len - 1) {
			char rest[512];

			while ((n = read(fd, rest, sizeof(rest))) > 0)
				total += n;
			break;
		}
	}
	close(fd);
	buf[total < (long)len ? total : (long)len - 1] = '\0';
	return total;
}

/* rdh_fixture_open(): the heap is missing where that is allowed. */
/*
 * The pfn behind each page of a mapping (root: pagemap shows pfns). The
 * heaps map every page at mmap time, so no fault-in is needed.
 */
static inline int rdh_pfns_of(void *addr, size_t pages, uint64_t *pfn)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	size_t i;

	if (fd < 0)
		return -errno;
	for (i = 0; i < pages; i++) {
		uint64_t e;
		off_t off = ((uintptr_t)addr / PAGE + i) * 8;

		if (pread(fd, &e, 8, off) != 8 || !(e & (1ULL << 63))) {
			close(fd);
			return -EIO;
		}
		pfn[i] = e & ((1ULL << 55) - 1);
	}
	close(fd);
	return 0;
}

/*
 * The pfns of buffer @fd (@len bytes) through a mapping of it: the first,
 * the highest, and whether they are one range. 0 or -errno.
 */
static inline int rdh_pfn_span(int fd, size_t len, uint64_t *first, uint64_t *last,
			       bool *contiguous)
{
	size_t pages = len / PAGE, i;
	uint64_t *pfn = calloc(pages, sizeof(*pfn));
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	int ret;

	if (!pfn || p == MAP_FAILED) {
		free(pfn);
		if (p != MAP_FAILED)
			munmap(p, len);
		return -ENOMEM;
	}
	ret = rdh_pfns_of(p, pages, pfn);
	munmap(p, len);
	*first = pfn[0];
	*last = pfn[0];
	*contiguous = true;
	for (i = 1; !ret && i < pages; i++) {
		*contiguous &= pfn[i] == pfn[i - 1] + 1;
		if (pfn[i] > *last)
			*last = pfn[i];
	}
	free(pfn);
	return ret;
}

/* Fill @len bytes of buffer @fd with @byte through a mapping; 0 or -errno. */
static inline int rdh_fill(int fd, size_t len, int byte)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	memset(p, byte, len);
	munmap(p, len);
	return 0;
}

/* Offset of the first non-zero byte of buffer @fd, -1 if none, -2 on error. */
static inline long rdh_first_nonzero(int fd, size_t len)
{
	const unsigned char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	long at = -1;
	size_t i;

	if (p == MAP_FAILED)
		return -2;
	for (i = 0; i < len; i++)
		if (p[i]) {
			at = i;
			break;
		}
	munmap((void *)p, len);
	return at;
}

/* The "memory" column of buffer @fd's line in debugfs "buffers". */
static inline int rdh_buffer_memory(int fd, char *out, size_t len)
{
	char path[128], line[1024];
	struct stat st;
	int ret = -ENOENT;
	FILE *f;

	if (fstat(fd, &st))
		return -errno;
	snprintf(path, sizeof(path), "/sys/kernel/debug/%s/buffers", rdh_class());
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *field = NULL;
		int k;

		if (strtoull(line, NULL, 10) != (unsigned long long)st.st_ino)
			continue;
		line[strcspn(line, "\n")] = '\0';
		for (k = 0; k < 10 && p; k++)
			field = strsep(&p, "\t");
		if (k == 10 && field) {
			snprintf(out, len, "%s", field);
			ret = 0;
		}
		break;
	}
	fclose(f);
	return ret;
}

/* Not -ENOENT: a heap missing where it may not be is an error, not a skip. */
#define RDH_MISSING INT_MIN

/*
 * For a FIXTURE_SETUP: open heap @name and record its live buffers in
 * @bufs. Returns the fd, RDH_MISSING (skip the test) or another -errno.
 */
static inline int rdh_fixture_open(const char *name, int *bufs)
{
	int fd;

	if (rdh_taken(name))
		return RDH_MISSING;
	fd = rdh_open_heap(name, O_RDONLY);

	if (fd < 0)
		return errno == ENOENT && rdh_missing_ok() ? RDH_MISSING : -errno;
	*bufs = rdh_bufinfo_count(name);
	if (*bufs < 0) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/*
 * For a FIXTURE_TEARDOWN: close the heap and check that the test left no
 * buffer behind.
 */
#define RDH_TEARDOWN_HEAP(fd, bufs, name) do {					\
	if ((fd) >= 0) {							\
		close(fd);							\
		EXPECT_EQ((bufs), rdh_bufinfo_count(name));			\
	}									\
} while (0)

/* splitmix64: the fuzzer's and the stress test's seeded PRNG. */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static inline bool chance(uint64_t *s, unsigned int percent)
{
	return below(s, 100) < percent;
}

#endif /* RDH_SELFTEST_H */
