#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of verdict.py: canned console logs, each with the exit status
# the verdict must give. A bench that cannot fail is no bench.
set -uo pipefail
V="$(cd "$(dirname "$0")" && pwd)/verdict.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

good='### RDH-BEGIN t
TAP version 13
1..2
ok 1 a
ok 2 b # SKIP no device
### RDH-END t rc=0
### RDH-DMESG-BEGIN
[    1.0] rust_dma_heap: loaded
### RDH-DMESG-END
### RDH-DONE'

cases=(
	"pass|0|$good"
	"not ok|1|${good/ok 1 a/not ok 1 a}"
	"no plan|1|${good/1..2/}"
	"short plan|1|${good/1..2/1..3}"
	"non-zero exit|1|${good/rc=0/rc=1}"
	"never finished|1|${good/\#\#\# RDH-END t rc=0/}"
	"no end of run|1|${good/\#\#\# RDH-DONE/}"
	"WARNING in dmesg|1|${good/rust_dma_heap: loaded/WARNING: CPU: 0 PID: 1 at x.c:1}"
	"refcount in dmesg|1|${good/rust_dma_heap: loaded/refcount_t: underflow; use-after-free.}"
	"leak in dmesg|1|${good/rust_dma_heap: loaded/kmemleak: 1 new suspected memory leaks}"
	"KASAN report|1|${good/rust_dma_heap: loaded/BUG: KASAN: slab-use-after-free in x+0x1/0x2}"
	"lockdep report|1|${good/rust_dma_heap: loaded/WARNING: possible circular locking dependency detected}"
	"kmemleak start is fine|0|${good/rust_dma_heap: loaded/kmemleak: Kernel memory leak detector initialized (mem pool available: 1)}"
	"oops on console|1|${good/\#\#\# RDH-DONE/[    2.0] Internal error: Oops: 96000004}"
	"kCFI report|1|${good/rust_dma_heap: loaded/CFI failure at dma_buf_release+0x50/0xc0 (target: x+0x0/0xd0 [rust_dma_heap]; expected type: 0x5e3d944f)}"
	"BUG_ON|1|${good/rust_dma_heap: loaded/kernel BUG at mm/slub.c:1!}"
	"KUnit failure at a reload|1|${good/rust_dma_heap: loaded/    # first_fit_empty_region: ASSERTION FAILED at src\/wrappers\/reserved_mem.rs:1}"
	"skip-all program|0|${good/\#\#\# RDH-DMESG-BEGIN/\#\#\# RDH-BEGIN s
TAP version 13
1..0 \# SKIP no suites
\#\#\# RDH-END s rc=4
\#\#\# RDH-DMESG-BEGIN}"
	"skip-all exiting 1|1|${good/\#\#\# RDH-DMESG-BEGIN/\#\#\# RDH-BEGIN s
TAP version 13
1..0 \# SKIP no suites
\#\#\# RDH-END s rc=1
\#\#\# RDH-DMESG-BEGIN}"
	"shadow call stack|1|${good/rust_dma_heap: loaded/Kernel panic - not syncing: corrupted shadow stack detected inside scheduler}"
)
n=0 fail=0
echo "TAP version 13"
echo "1..$((${#cases[@]} + 2))"
for c in "${cases[@]}"; do
	name=${c%%|*}
	rest=${c#*|}
	want=${rest%%|*}
	printf '%s\n' "${rest#*|}" >"$tmp/log"
	python3 "$V" --expect t "$tmp/log" >"$tmp/out" 2>&1
	got=$?
	n=$((n + 1))
	if [ "$got" = "$want" ]; then
		echo "ok $n verdict: $name"
	else
		echo "not ok $n verdict: $name (exit $got, want $want)"
		sed 's/^/# /' "$tmp/out"
		fail=1
	fi
done
printf '%s\n' "$good" >"$tmp/log"
python3 "$V" --expect "t missing" "$tmp/log" >"$tmp/out" 2>&1
got=$?
n=$((n + 1))
if [ "$got" = 1 ]; then
	echo "ok $n verdict: expected program never started"
else
	echo "not ok $n verdict: expected program never started (exit $got)"
	fail=1
fi
# Several boots: one bad boot fails the whole verdict.
printf '%s\n' "$good" >"$tmp/a"
printf '%s\n' "${good/ok 1 a/not ok 1 a}" >"$tmp/b"
python3 "$V" a="$tmp/a" --expect a=t b="$tmp/b" --expect b=t >"$tmp/out" 2>&1
got=$?
n=$((n + 1))
if [ "$got" = 1 ] && grep -qx 'not ok b/t:1 a' "$tmp/out"; then
	echo "ok $n verdict: one failing boot of two"
else
	echo "not ok $n verdict: one failing boot of two (exit $got)"
	fail=1
fi
exit $fail
