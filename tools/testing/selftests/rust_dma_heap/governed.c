// SPDX-License-Identifier: GPL-2.0
/*
 * Governance of the heaps: who pays for a buffer, how much one heap may
 * hand out, what an administrator sees, and who may allocate.
 *
 * memcg_limit_enomem_no_oom: a system heap buffer is charged to the
 *	allocating task's memory cgroup (mem_accounting=Y by default). In a
 *	cgroup with memory.max = 64 MiB, 1 MiB buffers succeed 48 to 64 times,
 *	each growing memory.current by about 1 MiB; then one fails ENOMEM
 *	within a second, with no OOM kill (memory.events, /proc/vmstat) and
 *	the allocating process alive. Closing them gives the memory back.
 * dmem_capacity_lists_regions: each CMA area is one dmem region
 *	cma/<area>, each carve-out one carveout/<heap>, listed once in
 *	dmem.capacity with the heap's sysfs size; the system heap has none.
 * dmem_max_per_cgroup: with dmem.max = 4 MiB for the video heap's region
 *	in cgroup A, four 1 MiB buffers succeed and the fifth fails ENOMEM,
 *	while a sibling B takes 8 MiB. A buffer passed from A to B over
 *	SCM_RIGHTS stays charged to A after A exits, until B closes it.
 * dmem_charge_names_cgroup: a buffer of each CMA and carve-out heap is
 *	listed in debugfs <class>/buffers with the allocating task's dmem
 *	cgroup; with "-" (nothing charged) when the kernel has no dmem
 *	controller or was booted with cgroup_disable=dmem (vmtest's
 *	"nodmem" boot), which must leave it out of cgroup.controllers.
 * mem_accounting_off_charges_nobody: loaded with mem_accounting=0, the
 *	module registers no dmem region, a 16 MiB system heap buffer leaves
 *	its cgroup's memory.current within a CPU stock of where it was, and
 *	debugfs <class>/buffers names no cgroup for a buffer of any heap;
 *	loaded again with the default, the regions are back.
 * sysfs_attrs_match_bufinfo: contiguous, cached and size of every heap;
 *	used and buffers agree with debugfs bufinfo under mixed allocations
 *	and return to where they were; peak is a high-water mark that "0"
 *	resets to used, and any other value is refused (EINVAL).
 * max_alloc_enforced: max_alloc caps one allocation's page-aligned length
 *	(ENOMEM beyond it), takes 0 to size (EINVAL otherwise); an
 *	unprivileged process reads every attribute but writes none (EACCES).
 * leak_attribution: debugfs <class>/buffers names each live buffer's
 *	inode, heap, size, allocating process (pid, comm), charged cgroup,
 *	attachments, vmaps and name; one line per buffer of every heap, and
 *	none left for a process once it is killed.
 * mdev_rule_grants_group: a busybox mdev rule "<class>/.* 0:1234 0660"
 *	gives every heap node to group 1234: a member opens and allocates
 *	from each (and is named in debugfs), anyone else gets EACCES.
 *
 * Needs root, debugfs, and cgroup v2 at /sys/fs/cgroup with the memory and
 * dmem controllers (the cgroup tests are skipped without them). Each test
 * removes the cgroups it made and puts back what it changed (max_alloc,
 * node owners and modes, /etc/mdev.conf), also when it fails.
 */
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>

#include "rdh.h"
#include "../kselftest_harness.h"

#define KIB (1LL << 10)
#define MIB (1LL << 20)

#define CG_ROOT RDH_CG_ROOT
#define DT_RESERVED "/proc/device-tree/reserved-memory"
#define MEM_ACCOUNTING "/sys/module/rust_dma_heap/parameters/mem_accounting"

/* The heap attributes in sysfs, and which of them root may write. */
static const char *const attrs[] = {
	"contiguous", "cached", "size", "used", "buffers", "peak", "max_alloc",
};

static bool attr_writable(const char *attr)
{
	return !strcmp(attr, "peak") || !strcmp(attr, "max_alloc");
}

/* Parse a whole string as a decimal number. */
static bool parse_ull(const char *s, unsigned long long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return !errno && !*end;
}

static void attr_path(char *buf, size_t len, const char *heap, const char *attr)
{
	rdh_attr_path(buf, len, heap, attr);
}

/*
 * A heap attribute: exactly one decimal number and a newline. Returns it,
 * or -errno (-EPROTO: the file is not in that form).
 */
static long long attr_get(const char *heap, const char *attr)
{
	char path[256], text[64];
	unsigned long long v;
	ssize_t n;
	int fd;

	attr_path(path, sizeof(path), heap, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	if (n < 2 || text[n - 1] != '\n')
		return -EPROTO;
	text[n - 1] = '\0';
	if (!parse_ull(text, &v) || v > LLONG_MAX)
		return -EPROTO;
	return v;
}

/* Write @value and a newline to a heap attribute, as echo does. */
static int attr_set(const char *heap, const char *attr, const char *value)
{
	char path[256], text[64];

	attr_path(path, sizeof(path), heap, attr);
	snprintf(text, sizeof(text), "%s\n", value);
	return rdh_write_text(path, text);
}

static int attr_set_num(const char *heap, const char *attr, long long value)
{
	char text[32];

	snprintf(text, sizeof(text), "%lld", value);
	return attr_set(heap, attr, text);
}

/*
 * Lines "<key> <value>" (cgroup keyed files, /proc/vmstat): how many
 * start with @key, the value of the last in *@v ("max": LLONG_MAX), or
 * -errno.
 */
static int keyed(const char *path, const char *key, long long *v)
{
	size_t klen = strlen(key);
	char line[512];
	int n = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long u;

		if (strncmp(line, key, klen) || line[klen] != ' ')
			continue;
		n++;
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line + klen + 1, "max"))
			*v = LLONG_MAX;
		else if (parse_ull(line + klen + 1, &u))
			*v = u;
		else
			*v = -EPROTO;
	}
	fclose(f);
	return n;
}

/* The value of the one line for @key, or -errno (-ENOENT: no such line). */
static long long keyed_value(const char *path, const char *key)
{
	long long v = -ENOENT;
	int n = keyed(path, key, &v);

	if (n < 0)
		return n;
	return n == 1 ? v : -ENOENT;
}

/* A file holding one number (memory.current, memory.max), or -errno. */
static long long num_file(const char *path)
{
	unsigned long long v;
	char text[64];
	int ret = rdh_read_text(path, text, sizeof(text));

	if (ret)
		return ret;
	if (!strcmp(text, "max"))
		return LLONG_MAX;
	return parse_ull(text, &v) ? (long long)v : -EPROTO;
}

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* cgroups */

/*
 * Whether child cgroups get the memory and dmem controllers (the guest's
 * init enables them; turned on here too, which changes nothing when they
 * are on). Returns NULL when they do, else why the tests are skipped;
 * sets *@enabled when both are in the root's subtree_control.
 */
static const char *cg_unavailable(bool *enabled)
{
	char text[512];

	*enabled = false;
	if (rdh_read_text(CG_ROOT "/cgroup.controllers", text, sizeof(text)))
		return "no cgroup v2 at " CG_ROOT;
	if (!rdh_has_word(text, "memory") || !rdh_has_word(text, "dmem"))
		return "cgroup v2 without the memory and dmem controllers";
	rdh_write_text(CG_ROOT "/cgroup.subtree_control", "+memory");
	rdh_write_text(CG_ROOT "/cgroup.subtree_control", "+dmem");
	if (!rdh_read_text(CG_ROOT "/cgroup.subtree_control", text, sizeof(text)))
		*enabled = rdh_has_word(text, "memory") && rdh_has_word(text, "dmem");
	return NULL;
}

#define CG_LEN 128

/* Make cgroup rdh-<tag>-<pid> under the root; its path in @path. */
static int cg_make(char *path, const char *tag)
{
	snprintf(path, CG_LEN, CG_ROOT "/rdh-%s-%d", tag, getpid());
	return mkdir(path, 0755) && errno != EEXIST ? -errno : 0;
}

/* A cgroup's path as the kernel prints it: relative to the root. */
static const char *cg_name(const char *path)
{
	return path + strlen(CG_ROOT);
}

static void cg_file(char *buf, size_t len, const char *cg, const char *file)
{
	snprintf(buf, len, "%s/%s", cg, file);
}

static long long cg_keyed(const char *cg, const char *file, const char *key)
{
	char path[256];

	cg_file(path, sizeof(path), cg, file);
	return keyed_value(path, key);
}

/* Move the calling process into @cg. */
static int cg_join(const char *cg)
{
	return rdh_cg_set(cg, "cgroup.procs", "0\n");
}

/* Heaps and their regions */

enum kind { SYSTEM, CMA, CARVEOUT };

#define DEFAULT_CMA "default_cma_region"

