// SPDX-License-Identifier: GPL-2.0
/*
 * Buffers as processes share them: fd passing over SCM_RIGHTS, fork,
 * close-on-exec, DMA_BUF_SET_NAME, concurrent threads, EMFILE without a
 * leaked buffer. Every test leaves the heap's bufinfo count as it found it.
 */
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "rdh.h"
#include "../kselftest_harness.h"

FIXTURE(share) {
	int heap;
	int bufs;
};

FIXTURE_VARIANT(share) {
	const char *name;
};

FIXTURE_VARIANT_ADD(share, system) { .name = "system" };
FIXTURE_VARIANT_ADD(share, system_uncached) { .name = "system-uncached" };
FIXTURE_VARIANT_ADD(share, auto) { .name = "auto" };
FIXTURE_VARIANT_ADD(share, default_cma_region) { .name = "default_cma_region" };
FIXTURE_VARIANT_ADD(share, linux_cma) { .name = "linux,cma" };
FIXTURE_VARIANT_ADD(share, video) { .name = "video" };
FIXTURE_VARIANT_ADD(share, carveout_nomap) { .name = "carveout@b0000000" };
FIXTURE_VARIANT_ADD(share, carveout_mapped) { .name = "carveout@b4000000" };

FIXTURE_SETUP(share)
{
	self->heap = rdh_fixture_open(variant->name, &self->bufs);
	if (self->heap == RDH_MISSING)
		SKIP(return, "no heap %s of ours on this machine", variant->name);
	ASSERT_LE(0, self->heap) TH_LOG("heap %s: %s", variant->name, strerror(-self->heap));
}

FIXTURE_TEARDOWN(share)
{
	RDH_TEARDOWN_HEAP(self->heap, self->bufs, variant->name);
}

TEST_F(share, fd_passed_over_scm_rights)
{
	int sv[2], buf, status;
	uint32_t *p;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child: receive, check what the parent wrote, answer. */
		int fd = rdh_recv_fd(sv[1]);
		uint32_t *q;

		if (fd < 0)
			_exit(10);
		q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (q == MAP_FAILED || q[0] != 0xfeed)
			_exit(11);
		q[1] = 0xbeef;
		munmap(q, PAGE);
		close(fd);
		_exit(0);
	}
	close(sv[1]);
	buf = rdh_alloc(self->heap, PAGE, O_RDWR | O_CLOEXEC, 0);
	ASSERT_LE(0, buf);
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 0xfeed;
	ASSERT_EQ(0, rdh_send_fd(sv[0], buf));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0xbeef, p[1]);
	munmap(p, PAGE);
	close(buf);
	close(sv[0]);
}

TEST_F(share, fork_shares_mapping_and_fd)
{
	int buf = rdh_alloc(self->heap, 2 * PAGE, O_RDWR, 0), status;
	uint32_t *p;
	pid_t pid;

	ASSERT_LE(0, buf);
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	ASSERT_NE(MAP_FAILED, p);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		p[PAGE / 4] = 0x1234;
		/* The inherited fd works in the child too. */
		_exit(rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW) ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0x1234, p[PAGE / 4]);
	munmap(p, 2 * PAGE);
	close(buf);
}

TEST_F(share, cloexec_buffer_gone_after_exec)
{
	int a = rdh_alloc(self->heap, PAGE, O_RDWR | O_CLOEXEC, 0);
	int b = rdh_alloc(self->heap, PAGE, O_RDWR, 0);
	char cmd[128];
	int status;
	pid_t pid;

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	snprintf(cmd, sizeof(cmd), "! test -e /proc/self/fd/%d && test -e /proc/self/fd/%d", a, b);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		execl("/bin/busybox", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("%s", cmd);
	close(a);
	close(b);
}

TEST_F(share, set_name_shows_in_fdinfo)
{
	int buf = rdh_alloc(self->heap, PAGE, O_RDWR, 0), f;
	char path[64], text[1024], longname[64];
	ssize_t n;

	ASSERT_LE(0, buf);
	ASSERT_EQ(0, ioctl(buf, DMA_BUF_SET_NAME, "camera-0"));
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", buf);
	f = open(path, O_RDONLY);
	ASSERT_LE(0, f);
	n = read(f, text, sizeof(text) - 1);
	ASSERT_LT(0, n);
	text[n] = '\0';
	close(f);
	EXPECT_NE(NULL, strstr(text, "name:\tcamera-0\n")) TH_LOG("%s", text);
	/* Longer than DMA_BUF_NAME_LEN: refused. */
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	EXPECT_EQ(-1, ioctl(buf, DMA_BUF_SET_NAME, longname));
	EXPECT_EQ(EINVAL, errno);
	close(buf);
}

struct worker {
	const char *name;
	int errors;
};

static void *churn(void *arg)
{
	struct worker *w = arg;
	int i, heap = rdh_open_heap(w->name, O_RDONLY);

	if (heap < 0) {
		w->errors++;
		return NULL;
	}
	for (i = 0; i < 100; i++) {
		size_t len = PAGE << (i % 5);
		int buf = rdh_alloc(heap, len, O_RDWR | O_CLOEXEC, 0);
		uint8_t *p;

		if (buf < 0) {
			w->errors++;
			continue;
		}
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
		if (p == MAP_FAILED) {
			w->errors++;
		} else {
			if (p[len - 1])
				w->errors++;
			p[0] = i;
			munmap(p, len);
		}
		close(buf);
	}
	close(heap);
	return NULL;
}

TEST_F(share, concurrent_threads)
{
	struct worker w[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ .name = variant->name };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, churn, &w[i]));
	}
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, w[i].errors);
	}
}

TEST_F(share, emfile_leaves_no_buffer)
{
	struct rlimit old, lim;
	int fds[8], n = 0, ret = 0, i;

	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &old));
	lim = old;
	lim.rlim_cur = rdh_count_fds() + 3;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &lim));
	while (n < 8) {
		ret = rdh_alloc(self->heap, PAGE, O_RDWR | O_CLOEXEC, 0);
		if (ret < 0)
			break;
		fds[n++] = ret;
	}
	EXPECT_EQ(-EMFILE, ret);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &old));
	/* The refused allocation left no buffer behind. */
	EXPECT_EQ(self->bufs + n, rdh_bufinfo_count(variant->name));
	for (i = 0; i < n; i++)
		close(fds[i]);
}

TEST_HARNESS_MAIN
