#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the test bench needs on a Debian 12 (bookworm) machine.
# Idempotent: a second run installs nothing and takes a few seconds.
set -euo pipefail
. "$(dirname "$0")/../tools/testing/vm/lib.sh"

BINDGEN_VERSION=0.73.0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# What to install, and every command that must run afterwards: ./requirements.
REQ=$REPO/scripts/requirements
req_rows() { # provider-kind: the names after "kind:" in the provider column
	awk -v k="$1:" '!/^#/ && NF == 2 && index($2, k) == 1 { print substr($2, length(k) + 1) }' "$REQ" |
		sort -u
}
PKGS=$(req_rows apt)
# QEMU comes from bookworm-backports: the image's qemu-utils is the
# backports build, and bookworm's own qemu-system conflicts with it.
QEMU_PKGS=$(req_rows bpo)

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || echo "$p"
	done
}

add_suite() { # name suite [uri]
	local f=/etc/apt/sources.list.d/rust-dma-heap-$1.sources
	[ -f "$f" ] && return 1
	log "adding apt suite $2 (pinned low: nothing upgrades from it unasked)"
	$SUDO tee "$f" >/dev/null <<EOT
Types: deb
URIs: ${3:-http://deb.debian.org/debian}
Suites: $2
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
	$SUDO tee "/etc/apt/preferences.d/rust-dma-heap-$1" >/dev/null <<EOT
Package: *
Pin: release n=$2
Pin-Priority: 100
EOT
	return 0
}

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return
	step "apt-get update" "$CACHE/logs/apt-update.log" $SUDO apt-get update
	apt_updated=1
}

apt_install() { # [-t suite] pkgs...
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
		--no-install-recommends "$@"
}

need=$(missing_pkgs $PKGS)
need_qemu=$(missing_pkgs $QEMU_PKGS)
if [ -n "$need$need_qemu" ]; then
	if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		add_suite bookworm-backports bookworm-backports || true
	fi
	# clang/lld/llvm 22 (rustc's LLVM) are in bookworm's security suite,
	# which a Debian install normally lists; where it is missing it is
	# added pinned low like the others (nothing else offers clang-22, so
	# it still installs).
	if ! grep -rqs 'bookworm-security' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		add_suite bookworm-security bookworm-security http://deb.debian.org/debian-security || true
	fi
	apt_update
	[ -z "$need" ] || step "apt-get install $(echo $need)" "$CACHE/logs/apt.log" apt_install $need
	[ -z "$need_qemu" ] || step "apt-get install $(echo $need_qemu)" \
		"$CACHE/logs/apt-qemu.log" apt_install -t bookworm-backports $need_qemu
fi

# Rust: lints need rustfmt and clippy.
for c in $(req_rows rustup); do
	if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
		step "rustup component add $c" "$CACHE/logs/rustup-$c.log" rustup component add "$c"
	fi
done
# Rust: the kernel needs the standard library's source to build core.
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	step "rustup component add rust-src" "$CACHE/logs/rustup.log" rustup component add rust-src
fi
# The guest's Rust programs: the standard library of its target.
if ! rustup target list --installed 2>/dev/null | grep -qx "$RUST_TARGET"; then
	step "rustup target add $RUST_TARGET" "$CACHE/logs/rustup-target.log" \
		rustup target add "$RUST_TARGET"
fi
# The benchmark report's plot; the documentation lint.
MATPLOTLIB_VERSION=3.11.2
DOCUTILS_VERSION=0.19
if ! python3 -c 'import matplotlib, docutils' 2>/dev/null; then
	step "pip install matplotlib $MATPLOTLIB_VERSION docutils $DOCUTILS_VERSION" \
		"$CACHE/logs/pip.log" python3 -m pip install --disable-pip-version-check \
		"matplotlib==$MATPLOTLIB_VERSION" "docutils==$DOCUTILS_VERSION"
fi

if ! bindgen --version 2>/dev/null | grep -qx "bindgen $BINDGEN_VERSION"; then
	step "cargo install bindgen-cli $BINDGEN_VERSION" "$CACHE/logs/bindgen.log" \
		cargo install bindgen-cli --version "$BINDGEN_VERSION" --locked
