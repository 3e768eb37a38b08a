// SPDX-License-Identifier: GPL-2.0
/*
 * Who may allocate: every heap node is root's, mode 0600, so an
 * unprivileged process is refused (EACCES). A device manager rule selects
 * one heap by its uevent name (DEVNAME=dma_heap/<heap>) and grants it to a
 * group: a member of that group allocates and maps from that heap, a
 * non-member still cannot, and every other heap stays 0600.
 *
 * The rule, as busybox mdev (used here, /etc/mdev.conf and "mdev -s"; the
 * catch-all "!" line leaves every other device node as it is):
 *
 *	dma_heap/system 0:4242 0660
 *	.* 0:0 0660 !
 *
 * and as a udev rule (e.g. /etc/udev/rules.d/60-dma-heap.rules):
 *
 *	SUBSYSTEM=="dma_heap", KERNEL=="system", GROUP="video", MODE="0660"
 *
 * The node is put back to root:root 0600 afterwards.
 */
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "rdh.h"
#include "../kselftest_harness.h"

/* Who the tests run as: nobody, and the group the rule grants. */
#define NOBODY 65534
#define HEAP_GROUP 4242
#define GRANTED "system"

#define MDEV_CONF "/etc/mdev.conf"
#define MDEV_CONF_SAVED "/etc/mdev.conf.rdh-perms"
#define MDEV_RULES "dma_heap/" GRANTED " 0:4242 0660\n.* 0:0 0660 !\n"

static void node_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", rdh_dir(), name);
}

/*
 * Run @fn(@arg) in a child that has dropped to uid and gid NOBODY with the
 * supplementary groups @groups; returns the child's exit status (0: @fn
 * returned 0), or 255 when the child could not drop its privileges.
 */
static int as_nobody(const gid_t *groups, int ngroups, int (*fn)(const void *),
		     const void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 254;
	if (!pid) {
		if (setgroups(ngroups, groups) || setgid(NOBODY) || setuid(NOBODY))
			_exit(255);
		if (!geteuid() || !getegid())
			_exit(255);
		_exit(fn(arg));
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 253;
	return WEXITSTATUS(status);
}

/* Open heap @name read-only and read-write: 0 or the first errno. */
static int try_open(const void *name)
{
	int flags[] = { O_RDONLY, O_RDWR }, i, fd;

	for (i = 0; i < 2; i++) {
		fd = rdh_open_heap(name, flags[i]);
		if (fd < 0)
			return errno;
		close(fd);
	}
	return 0;
}

/*
 * Allocate from heap @name, map the buffer, find it zeroed, write it and
 * sync: 0, or the step that failed (100 + n).
 */
static int try_allocate(const void *name)
{
	size_t len = 64 << 10, i;
	int heap = rdh_open_heap(name, O_RDWR), buf;
	uint32_t *p;

	if (heap < 0)
		return 100;
	buf = rdh_alloc(heap, len, O_RDWR | O_CLOEXEC, 0);
	close(heap);
	if (buf < 0)
		return 101;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (p == MAP_FAILED)
		return 102;
	if (rdh_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW))
		return 103;
	for (i = 0; i < len / 4; i++)
		if (p[i])
			return 104;
	for (i = 0; i < len / 4; i++)
		p[i] = i;
	if (rdh_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW))
		return 105;
	munmap(p, len);
	close(buf);
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		ret = -EIO;
	close(fd);
	return ret;
}

static bool root_0600(const char *name)
{
	char path[256];
	struct stat st;

	node_path(path, sizeof(path), name);
	return !stat(path, &st) && S_ISCHR(st.st_mode) && (st.st_mode & 07777) == 0600 &&
	       st.st_uid == 0 && st.st_gid == 0;
}

TEST(every_node_is_root_0600)
{
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	char path[256];
	struct stat st;
	int n, i;

	ASSERT_NE(NULL, names);
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n) TH_LOG("no heap in %s", rdh_dir());
	for (i = 0; i < n; i++) {
		node_path(path, sizeof(path), names[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s", path);
		EXPECT_TRUE(S_ISCHR(st.st_mode)) TH_LOG("%s", path);
		EXPECT_EQ(0600, st.st_mode & 07777) TH_LOG("%s", path);
		EXPECT_EQ(0, st.st_uid) TH_LOG("%s", path);
		EXPECT_EQ(0, st.st_gid) TH_LOG("%s", path);
	}
	ksft_print_msg("%d nodes, all root:root 0600\n", n);
	free(names);
}

TEST(unprivileged_open_eacces)
{
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	gid_t groups[] = { HEAP_GROUP };
	int n, i;

	if (geteuid())
		SKIP(return, "needs root to drop to uid %d", NOBODY);
	ASSERT_NE(NULL, names);
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(EACCES, as_nobody(NULL, 0, try_open, names[i])) TH_LOG("%s", names[i]);
		/* A group of its own is no key while no rule names it. */
		EXPECT_EQ(EACCES, as_nobody(groups, 1, try_open, names[i])) TH_LOG("%s", names[i]);
		/* Root still opens it. */
		EXPECT_EQ(0, try_open(names[i])) TH_LOG("%s", names[i]);
	}
	free(names);
}

