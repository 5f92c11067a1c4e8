/* ---
name = "idle_fastpath"
summary = "Put a waking task straight on an idle CPU, skipping every queue."
description = """
Wake-up placement through the kernel's default idle-CPU search (prefers the previous CPU,
then an idle core, then an idle SMT sibling). When it finds an idle CPU the task is queued
directly on that CPU's local queue, so no shared queue, lock or ordering is involved and the
task starts at once. Nearly every scheduler wants this: it is cheap, keeps cache locality,
and leaves the enqueue path for the contended case. Used by fifo, vtime, ljf and interactive.
"""
goals = ["responsiveness", "throughput", "balanced"]
workloads = ["interactive", "build", "batch", "server"]
compose = """
Return idle_fastpath_select(p, prev_cpu, wake_flags, slice) from .select_cpu. Tasks it did not
place reach .enqueue as usual; order them there with any queueing primitive.
"""
--- */

/* Call from .select_cpu. When the returned CPU is idle, @p is already queued on it. */
static __always_inline s32 idle_fastpath_select(struct task_struct *p, s32 prev_cpu,
						u64 wake_flags, u64 slice)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		schedcp_dispatch(p, SCX_DSQ_LOCAL, slice, 0);
	return cpu;
}
