/* ---
name = "expected_runtime"
summary = "Expected-runtime hints per process, filled by the helper, to rank jobs by length."
description = """
A hash map from process id (tgid) to its expected total CPU time in nanoseconds. The helper
fills it from the workload profile (a job's length from an earlier run, a size hint), never
from process names, when it loads the scheduler; the map must be called expected_runtime.
A scheduler can then order batch work longest job first (to shorten the makespan of a batch
with a long tail) or shortest first (to cut mean completion time). A job that overran its
hint still counts as at least as long as the CPU time it has used.
"""
goals = ["throughput"]
workloads = ["batch", "build"]
compose = """
expected_runtime_ns(p, used_ns) returns max(hint, used_ns + 1), or 0 when @p has no hint;
pass runtime_tracker_get(p)->runtime as used_ns. Turn the length into a queue key, e.g.
now - min(len, cap) with schedcp_dispatch_vtime for longest-first with bounded waiting.
"""
--- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);	/* tgid */
	__type(value, u64);	/* expected total runtime, ns */
} expected_runtime SEC(".maps");

static __always_inline u64 expected_runtime_ns(struct task_struct *p, u64 used_ns)
{
	u32 tgid = p->tgid;
	u64 *hint = bpf_map_lookup_elem(&expected_runtime, &tgid);

	if (!hint)
		return 0;
	return *hint > used_ns ? *hint : used_ns + 1;
}
