#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse) the test kernel: allnoconfig + the repo's fragments.
# The build directory is keyed by kernel version, arch, variant, the
# fragments' contents and the toolchain, and is rebuilt only when one of
# those changes. Prints the build directory on stdout.
#
# Usage: build-kernel.sh [VARIANT]   (VARIANT: main, the default; upstream;
#        main+debug: main with configs/debug.config; upstream and
#        main+debug are built with clang, see variant_llvm in lib.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VARIANT=${1:-main}
KSRC=$CACHE/src/linux-$KVER
[ -f "$KSRC/.rdh-extracted" ] || die "no kernel source in $KSRC: run scripts/setup.sh"

frags=("$VM_DIR/configs/base.config" "$VM_DIR/configs/$ARCH.config")
IFS=+ read -r -a parts <<<"$VARIANT"
for part in "${parts[@]}"; do
	frags+=("$VM_DIR/configs/$part.config")
done
read -r -a llvm <<<"$(variant_llvm "$VARIANT")"
for f in "${frags[@]}"; do
	[ -f "$f" ] || die "missing config fragment $f"
done
# The kselftest's own fragment, less the symbols only an in-tree build knows.
selftest_frag=$CACHE/selftest-$ARCH.config
mkdir -p "$CACHE"
grep -v 'RUST_DMA_HEAP' "$REPO/tools/testing/selftests/rust_dma_heap/config" >"$selftest_frag.tmp"
mv "$selftest_frag.tmp" "$selftest_frag"
frags+=("$selftest_frag")

key=$({
	echo "$KVER $ARCH $VARIANT"
	cat "${frags[@]}"
	rustc --version
	bindgen --version
	"${CROSS_COMPILE}gcc" --version | head -n1
	[ ${#llvm[@]} -eq 0 ] || "clang-$LLVM_VER" --version | head -n1
} | sha256sum | cut -c1-12)
OUT=$CACHE/build/$KVER-$ARCH-$VARIANT-$key

if [ -f "$OUT/.rdh-built" ] && [ -f "$OUT/$KIMAGE" ]; then
	log "kernel $KVER ($ARCH, $VARIANT) cached: $OUT"
	echo "$OUT"
	exit 0
fi

# A changed key makes the older builds of this arch and variant stale.
for old in "$CACHE/build/$KVER-$ARCH-$VARIANT"-*; do
	[ -d "$old" ] && [ "$old" != "$OUT" ] && rm -rf "$old"
done
mkdir -p "$OUT"

kmake() {
	make -C "$KSRC" O="$OUT" ARCH="$ARCH" CROSS_COMPILE="$CROSS_COMPILE" "${llvm[@]}" "$@"
}

configure() {
	kmake allnoconfig
	"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$OUT" "$OUT/.config" "${frags[@]}"
	kmake olddefconfig
	# Every option a fragment asks for must have landed: a silently
	# dropped one (RUST when the toolchain is unusable, say) is an error.
	local bad=0 line sym
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF "$line" "$OUT/.config" || {
				echo "config: wanted $line, got: $(grep "^${line%%=*}=" "$OUT/.config" || echo unset)"
				bad=1
			}
			;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }
			sym=${sym%% *}
			if grep -q "^$sym=" "$OUT/.config"; then
				echo "config: wanted $sym unset, got: $(grep "^$sym=" "$OUT/.config")"
				bad=1
			fi
			;;
		esac
	done < <(cat "${frags[@]}")
	return $bad
}

log "kernel $KVER ($ARCH, $VARIANT) -> $OUT"
step "rustavailable" "$OUT/rustavailable.log" kmake rustavailable
step "configure" "$OUT/configure.log" configure
step "build kernel ($(basename "$KIMAGE"), modules)" "$OUT/build.log" \
	kmake -j"$(nproc)" "$(basename "$KIMAGE")" modules
step "install UAPI headers" "$OUT/headers.log" \
	kmake headers_install INSTALL_HDR_PATH="$OUT/hdr"
echo "$key" >"$OUT/.rdh-built"
echo "$OUT"