fi

# Static arm64 busybox for the initramfs: ../shared when present, else Debian.
bb_dir=$CACHE/busybox-$ARCH
if [ ! -x "$bb_dir/busybox" ]; then
	deb=
	if [ "$ARCH" = arm64 ] && [ -f "$SHARED/SHA256SUMS" ]; then
		(cd "$SHARED" && sha256sum --quiet -c --ignore-missing SHA256SUMS) ||
			die "checksum mismatch in $SHARED"
		for f in "$SHARED"/debs/busybox-static_*_arm64.deb; do
			[ -f "$f" ] && deb=$f
		done
	fi
	if [ -z "$deb" ]; then
		darch=$ARCH
		[ "$ARCH" = x86_64 ] && darch=amd64
		if [ "$darch" != "$(dpkg --print-architecture)" ] &&
			! dpkg --print-foreign-architectures | grep -qx "$darch"; then
			$SUDO dpkg --add-architecture "$darch"
			apt_updated=
		fi
		apt_update
		mkdir -p "$CACHE/debs"
		(cd "$CACHE/debs" && apt-get download "busybox-static:$darch")
		for f in "$CACHE"/debs/busybox-static_*_"$darch".deb; do
			[ -f "$f" ] && deb=$f
		done
		[ -n "$deb" ] || die "could not download busybox-static:$darch"
	fi
	rm -rf "$bb_dir"
	mkdir -p "$bb_dir"
	dpkg-deb -x "$deb" "$bb_dir/pkg"
	# /usr/bin (merged /usr, 1.38) or /bin (bookworm's 1.35).
	bb=
	for f in "$bb_dir"/pkg/usr/bin/busybox "$bb_dir"/pkg/bin/busybox; do
		[ -x "$f" ] && bb=$f && break
	done
	[ -n "$bb" ] || die "no busybox binary in $deb"
	cp "$bb" "$bb_dir/busybox"
	log "busybox from $(basename "$deb")"
fi

# Kernel source: ../shared's pinned tarball (checksummed) or Debian's
# linux-source-7.3 from trixie-backports.
KSRC_DIR=$CACHE/src/linux-$KVER
if [ -z "${KDIR:-}" ] && [ ! -f "$KSRC_DIR/.rdh-extracted" ]; then
	tarball=$SHARED/kernel/linux-source-$KVER.tar.xz
	if [ -f "$tarball" ]; then
		(cd "$SHARED" && sha256sum --quiet -c --ignore-missing SHA256SUMS) ||
			die "checksum mismatch for $tarball"
	else
		add_suite trixie-backports trixie-backports && apt_updated=
		apt_update
		step "apt-get install linux-source-7.3" "$CACHE/logs/apt-linux-source.log" \
			apt_install -t trixie-backports linux-source-7.3
		tarball=/usr/src/linux-source-7.3.tar.xz
		[ -f "$tarball" ] || die "linux-source-7.3 did not install $tarball"
	fi
	rm -rf "$KSRC_DIR" "$CACHE/src/tmp"
	mkdir -p "$CACHE/src/tmp"
	step "extract $(basename "$tarball")" "$CACHE/logs/extract.log" \
		tar -C "$CACHE/src/tmp" -xf "$tarball"
	mv "$CACHE/src/tmp"/linux-source-* "$KSRC_DIR"
	rmdir "$CACHE/src/tmp"
	grep -q "^SUBLEVEL = ${KVER##*.}$" "$KSRC_DIR/Makefile" ||
		die "$tarball is not Linux $KVER"
	touch "$KSRC_DIR/.rdh-extracted"
fi
# Every command of ./requirements runs now, or set-up stops naming them.
missing=
while read -r cmd _; do
	case "$cmd" in '#'* | - | '') continue ;; esac
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $cmd"
done <"$REQ"
[ -z "$missing" ] || die "set-up finished but these commands are missing:$missing (see $REQ)"
log "set-up complete"