static int dt_prop(const char *node, const char *prop, unsigned char *buf, int len)
{
	char path[256];
	int fd, n;

	snprintf(path, sizeof(path), DT_RESERVED "/%s/%s", node, prop);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len);
	close(fd);
	return n < 0 ? -errno : n;
}

static bool dt_has(const char *node, const char *prop)
{
	unsigned char b[4];

	return dt_prop(node, prop, b, 0) >= 0;
}

static unsigned long long be(const unsigned char *p, int n)
{
	unsigned long long v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

/*
 * The default CMA area's name: the reserved-memory node marked
 * linux,cma-default, else the kernel's name for the cma= area.
 */
static void default_area(char *buf, size_t len)
{
	DIR *d = opendir(DT_RESERVED);
	struct dirent *e;

	snprintf(buf, len, "reserved");
	while (d && (e = readdir(d))) {
		if (e->d_name[0] != '.' && strlen(e->d_name) < len &&
		    dt_has(e->d_name, "linux,cma-default")) {
			snprintf(buf, len, "%s", e->d_name);
			break;
		}
	}
	if (d)
		closedir(d);
}

static enum kind heap_kind(const char *heap)
{
	char compat[64] = "";
	int n;

	if (!strcmp(heap, "system") || !strcmp(heap, "system-uncached") || !strcmp(heap, "auto"))
		return SYSTEM;
	n = dt_prop(heap, "compatible", (unsigned char *)compat, sizeof(compat) - 1);
	if (!strncmp(heap, "carveout@", 9) || (n > 0 && !strcmp(compat, "carved-out")))
		return CARVEOUT;
	return CMA;
}

/* The reserved-memory node a heap's memory comes from. */
static void heap_node(const char *heap, char *buf, size_t len)
{
	if (!strcmp(heap, DEFAULT_CMA))
		default_area(buf, len);
	else
		snprintf(buf, len, "%s", heap);
}

/* The dmem region a heap charges ("": none, the system heap). */
static void region_of(const char *heap, char *buf, size_t len)
{
	char area[RDH_NAME_LEN];

	switch (heap_kind(heap)) {
	case SYSTEM:
		buf[0] = '\0';
		break;
	case CARVEOUT:
		snprintf(buf, len, "carveout/%s", heap);
		break;
	case CMA:
		heap_node(heap, area, sizeof(area));
		snprintf(buf, len, "cma/%s", area);
		break;
	}
}

/* The size of a heap's reserved-memory node, or -1 without one. */
static long long dt_size(const char *heap)
{
	char node[RDH_NAME_LEN];
	unsigned char b[16];
	int n;

	heap_node(heap, node, sizeof(node));
	n = dt_prop(node, "size", b, sizeof(b));
	if (n == 8 || n == 4)
		return be(b, n);
	n = dt_prop(node, "reg", b, sizeof(b));
	if (n == 16 || n == 8)
		return be(b + n / 2, n / 2);
	return -1;
}

static int heap_index(char (*names)[RDH_NAME_LEN], int n, const char *heap)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(names[i], heap))
			return i;
	return -1;
}

/* debugfs: bufinfo, and the module's list of live buffers */

static bool copy_field(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (!n || n >= len)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

struct binfo {
	unsigned long long ino, size;
	char exp[RDH_NAME_LEN];
};

/* The buffers in bufinfo's text (every exporter's): their count. */
static int bufinfo_parse(FILE *f, struct binfo *b, int max)
{
	char line[512];
	int n = 0;

	while (fgets(line, sizeof(line), f) && n < max) {
		char *tok[7], *save, *t;
		int col = 0;

		/* size flags mode count exp_name ino name */
		for (t = strtok_r(line, " \t\n", &save); t && col < 7;
		     t = strtok_r(NULL, " \t\n", &save))
			tok[col++] = t;
		if (col >= 6 && parse_ull(tok[0], &b[n].size) && parse_ull(tok[5], &b[n].ino) &&
		    copy_field(b[n].exp, sizeof(b[n].exp), tok[4]))
			n++;
	}
	return n;
}

/* The buffers in dma_buf/bufinfo: count, or -errno. */
static int bufinfo_read(struct binfo *b, int max)
{
	FILE *f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "re");
	int n;

	if (!f)
		return -errno;
	n = bufinfo_parse(f, b, max);
	fclose(f);
	return n;
}

/* Count and bytes of exporter @exp's buffers in @b. */
static void bufinfo_totals(const struct binfo *b, int n, const char *exp,
			   long long *count, long long *bytes)
{
	int i;

	*count = *bytes = 0;
	for (i = 0; i < n; i++) {
		if (strcmp(b[i].exp, exp))
			continue;
		++*count;
		*bytes += b[i].size;
	}
}

#define BUFFERS_HEADER \
	"inode\theap\tsize\tpid\tcomm\tcgroup\tattachments\tvmaps\tname\tmemory\tcharged"
#define MAX_LIVE 4096

struct live {
	unsigned long long ino, size, pid, attachments, vmaps;
	char heap[RDH_NAME_LEN], comm[32], cgroup[CG_LEN], name[64], memory[RDH_NAME_LEN];
	char charged[64];
};

/*
 * The live list's text: fills @l with its lines after the header and
 * returns how many, or -errno (-EPROTO: the header or a line is not as
 * documented).
 */
static int live_parse(FILE *f, struct live *l, int max)
{
	char line[1024];
	int n = 0, lines = 0;

	while (fgets(line, sizeof(line), f)) {
		char *field[11], *p = line;
		int k;

		if (!strchr(line, '\n')) {
			n = -EPROTO;
			break;
		}
		line[strcspn(line, "\n")] = '\0';
		if (!lines++) {
			if (strcmp(line, BUFFERS_HEADER))
				n = -EPROTO;
			if (n < 0)
				break;
			continue;
		}
		for (k = 0; k < 11 && p; k++)
			field[k] = strsep(&p, "\t");
		if (n == max) {
			n = -ENOSPC;
			break;
		}
		if (k != 11 || p || !parse_ull(field[0], &l[n].ino) ||
		    !copy_field(l[n].heap, sizeof(l[n].heap), field[1]) ||
		    !parse_ull(field[2], &l[n].size) || !parse_ull(field[3], &l[n].pid) ||
		    !copy_field(l[n].comm, sizeof(l[n].comm), field[4]) ||
		    !copy_field(l[n].cgroup, sizeof(l[n].cgroup), field[5]) ||
		    !parse_ull(field[6], &l[n].attachments) || !parse_ull(field[7], &l[n].vmaps) ||
		    !copy_field(l[n].name, sizeof(l[n].name), field[8]) ||
		    !copy_field(l[n].memory, sizeof(l[n].memory), field[9]) ||
		    !copy_field(l[n].charged, sizeof(l[n].charged), field[10])) {
			n = -EPROTO;
			break;
		}
		n++;
	}
	return lines ? n : -EPROTO;
}

/* /sys/kernel/debug/<class>/buffers, parsed: count, or -errno. */
static int live_read(struct live *l, int max)
{
	char path[128];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/sys/kernel/debug/%s/buffers", rdh_class());
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = live_parse(f, l, max);
	fclose(f);
	return n;
}

/* Lines of the live list naming process @pid (-errno: unreadable). */
static int live_count_pid(pid_t pid)
{
	struct live *l = calloc(MAX_LIVE, sizeof(*l));
	int n, i, mine = 0;

	if (!l)
		return -ENOMEM;
	n = live_read(l, MAX_LIVE);
	for (i = 0; i < n; i++)
		mine += l[i].pid == (unsigned long long)pid;
	free(l);
	return n < 0 ? n : mine;
}

/*
 * Agents: child processes the test drives over a socketpair, each in a
 * cgroup of its own when asked. They die with the test (PDEATHSIG), and
 * the fixture's teardown kills any still recorded.
 */
struct agent {
	pid_t pid;
	int sock;
};

/* What an agent and the test tell each other. */
struct note {
	long long v[4];
};

/* An agent's exit status when it could not join its cgroup. */
#define AGENT_NO_CGROUP 90

typedef int (*agent_fn)(int sock, void *arg);

static int say(int sock, long long a, long long b, long long c, long long d)
{
	struct note n = { { a, b, c, d } };

	return send(sock, &n, sizeof(n), MSG_NOSIGNAL) == sizeof(n) ? 0 : -EPIPE;
}

/* The next note, within a minute: 0, or -errno (-EPIPE: the other side is gone). */
static int hear(int sock, struct note *n)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	ssize_t r;

	if (poll(&p, 1, 60000) != 1)
		return -ETIMEDOUT;
	r = recv(sock, n, sizeof(*n), 0);
	if (r == sizeof(*n))
		return 0;
	return r < 0 ? -errno : -EPIPE;
}

