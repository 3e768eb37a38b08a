#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The in-tree build: the project placed under drivers/dma-buf/rust-dma-heap
# of the pinned kernel tree, hooked in with one `source` line in
# drivers/dma-buf/Kconfig and one `obj-` line in drivers/dma-buf/Makefile
# (see Documentation/rust-dma-heap.rst), compiled with
# CONFIG_RUST_DMA_HEAP=m and =y. Output: a KTAP program for verdict.py.
#
# The tree is a hard-linked copy of the cached source (files we change are
# replaced, never edited in place); builds are incremental across runs.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

KSRC=$CACHE/src/linux-$KVER
TREE=$CACHE/src/linux-$KVER-intree
DEST=$TREE/drivers/dma-buf/rust-dma-heap

prepare_tree() {
	if [ ! -f "$TREE/.rdh-intree" ]; then
		rm -rf "$TREE"
		cp -al "$KSRC" "$TREE" || return 1
		# The hook: one line each, written to new files (the originals
		# are hard links into the pinned tree).
		{ cat "$KSRC/drivers/dma-buf/Kconfig"; } |
			sed 's|^source "drivers/dma-buf/heaps/Kconfig"$|&\nsource "drivers/dma-buf/rust-dma-heap/Kconfig"|' \
			>"$TREE/drivers/dma-buf/Kconfig.new" || return 1
		mv "$TREE/drivers/dma-buf/Kconfig.new" "$TREE/drivers/dma-buf/Kconfig"
		{ cat "$KSRC/drivers/dma-buf/Makefile"; echo 'obj-$(CONFIG_RUST_DMA_HEAP) += rust-dma-heap/'; } \
			>"$TREE/drivers/dma-buf/Makefile.new" || return 1
		mv "$TREE/drivers/dma-buf/Makefile.new" "$TREE/drivers/dma-buf/Makefile"
		grep -q 'rust-dma-heap/Kconfig' "$TREE/drivers/dma-buf/Kconfig" || return 1
		touch "$TREE/.rdh-intree"
	fi
	mkdir -p "$DEST"
	rsync -a --delete --checksum "$REPO/Kconfig" "$REPO/Kbuild" "$REPO/src" "$REPO/include" "$DEST/"
}

build() { # m|y
	local out=$CACHE/build/intree-$ARCH-$1
	mkdir -p "$out"
	make -C "$TREE" O="$out" ARCH="$ARCH" CROSS_COMPILE="$CROSS_COMPILE" allnoconfig &&
		"$TREE/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
			"$VM_DIR/configs/base.config" "$VM_DIR/configs/$ARCH.config" \
			"$VM_DIR/configs/main.config" \
			"$REPO/tools/testing/selftests/rust_dma_heap/config" &&
		sed -i "s/^CONFIG_RUST_DMA_HEAP=.*/CONFIG_RUST_DMA_HEAP=$1/" "$out/.config" &&
		make -C "$TREE" O="$out" ARCH="$ARCH" CROSS_COMPILE="$CROSS_COMPILE" olddefconfig &&
		grep -qx "CONFIG_RUST_DMA_HEAP=$1" "$out/.config" &&
		grep -qx "CONFIG_RUST_DMA_HEAP_CMA=y" "$out/.config" &&
		grep -qx "CONFIG_RUST_DMA_HEAP_SYSTEM_UNCACHED=y" "$out/.config" &&
		grep -qx "CONFIG_RUST_DMA_HEAP_KUNIT_TEST=y" "$out/.config" &&
		make -C "$TREE" O="$out" ARCH="$ARCH" CROSS_COMPILE="$CROSS_COMPILE" -j"$(nproc)" \
			prepare &&
		make -C "$TREE" O="$out" ARCH="$ARCH" CROSS_COMPILE="$CROSS_COMPILE" -j"$(nproc)" \
			drivers/dma-buf/rust-dma-heap/ &&
		if [ "$1" = y ]; then
			# Linked in: the module's initcall is a defined symbol.
			test -f "$out/drivers/dma-buf/rust-dma-heap/built-in.a" &&
				(cd "$out/drivers/dma-buf/rust-dma-heap" && "${CROSS_COMPILE}nm" built-in.a) \
				>"$out/rdh-symbols.txt" 2>&1 &&
				grep -q " T __rust_dma_heap_init" "$out/rdh-symbols.txt"
		else
			test -f "$out/drivers/dma-buf/rust-dma-heap/rust_dma_heap.o"
		fi
}

echo "### RDH-BEGIN intree"
echo "TAP version 13"
echo "1..3"
W=$CACHE/run/$ARCH
mkdir -p "$W"
if prepare_tree >"$W/intree-tree.log" 2>&1; then
	echo "ok 1 hook drivers/dma-buf (one source, one obj- line)"
else
	echo "not ok 1 hook drivers/dma-buf (one source, one obj- line)"
	sed 's/^/# /' "$W/intree-tree.log" | tail -n 20
fi
for v in m y; do
	n=$([ $v = m ] && echo 2 || echo 3)
	if build $v >"$W/intree-$v.log" 2>&1; then
		echo "ok $n in-tree build, CONFIG_RUST_DMA_HEAP=$v"
	else
		echo "not ok $n in-tree build, CONFIG_RUST_DMA_HEAP=$v"
		grep -E 'error|Error|warning' "$W/intree-$v.log" | sed 's/^/# /' | head -n 30
	fi
done
echo "### RDH-END intree rc=0"
echo "### RDH-DONE"
