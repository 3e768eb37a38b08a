#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn dma-heap-bench output (a guest console log) into a report.

Reads the "# RDH-BENCH heap,op,size_bytes,upstream_ns,rust_ns,n" lines the
benchmark printed and writes, into OUTDIR:

  bench.csv  heap,op,size_bytes,upstream_ns,rust_ns,ratio (medians;
             ratio = rust / upstream; for sg_entries the two columns are
             entry counts, for cpu/memset both are the memset time)
  bench.md   the same as a markdown table, sizes in KiB/MiB, times in us
  bench.png  ratio per op and size, one panel per heap kind

With several logs (one per boot), each row is the median over the boots:
times are the medians of each boot's medians, the ratio the median of the
boots' ratios (a ratio compares two heaps measured in one boot), and
bench.md adds each boot's ratio.

Usage: report.py CONSOLE_LOG... OUTDIR [--title TEXT]
"""

import argparse
import csv
import os
import re
import sys

LINE = re.compile(r"# RDH-BENCH ([^,\s]+),([^,\s]+),(\d+),(\d+),(\d+),(\d+)")
OPS = ["alloc", "realloc", "first_alloc", "alloc_mmap_touch", "mmap_touch", "import_vgem", "attach_map", "sync", "sg_entries"]


def human_size(n):
    if n >= 1 << 20:
        return f"{n >> 20} MiB"
    return f"{n >> 10} KiB"


def parse(path):
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.search(line)
            if not m:
                continue
            heap, op, size, up, rust, _n = m.groups()
            up, rust = int(up), int(rust)
            ratio = rust / up if up else float("nan")
            rows.append((heap, op, int(size), up, rust, ratio))
    return rows


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def combine(boots):
    """One row per (heap, op, size) of the first boot: medians over boots."""
    rows, per_boot = [], {}
    keyed = [{(h, o, sz): (u, r, q) for h, o, sz, u, r, q in b} for b in boots]
    for heap, op, size, *_ in boots[0]:
        vals = [k[(heap, op, size)] for k in keyed if (heap, op, size) in k]
        up = median([v[0] for v in vals])
        rust = median([v[1] for v in vals])
        ratio = median([v[2] for v in vals])
        rows.append((heap, op, size, round(up), round(rust), ratio))
        per_boot[(heap, op, size)] = [v[2] for v in vals]
    return rows, per_boot


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["heap", "op", "size_bytes", "upstream_ns", "rust_ns", "ratio"])
        for heap, op, size, up, rust, ratio in rows:
            w.writerow([heap, op, size, up, rust, f"{ratio:.2f}"])


def write_md(rows, path, title, per_boot=None):
    floor = {size: up for heap, op, size, up, _r, _q in rows if (heap, op) == ("cpu", "memset")}
    boots = len(next(iter(per_boot.values()))) if per_boot else 1
    out = [f"# {title}", "",
           "Medians; ratio = rust / upstream (below 1.00: ours is faster).",
           "`sg_entries` are scatterlist entry counts, not times; `memset` is",
           "the guest's memset of the same size (the zeroing floor)."]
    if boots > 1:
        out += [f"Over {boots} boots: times are medians of the boots' medians, the",
                "ratio the median of the boots' ratios (each boot's in the last column)."]
    out += ["", "| heap | op | size | upstream | rust | ratio | memset floor |"
            + (" boots |" if boots > 1 else ""),
            "|---|---|---|---:|---:|---:|---:|" + ("---|" if boots > 1 else "")]
    for heap, op, size, up, rust, ratio in rows:
        if heap == "cpu":
            continue
        if op == "sg_entries":
            u, r = str(up), str(rust)
        else:
            u, r = f"{up / 1000:.1f} us", f"{rust / 1000:.1f} us"
        fl = f"{floor[size] / 1000:.1f} us" if size in floor else ""
        line = f"| {heap} | {op} | {human_size(size)} | {u} | {r} | {ratio:.2f} | {fl} |"
        if boots > 1:
            line += " " + " ".join(f"{q:.2f}" for q in per_boot[(heap, op, size)]) + " |"
        out.append(line)
    out += ["", "| cpu | size | time |", "|---|---|---:|"]
    for heap, op, size, up, _r, _q in rows:
        if (heap, op) == ("cpu", "memset"):
            out.append(f"| memset | {human_size(size)} | {up / 1000:.1f} us |")
        elif heap == "cpu":
            out.append(f"| {op} | {size} B | {up} ns |")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def write_png(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in dict.fromkeys(h for h, *_ in rows) if k != "cpu"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(7 * len(kinds), 4.5), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        sizes = sorted({s for h, _o, s, *_ in rows if h == kind})
        ops = [o for o in OPS if o != "sg_entries" and any(h == kind and op == o for h, op, *_ in rows)]
        width = 0.8 / max(len(ops), 1)
        for i, op in enumerate(ops):
            ys = []
            for s in sizes:
                r = [q for h, o, sz, _u, _r, q in rows if (h, o, sz) == (kind, op, s)]
                ys.append(r[0] if r else 0)
            xs = [j + (i - (len(ops) - 1) / 2) * width for j in range(len(sizes))]
            ax.bar(xs, ys, width, label=op)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([human_size(s) for s in sizes])
        ax.set_ylabel("rust / upstream time (lower is better)")
        ax.set_title(f"{kind} heap")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+", metavar="CONSOLE_LOG... OUTDIR")
    ap.add_argument("--title", default="rust-dma-heap vs upstream C heaps")
    args = ap.parse_args()
    if len(args.paths) < 2:
        ap.error("need at least one console log and the output directory")
    *logs, args.outdir = args.paths
    boots = []
    for log in logs:
        b = parse(log)
        if not b:
            print(f"no RDH-BENCH lines in {log}", file=sys.stderr)
            return 1
        boots.append(b)
    rows, per_boot = combine(boots)
    os.makedirs(args.outdir, exist_ok=True)
    write_csv(rows, os.path.join(args.outdir, "bench.csv"))
    write_md(rows, os.path.join(args.outdir, "bench.md"), args.title, per_boot)
    write_png(rows, os.path.join(args.outdir, "bench.png"), args.title)
    worst = max((r for r in rows if r[0] != "cpu" and r[1] != "sg_entries"), key=lambda r: r[5])
    print(f"{len(rows)} medians -> {args.outdir}/bench.{{csv,md,png}}; "
          f"highest ratio {worst[5]:.2f} ({worst[0]} {worst[1]} {human_size(worst[2])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
