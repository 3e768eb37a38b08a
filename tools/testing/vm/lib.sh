# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the rust-dma-heap test bench. Sourced, not executed.

# Paths. The repository root is two levels above this file's directory.
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VM_DIR/../../.." && pwd)
SHARED=${SHARED:-$REPO/../shared}
CACHE=${RDH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust-dma-heap}
ARCH=${ARCH:-arm64}
KVER=7.3.4

case "$ARCH" in
arm64)
	CROSS_COMPILE=${CROSS_COMPILE:-aarch64-linux-gnu-}
	QEMU=qemu-system-aarch64
	KIMAGE=arch/arm64/boot/Image
	CONSOLE=ttyAMA0
	RUST_TARGET=aarch64-unknown-linux-gnu
	;;
x86_64)
	CROSS_COMPILE=${CROSS_COMPILE:-}
	QEMU=qemu-system-x86_64
	KIMAGE=arch/x86/boot/bzImage
	CONSOLE=ttyS0
	RUST_TARGET=x86_64-unknown-linux-gnu
	;;
*)
	echo "unsupported ARCH=$ARCH (arm64 or x86_64)" >&2
	exit 2
	;;
esac
export ARCH CROSS_COMPILE
# One LLVM: clang 22 matches rustc 1.95's LLVM, which cross-language
# inlining (CONFIG_RUST_INLINE_HELPERS) and LTO need; bindgen's libclang too.
LLVM_VER=22
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-$LLVM_VER/lib}
export PATH="$HOME/.cargo/bin:$PATH"

# Extra make arguments of a kernel variant. The main kernel is gcc-built,
# as distributions build theirs. The upstream kernel is Android-shaped
# (clang, ThinLTO, kCFI, shadow call stacks, inlined helpers; see
# configs/upstream.config) and the debug kernel needs clang for Rust with
# KASAN: both use the clang whose LLVM is rustc's. A kernel's modules are
# built with its compiler.
variant_llvm() {
	case "$1" in
	*debug* | *upstream*) echo "LLVM=-$LLVM_VER" ;;
	esac
}

T0=${T0:-$(date +%s)}
export T0

elapsed() {
	local s=$(($(date +%s) - T0))
	printf '%d:%02d' $((s / 60)) $((s % 60))
}

log() {
	printf '[%s] %s\n' "$(elapsed)" "$*" >&2
}

die() {
	printf '[%s] error: %s\n' "$(elapsed)" "$*" >&2
	exit 1
}

# step NAME LOGFILE CMD...: run a long command with its output in LOGFILE,
# printing the step name, a heartbeat with the log's last line every 30 s,
# and the time it took. On failure, show the tail of the log.
step() {
	local name=$1 logf=$2 start rc ticker
	shift 2
	start=$(date +%s)
	log "==> $name"
	mkdir -p "$(dirname "$logf")"
	(
		while sleep 30 >/dev/null 2>&1 </dev/null; do
			printf '[%s]     ... %s: %s\n' "$(elapsed)" "$name" \
				"$(tail -n 1 "$logf" 2>/dev/null | cut -c1-100)" >&2
		done
	) &
	ticker=$!
	rc=0
	"$@" >"$logf" 2>&1 || rc=$?
	kill "$ticker" 2>/dev/null || true
	wait "$ticker" 2>/dev/null || true
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$logf" >&2
		die "$name failed (rc=$rc, full log: $logf)"
	fi
	log "    $name done in $(($(date +%s) - start))s"
}
