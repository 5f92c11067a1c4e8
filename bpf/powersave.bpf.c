/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp_powersave - pack light load onto a few CPUs so the rest stay idle.
 *
 * CPUs 0..active_cpus-1 form the active set. A waking task takes an idle
 * active CPU if there is one and otherwise queues for the active set; the
 * other CPUs stay in deep idle and pull from the queue only when more than
 * spill_threshold tasks are waiting. Tasks pinned to a subset of CPUs (per-CPU
 * kthreads, taskset) bypass packing via the global queue so they always run.
 * Saves power on light, bursty load; costs latency and throughput under load.
 */
#include "schedcp.bpf.h"

const volatile u32 active_cpus = 1;		/* size of the active set, 1-16 */
const volatile u32 spill_threshold = 4;		/* queued tasks before other CPUs help */
const volatile u64 slice_us = 5000;		/* slice; short: waking tasks queue on few CPUs */

#define SHARED_DSQ	0
#define MAX_ACTIVE	16	/* bound of the active set (keeps verification cheap) */

static bool spilling(void)
{
	return scx_bpf_dsq_nr_queued(SHARED_DSQ) > spill_threshold;
}

static u32 nr_active(void)
{
	u32 n = scx_bpf_nr_cpu_ids();

	u32 want = clamp_u64(active_cpus, 1, MAX_ACTIVE);

	return want < n ? want : n;
}

s32 BPF_STRUCT_OPS(powersave_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu, first = -1;
	u32 i, n = nr_active();

	for (i = 0; i < MAX_ACTIVE && i < n; i++) {
		if (!bpf_cpumask_test_cpu(i, p->cpus_ptr))
			continue;
		if (first < 0)
			first = i;
		if (scx_bpf_test_and_clear_cpu_idle(i)) {
			schedcp_dispatch(p, SCX_DSQ_LOCAL, slice_ns(slice_us), 0);
			return i;
		}
	}
	if (first < 0 || spilling()) {
		cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
		if (is_idle)
			schedcp_dispatch(p, SCX_DSQ_LOCAL, slice_ns(slice_us), 0);
		return cpu;
	}
	return first;	/* queue and wake (if idle) an active CPU */
}

void BPF_STRUCT_OPS(powersave_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu;

	/* Pinned tasks: every CPU drains the global queue of what it may run. */
	if (p->nr_cpus_allowed < scx_bpf_nr_cpu_ids()) {
		schedcp_dispatch(p, SCX_DSQ_GLOBAL, slice_ns(slice_us), enq_flags);
		return;
	}
	schedcp_dispatch(p, SHARED_DSQ, slice_ns(slice_us), enq_flags);
	if (spilling()) {
		cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
		if (cpu >= 0)
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
}

void BPF_STRUCT_OPS(powersave_dispatch, s32 cpu, struct task_struct *prev)
{
	if (cpu < nr_active() || spilling())
		schedcp_consume(SHARED_DSQ);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(powersave_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_OPS(powersave,
	    .select_cpu	= (void *)powersave_select_cpu,
	    .enqueue	= (void *)powersave_enqueue,
	    .dispatch	= (void *)powersave_dispatch,
	    .init	= (void *)powersave_init);