static int agent_start(struct agent *a, const char *cg, agent_fn fn, void *arg)
{
	int sock = -1;
	/*
	 * The fixture is shared with the harness's parent (teardown_parent):
	 * only the parent side may write it, so the child never sees a->pid.
	 */
	pid_t pid = rdh_fork_connected(&sock);

	if (pid < 0)
		return pid;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (cg && cg_join(cg))
			_exit(AGENT_NO_CGROUP);
		_exit(fn(sock, arg));
	}
	a->pid = pid;
	a->sock = sock;
	return 0;
}

/* Reap an agent: its wait status, or -1. */
static int agent_wait(struct agent *a)
{
	int status = -1;

	if (a->pid > 0 && waitpid(a->pid, &status, 0) != a->pid)
		status = -1;
	if (a->pid > 0)
		close(a->sock);
	a->pid = 0;
	a->sock = -1;
	return status;
}

static bool exited_ok(int status)
{
	return status != -1 && WIFEXITED(status) && !WEXITSTATUS(status);
}

/* The heaps, for an agent. */
struct heap_list {
	char (*names)[RDH_NAME_LEN];
	int n;
};

/* Drop to @uid and @gid with the supplementary groups @groups. */
static int drop_to(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	if (setgroups(ngroups, groups) || setgid(gid) || setuid(uid))
		return -errno;
	return geteuid() == uid && getegid() == gid ? 0 : -EPERM;
}

/* The fixture: what the test changed, for the teardown to put back. */

#define MAX_AGENTS 4
#define MAX_CGROUPS 4

#define MDEV_CONF "/etc/mdev.conf"
#define MDEV_CONF_SAVED "/etc/mdev.conf.rdh-governed"

FIXTURE(gov) {
	char heaps[RDH_MAX_HEAPS][RDH_NAME_LEN];
	int n;
	/* Cgroups made ("": none), agents running (pid 0: none). */
	char cg[MAX_CGROUPS][CG_LEN];
	struct agent agents[MAX_AGENTS];
	/* max_alloc of each heap before the test changed it. */
	bool max_alloc_saved[RDH_MAX_HEAPS];
	long long max_alloc[RDH_MAX_HEAPS];
	/* Heap nodes' owners and modes before mdev changed them. */
	bool node_saved[RDH_MAX_HEAPS];
	uid_t node_uid[RDH_MAX_HEAPS];
	gid_t node_gid[RDH_MAX_HEAPS];
	mode_t node_mode[RDH_MAX_HEAPS];
	/* /etc/mdev.conf: written by the test, and whether one was saved. */
	bool mdev_conf;
	bool mdev_conf_saved;
	/* The module was reloaded with other parameters: load it as it was. */
	bool reload;
};

FIXTURE_SETUP(gov)
{
	char (*names)[RDH_NAME_LEN] = self->heaps;
	int i;

	for (i = 0; i < MAX_AGENTS; i++)
		self->agents[i].sock = -1;
	if (geteuid())
		SKIP(return, "needs root");
	self->n = rdh_list_heaps(names, RDH_MAX_HEAPS);
	ASSERT_LT(0, self->n) TH_LOG("no heap in %s", rdh_dir());
}

