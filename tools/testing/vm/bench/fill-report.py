#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""fill-bench's console logs (one per boot) -> fill.csv and fill.md.

Usage: fill-report.py CONSOLE_LOG... OUT_DIR

fill.csv: every "# RDH-FILL" line, with its boot. fill.md: per source,
size and memory pressure, the medians over the boots of each route's time
and the ratios the benchmark's targets are about: fill / mmap_read (the
upstream route), fill / udmabuf (memfd + udmabuf + O_DIRECT), fill's
throughput against the O_DIRECT floor's, and the page cache's growth.
"""
import csv
import statistics
import sys
from collections import defaultdict

ROUTES = ["fill", "mmap_read", "udmabuf", "floor"]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    logs, out = sys.argv[1:-1], sys.argv[-1]
    rows = []
    for boot, path in enumerate(logs, 1):
        with open(path, errors="replace") as f:
            for line in f:
                line = line.strip().replace("\r", "")
                if not line.startswith("# RDH-FILL "):
                    continue
                src, route, size, ns, growth, pressure = line[len("# RDH-FILL "):].split(",")
                rows.append((boot, src, route, int(size), int(ns), int(growth), int(pressure)))
    if not rows:
        sys.exit("no RDH-FILL lines in " + " ".join(logs))
    with open(f"{out}/fill.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["boot", "source", "route", "size_bytes", "ns", "cache_growth_kb", "pressure"])
        w.writerows(rows)
    t = defaultdict(list)
    g = defaultdict(list)
    for boot, src, route, size, ns, growth, pressure in rows:
        t[(src, size, pressure, route)].append(ns)
        if route == "fill":
            g[(src, size, pressure)].append(growth)
    keys = sorted({(s, z, p) for (s, z, p, _) in t}, key=lambda k: (k[2], k[0], k[1]))
    lines = [
        f"# Fill from a file: {len(logs)} boots, medians",
        "",
        "Times in ms (medians over the boots of each boot's median). `fill`: "
        "RUST_DMA_HEAP_IOCTL_FILL; `mmap_read`: upstream's system heap + mmap + read(); "
        "`udmabuf`: memfd + udmabuf + O_DIRECT read(); `floor`: O_DIRECT read() into "
        "touched anonymous memory. Targets: fill/mmap_read <= 0.33 from 64 MiB up, "
        "fill/udmabuf <= 0.5, fill throughput >= 0.9 x the floor's, page cache growth "
        "< 1 % of the size; under pressure fill/mmap_read <= 0.5.",
        "",
        "| source | size | pressure | fill | mmap_read | udmabuf | floor | fill/mmap_read "
        "| fill/udmabuf | fill vs floor throughput | page cache growth |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for src, size, pressure in keys:
        med = {r: statistics.median(t[(src, size, pressure, r)]) for r in ROUTES
               if t.get((src, size, pressure, r))}
        if any(r not in med or med[r] == 0 for r in ROUTES):
            continue
        growth = statistics.median(g[(src, size, pressure)])
        lines.append(
            f"| {src} | {size >> 20} MiB | {'yes' if pressure else 'no'} "
            + "".join(f"| {med[r] / 1e6:.1f} " for r in ROUTES)
            + f"| {med['fill'] / med['mmap_read']:.2f} | {med['fill'] / med['udmabuf']:.2f} "
            f"| {med['floor'] / med['fill']:.2f} | {growth} KiB ({100 * growth * 1024 / size:.2f} %) |"
        )
    with open(f"{out}/fill.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
