#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Lints as a KTAP program (read by verdict.py like a guest's output):
# rustfmt with the kernel's config, clippy with zero warnings, rustdoc with
# zero warnings, checkpatch on all C, cargo fmt/clippy on the Rust sample,
# the selftests Makefile, the RST docs, the bench's external commands and
# the module's layering.
#
# Usage: lint.sh KBUILD KSRC WORKDIR
# Exits 1 (and says rc=1 on its END line) when any check is "not ok".
set -uo pipefail
. "$(dirname "$0")/../tools/testing/vm/lib.sh"
KBUILD=$1 KSRC=$2 W=$3
mkdir -p "$W"

n=0
failed=0
result() { # ok|not-ok name [details file]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n $2"
	else
		failed=1
		echo "not ok $n $2"
		[ -z "${3:-}" ] || sed 's/^/# /' "$3" | head -n 40
	fi
}

echo "### RDH-BEGIN lint"
echo "TAP version 13"
echo "1..11"
rs=$(find "$REPO/src" -name '*.rs' | sort)
if rustfmt --edition 2021 --config-path "$KSRC/.rustfmt.toml" --check $rs >"$W/rustfmt.log" 2>&1; then
	result ok "rustfmt (kernel .rustfmt.toml)"
else
	result not-ok "rustfmt (kernel .rustfmt.toml)" "$W/rustfmt.log"
fi

rm -rf "$W/clippy"
mkdir -p "$W/clippy"
make -C "$KBUILD" M="$REPO" MO="$W/clippy" ARCH="$ARCH" CROSS_COMPILE="$CROSS_COMPILE" \
	CLIPPY=1 -j"$(nproc)" modules >"$W/clippy.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && ! grep -q '^warning\|^error' "$W/clippy.log"; then
	result ok "make CLIPPY=1: no warnings"
else
	grep -A8 '^warning\|^error' "$W/clippy.log" >"$W/clippy.short"
	result not-ok "make CLIPPY=1: no warnings" "$W/clippy.short"
fi

if python3 "$REPO/scripts/rustdoc-module.py" "$W/clippy/src/.rust_dma_heap.o.cmd" "$W/rustdoc" \
	>"$W/rustdoc.log" 2>&1; then
	result ok "rustdoc (private items, -D warnings)"
else
	result not-ok "rustdoc (private items, -D warnings)" "$W/rustdoc.log"
fi

cfiles=$(cd "$REPO" && find src samples scripts tools/testing/selftests tools/testing/vm -name '*.[ch]' | sort)
if (cd "$REPO" && "$KSRC/scripts/checkpatch.pl" --no-tree --quiet -f $cfiles) \
	>"$W/checkpatch.log" 2>&1; then
	result ok "checkpatch on all C"
else
	result not-ok "checkpatch on all C" "$W/checkpatch.log"
fi

sample=$REPO/samples/rust/dma-heap-client
if cargo fmt --check --manifest-path "$sample/Cargo.toml" >"$W/cargofmt.log" 2>&1; then
	result ok "cargo fmt (samples/rust)"
else
	result not-ok "cargo fmt (samples/rust)" "$W/cargofmt.log"
fi
if cargo clippy --release --locked --manifest-path "$sample/Cargo.toml" \
	--target-dir "$W/cargo" -- -D warnings >"$W/cargoclippy.log" 2>&1; then
	result ok "cargo clippy -D warnings (samples/rust)"
else
	result not-ok "cargo clippy -D warnings (samples/rust)" "$W/cargoclippy.log"
fi
# Every selftest program is built by the kselftest Makefile.
st=$REPO/tools/testing/selftests/rust_dma_heap
missing=
for c in "$st"/*.c; do
	prog=$(basename "${c%.c}")
	grep -Eq "^TEST_GEN_PROGS(_EXTENDED)? :=.*\b$prog\b" "$st/Makefile" || missing="$missing $prog"
done
if [ -z "$missing" ]; then
	result ok "selftests Makefile lists every program"
else
	echo "missing from Makefile:$missing" >"$W/makefile.log"
	result not-ok "selftests Makefile lists every program" "$W/makefile.log"
fi
# The documentation is valid reStructuredText (what Sphinx would warn on).
if python3 - $(find "$REPO/Documentation" -name '*.rst' | sort) >"$W/rst.log" 2>&1 <<'EOF'; then
import sys
import docutils.core
import docutils.utils

bad = 0
for path in sys.argv[1:]:
    try:
        docutils.core.publish_string(open(path).read(), source_path=path, writer_name="null",
                                     settings_overrides={"report_level": 2, "halt_level": 2})
    except docutils.utils.SystemMessage as e:
        print(e)
        bad = 1
sys.exit(bad)
EOF
	result ok "Documentation: reStructuredText without warnings"
else
	result not-ok "Documentation: reStructuredText without warnings" "$W/rst.log"
fi
# The benchmark report's summary is what the committed CSV says.
if python3 "$REPO/tools/testing/vm/bench/summary.py" "$REPO/Documentation/benchmark" --check \
	>"$W/summary.log" 2>&1; then
	result ok "Documentation/benchmark: summary generated from the CSV"
else
	result not-ok "Documentation/benchmark: summary generated from the CSV" "$W/summary.log"
fi
# Every external command the bench's scripts call is installed by set-up
# (./requirements) or part of the base system.
if python3 "$REPO/scripts/commands-lint.py" "$REPO" >"$W/commands.log" 2>&1; then
	result ok "external commands: all in requirements, all provided"
else
	result not-ok "external commands: all in requirements, all provided" "$W/commands.log"
fi
# The module's layers depend one way, without cycles.
if python3 "$REPO/scripts/layers-lint.py" "$REPO" >"$W/layers.log" 2>&1; then
	result ok "layers: entry > registry > heaps > buffer > wrappers, no cycles"
else
	result not-ok "layers: entry > registry > heaps > buffer > wrappers, no cycles" "$W/layers.log"
fi
echo "### RDH-END lint rc=$failed"
echo "### RDH-DONE"
exit "$failed"
