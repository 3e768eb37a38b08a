// SPDX-License-Identifier: GPL-2.0
/*
 * Charging the client: a service allocates for another process (a pidfd
 * of it in charge_pid_fd) and that process's memory cgroup is charged,
 * and limited, instead of the service's. Through RUST_DMA_HEAP_IOCTL_ALLOC
 * on the control node (every mode) and, where the module serves its own
 * nodes, the proposal's 32-byte DMA_HEAP_IOCTL_ALLOC on a heap's node.
 *
 * Layout: a cgroup of the test with the memory controller for its two
 * children (and not dmem: they share its dmem cgroup), "svc" (the
 * service: this process) and "cli" (the client: a child that waits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-heap.h>
#include <linux/rust-dma-heap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "rdh.h"

#define MIB (1024UL * 1024)
#define CONTROL "/dev/rust_dma_heap_ctl"
/*
 * memcg charges ahead in per-CPU batches (64 pages a CPU): a cgroup's
 * memory.current may be that much above its pages, and drop by it when a
 * batch is drained.
 */
#define SLACK (1024 * 1024LL)

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* The 32-byte argument of the proposal's DMA_HEAP_IOCTL_ALLOC. */
struct rfc_allocation_data {
	__u64 len;
	__u32 fd;
	__u32 fd_flags;
	__u64 heap_flags;
	__u32 charge_pid_fd;
	__u32 __padding;
};

#define RFC_IOCTL_ALLOC _IOWR(DMA_HEAP_IOC_MAGIC, 0x0, struct rfc_allocation_data)

/*
 * RUST_DMA_HEAP_IOCTL_ALLOC on the control node for heap node @heap,
 * charged to @pidfd (0: the caller): the dma-buf fd or -errno.
 */
static int alloc_for(int ctl, int heap, size_t len, int pidfd)
{
	struct rust_dma_heap_alloc_data d = {
		.len = len,
		.fd_flags = O_RDWR | O_CLOEXEC,
		.charge_pid_fd = pidfd,
		.heap_fd = heap,
	};

	if (ioctl(ctl, RUST_DMA_HEAP_IOCTL_ALLOC, &d))
		return -errno;
	return d.fd;
}

static int pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

/*
 * A child (in cgroup @cg unless NULL) named "rdh-client" that waits until
 * *@wait_w is closed (or it is killed). Returned once it is in its cgroup
 * and named: -ECHILD when it could not join the cgroup.
 */
