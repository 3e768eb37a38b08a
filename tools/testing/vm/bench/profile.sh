#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the guest of "vmtest bench --profile": the modules' text symbols (for
# the host to name the addresses insn-profile.c counted), then the benchmark
# with its calls framed by markers. Arguments: those of dma-heap-bench.
echo "### RDH-KALLSYMS-BEGIN"
grep '^[0-9a-f]* [tT] .*\[' /proc/kallsyms
echo "### RDH-KALLSYMS-END"
RDH_BENCH_MARKS=1 RDH_BENCH_ITERS=${RDH_BENCH_ITERS:-50} dma-heap-bench "$@"
