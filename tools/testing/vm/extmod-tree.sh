#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# What a distribution ships to build modules for its kernel, made from a
# kernel build: scripts/package/install-extmod-build's tree (Debian's
# linux-headers, Fedora's kernel-devel, Arch's linux-headers) plus the Rust
# metadata and procedural macros the kernel's crates compiled to (what
# Ubuntu's linux-lib-rust package adds; 7.3's install-extmod-build has no
# Rust). The module then builds with "make -C DEST M=...", with no kernel
# source tree at hand. Prints DEST on stdout.
#
# Usage: extmod-tree.sh VARIANT DEST   (the variant's kernel build, cached)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VARIANT=$1
DEST=$2
KBUILD=$("$VM_DIR/build-kernel.sh" "$VARIANT")
KSRC=$CACHE/src/linux-$KVER
read -r -a llvm <<<"$(variant_llvm "$VARIANT")"

stamp=$(cat "$KBUILD/.rdh-built")
if [ -f "$DEST/.rdh-extmod" ] && [ "$(cat "$DEST/.rdh-extmod")" = "$stamp" ]; then
	echo "$DEST"
	exit 0
fi
rm -rf "$DEST"
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
# CC=HOSTCC: a cross-built kernel's tree keeps this host's build tools
# (the script would rebuild them for the target, as a package for the
# target's own machine has them).
make -s -C "$KSRC" O="$KBUILD" ARCH="$ARCH" CROSS_COMPILE="$CROSS_COMPILE" "${llvm[@]}" \
	run-command KBUILD_RUN_COMMAND="CC=\$(HOSTCC) \$(srctree)/scripts/package/install-extmod-build $DEST" >&2
# The Rust crates' metadata, the procedural macros and, with
# CONFIG_RUST_INLINE_HELPERS, the helpers' bitcode modules link in.
(cd "$KBUILD" && find rust -maxdepth 2 \( -name '*.rmeta' -o -name '*.so' -o -name 'helpers_module.bc' \) -print |
	tar -c -f - -T -) | tar -x -f - -C "$DEST"
# No kernel source beside it: nothing of mm/, drivers/ or the rest.
[ ! -e "$DEST/mm" ] || die "extmod tree has mm/"
echo "$stamp" >"$DEST/.rdh-extmod"
echo "$DEST"