static pid_t spawn_client(const char *cg, int *wait_w)
{
	int p[2], ready[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	if (pipe2(ready, O_CLOEXEC)) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		close(ready[0]);
		if (cg && rdh_cg_set(cg, "cgroup.procs", "0\n"))
			_exit(1);
		prctl(PR_SET_NAME, "rdh-client");
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		close(ready[1]);
		while (read(p[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(p[0]);
	close(ready[1]);
	if (pid < 0 || read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		close(p[1]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return pid < 0 ? -errno : -ECHILD;
	}
	close(ready[0]);
	*wait_w = p[1];
	return pid;
}

FIXTURE(charge) {
	char top[128], svc[160], cli[160];
	int ctl, heap, bufs, pidfd, wait_w;
	pid_t client;
};

FIXTURE_VARIANT(charge) {
	const char *heap;
};

FIXTURE_VARIANT_ADD(charge, system) { .heap = "system" };
FIXTURE_VARIANT_ADD(charge, auto) { .heap = "auto" };
FIXTURE_VARIANT_ADD(charge, default_cma_region) { .heap = "default_cma_region" };

FIXTURE_SETUP(charge)
{
	char text[256];

	self->ctl = self->heap = self->pidfd = self->wait_w = -1;
	self->client = 0;
	if (rdh_read_text(RDH_CG_ROOT "/cgroup.subtree_control", text, sizeof(text)) ||
	    !rdh_has_word(text, "memory"))
		SKIP(return, "no memory controller for child cgroups");
	if (!strcmp(variant->heap, "system") && rdh_taken("system"))
		SKIP(return, RDH_SYSTEM_TAKEN);
	self->heap = rdh_fixture_open(variant->heap, &self->bufs);
	if (self->heap == RDH_MISSING)
		SKIP(return, "no %s heap", variant->heap);
	ASSERT_LE(0, self->heap);
	self->ctl = open(CONTROL, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->ctl);
	snprintf(self->top, sizeof(self->top), RDH_CG_ROOT "/rdh-charge-%d", getpid());
	snprintf(self->svc, sizeof(self->svc), "%s/svc", self->top);
	snprintf(self->cli, sizeof(self->cli), "%s/cli", self->top);
	ASSERT_EQ(0, mkdir(self->top, 0755));
	/* Memory only: both children stay in the test cgroup's dmem cgroup. */
	ASSERT_EQ(0, rdh_cg_set(self->top, "cgroup.subtree_control", "+memory"));
	ASSERT_EQ(0, mkdir(self->svc, 0755));
	ASSERT_EQ(0, mkdir(self->cli, 0755));
	/* 4 buffers of 8 MiB fit, with room for the client's own pages. */
	snprintf(text, sizeof(text), "%lu", 33 * MIB);
	ASSERT_EQ(0, rdh_cg_set(self->cli, "memory.max", text));
	/* Returned once it is in its cgroup and named. */
	self->client = spawn_client(self->cli, &self->wait_w);
	ASSERT_LT(0, self->client);
	self->pidfd = pidfd_open(self->client);
	ASSERT_LE(0, self->pidfd);
	ASSERT_EQ(0, rdh_cg_set(self->svc, "cgroup.procs", "0\n"));
}

FIXTURE_TEARDOWN(charge)
{
	if (self->wait_w >= 0)
		close(self->wait_w);
	if (self->client > 0)
		waitpid(self->client, NULL, 0);
	if (self->pidfd >= 0)
		close(self->pidfd);
	if (self->ctl >= 0)
		close(self->ctl);
	if (self->top[0]) {
		rdh_cg_set(RDH_CG_ROOT, "cgroup.procs", "0\n");
		rdh_cg_remove(self->svc);
		rdh_cg_remove(self->cli);
		rdh_cg_remove(self->top);
	}
	RDH_TEARDOWN_HEAP(self->heap, self->bufs, variant->heap);
}

/* Memory placed now: an auto buffer gets it at its first CPU use. */
static int use(int buf, size_t len)
{
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);

	if (p == MAP_FAILED)
		return -errno;
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	munmap(p, len);
	return 0;
}

/*
 * The client's memory cgroup is charged 8 MiB a buffer and the service's
 * not; the fifth is over the client's memory.max (ENOMEM), however much
 * room the service has; closing gives the client its charge back.
 */
TEST_F(charge, client_pays_within_its_limit)
{
	long long cli0, svc0, cli, svc;
	int bufs[5], i, n = 0;

	if (!strcmp(variant->heap, "default_cma_region"))
		SKIP(return, "CMA is charged to the dmem controller");
	/* The service itself could not hold one of them. */
	ASSERT_EQ(0, rdh_cg_set(self->svc, "memory.max", "4194304"));
	cli0 = rdh_cg_num(self->cli, "memory.current");
	svc0 = rdh_cg_num(self->svc, "memory.current");
	for (i = 0; i < 4; i++) {
		bufs[i] = alloc_for(self->ctl, self->heap, 8 * MIB, self->pidfd);
		ASSERT_LE(0, bufs[i]) TH_LOG("buffer %d: %s", i, strerror(-bufs[i]));
		n++;
		ASSERT_EQ(0, use(bufs[i], 8 * MIB));
		cli = rdh_cg_num(self->cli, "memory.current");
		EXPECT_LE(cli0 + (i + 1) * (long long)(8 * MIB) - SLACK, cli);
		EXPECT_GT(cli0 + (i + 1) * (long long)(8 * MIB) + SLACK, cli);
	}
	svc = rdh_cg_num(self->svc, "memory.current");
	EXPECT_GT(svc0 + SLACK, svc);
	bufs[4] = alloc_for(self->ctl, self->heap, 8 * MIB, self->pidfd);
	if (bufs[4] >= 0) {
		/* auto: refused at allocation, or at placement. */
		EXPECT_EQ(-ENOMEM, use(bufs[4], 8 * MIB) ? -ENOMEM : 0);
		close(bufs[4]);
	} else {
		EXPECT_EQ(-ENOMEM, bufs[4]);
	}
	for (i = 0; i < n; i++)
		close(bufs[i]);
	for (i = 0; i < 50 && rdh_cg_num(self->cli, "memory.current") > cli0 + SLACK; i++)
		usleep(20000);
	EXPECT_GT(cli0 + SLACK, rdh_cg_num(self->cli, "memory.current"));
}

/* An auto buffer: nothing charged until its memory is placed. */
TEST_F(charge, auto_charged_at_first_use)
{
	long long cli0;
	int buf;

	if (strcmp(variant->heap, "auto"))
		SKIP(return, "the auto variant places memory at first use");
	cli0 = rdh_cg_num(self->cli, "memory.current");
	buf = alloc_for(self->ctl, self->heap, 8 * MIB, self->pidfd);
	ASSERT_LE(0, buf);
	EXPECT_GT(cli0 + SLACK, rdh_cg_num(self->cli, "memory.current"));
	ASSERT_EQ(0, use(buf, 8 * MIB));
	EXPECT_LE(cli0 + (long long)(8 * MIB) - SLACK, rdh_cg_num(self->cli, "memory.current"));
	close(buf);
}

/* The attribution report names the service and the client. */
TEST_F(charge, report_names_both)
{
	char line[1024], path[256], want[64], *field[11], *p;
	struct stat st;
	int buf, k, found = 0;
	FILE *f;

	buf = alloc_for(self->ctl, self->heap, 4096, self->pidfd);
	ASSERT_LE(0, buf);
	ASSERT_EQ(0, fstat(buf, &st));
	snprintf(path, sizeof(path), "/sys/kernel/debug/%s/buffers", rdh_class());
	f = fopen(path, "re");
	ASSERT_NE(NULL, f);
	snprintf(want, sizeof(want), "%d:rdh-client", self->client);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strtoull(line, NULL, 10) != (unsigned long long)st.st_ino)
			continue;
		p = line;
		for (k = 0; k < 11 && p; k++)
			field[k] = strsep(&p, "\t");
		ASSERT_EQ(11, k);
		EXPECT_EQ(getpid(), atoi(field[3]));
		EXPECT_STREQ(want, field[10]);
		found++;
	}
	fclose(f);
	EXPECT_EQ(1, found);
	close(buf);
}

/* Errnos: not a pidfd, an exited process, another user's process. */
TEST_F(charge, refusals)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC), gone, status, buf, bufs;
	siginfo_t info;
	pid_t pid;

	bufs = rdh_bufinfo_count(variant->heap);
	ASSERT_LE(0, devnull);
	EXPECT_EQ(-EBADF, alloc_for(self->ctl, self->heap, 4096, devnull));
	EXPECT_EQ(-EBADF, alloc_for(self->ctl, self->heap, 4096, 999));
	close(devnull);
	/* Exited, a zombie not yet reaped, then reaped. */
	pid = fork();
	if (pid == 0)
		_exit(0);
	ASSERT_LT(0, pid);
	gone = pidfd_open(pid);
	ASSERT_LE(0, gone);
	ASSERT_EQ(0, waitid(P_PID, pid, &info, WEXITED | WNOWAIT));
	EXPECT_EQ(-ESRCH, alloc_for(self->ctl, self->heap, 4096, gone));
	waitpid(pid, NULL, 0);
	EXPECT_EQ(-ESRCH, alloc_for(self->ctl, self->heap, 4096, gone));
	close(gone);
	/* Another user (no capabilities): may not charge root's client. */
	pid = fork();
	if (pid == 0) {
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(2);
		_exit(alloc_for(self->ctl, self->heap, 4096, self->pidfd) == -EPERM ? 0 : 1);
	}
	ASSERT_LT(0, pid);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* Root may (and the fd flags and length are checked as always). */
	EXPECT_EQ(-EINVAL, alloc_for(self->ctl, self->heap, 0, self->pidfd));
	buf = alloc_for(self->ctl, self->heap, 4096, self->pidfd);
	EXPECT_LE(0, buf);
	close(buf);
	EXPECT_EQ(bufs, rdh_bufinfo_count(variant->heap));
}

