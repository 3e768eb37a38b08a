// SPDX-License-Identifier: GPL-2.0
/*
 * insn-profile: a QEMU TCG plugin for "vmtest bench --profile". Counts the
 * guest kernel instructions executed while a window is open, per
 * translation block, so that a call of ours and the same call of
 * upstream's can be compared instruction by instruction: a count, the
 * same in every run, where times under TCG vary by 5 %.
 *
 * The guest opens window W (1..MAX_WINDOWS-1) by calling the code at
 * MARK_BASE + W * 4096 and closes it by calling MARK_BASE (see
 * dma-heap-bench.c, RDH_BENCH_MARKS); a window is per vCPU. At exit it
 * writes, to the file named by the argument out=PATH:
 *
 *   W <window> <times opened>
 *   C <window> <instructions> <entries by lookup> <exclusives> <system
 *     register accesses> <barriers> <code pages> <data pages>
 *     (one line per call, in order)
 *   T <window> <block address> <instructions> <executions> <entries by
 *     lookup> <exclusives> <system register accesses> <barriers>
 *
 * An entry by lookup is an execution of the block that TCG could not
 * chain to from the block before it (that one ended in an indirect branch
 * or a return, or lay on another page): QEMU looks the block up in its
 * jump cache, or after a TLB flush in its hash table. Exclusives (load/
 * store-exclusive: atomics and locks on Arm v8.0), system register accesses
 * and barriers are counted per block from its disassembly. Code and data
 * pages are the distinct 4 KiB pages of kernel addresses the call executed
 * and loaded or stored (each one a TLB fill for QEMU when its software TLB
 * is cold).
 *
 * Only the plugin API the QEMU binary exports is used; its prototypes are
 * declared in insn-profile.h (the API is C and stable since version 2).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "insn-profile.h"

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 2;

#define MARK_BASE 0x5a5a0000ull
#define MAX_WINDOWS 32
#define MAX_VCPUS 64
#define KERNEL_BASE 0xffff000000000000ull

struct block {
	uint64_t vaddr;
	uint32_t insns, excl, sys, bar;
	bool indirect;
	uint64_t count[MAX_WINDOWS];
	uint64_t lookups[MAX_WINDOWS];
	struct block *next;
};

#define MAX_CALLS 4096

/* What one call (one opening of a window) executed. */
struct call {
	uint64_t insns, lookups, excl, sys, bar, code_pages, data_pages;
};

/* The distinct pages of one call: open addressing, 0 is empty. */
#define PAGE_SET 8192
struct page_set {
	uint64_t page[PAGE_SET];
};
static struct page_set code_set[MAX_VCPUS], data_set[MAX_VCPUS];

/* Adds @addr's page; true if it was not there yet (or the set is full). */
static bool page_add(struct page_set *set, uint64_t addr)
{
	uint64_t page = addr >> 12, h = (page * 0x9e3779b97f4a7c15ull) >> 51;
	unsigned int i;

	for (i = 0; i < PAGE_SET; i++, h = (h + 1) % PAGE_SET) {
		if (set->page[h] == page)
			return false;
		if (!set->page[h]) {
			set->page[h] = page;
			return true;
		}
	}
	return true;
}

static struct block *blocks;
static unsigned int window[MAX_VCPUS];
static struct block *prev[MAX_VCPUS];
static struct call current[MAX_VCPUS];
static struct call *calls[MAX_WINDOWS];
static uint64_t opened[MAX_WINDOWS];
static const char *out_path = "insn-profile.txt";

static void mark(unsigned int vcpu, void *udata)
{
	unsigned int w = (unsigned int)(uintptr_t)udata;

	unsigned int was, n;

	if (vcpu >= MAX_VCPUS)
		return;
	was = window[vcpu];
	window[vcpu] = w;
	if (was && !w) {
		/* Closed: keep what the call executed. */
		n = __atomic_fetch_add(&opened[was], 1, __ATOMIC_RELAXED);
		if (!calls[was])
			calls[was] = calloc(MAX_CALLS, sizeof(struct call));
		if (calls[was] && n < MAX_CALLS)
			calls[was][n] = current[vcpu];
	}
	memset(&current[vcpu], 0, sizeof(current[vcpu]));
	memset(&code_set[vcpu], 0, sizeof(code_set[vcpu]));
	memset(&data_set[vcpu], 0, sizeof(data_set[vcpu]));
}

static void mem(unsigned int vcpu, uint32_t info, uint64_t vaddr, void *udata)
{
	if (vcpu < MAX_VCPUS && window[vcpu] && vaddr >= KERNEL_BASE)
		current[vcpu].data_pages += page_add(&data_set[vcpu], vaddr);
}

