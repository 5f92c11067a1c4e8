/* ---
name = "cpu_packing"
summary = "Pack work onto the first N CPUs and wake the others only when the queue overflows."
description = """
Keeps light load on a small active set of CPUs (0..n-1) so the remaining cores stay in deep
idle states and the package draws less power: a waking task takes an idle active CPU, else
queues for the active set, and CPUs outside it pull from the queue only while more than a
spill threshold of tasks wait. Tasks pinned to fewer CPUs bypass packing so they always run.
For laptops on battery and mostly idle machines; costs latency and throughput under load.
The core of the powersave policy.
"""
goals = ["battery"]
workloads = ["idle", "interactive"]
compose = """
Create one shared DSQ in .init. .select_cpu returns cpu_packing_select(p, prev_cpu,
wake_flags, dsq, n, spill, slice). In .enqueue: send pinned tasks
(p->nr_cpus_allowed < scx_bpf_nr_cpu_ids()) to SCX_DSQ_GLOBAL, others to dsq, then call
cpu_packing_kick(p, dsq, spill). In .dispatch consume dsq only if
cpu_packing_may_consume(cpu, dsq, n, spill). n and spill are usually tunables.
"""
--- */

#define CPU_PACKING_MAX_ACTIVE	16	/* bound of the active set (keeps verification cheap) */

static __always_inline bool cpu_packing_spilling(u64 dsq, u32 spill)
{
	return scx_bpf_dsq_nr_queued(dsq) > spill;
}

static __always_inline u32 cpu_packing_nr_active(u32 want)
{
	u32 n = scx_bpf_nr_cpu_ids();

	want = clamp_u64(want, 1, CPU_PACKING_MAX_ACTIVE);
	return want < n ? want : n;
}

/* .select_cpu: an idle active CPU (task placed), else an active CPU to queue for. */
static __always_inline s32 cpu_packing_select(struct task_struct *p, s32 prev_cpu,
					      u64 wake_flags, u64 dsq, u32 want, u32 spill,
					      u64 slice)
{
	bool is_idle = false;
	s32 cpu, first = -1;
	u32 i, n = cpu_packing_nr_active(want);

	for (i = 0; i < CPU_PACKING_MAX_ACTIVE && i < n; i++) {
		if (!bpf_cpumask_test_cpu(i, p->cpus_ptr))
			continue;
		if (first < 0)
			first = i;
		if (scx_bpf_test_and_clear_cpu_idle(i)) {
			schedcp_dispatch(p, SCX_DSQ_LOCAL, slice, 0);
			return i;
		}
	}
	if (first < 0 || cpu_packing_spilling(dsq, spill)) {
		cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
		if (is_idle)
			schedcp_dispatch(p, SCX_DSQ_LOCAL, slice, 0);
		return cpu;
	}
	return first;
}

/* After queueing on @dsq: wake an idle CPU outside the set if the queue overflows. */
static __always_inline void cpu_packing_kick(struct task_struct *p, u64 dsq, u32 spill)
{
	s32 cpu;

	if (cpu_packing_spilling(dsq, spill) && (cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0)) >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

static __always_inline bool cpu_packing_may_consume(s32 cpu, u64 dsq, u32 want, u32 spill)
{
	return cpu < cpu_packing_nr_active(want) || cpu_packing_spilling(dsq, spill);
}