/* The same user, unprivileged, may charge its own other process. */
TEST_F(charge, same_user_allowed)
{
	int status, w, pidfd;
	pid_t pid, peer;

	pid = fork();
	if (pid == 0) {
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(2);
		peer = spawn_client(NULL, &w);
		if (peer < 0)
			_exit(3);
		pidfd = pidfd_open(peer);
		status = alloc_for(self->ctl, self->heap, 4096, pidfd);
		close(w);
		waitpid(peer, NULL, 0);
		_exit(status >= 0 ? 0 : 10 + (-status & 0xff));
	}
	ASSERT_LT(0, pid);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * The dmem controller charges only the current task's cgroup: a client
 * in another dmem cgroup is refused on a heap charged there, never
 * charged to the service's.
 */
TEST_F(charge, other_dmem_cgroup_refused)
{
	char other[192], text[256];
	int w, pidfd, ret;
	pid_t peer;

	if (!strcmp(variant->heap, "system"))
		SKIP(return, "the system heap is not dmem-charged");
	if (rdh_read_text(RDH_CG_ROOT "/cgroup.subtree_control", text, sizeof(text)) ||
	    !rdh_has_word(text, "dmem"))
		SKIP(return, "no dmem controller for child cgroups");
	snprintf(other, sizeof(other), RDH_CG_ROOT "/rdh-charge-other-%d", getpid());
	ASSERT_EQ(0, mkdir(other, 0755));
	peer = spawn_client(other, &w);
	ASSERT_LT(0, peer);
	pidfd = pidfd_open(peer);
	ASSERT_LE(0, pidfd);
	ret = alloc_for(self->ctl, self->heap, 4096, pidfd);
	EXPECT_EQ(-EOPNOTSUPP, ret);
	if (ret >= 0)
		close(ret);
	close(pidfd);
	close(w);
	waitpid(peer, NULL, 0);
	rdh_cg_remove(other);
}

/*
 * The proposal's own struct on a heap's node (DMA_HEAP_IOCTL_ALLOC, 32
 * bytes): the client is charged; its padding word must be 0.
 */
TEST_F(charge, proposal_struct_on_heap_node)
{
	struct rfc_allocation_data d = {
		.len = 8 * MIB,
		.fd_flags = O_RDWR | O_CLOEXEC,
		.charge_pid_fd = self->pidfd,
	};
	long long cli0;

	if (rdh_provider())
		SKIP(return, "the kernel's framework answers DMA_HEAP_IOCTL_ALLOC here");
	if (strcmp(variant->heap, "system"))
		SKIP(return, "the system variant checks the proposal's struct");
	cli0 = rdh_cg_num(self->cli, "memory.current");
	ASSERT_EQ(0, ioctl(self->heap, RFC_IOCTL_ALLOC, &d));
	ASSERT_LE(0, (int)d.fd);
	ASSERT_EQ(0, use(d.fd, 8 * MIB));
	EXPECT_LE(cli0 + (long long)(8 * MIB) - SLACK, rdh_cg_num(self->cli, "memory.current"));
	close(d.fd);
	d.fd = 0;
	d.__padding = 1;
	EXPECT_EQ(-1, ioctl(self->heap, RFC_IOCTL_ALLOC, &d));
	EXPECT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
