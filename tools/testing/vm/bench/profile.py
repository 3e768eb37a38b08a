#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Instructions per call, ours against upstream's, from "vmtest bench --profile".

Usage: profile.py insn-profile.txt console.log vmlinux [--top N]

insn-profile.txt is what the TCG plugin (insn-profile.c) wrote: per window
(1 + 2 * op + implementation, 0 upstream, 1 ours) the guest kernel's
translation blocks executed and how often. The console has the modules'
symbols (profile.sh); vmlinux gives the kernel's (no KASLR in the test
kernels). Per op: the median call's instructions, lookups, exclusives,
system register accesses, barriers and distinct 4 KiB code and data pages
(what a cold call must fill QEMU's software TLB with again); the mean
call's instructions, blocks executed, distinct blocks and code pages of
all calls, then the functions where the two differ most.
"""
import bisect
import collections
import re
import statistics
import subprocess
import sys

OPS = ["alloc", "realloc", "first_alloc", "alloc_mmap_touch", "mmap_touch",
       "import_vgem", "attach_map", "sync"]
IMPL = ["upstream", "rust"]


def demangle(names):
    """c++filt (binutils knows Rust's v0 mangling), crate hashes removed."""
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return [re.sub(r"\[[0-9a-f]{16}\]", "", n) for n in out]


def symbols(console, vmlinux):
    """Sorted (address, name) of kernel and module text."""
    syms = []
    nm = subprocess.run(["aarch64-linux-gnu-nm", "-n", vmlinux], capture_output=True,
                        text=True, check=True).stdout
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "tTwW":
            syms.append((int(f[0], 16), f[2]))
    inside = False
    with open(console, errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line.endswith("### RDH-KALLSYMS-BEGIN"):
                inside = True
            elif line.endswith("### RDH-KALLSYMS-END"):
                inside = False
            elif inside:
                f = line.split()
                if len(f) >= 4:
                    syms.append((int(f[0], 16), f[2] + " " + f[3]))
    syms.sort()
    names = demangle([n.split(" ")[0] for _, n in syms])
    syms = [(a, d + (n[n.index(" "):] if " " in n else "")) for (a, n), d in zip(syms, names)]
    return [a for a, _ in syms], [n for _, n in syms]


def windows(seen):
    """(op name, [upstream window, rust window]) of the ops both ran."""
    for op, name in enumerate(OPS):
        w = [1 + 2 * op + i for i in range(2)]
        if all(seen.get(x) for x in w):
            yield name, w


def main():
    prof, console, vmlinux = sys.argv[1:4]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    addrs, names = symbols(console, vmlinux)
    calls = {}
    percall = collections.defaultdict(list)
    # window -> function -> [insns, lookups, exclusives]
    funcs = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0, 0]))
    totals = collections.defaultdict(lambda: [0, 0, set(), set(), 0, 0, 0, 0])
    with open(prof) as fh:
        for line in fh:
            f = line.split()
            if f[0] == "W":
                calls[int(f[1])] = int(f[2])
                continue
            if f[0] == "C":
                percall[int(f[1])].append([int(x) for x in f[2:9]])
                continue
            w, vaddr, insns, count = int(f[1]), int(f[2], 16), int(f[3]), int(f[4])
            lookups, excl, sysreg, bar = (int(x) for x in f[5:9])
            i = bisect.bisect_right(addrs, vaddr) - 1
            name = names[i] if i >= 0 else hex(vaddr)
            funcs[w][name][0] += insns * count
            t = totals[w]
            t[0] += insns * count
            t[1] += count
            t[2].add(vaddr)
            t[3].add(vaddr >> 12)
            t[4] += lookups
            t[5] += excl * count
            t[6] += sysreg * count
            t[7] += bar * count
            funcs[w][name][1] += lookups
            funcs[w][name][2] += excl * count
    print("median per call: instructions, block entries by lookup, exclusives, "
          "system register accesses, barriers, code pages, data pages (upstream / rust)")
    for name, w in windows(percall):
        cols = len(percall[w[0]][0])
        med = [[statistics.median(c[k] for c in percall[x]) for k in range(cols)] for x in w]
        print(f"{name:<17}" + "".join(
            f" {med[0][k]:>6.0f} {med[1][k]:>6.0f} ({med[1][k] / max(1, med[0][k]):.2f})"
            for k in range(cols)))
    print("\nmean per call (interrupts included)")
    print("per call    instructions       blocks run    distinct blocks   code pages")
    print("op          upstream  rust     upstream rust upstream rust     upstream rust")
    for name, w in windows(calls):
        n = [calls[x] for x in w]
        t = [totals[x] for x in w]
        print(f"{name:<11} {t[0][0] // n[0]:>8} {t[1][0] // n[1]:>6} "
              f"({t[1][0] * n[0] / max(1, t[0][0] * n[1]):.2f}) "
              f"{t[0][1] // n[0]:>6} {t[1][1] // n[1]:>5} "
              f"{len(t[0][2]):>8} {len(t[1][2]):>5} {len(t[0][3]):>11} {len(t[1][3]):>5}")
    print("\nper call    lookups          exclusives   sysreg       barriers")
    print("op          upstream rust    upstream rust upstream rust upstream rust")
    for name, w in windows(calls):
        n = [calls[x] for x in w]
        t = [totals[x] for x in w]
        print(f"{name:<11} " + "  ".join(f"{t[0][k] / n[0]:>7.0f} {t[1][k] / n[1]:>5.0f}"
                                         for k in (4, 5, 6, 7)))
    for name, w in windows(calls):
        n = [calls[x] for x in w]
        print(f"\n## {name}: per call by function, upstream/rust: instructions, "
              f"lookups, exclusives; largest differences (in lookups) first")
        keys = set(funcs[w[0]]) | set(funcs[w[1]])
        rows = []
        for k in keys:
            u = [x / n[0] for x in funcs[w[0]][k]] if k in funcs[w[0]] else [0, 0, 0]
            r = [x / n[1] for x in funcs[w[1]][k]] if k in funcs[w[1]] else [0, 0, 0]
            rows.append((abs(r[1] - u[1]) + abs(r[0] - u[0]) / 1000, u, r, k))
        rows.sort(key=lambda x: x[0], reverse=True)
        for _, u, r, k in rows[:top]:
            print(f"{u[0]:6.0f} {r[0]:6.0f}  {u[1]:5.1f} {r[1]:5.1f}  {u[2]:4.1f} {r[2]:4.1f}  {k[:100]}")


if __name__ == "__main__":
    main()