/* In the parent: runs also when the test failed an assertion. */
FIXTURE_TEARDOWN_PARENT(gov)
{
	char path[256];
	int i;

	for (i = 0; i < MAX_AGENTS; i++)
		if (self->agents[i].pid > 0)
			kill(self->agents[i].pid, SIGKILL);
	/* (The harness's checks are two statements: never an if's body.) */
	for (i = 0; i < MAX_CGROUPS; i++) {
		if (!self->cg[i][0])
			continue;
		EXPECT_EQ(0, rdh_cg_remove(self->cg[i])) TH_LOG("rmdir %s", self->cg[i]);
	}
	for (i = 0; i < self->n; i++) {
		EXPECT_EQ(0, self->max_alloc_saved[i] ?
			  attr_set_num(self->heaps[i], "max_alloc", self->max_alloc[i]) : 0)
			TH_LOG("restoring %s max_alloc", self->heaps[i]);
		if (!self->node_saved[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s", rdh_dir(), self->heaps[i]);
		EXPECT_EQ(0, chown(path, self->node_uid[i], self->node_gid[i])) TH_LOG("%s", path);
		EXPECT_EQ(0, chmod(path, self->node_mode[i])) TH_LOG("%s", path);
	}
	if (self->mdev_conf)
		unlink(MDEV_CONF);
	EXPECT_EQ(0, self->mdev_conf_saved ? rename(MDEV_CONF_SAVED, MDEV_CONF) : 0);
	if (self->reload) {
		rdh_unload_module();
		EXPECT_EQ(0, rdh_load_module("")) TH_LOG("loading the module again");
	}
}

/* 1. memcg */

#define MEMCG_MAX (64 * MIB)
#define HOG_MAX 128

/* What the agent in the limited cgroup saw (shared with the test). */
struct hog {
	char current[256];	/* its memory.current */
	int n;			/* buffers allocated */
	int err;		/* errno of the allocation that failed (0: none) */
	long long fail_ns;	/* how long that allocation took */
	long long base;		/* memory.current before the first */
	long long full;		/* ...holding every buffer */
	long long freed;	/* ...after closing them all */
	long long delta[HOG_MAX];	/* its growth over each allocation */
};

/* In the limited cgroup: 1 MiB system heap buffers until refused. */
static int memcg_hog(int sock, void *arg)
{
	struct hog *h = arg;
	int heap = rdh_open_heap("system", O_RDONLY), fds[HOG_MAX], fd, i;
	long long before, t;

	if (heap < 0)
		return 10;
	h->base = num_file(h->current);
	while (h->n < HOG_MAX) {
		before = num_file(h->current);
		t = now_ns();
		fd = rdh_alloc(heap, MIB, O_RDWR | O_CLOEXEC, 0);
		t = now_ns() - t;
		if (fd < 0) {
			h->err = -fd;
			h->fail_ns = t;
			break;
		}
		fds[h->n] = fd;
		h->delta[h->n++] = num_file(h->current) - before;
	}
	h->full = num_file(h->current);
	for (i = 0; i < h->n; i++)
		close(fds[i]);
	close(heap);
	/* Freed memory is uncharged at once; a little slab may lag. */
	for (i = 0; i < 20; i++) {
		h->freed = num_file(h->current);
		if (llabs(h->freed - h->base) <= 2 * MIB)
			break;
		usleep(100000);
	}
	return 0;
}

TEST_F_TIMEOUT(gov, memcg_limit_enomem_no_oom, 300)
{
	const char *why;
	bool enabled;
	char text[8], events[256];
	long long oom_before, slack, total;
	struct hog *h;
	int status, i;

	why = cg_unavailable(&enabled);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_TRUE(enabled) TH_LOG("memory and dmem not in %s/cgroup.subtree_control", CG_ROOT);
	if (heap_index(self->heaps, self->n, "system") < 0)
		SKIP(return, "no system heap");
	/* Accounting is on by default. */
	ASSERT_EQ(0, rdh_read_text(MEM_ACCOUNTING, text, sizeof(text)));
	EXPECT_STREQ("Y", text);

	oom_before = keyed_value("/proc/vmstat", "oom_kill");
	ASSERT_LE(0, oom_before);
	ASSERT_EQ(0, cg_make(self->cg[0], "memcg"));
	ASSERT_EQ(0, rdh_cg_set(self->cg[0], "memory.max", "67108864\n"));
	ASSERT_EQ(MEMCG_MAX, rdh_cg_num(self->cg[0], "memory.max"));

	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, h);
	memset(h, 0, sizeof(*h));
	cg_file(h->current, sizeof(h->current), self->cg[0], "memory.current");
	ASSERT_EQ(0, agent_start(&self->agents[0], self->cg[0], memcg_hog, h));
	status = agent_wait(&self->agents[0]);

	/* Refused, not killed: the agent ran to its end. */
	ASSERT_NE(-1, status);
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("agent killed by signal %d", WTERMSIG(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("%d: could not join the cgroup", AGENT_NO_CGROUP);
	ksft_print_msg("memory.max 64 MiB: %d buffers of 1 MiB, then errno %d in %lld us; memory.current %lld -> %lld -> %lld\n",
		       h->n, h->err, h->fail_ns / 1000, h->base, h->full, h->freed);
	EXPECT_EQ(ENOMEM, h->err);
	EXPECT_GT(1000000000LL, h->fail_ns);
	EXPECT_LE(48, h->n);
	EXPECT_GE(64, h->n);
	/*
	 * Each buffer is charged: memory.current grows by its size. A charge
	 * may come from or leave pages in a CPU's stock of precharged pages
	 * (MEMCG_CHARGE_BATCH, 64 pages, plus a page of slab bytes), so each
	 * reading may be off by that much per CPU.
	 */
	slack = sysconf(_SC_NPROCESSORS_ONLN) * (64 + 1) * (long long)PAGE;
	ASSERT_LT(0, slack);
	ASSERT_LE(0, h->base);
	for (i = 0; i < h->n && i < HOG_MAX; i++) {
		EXPECT_LE(MIB - slack, h->delta[i]) TH_LOG("buffer %d", i);
		EXPECT_GE(MIB + 256 * KIB + slack, h->delta[i]) TH_LOG("buffer %d", i);
	}
	total = h->full - h->base;
	EXPECT_LE(h->n * MIB - slack, total);
	EXPECT_GE(h->n * MIB + 2 * MIB, total);
	/* ...and uncharged when closed. */
	EXPECT_GE(2 * MIB, llabs(h->freed - h->base));

	/* No OOM kill, in the cgroup or anywhere. */
	cg_file(events, sizeof(events), self->cg[0], "memory.events");
	EXPECT_EQ(0, keyed_value(events, "oom_kill"));
	EXPECT_EQ(oom_before, keyed_value("/proc/vmstat", "oom_kill"));
	munmap(h, sizeof(*h));
}

/* 2. dmem regions */

TEST_F(gov, dmem_capacity_lists_regions)
{
	char region[2 * RDH_NAME_LEN], line[512], seen[RDH_MAX_HEAPS][2 * RDH_NAME_LEN];
	int i, j, regions = 0, listed = 0;
	const char *why;
	bool enabled;
	long long size, v;
	FILE *f;

	why = cg_unavailable(&enabled);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_TRUE(enabled);
	for (i = 0; i < self->n; i++) {
		const char *heap = self->heaps[i];

		region_of(heap, region, sizeof(region));
		if (!region[0])
			continue;
		size = attr_get(heap, "size");
		ASSERT_LT(0, size) TH_LOG("%s size", heap);
		/* Once, with the heap's size (two names may share an area). */
		v = -1;
		EXPECT_EQ(1, keyed(CG_ROOT "/dmem.capacity", region, &v)) TH_LOG("%s: %s", heap, region);
		EXPECT_EQ(size, v) TH_LOG("%s: %s", heap, region);
		for (j = 0; j < regions; j++)
			if (!strcmp(seen[j], region))
				break;
		if (j == regions)
			snprintf(seen[regions++], sizeof(seen[0]), "%s", region);
	}
	/* Nothing else of ours, and nothing for the system heap. */
	f = fopen(CG_ROOT "/dmem.capacity", "re");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n ")] = '\0';
		if (!strncmp(line, "cma/", 4) || !strncmp(line, "carveout/", 9))
			listed++;
		j = strlen(line);
		EXPECT_FALSE(!strcmp(line, "system") ||
			     (j > 7 && !strcmp(line + j - 7, "/system"))) TH_LOG("region %s", line);
	}
	fclose(f);
	EXPECT_EQ(regions, listed);
	ksft_print_msg("%d heaps, %d dmem regions\n", self->n, regions);
}

/* The dmem regions of ours in dmem.capacity (cma/..., carveout/...). */
static int our_regions(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen(CG_ROOT "/dmem.capacity", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "cma/", 4) || !strncmp(line, "carveout/", 9))
			n++;
	fclose(f);
	return n;
}

/* Regions are unregistered at unload, and registered once again at load. */
TEST_F(gov, dmem_regions_go_with_the_module)
{
	const char *why;
	bool enabled;
	int n;

	why = cg_unavailable(&enabled);
	if (why)
		SKIP(return, "%s", why);
	if (rdh_provider())
		SKIP(return, RDH_PINNED);
	n = our_regions();
	if (n == 0 && rdh_missing_ok())
		SKIP(return, "no CMA area or carve-out on this machine");
	ASSERT_LT(0, n);
	ASSERT_EQ(0, rdh_unload_module());
	EXPECT_EQ(0, our_regions());
	ASSERT_EQ(0, rdh_load_module(""));
	EXPECT_EQ(n, our_regions());
}

#define DMEM_LIMIT (4 * MIB)
#define DMEM_MAX 16

struct pair {
	const char *heap;
	int mine;	/* this agent's end of the socketpair between the two */
	int theirs;	/* the other's end: closed */
};

/*
 * In cgroup A: 1 MiB buffers until refused; on cue, pass the first to B
 * and exit.
 */
static int dmem_a(int sock, void *arg)
{
	struct pair *p = arg;
	int heap, fds[DMEM_MAX], n = 0, err = 0, fd, i;
	struct note cue;

	close(p->theirs);
	heap = rdh_open_heap(p->heap, O_RDONLY);
	if (heap < 0)
		return 10;
	while (n < DMEM_MAX) {
		fd = rdh_alloc(heap, MIB, O_RDWR | O_CLOEXEC, 0);
		if (fd < 0) {
			err = -fd;
			break;
		}
		fds[n++] = fd;
	}
	close(heap);
	if (say(sock, n, err, 0, 0) || hear(sock, &cue))
		return 11;
	if (n && rdh_send_fd(p->mine, fds[0]))
		return 12;
	for (i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

/*
 * In cgroup B: 8 MiB; on cue, close it and take A's buffer; on cue,
 * close that; on cue, exit.
 */
static int dmem_b(int sock, void *arg)
{
	struct pair *p = arg;
	int heap, big, got;
	struct note cue;

	close(p->theirs);
	heap = rdh_open_heap(p->heap, O_RDONLY);
	if (heap < 0)
		return 10;
	big = rdh_alloc(heap, 8 * MIB, O_RDWR | O_CLOEXEC, 0);
	close(heap);
	if (say(sock, big < 0 ? big : 0, 0, 0, 0) || hear(sock, &cue))
		return 11;
	if (big >= 0)
		close(big);
	got = rdh_recv_fd(p->mine);
	if (say(sock, got < 0 ? got : 0, got < 0 ? 0 : lseek(got, 0, SEEK_END), 0, 0) ||
	    hear(sock, &cue))
		return 12;
	if (got >= 0)
		close(got);
	if (say(sock, 0, 0, 0, 0) || hear(sock, &cue))
		return 13;
	return 0;
}

TEST_F_TIMEOUT(gov, dmem_max_per_cgroup, 300)
{
	struct agent *a = &self->agents[0], *b = &self->agents[1];
	char region[2 * RDH_NAME_LEN], limit[256];
	struct pair pa, pb;
	const char *why, *cga = self->cg[0], *cgb = self->cg[1];
	struct note n;
	bool enabled;
	int sv[2];

	why = cg_unavailable(&enabled);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_TRUE(enabled);
	if (heap_index(self->heaps, self->n, "video") < 0 && rdh_missing_ok())
		SKIP(return, "no heap video on this machine");
	ASSERT_LE(0, heap_index(self->heaps, self->n, "video"));
	region_of("video", region, sizeof(region));
	ASSERT_EQ(0, cg_make(self->cg[0], "dmem-a"));
	ASSERT_EQ(0, cg_make(self->cg[1], "dmem-b"));
	snprintf(limit, sizeof(limit), "%s %lld\n", region, DMEM_LIMIT);
	ASSERT_EQ(0, rdh_cg_set(cga, "dmem.max", limit));
	ASSERT_EQ(DMEM_LIMIT, cg_keyed(cga, "dmem.max", region));
	ASSERT_EQ(LLONG_MAX, cg_keyed(cgb, "dmem.max", region));
	ASSERT_EQ(0, cg_keyed(cga, "dmem.current", region));

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pa = (struct pair){ .heap = "video", .mine = sv[0], .theirs = sv[1] };
	pb = (struct pair){ .heap = "video", .mine = sv[1], .theirs = sv[0] };
	ASSERT_EQ(0, agent_start(a, cga, dmem_a, &pa));
	ASSERT_EQ(0, agent_start(b, cgb, dmem_b, &pb));
	close(sv[0]);
	close(sv[1]);

	/* A: four fit under its 4 MiB, the fifth is refused. */
	ASSERT_EQ(0, hear(a->sock, &n));
	EXPECT_EQ(4, n.v[0]);
	EXPECT_EQ(ENOMEM, n.v[1]);
	EXPECT_EQ(DMEM_LIMIT, cg_keyed(cga, "dmem.current", region));
	/* B, its sibling, is not limited by A. */
	ASSERT_EQ(0, hear(b->sock, &n));
	EXPECT_EQ(0, n.v[0]) TH_LOG("8 MiB in B: %s", strerror(-n.v[0]));
	EXPECT_EQ(8 * MIB, cg_keyed(cgb, "dmem.current", region));
	EXPECT_EQ(DMEM_LIMIT, cg_keyed(cga, "dmem.current", region));

	/* A passes one buffer to B and exits; B frees its own. */
	ASSERT_EQ(0, say(a->sock, 0, 0, 0, 0));
	EXPECT_TRUE(exited_ok(agent_wait(a)));
	ASSERT_EQ(0, say(b->sock, 0, 0, 0, 0));
	ASSERT_EQ(0, hear(b->sock, &n));
	EXPECT_EQ(0, n.v[0]) TH_LOG("receiving: %s", strerror(-n.v[0]));
	EXPECT_EQ(MIB, n.v[1]);
	/* The buffer B holds stays charged to A, where it was allocated. */
	EXPECT_EQ(MIB, rdh_cg_keyed_wait(cga, "dmem.current", region, MIB));
	EXPECT_EQ(0, rdh_cg_keyed_wait(cgb, "dmem.current", region, 0));
	/* B drops the last reference: A is uncharged. */
	ASSERT_EQ(0, say(b->sock, 0, 0, 0, 0));
	ASSERT_EQ(0, hear(b->sock, &n));
	EXPECT_EQ(0, rdh_cg_keyed_wait(cga, "dmem.current", region, 0));
	ASSERT_EQ(0, say(b->sock, 0, 0, 0, 0));
	EXPECT_TRUE(exited_ok(agent_wait(b)));
}

/* The current task's cgroup on the unified hierarchy ("0::<path>"). */
static int own_cgroup(char *buf, size_t len)
{
	char text[512], *p;

	if (rdh_read_text("/proc/self/cgroup", text, sizeof(text)))
		return -EIO;
	p = text;
	while (p && strncmp(p, "0::", 3)) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!p)
		return -ENOENT;
	p += 3;
	snprintf(buf, len, "%.*s", (int)strcspn(p, "\n"), p);
	return 0;
}

TEST_F(gov, dmem_charge_names_cgroup)
{
	struct live *l = calloc(MAX_LIVE, sizeof(*l));
	char text[1024], region[2 * RDH_NAME_LEN], want[CG_LEN];
	int i, j, nl, fd, buf, checked = 0;
	bool dmem, off;
	struct stat st;

	ASSERT_NE(NULL, l);
	if (rdh_read_text(CG_ROOT "/cgroup.controllers", text, sizeof(text)))
		SKIP(free(l); return, "no cgroup v2 at " CG_ROOT);
	dmem = rdh_has_word(text, "dmem");
	ASSERT_EQ(0, rdh_read_text("/proc/cmdline", text, sizeof(text)));
	off = strstr(text, "cgroup_disable=dmem");
	if (off)
		ASSERT_FALSE(dmem) TH_LOG("cgroup_disable=dmem, yet dmem is in cgroup.controllers");
	snprintf(want, sizeof(want), "-");
	if (dmem)
		ASSERT_EQ(0, own_cgroup(want, sizeof(want)));
	for (i = 0; i < self->n; i++) {
		const char *heap = self->heaps[i];

		region_of(heap, region, sizeof(region));
		if (!region[0])
			continue;
		fd = rdh_open_heap(heap, O_RDWR);
		ASSERT_LE(0, fd) TH_LOG("%s: %s", heap, strerror(errno));
		buf = rdh_alloc(fd, 4 * KIB, O_RDWR, 0);
		ASSERT_LE(0, buf) TH_LOG("%s: %s", heap, strerror(-buf));
		ASSERT_EQ(0, fstat(buf, &st));
		nl = live_read(l, MAX_LIVE);
		ASSERT_LE(0, nl) TH_LOG("debugfs %s/buffers: %s", rdh_class(), strerror(-nl));
		for (j = 0; j < nl && l[j].ino != (unsigned long long)st.st_ino; j++)
			;
		EXPECT_GT(nl, j) TH_LOG("%s: inode %llu not listed", heap,
					(unsigned long long)st.st_ino);
		if (j < nl)
			EXPECT_STREQ(want, l[j].cgroup) TH_LOG("%s (%s)", heap, region);
		close(buf);
		close(fd);
		checked++;
	}
	free(l);
	if (!checked)
		SKIP(return, "no heap charges the dmem controller");
	ksft_print_msg("%d heaps: cgroup \"%s\" (dmem controller %s)\n", checked, want,
		       dmem ? "on" : off ? "disabled at boot" : "absent");
}

#define UNCHARGED_SYSTEM (16 * MIB)

/*
 * mem_accounting=0 charges nobody: no dmem region is registered, a system
 * heap buffer leaves memory.current where it was, and the report names no
 * cgroup for any buffer (each heap's, allocated in a cgroup of its own).
 */
TEST_F(gov, mem_accounting_off_charges_nobody)
{
	struct live *l = calloc(MAX_LIVE, sizeof(*l));
	int i, j, nl, fd, bufs[RDH_MAX_HEAPS], nbufs = 0, regions;
	unsigned long long inos[RDH_MAX_HEAPS];
	long long before, after, slack;
	char text[8], region[2 * RDH_NAME_LEN];
	const char *why;
	bool enabled;
	struct stat st;

	ASSERT_NE(NULL, l);
	why = cg_unavailable(&enabled);
	if (why)
		SKIP(free(l); return, "%s", why);
	ASSERT_TRUE(enabled);
	if (rdh_provider())
		SKIP(free(l); return, RDH_PINNED);
	regions = our_regions();
	ASSERT_LE(0, regions);
	ASSERT_EQ(0, cg_make(self->cg[0], "noacct"));
	ASSERT_EQ(0, rdh_unload_module());
	self->reload = true;
	ASSERT_EQ(0, rdh_load_module("mem_accounting=0"));
	ASSERT_EQ(0, rdh_read_text(MEM_ACCOUNTING, text, sizeof(text)));
	EXPECT_STREQ("N", text);
	EXPECT_EQ(0, our_regions()) TH_LOG("%d regions with mem_accounting=Y", regions);

	ASSERT_EQ(0, cg_join(self->cg[0]));
	before = rdh_cg_num(self->cg[0], "memory.current");
	ASSERT_LE(0, before);
	for (i = 0; i < self->n; i++) {
		const char *heap = self->heaps[i];
		bool system = !strcmp(heap, "system");

		region_of(heap, region, sizeof(region));
		if (!system && !region[0])
			continue;
		fd = rdh_open_heap(heap, O_RDWR);
		ASSERT_LE(0, fd) TH_LOG("%s: %s", heap, strerror(errno));
		bufs[nbufs] = rdh_alloc(fd, system ? UNCHARGED_SYSTEM : 4 * KIB, O_RDWR, 0);
		ASSERT_LE(0, bufs[nbufs]) TH_LOG("%s: %s", heap, strerror(-bufs[nbufs]));
		close(fd);
		ASSERT_EQ(0, fstat(bufs[nbufs], &st));
		inos[nbufs++] = st.st_ino;
	}
	after = rdh_cg_num(self->cg[0], "memory.current");
	nl = live_read(l, MAX_LIVE);
	ASSERT_LE(0, nl) TH_LOG("debugfs %s/buffers: %s", rdh_class(), strerror(-nl));
	for (i = 0; i < nbufs; i++) {
		for (j = 0; j < nl && l[j].ino != inos[i]; j++)
			;
		EXPECT_GT(nl, j) TH_LOG("inode %llu not listed", inos[i]);
		if (j < nl)
			EXPECT_STREQ("-", l[j].cgroup) TH_LOG("%s", l[j].heap);
		close(bufs[i]);
	}
	free(l);
	/*
	 * The dma-buf's own objects (its file, inode, our bookkeeping) are
	 * charged as every task's kernel objects are; give a CPU's stock of
	 * precharged pages and a page of slab bytes each.
	 */
	slack = sysconf(_SC_NPROCESSORS_ONLN) * (64 + 1) * (long long)PAGE + MIB;
	if (heap_index(self->heaps, self->n, "system") >= 0)
		EXPECT_GT(slack, after - before) TH_LOG("memory.current %lld -> %lld", before, after);
	ksft_print_msg("mem_accounting=0: %d buffers, memory.current %lld -> %lld, %d regions (%d with it on)\n",
		       nbufs, before, after, our_regions(), regions);

	ASSERT_EQ(0, rdh_unload_module());
	ASSERT_EQ(0, rdh_load_module(""));
	self->reload = false;
	EXPECT_EQ(regions, our_regions());
}

/* 4. sysfs attributes */

/* Wait up to 2 s for a heap attribute to read @want; the last value read. */
static long long attr_wait(const char *heap, const char *attr, long long want)
{
	long long v = attr_get(heap, attr);
	int i;

	for (i = 0; i < 20 && v != want; i++) {
		usleep(100000);
		v = attr_get(heap, attr);
	}
	return v;
}

#define MIXED 7

TEST_F_TIMEOUT(gov, sysfs_attrs_match_bufinfo, 300)
{
	long long used0[RDH_MAX_HEAPS], bufs0[RDH_MAX_HEAPS], total[RDH_MAX_HEAPS];
	int fds[RDH_MAX_HEAPS][MIXED], i, j, nb, cma_areas = 0;
	struct binfo *b = calloc(MAX_LIVE, sizeof(*b));
	long long count, bytes, want, got, cma_total = 0;
	uint64_t seed = rdh_random_seed(), base = 0, size = 0;
	char node[RDH_NAME_LEN];
	struct sysinfo si;
	struct stat st;
	char path[256];

	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, sysinfo(&si));
	ksft_print_msg("seed %llu\n", (unsigned long long)seed);
	for (i = 0; i < self->n; i++) {
		const char *heap = self->heaps[i];
		enum kind kind = heap_kind(heap);

		for (j = 0; j < (int)ARRAY_SIZE(attrs); j++) {
			attr_path(path, sizeof(path), heap, attrs[j]);
			ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s", path);
			EXPECT_EQ(attr_writable(attrs[j]) ? 0644 : 0444, st.st_mode & 07777)
				TH_LOG("%s", path);
			EXPECT_LE(0, attr_get(heap, attrs[j])) TH_LOG("%s", path);
		}
		EXPECT_EQ(kind == SYSTEM ? 0 : 1, attr_get(heap, "contiguous")) TH_LOG("%s", heap);
		/*
		 * Uncached: a carve-out outside the linear map (no-map, or
		 * carveout='s reserved range, no device tree node),
		 * system-uncached.
		 */
		heap_node(heap, node, sizeof(node));
		want = (kind == CARVEOUT && (dt_has(node, "no-map") || dt_size(heap) < 0)) ||
		       !strcmp(heap, "system-uncached") ? 0 : 1;
		EXPECT_EQ(want, attr_get(heap, "cached")) TH_LOG("%s", heap);
		/* All RAM for the system heap, else its area or region. */
		want = kind == SYSTEM ? (long long)si.totalram * si.mem_unit : dt_size(heap);
		/* Without a device tree, the default area is cma='s. */
		if (want < 0 && !strcmp(heap, DEFAULT_CMA) && !rdh_cmdline_cma(&base, &size))
			want = size;
		got = attr_get(heap, "size");
		if (want < 0)
			ksft_print_msg("%s: no device tree node to check its size by\n", heap);
		EXPECT_EQ(want < 0 ? got : want, got) TH_LOG("%s", heap);
		if (kind == CMA && strcmp(heap, DEFAULT_CMA)) {
			cma_total += attr_get(heap, "size");
			cma_areas++;
		}
	}
	/* Every CMA area is a heap of its own name. */
	EXPECT_EQ(cma_areas ? rdh_meminfo("CmaTotal") * KIB : 0, cma_total);

	/* Mixed allocations from every heap. */
	nb = bufinfo_read(b, MAX_LIVE);
	ASSERT_LE(0, nb);
	for (i = 0; i < self->n; i++) {
		const char *heap = self->heaps[i];
		long long sizes[MIXED] = { 4 * KIB, 64 * KIB, MIB + 4 * KIB, 3 * MIB };
		int h = rdh_open_heap(heap, O_RDONLY);

		ASSERT_LE(0, h) TH_LOG("%s", heap);
		used0[i] = attr_get(heap, "used");
		bufs0[i] = attr_get(heap, "buffers");
		bufinfo_totals(b, nb, heap, &count, &bytes);
		EXPECT_EQ(bytes, used0[i]) TH_LOG("%s", heap);
		EXPECT_EQ(count, bufs0[i]) TH_LOG("%s", heap);
		total[i] = 0;
		for (j = 0; j < MIXED; j++) {
			if (j >= 4)
				sizes[j] = (1 + below(&seed, 256)) * PAGE;
			fds[i][j] = rdh_alloc(h, sizes[j], O_RDWR | O_CLOEXEC, 0);
			ASSERT_LE(0, fds[i][j]) TH_LOG("%s: %lld bytes", heap, sizes[j]);
			total[i] += sizes[j];
		}
		close(h);
	}
	nb = bufinfo_read(b, MAX_LIVE);
	ASSERT_LE(0, nb);
	for (i = 0; i < self->n; i++) {
		const char *heap = self->heaps[i];

		bufinfo_totals(b, nb, heap, &count, &bytes);
		EXPECT_EQ(used0[i] + total[i], attr_get(heap, "used")) TH_LOG("%s", heap);
		EXPECT_EQ(bufs0[i] + MIXED, attr_get(heap, "buffers")) TH_LOG("%s", heap);
		EXPECT_EQ(bytes, attr_get(heap, "used")) TH_LOG("%s", heap);
		EXPECT_EQ(count, attr_get(heap, "buffers")) TH_LOG("%s", heap);
		EXPECT_LE(used0[i] + total[i], attr_get(heap, "peak")) TH_LOG("%s", heap);
		for (j = 0; j < MIXED; j++)
			close(fds[i][j]);
	}
	for (i = 0; i < self->n; i++) {
		const char *heap = self->heaps[i];
		int h, buf;

		EXPECT_EQ(used0[i], attr_wait(heap, "used", used0[i])) TH_LOG("%s", heap);
		EXPECT_EQ(bufs0[i], attr_wait(heap, "buffers", bufs0[i])) TH_LOG("%s", heap);
		EXPECT_LE(used0[i] + total[i], attr_get(heap, "peak")) TH_LOG("%s", heap);
		/* "0" resets the high-water mark to what is used now... */
		EXPECT_EQ(0, attr_set(heap, "peak", "0")) TH_LOG("%s", heap);
		EXPECT_EQ(used0[i], attr_get(heap, "peak")) TH_LOG("%s", heap);
		/* ...which then rises with the next buffer and stays. */
		h = rdh_open_heap(heap, O_RDONLY);
		ASSERT_LE(0, h);
		buf = rdh_alloc(h, MIB, O_RDWR | O_CLOEXEC, 0);
		ASSERT_LE(0, buf) TH_LOG("%s", heap);
		close(buf);
		close(h);
		EXPECT_EQ(used0[i] + MIB, attr_get(heap, "peak")) TH_LOG("%s", heap);
		/* Nothing but "0". */
		EXPECT_EQ(-EINVAL, attr_set(heap, "peak", "5")) TH_LOG("%s", heap);
		EXPECT_EQ(-EINVAL, attr_set(heap, "peak", "reset")) TH_LOG("%s", heap);
		EXPECT_EQ(used0[i] + MIB, attr_get(heap, "peak")) TH_LOG("%s", heap);
		EXPECT_EQ(0, attr_set(heap, "peak", "0")) TH_LOG("%s", heap);
		EXPECT_EQ(used0[i], attr_wait(heap, "peak", used0[i])) TH_LOG("%s", heap);
	}
	free(b);
}

/* 5. max_alloc */

#define NOBODY 65534

/*
 * Unprivileged: read every attribute of every heap, try to write peak
 * and max_alloc. Reports reads that worked, writes refused with EACCES,
 * and the first that went otherwise (heap, attribute, errno).
 */
static int unprivileged_attrs(int sock, void *arg)
{
	struct heap_list *hl = arg;
	long long reads = 0, refused = 0, bad = -1, err = 0, r;
	int i, j;

	if (drop_to(NOBODY, NOBODY, NULL, 0))
		return 10;
	for (i = 0; i < hl->n; i++) {
		for (j = 0; j < (int)ARRAY_SIZE(attrs); j++) {
			r = attr_get(hl->names[i], attrs[j]);
			if (r >= 0)
				reads++;
			else if (bad < 0)
				bad = i * 100 + j, err = -r;
			if (!attr_writable(attrs[j]))
				continue;
			r = attr_set(hl->names[i], attrs[j], "0");
			if (r == -EACCES)
				refused++;
			else if (bad < 0)
				bad = i * 100 + j, err = -r;
		}
	}
	return say(sock, reads, refused, bad, err) ? 11 : 0;
}

TEST_F_TIMEOUT(gov, max_alloc_enforced, 300)
{
	struct heap_list hl = { self->heaps, self->n };
	int i, h, buf, bufs;
	long long size;
	struct note n;

	for (i = 0; i < self->n; i++) {
		const char *heap = self->heaps[i];

		size = attr_get(heap, "size");
		ASSERT_LT(0, size) TH_LOG("%s", heap);
		self->max_alloc[i] = attr_get(heap, "max_alloc");
		ASSERT_LE(0, self->max_alloc[i]) TH_LOG("%s", heap);
		self->max_alloc_saved[i] = true;
		/* As loaded: no cap below the heap's size. */
		EXPECT_EQ(size, self->max_alloc[i]) TH_LOG("%s", heap);
		bufs = rdh_bufinfo_count(heap);
		h = rdh_open_heap(heap, O_RDONLY);
		ASSERT_LE(0, h) TH_LOG("%s", heap);

		ASSERT_EQ(0, attr_set_num(heap, "max_alloc", MIB)) TH_LOG("%s", heap);
		EXPECT_EQ(MIB, attr_get(heap, "max_alloc")) TH_LOG("%s", heap);
		buf = rdh_alloc(h, MIB, O_RDWR | O_CLOEXEC, 0);
		EXPECT_LE(0, buf) TH_LOG("%s: 1 MiB under a 1 MiB cap", heap);
		if (buf >= 0)
			close(buf);
		/* One byte more is a page more. */
		EXPECT_EQ(-ENOMEM, rdh_alloc(h, MIB + 1, O_RDWR | O_CLOEXEC, 0)) TH_LOG("%s", heap);
		EXPECT_EQ(-ENOMEM, rdh_alloc(h, 2 * MIB, O_RDWR | O_CLOEXEC, 0)) TH_LOG("%s", heap);

		/* Up to the size, and no further; numbers only. */
		EXPECT_EQ(-EINVAL, attr_set_num(heap, "max_alloc", size + PAGE)) TH_LOG("%s", heap);
		EXPECT_EQ(-EINVAL, attr_set(heap, "max_alloc", "-1")) TH_LOG("%s", heap);
		EXPECT_EQ(-EINVAL, attr_set(heap, "max_alloc", "lots")) TH_LOG("%s", heap);
		EXPECT_EQ(MIB, attr_get(heap, "max_alloc")) TH_LOG("%s", heap);
		/* 0: nothing at all. */
		EXPECT_EQ(0, attr_set(heap, "max_alloc", "0")) TH_LOG("%s", heap);
		EXPECT_EQ(0, attr_get(heap, "max_alloc")) TH_LOG("%s", heap);
		EXPECT_EQ(-ENOMEM, rdh_alloc(h, 1, O_RDWR | O_CLOEXEC, 0)) TH_LOG("%s", heap);
		/* The size: no cap again. */
		EXPECT_EQ(0, attr_set_num(heap, "max_alloc", size)) TH_LOG("%s", heap);
		EXPECT_EQ(size, attr_get(heap, "max_alloc")) TH_LOG("%s", heap);
		buf = rdh_alloc(h, MIB + 1, O_RDWR | O_CLOEXEC, 0);
		EXPECT_LE(0, buf) TH_LOG("%s", heap);
		if (buf >= 0)
			close(buf);
		close(h);

		ASSERT_EQ(0, attr_set_num(heap, "max_alloc", self->max_alloc[i])) TH_LOG("%s", heap);
		EXPECT_EQ(self->max_alloc[i], attr_get(heap, "max_alloc")) TH_LOG("%s", heap);
		self->max_alloc_saved[i] = false;
		/* Refused allocations left nothing behind. */
		EXPECT_EQ(bufs, rdh_bufinfo_count(heap)) TH_LOG("%s", heap);
	}

	/* Anyone reads; only root writes. */
	ASSERT_EQ(0, agent_start(&self->agents[0], NULL, unprivileged_attrs, &hl));
	ASSERT_EQ(0, hear(self->agents[0].sock, &n));
	EXPECT_TRUE(exited_ok(agent_wait(&self->agents[0])));
	EXPECT_EQ(self->n * (long long)ARRAY_SIZE(attrs), n.v[0]);
	EXPECT_EQ(self->n * 2, n.v[1]);
	EXPECT_EQ(-1, n.v[2]) TH_LOG("%s %s: errno %lld", self->heaps[n.v[2] / 100],
				     attrs[n.v[2] % 100], n.v[3]);
	for (i = 0; i < self->n; i++) {
		EXPECT_EQ(attr_get(self->heaps[i], "size"), attr_get(self->heaps[i], "max_alloc"))
			TH_LOG("%s", self->heaps[i]);
	}
}

/* 6. debugfs: who holds what */

#define LEAK_NAME "rdh-leak"
#define LEAKER_COMM "rdh-leaker"

/*
 * A process that allocates, names its buffers and keeps them until it is
 * killed: 12 KiB of the system heap, 64 KiB of a contiguous heap (@arg,
 * or none). Reports how many and their inodes.
 */
static int leaker(int sock, void *arg)
{
	const char *heaps[2] = { "system", arg };
	long long sizes[2] = { 12 * KIB, 64 * KIB }, ino[2] = { 0, 0 };
	struct note cue;
	struct stat st;
	int i, h, buf, n = arg ? 2 : 1;

	if (prctl(PR_SET_NAME, LEAKER_COMM))
		return 10;
	for (i = 0; i < n; i++) {
		h = rdh_open_heap(heaps[i], O_RDONLY);
		if (h < 0)
			return 11;
		buf = rdh_alloc(h, sizes[i], O_RDWR, 0);
		close(h);
		if (buf < 0)
			return 12;
		if (ioctl(buf, DMA_BUF_SET_NAME, LEAK_NAME) || fstat(buf, &st))
			return 13;
		ino[i] = st.st_ino;
	}
	if (say(sock, n, ino[0], ino[1], 0))
		return 14;
	hear(sock, &cue);
	return 0;
}

TEST_F_TIMEOUT(gov, leak_attribution, 120)
{
	struct live *l = calloc(MAX_LIVE, sizeof(*l));
	struct binfo *b = calloc(MAX_LIVE, sizeof(*b));
	const char *contig = NULL, *heap;
	struct agent *a = &self->agents[0];
	long long sum = 0, size;
	int i, j, nl, nb, mine = 0, k;
	const char *why;
	bool enabled;
	struct note n;
	pid_t pid;

	ASSERT_NE(NULL, l);
	ASSERT_NE(NULL, b);
	why = cg_unavailable(&enabled);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_TRUE(enabled);
	if (heap_index(self->heaps, self->n, "system") < 0)
		SKIP(return, "no system heap");
	for (i = 0; i < self->n && !contig; i++)
		if (attr_get(self->heaps[i], "contiguous") == 1)
			contig = self->heaps[i];
	ASSERT_EQ(0, cg_make(self->cg[0], "leak"));
	ASSERT_EQ(0, agent_start(a, self->cg[0], leaker, (void *)contig));
	pid = a->pid;
	ASSERT_EQ(0, hear(a->sock, &n));
	ASSERT_EQ(contig ? 2 : 1, n.v[0]);

	nl = live_read(l, MAX_LIVE);
	ASSERT_LE(0, nl) TH_LOG("debugfs %s/buffers: %s", rdh_class(), strerror(-nl));
	nb = bufinfo_read(b, MAX_LIVE);
	ASSERT_LE(0, nb);
	/* One line per live buffer of every heap... */
	for (i = 0; i < self->n; i++)
		sum += attr_get(self->heaps[i], "buffers");
	EXPECT_EQ(sum, nl);
	for (i = 0; i < nl; i++) {
		/* ...each a buffer bufinfo knows, under the heap's name. */
		for (j = 0; j < nb && b[j].ino != l[i].ino; j++)
			;
		EXPECT_GT(nb, j) TH_LOG("inode %llu not in bufinfo", l[i].ino);
		if (j < nb) {
			EXPECT_STREQ(b[j].exp, l[i].heap);
			EXPECT_EQ(b[j].size, l[i].size) TH_LOG("inode %llu", l[i].ino);
		}
		EXPECT_LE(0, heap_index(self->heaps, self->n, l[i].heap)) TH_LOG("%s", l[i].heap);
		if (l[i].pid != (unsigned long long)pid)
			continue;
		/* The leaker's: as it allocated them, charged to its cgroup. */
		mine++;
		k = l[i].ino == (unsigned long long)n.v[1] ? 0 :
		    l[i].ino == (unsigned long long)n.v[2] ? 1 : -1;
		ASSERT_LE(0, k) TH_LOG("inode %llu is not the leaker's", l[i].ino);
		heap = k ? contig : "system";
		size = k ? 64 * KIB : 12 * KIB;
		EXPECT_STREQ(heap, l[i].heap);
		EXPECT_EQ(size, l[i].size);
		EXPECT_STREQ(LEAKER_COMM, l[i].comm);
		EXPECT_STREQ(cg_name(self->cg[0]), l[i].cgroup) TH_LOG("%s", heap);
		EXPECT_EQ(0, l[i].attachments);
		EXPECT_EQ(0, l[i].vmaps);
		EXPECT_STREQ(LEAK_NAME, l[i].name);
		/* Memory from the heap itself (only auto's is chosen later). */
		EXPECT_STREQ(heap, l[i].memory);
	}
	EXPECT_EQ(n.v[0], mine);

	/* Killed: its buffers go with it. */
	ASSERT_EQ(0, kill(pid, SIGKILL));
	agent_wait(a);
	for (i = 0; i < 20 && live_count_pid(pid); i++)
		usleep(100000);
	EXPECT_EQ(0, live_count_pid(pid));
	free(l);
	free(b);
}

/* The live line of the buffer with inode @ino: its attachments, or -1. */
static long long live_attachments(unsigned long long ino)
{
	struct live *l = calloc(MAX_LIVE, sizeof(*l));
	long long v = -1;
	int n, i;

	if (!l)
		return -1;
	n = live_read(l, MAX_LIVE);
	for (i = 0; i < n; i++)
		if (l[i].ino == ino)
			v = l[i].attachments;
	free(l);
	return v;
}

/*
 * The report counts the devices attached to each buffer: the dma-buf
 * core's own list (two vgem files import the buffer: two attachments; each
 * GEM_CLOSE detaches one), on every heap, auto's buffers without memory
 * too (attaching chooses nothing).
 */
TEST_F(gov, buffers_counts_attachments)
{
	int i, k, heap, buf, vgem[2];
	struct drm_prime_handle imp[2];
	struct drm_gem_close gc;
	struct stat st;

	for (k = 0; k < 2; k++) {
		vgem[k] = rdh_open_vgem();
		ASSERT_LE(0, vgem[k]) TH_LOG("no vgem");
	}
	for (i = 0; i < self->n; i++) {
		heap = rdh_open_heap(self->heaps[i], O_RDONLY);
		ASSERT_LE(0, heap);
		buf = rdh_alloc(heap, 64 * KIB, O_RDWR, 0);
		close(heap);
		ASSERT_LE(0, buf) TH_LOG("%s: %s", self->heaps[i], strerror(-buf));
		ASSERT_EQ(0, fstat(buf, &st));
		EXPECT_EQ(0, live_attachments(st.st_ino)) TH_LOG("%s", self->heaps[i]);
		for (k = 0; k < 2; k++) {
			memset(&imp[k], 0, sizeof(imp[k]));
			imp[k].fd = buf;
			ASSERT_EQ(0, ioctl(vgem[k], DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp[k]));
			EXPECT_EQ(k + 1, live_attachments(st.st_ino)) TH_LOG("%s", self->heaps[i]);
		}
		for (k = 0; k < 2; k++) {
			memset(&gc, 0, sizeof(gc));
			gc.handle = imp[k].handle;
			EXPECT_EQ(0, ioctl(vgem[k], DRM_IOCTL_GEM_CLOSE, &gc));
			EXPECT_EQ(1 - k, live_attachments(st.st_ino)) TH_LOG("%s", self->heaps[i]);
		}
		close(buf);
		EXPECT_EQ(-1, live_attachments(st.st_ino)) TH_LOG("%s", self->heaps[i]);
	}
	for (k = 0; k < 2; k++)
		close(vgem[k]);
}

/* 7. mdev */

#define HEAP_GID 1234
#define MEMBER 1000
#define OUTSIDER 1001

/* In group HEAP_GID: open and allocate 64 KiB from every heap, hold them. */
static int member(int sock, void *arg)
{
	struct heap_list *hl = arg;
	gid_t groups[] = { HEAP_GID };
	long long ok = 0, bad = -1, err = 0;
	int i, h, buf;
	struct note cue;

	if (drop_to(MEMBER, HEAP_GID, groups, 1))
		return 10;
	for (i = 0; i < hl->n; i++) {
		h = rdh_open_heap(hl->names[i], O_RDWR);
		buf = h < 0 ? -errno : rdh_alloc(h, 64 * KIB, O_RDWR | O_CLOEXEC, 0);
		if (h >= 0)
			close(h);
		if (buf >= 0)
			ok++;
		else if (bad < 0)
			bad = i, err = -buf;
	}
	if (say(sock, ok, bad, err, 0))
		return 11;
	hear(sock, &cue);
	return 0;
}

/* Not in the group: every open must fail with EACCES. */
static int outsider(int sock, void *arg)
{
	struct heap_list *hl = arg;
	long long refused = 0, bad = -1, err = 0;
	int i, h;

	if (drop_to(OUTSIDER, OUTSIDER, NULL, 0))
		return 10;
	for (i = 0; i < hl->n; i++) {
		h = rdh_open_heap(hl->names[i], O_RDONLY);
		if (h < 0 && errno == EACCES) {
			refused++;
			continue;
		}
		if (bad < 0)
			bad = i, err = h < 0 ? errno : 0;
		if (h >= 0)
			close(h);
	}
	return say(sock, refused, bad, err, 0) ? 11 : 0;
}

TEST_F_TIMEOUT(gov, mdev_rule_grants_group, 300)
{
	struct heap_list hl = { self->heaps, self->n };
	char path[256], uevent[512], devname[256], rules[256];
	struct agent *a = &self->agents[0];
	struct stat st;
	struct note n;
	int i, ret;

	/* What an mdev rule matches: DEVNAME, <class>/<heap>. */
	for (i = 0; i < self->n; i++) {
		snprintf(path, sizeof(path), "/sys/class/%s/%s/uevent", rdh_class(), self->heaps[i]);
		/* One "KEY=value" a line: framed by newlines to match whole lines. */
		uevent[0] = '\n';
		ASSERT_EQ(0, rdh_read_text(path, uevent + 1, sizeof(uevent) - 2)) TH_LOG("%s", path);
		strcat(uevent, "\n");
		snprintf(devname, sizeof(devname), "\nDEVNAME=%s/%s\n", rdh_class(), self->heaps[i]);
		EXPECT_NE(NULL, strstr(uevent, devname)) TH_LOG("%s:%s", path, uevent);
		snprintf(path, sizeof(path), "%s/%s", rdh_dir(), self->heaps[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s", path);
		ASSERT_TRUE(S_ISCHR(st.st_mode)) TH_LOG("%s", path);
		self->node_uid[i] = st.st_uid;
		self->node_gid[i] = st.st_gid;
		self->node_mode[i] = st.st_mode & 07777;
		self->node_saved[i] = true;
	}

	/* The rule, and a catch-all that leaves every other node alone. */
	snprintf(rules, sizeof(rules), "%s/.* 0:%d 0660\n.* 0:0 0660 !\n", rdh_class(), HEAP_GID);
	self->mdev_conf_saved = !rename(MDEV_CONF, MDEV_CONF_SAVED);
	self->mdev_conf = true;
	ret = open(MDEV_CONF, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, ret);
	ASSERT_EQ((ssize_t)strlen(rules), write(ret, rules, strlen(rules)));
	close(ret);
	ret = rdh_mdev_scan();
	if (ret == 127) {
		/* No mdev: what its rule does, by hand. */
		ksft_print_msg("no mdev: granting by chown/chmod\n");
		for (i = 0; i < self->n; i++) {
			snprintf(path, sizeof(path), "%s/%s", rdh_dir(), self->heaps[i]);
			ASSERT_EQ(0, chown(path, 0, HEAP_GID));
			ASSERT_EQ(0, chmod(path, 0660));
		}
	} else {
		ASSERT_EQ(0, ret) TH_LOG("mdev -s failed");
	}
	for (i = 0; i < self->n; i++) {
		snprintf(path, sizeof(path), "%s/%s", rdh_dir(), self->heaps[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s", path);
		EXPECT_TRUE(S_ISCHR(st.st_mode)) TH_LOG("%s", path);
		EXPECT_EQ(0, st.st_uid) TH_LOG("%s", path);
		EXPECT_EQ(HEAP_GID, st.st_gid) TH_LOG("%s", path);
		EXPECT_EQ(0660, st.st_mode & 07777) TH_LOG("%s", path);
	}

	/* A member allocates from every heap, and is named as the holder. */
	ASSERT_EQ(0, agent_start(a, NULL, member, &hl));
	ASSERT_EQ(0, hear(a->sock, &n));
	EXPECT_EQ(self->n, n.v[0]) TH_LOG("%s: %s", n.v[1] >= 0 ? self->heaps[n.v[1]] : "",
					  strerror(n.v[2]));
	EXPECT_EQ(n.v[0], live_count_pid(a->pid));
	ASSERT_EQ(0, say(a->sock, 0, 0, 0, 0));
	EXPECT_TRUE(exited_ok(agent_wait(a)));

	/* Anyone else is refused. */
	ASSERT_EQ(0, agent_start(a, NULL, outsider, &hl));
	ASSERT_EQ(0, hear(a->sock, &n));
	EXPECT_TRUE(exited_ok(agent_wait(a)));
	EXPECT_EQ(self->n, n.v[0]) TH_LOG("%s: errno %lld", n.v[1] >= 0 ? self->heaps[n.v[1]] : "",
					  n.v[2]);
}

TEST_HARNESS_MAIN