FIXTURE(grant) {
	bool saved_conf;
	bool changed;
};

FIXTURE_SETUP(grant)
{
	char path[256];

	if (geteuid())
		SKIP(return, "needs root to drop to uid %d", NOBODY);
	if (rdh_taken(GRANTED))
		SKIP(return, "%s is the kernel's own heap here", GRANTED);
	node_path(path, sizeof(path), GRANTED);
	if (access(path, F_OK) && rdh_missing_ok())
		SKIP(return, "no heap %s", GRANTED);
	ASSERT_TRUE(root_0600(GRANTED));
	self->saved_conf = !rename(MDEV_CONF, MDEV_CONF_SAVED);
	self->changed = true;
}

FIXTURE_TEARDOWN_PARENT(grant)
{
	char path[256];

	if (!self->changed)
		return;
	/* As at boot: root:root 0600, no rule file of ours. */
	node_path(path, sizeof(path), GRANTED);
	EXPECT_EQ(0, chown(path, 0, 0));
	EXPECT_EQ(0, chmod(path, 0600));
	EXPECT_TRUE(root_0600(GRANTED));
	unlink(MDEV_CONF);
	if (self->saved_conf)
		EXPECT_EQ(0, rename(MDEV_CONF_SAVED, MDEV_CONF));
}

TEST_F(grant, mdev_rule_grants_one_heap_to_a_group)
{
	char (*names)[RDH_NAME_LEN] = calloc(RDH_MAX_HEAPS, RDH_NAME_LEN);
	gid_t member[] = { 100, HEAP_GROUP }, other[] = { 100, HEAP_GROUP + 1 };
	char path[256], uevent[512];
	struct stat st;
	int n, i, ret;

	ASSERT_NE(NULL, names);
	n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, n);
	/* What a rule matches on: the uevent's DEVNAME. */
	snprintf(path, sizeof(path), "/sys/class/dma_heap/%s/uevent", GRANTED);
	if (!strcmp(rdh_dir(), "/dev/dma_heap")) {
		char *devname;

		ASSERT_EQ(0, rdh_read_text(path, uevent, sizeof(uevent)));
		devname = strstr(uevent, "DEVNAME=dma_heap/" GRANTED);
		ASSERT_NE(NULL, devname) TH_LOG("%s", uevent);
		devname += strlen("DEVNAME=dma_heap/" GRANTED);
		EXPECT_TRUE(*devname == '\n' || !*devname) TH_LOG("%s", uevent);
	}

	ASSERT_EQ(0, write_file(MDEV_CONF, MDEV_RULES));
	ret = rdh_mdev_scan();
	if (ret == 127) {
		/* No mdev: what its rule does, by hand. */
		ksft_print_msg("no mdev: granting %s by chown/chmod\n", GRANTED);
		node_path(path, sizeof(path), GRANTED);
		ASSERT_EQ(0, chown(path, 0, HEAP_GROUP));
		ASSERT_EQ(0, chmod(path, 0660));
	} else {
		ASSERT_EQ(0, ret) TH_LOG("mdev -s failed");
	}

	/* The rule selected one node... */
	node_path(path, sizeof(path), GRANTED);
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0660, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(HEAP_GROUP, st.st_gid);
	/* ...and a member of the group allocates from it... */
	EXPECT_EQ(0, as_nobody(member, 2, try_open, GRANTED));
	EXPECT_EQ(0, as_nobody(member, 2, try_allocate, GRANTED));
	/* ...while nobody else may. */
	EXPECT_EQ(EACCES, as_nobody(NULL, 0, try_open, GRANTED));
	EXPECT_EQ(EACCES, as_nobody(other, 2, try_open, GRANTED));
	EXPECT_EQ(100, as_nobody(other, 2, try_allocate, GRANTED));
	/* Every other heap is as it was. */
	for (i = 0; i < n; i++) {
		if (!strcmp(names[i], GRANTED))
			continue;
		EXPECT_TRUE(root_0600(names[i])) TH_LOG("%s", names[i]);
		EXPECT_EQ(EACCES, as_nobody(member, 2, try_open, names[i])) TH_LOG("%s", names[i]);
	}
	free(names);
}

TEST_HARNESS_MAIN
