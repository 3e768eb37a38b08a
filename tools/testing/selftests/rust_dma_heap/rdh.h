/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the rust-dma-heap selftests.
 */
#ifndef RDH_SELFTEST_H
#define RDH_SELFTEST_H

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <drm/drm.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>

#define PAGE 4096UL

/* Where the heaps are: /dev/dma_heap, or RDH_DEV_DIR when set. */
static inline const char *rdh_dir(void)
{
	const char *d = getenv("RDH_DEV_DIR");

	return d ? d : "/dev/dma_heap";
}

/*
 * Heaps a machine may lack (the runner sets RDH_ALLOW_MISSING where its
 * memory layout has no such region, e.g. x86_64 without a device tree):
 * a missing one is skipped there and fails everywhere else.
 */
static inline bool rdh_missing_ok(void)
{
	return getenv("RDH_ALLOW_MISSING") != NULL;
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

/* A field of /proc/meminfo, in KiB. */
static inline long rdh_meminfo(const char *field)
{
	char line[256];
	size_t n = strlen(field);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
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

/* Whether a kernel log record since boot contains @needle. */
static inline bool rdh_kmsg_has(const char *needle)
{
	char rec[2048];
	bool found = false;
	ssize_t n;
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

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

/* The module under test: RDH_KO, or where the runner puts it. */
static inline int rdh_load_module(const char *params)
{
	const char *ko = getenv("RDH_KO");
	int fd, ret;

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

/* rdh_fixture_open(): the heap is missing where that is allowed. */
#define RDH_MISSING (-ENOENT)

/*
 * For a FIXTURE_SETUP: open heap @name and record its live buffers in
 * @bufs. Returns the fd, RDH_MISSING (skip the test) or another -errno.
 */
static inline int rdh_fixture_open(const char *name, int *bufs)
{
	int fd = rdh_open_heap(name, O_RDONLY);

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

#endif /* RDH_SELFTEST_H */
