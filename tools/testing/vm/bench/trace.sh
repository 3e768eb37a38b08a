#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the guest of "vmtest bench --trace": a function-graph profile of a few
# calls of every benchmarked operation on both implementations (the C
# functions under the ioctls; Rust functions are not traced, their C
# callees are). Arguments: those of dma-heap-bench.
T=/sys/kernel/debug/tracing
echo 0 >$T/tracing_on
echo function_graph >$T/current_tracer
echo funcgraph-tail >$T/trace_options
echo 20000 >$T/buffer_size_kb
for f in importer_ioctl drm_ioctl __arm64_sys_ioctl __arm64_sys_close; do
	echo $f >>$T/set_graph_function
done
echo 1 >$T/tracing_on
RDH_BENCH_ITERS=2 dma-heap-bench "$@"
rc=$?
echo 0 >$T/tracing_on
echo "### RDH-TRACE-BEGIN"
cat $T/trace
echo "### RDH-TRACE-END"
exit $rc
