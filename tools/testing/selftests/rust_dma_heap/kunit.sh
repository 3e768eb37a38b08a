#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The module's KUnit suites (CONFIG_RUST_DMA_HEAP_KUNIT_TEST) run when it
# is loaded; this reports each case of their last run, from
# /sys/kernel/debug/kunit/rust_dma_heap_*/results, as a KTAP result of its
# own ("suite.case"). A suite that reports fewer cases than its plan fails.
# Skips when no suite is there (module not loaded, or a kernel without
# KUnit) unless RDH_EXPECT_KUNIT=1.

DIR=$(dirname "$(readlink -f "$0")")
. "$DIR"/../kselftest/ktap_helpers.sh

root=${RDH_KUNIT_DIR:-/sys/kernel/debug/kunit}

ktap_print_header
suites=$(ls -d "$root"/rust_dma_heap_* 2>/dev/null)
if [ -z "$suites" ]; then
	if [ "${RDH_EXPECT_KUNIT:-0}" = 1 ]; then
		ktap_set_plan 1
		ktap_test_fail "rust_dma_heap KUnit suites in $root"
		ktap_finished
	fi
	ktap_skip_all "no rust_dma_heap KUnit suites in $root (module not loaded, or no CONFIG_KUNIT)"
	exit "$KSFT_SKIP"
fi

# One line per case: "ok|not ok<TAB>suite.case<TAB>directive"; per suite
# "plan<TAB>suite<TAB>N" and "count<TAB>suite<TAB>N".
results=$(for s in $suites; do
	awk -v suite="${s##*/}" '
	/^    1\.\.[0-9]+/ { sub(/^    1\.\./, ""); plan = $1 + 0; next }
	/^    (not )?ok [0-9]+ / {
		line = $0; sub(/^    /, "", line)
		res = "ok"
		if (line ~ /^not ok/) { res = "not ok"; sub(/^not ok [0-9]+ /, "", line) }
		else sub(/^ok [0-9]+ /, "", line)
		dir = ""
		if (index(line, "#")) {
			dir = substr(line, index(line, "#") + 1)
			line = substr(line, 1, index(line, "#") - 1)
			sub(/^ +/, "", dir)
		}
		sub(/ +$/, "", line); sub(/^- /, "", line)
		printf "%s\t%s.%s\t%s\n", res, suite, line, dir
		n++
	}
	END { printf "plan\t%s\t%d\ncount\t%s\t%d\n", suite, plan, suite, n }
	' "$s/results"
done)

cases=$(printf '%s\n' "$results" | grep -c -v -e '^plan' -e '^count')
short=$(printf '%s\n' "$results" | awk -F '\t' '
	$1 == "plan" { plan[$2] = $3 } $1 == "count" { count[$2] = $3 }
	END { for (s in plan) if (count[s] < plan[s] || plan[s] == 0) print s }')
nshort=$(printf '%s' "$short" | grep -c .)
ktap_set_plan $((cases + nshort))

TAB=$(printf '\t')
while IFS="$TAB" read -r res name dir; do
	case "$res" in
	plan | count | "") continue ;;
	esac
	case "$res:$dir" in
	ok:SKIP*) ktap_test_skip "$name" ;;
	ok:*) ktap_test_pass "$name" ;;
	*) ktap_test_fail "$name" ;;
	esac
done <<EOT
$results
EOT
for s in $short; do
	ktap_test_fail "$s: every case of its plan reported"
done
ktap_finished
