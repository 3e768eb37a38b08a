// SPDX-License-Identifier: GPL-2.0
/*
 * The module as the kernel sees it once loaded: live, unused (in provider
 * mode, one reference for each heap the kernel's framework holds), with
 * the attributes a user inspects.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rdh.h"
#include "../kselftest_harness.h"

#define MOD_SYSFS "/sys/module/rust_dma_heap"

static int read_attr(const char *attr, char *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), MOD_SYSFS "/%s", attr);
	return rdh_read_text(path, buf, len);
}

TEST(module_is_live)
{
	char buf[64];

	ASSERT_EQ(0, read_attr("initstate", buf, sizeof(buf)));
	ASSERT_STREQ("live", buf);
}

/*
 * No users; in provider mode, one reference for each heap added to the
 * kernel's framework, which cannot remove it (the module's pin).
 */
TEST(module_has_no_users_at_start)
{
	char buf[64], want[16];
	struct dirent *e;
	int heaps = 0;
	DIR *d;

	if (rdh_provider()) {
		d = opendir("/sys/kernel/rust_dma_heap/heaps");
		ASSERT_NE(NULL, d);
		while ((e = readdir(d)))
			heaps += e->d_name[0] != '.';
		closedir(d);
		ASSERT_LT(0, heaps);
	}
	snprintf(want, sizeof(want), "%d", heaps);
	ASSERT_EQ(0, read_attr("refcnt", buf, sizeof(buf)));
	ASSERT_STREQ(want, buf);
}

TEST(module_is_gpl)
{
	char buf[64];

	/* A non-GPL module would be tainted 'P' and lose dma-buf's symbols. */
	ASSERT_EQ(0, read_attr("taint", buf, sizeof(buf)));
	ASSERT_EQ(NULL, strchr(buf, 'P'));
}

TEST_HARNESS_MAIN