static void exec(unsigned int vcpu, void *udata)
{
	struct block *b = udata;
	unsigned int w = vcpu < MAX_VCPUS ? window[vcpu] : 0;

	struct block *p;

	if (vcpu >= MAX_VCPUS)
		return;
	p = prev[vcpu];
	prev[vcpu] = b;
	if (!w)
		return;
	__atomic_fetch_add(&b->count[w], 1, __ATOMIC_RELAXED);
	current[vcpu].insns += b->insns;
	current[vcpu].excl += b->excl;
	current[vcpu].sys += b->sys;
	current[vcpu].bar += b->bar;
	current[vcpu].code_pages += page_add(&code_set[vcpu], b->vaddr);
	if (!p || p->indirect || (p->vaddr ^ b->vaddr) >> 12) {
		__atomic_fetch_add(&b->lookups[w], 1, __ATOMIC_RELAXED);
		current[vcpu].lookups++;
	}
}

static bool starts(const char *s, const char *const *words)
{
	for (; *words; words++) {
		size_t n = strlen(*words);

		if (!strncmp(s, *words, n) && (s[n] == ' ' || s[n] == '\0' || s[n] == '\t'))
			return true;
	}
	return false;
}

/* Counts the classes of the block's instructions from their disassembly. */
static void classify(struct block *b, struct qemu_plugin_tb *tb, size_t n)
{
	static const char *const excl[] = {
		"ldxr", "ldaxr", "stxr", "stlxr", "ldxp", "ldaxp", "stxp", "stlxp",
		"ldxrb", "ldaxrb", "stxrb", "stlxrb", "ldxrh", "ldaxrh", "stxrh", "stlxrh",
		NULL,
	};
	static const char *const sys[] = { "mrs", "msr", NULL };
	static const char *const bar[] = { "dmb", "dsb", "isb", NULL };
	static const char *const ind[] = { "ret", "br", "blr", "eret", NULL };
	size_t i;

	for (i = 0; i < n; i++) {
		char *d = qemu_plugin_insn_disas(qemu_plugin_tb_get_insn(tb, i));
		const char *s = d;

		if (!d)
			continue;
		/* The disassembly may start with the encoding: skip to the mnemonic. */
		while (*s == ' ' || *s == '\t')
			s++;
		if (strlen(s) > 9 && strspn(s, "0123456789abcdef") == 8)
			s += 8;
		while (*s == ' ' || *s == '\t')
			s++;
		b->excl += starts(s, excl);
		b->sys += starts(s, sys);
		b->bar += starts(s, bar);
		if (i == n - 1)
			b->indirect = starts(s, ind);
		free(d);
	}
}

static void trans(uint64_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	struct block *b, *head;
	size_t i;

	if (vaddr >= MARK_BASE && vaddr < MARK_BASE + MAX_WINDOWS * 4096ull) {
		if (vaddr % 4096 == 0)
			qemu_plugin_register_vcpu_tb_exec_cb(tb, mark, QEMU_PLUGIN_CB_NO_REGS,
							     (void *)(uintptr_t)((vaddr - MARK_BASE) / 4096));
		return;
	}
	if (vaddr < KERNEL_BASE)
		return;
	b = calloc(1, sizeof(*b));
	if (!b)
		return;
	b->vaddr = vaddr;
	b->insns = qemu_plugin_tb_n_insns(tb);
	classify(b, tb, b->insns);
	for (i = 0; i < b->insns; i++)
		qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), mem,
						 QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
	/* Blocks are only added, never freed: a lock-free push. */
	head = __atomic_load_n(&blocks, __ATOMIC_ACQUIRE);
	do {
		b->next = head;
	} while (!__atomic_compare_exchange_n(&blocks, &head, b, false, __ATOMIC_RELEASE,
					      __ATOMIC_ACQUIRE));
	qemu_plugin_register_vcpu_tb_exec_cb(tb, exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void at_exit(uint64_t id, void *udata)
{
	FILE *f = fopen(out_path, "w");
	struct block *b;
	unsigned int w;
	uint64_t i;

	if (!f)
		return;
	for (w = 1; w < MAX_WINDOWS; w++)
		if (opened[w])
			fprintf(f, "W %u %" PRIu64 "\n", w, opened[w]);
	for (w = 1; w < MAX_WINDOWS; w++)
		for (i = 0; calls[w] && i < opened[w] && i < MAX_CALLS; i++)
			fprintf(f, "C %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
				" %" PRIu64 " %" PRIu64 "\n",
				w, calls[w][i].insns, calls[w][i].lookups, calls[w][i].excl,
				calls[w][i].sys, calls[w][i].bar, calls[w][i].code_pages,
				calls[w][i].data_pages);
	for (b = blocks; b; b = b->next)
		for (w = 1; w < MAX_WINDOWS; w++)
			if (b->count[w])
				fprintf(f, "T %u %" PRIx64 " %u %" PRIu64 " %" PRIu64 " %u %u %u\n",
					w, b->vaddr, b->insns, b->count[w], b->lookups[w], b->excl,
					b->sys, b->bar);
	fclose(f);
}

EXPORT int qemu_plugin_install(uint64_t id, const struct qemu_info *info, int argc,
			       char **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			out_path = argv[i] + 4;
	qemu_plugin_register_vcpu_tb_trans_cb(id, trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
