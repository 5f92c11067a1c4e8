/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp_vtime - weighted fair sharing through one vruntime-ordered queue.
 *
 * Each task's virtual time advances by (CPU time used x 100 / weight), so a
 * nice -5 task (weight ~335) advances about 3x slower than a nice 0 one (100)
 * and gets ~3x the CPU. The task with the smallest vtime runs next. A task that
 * slept may bank at most max_budget_us of vtime credit: enough to win the next
 * wake-up, not enough to monopolise a CPU after a long sleep.
 */
#include "schedcp.bpf.h"

const volatile u64 slice_us = 5000;		/* slice; clamped to 0.1-100 ms */
const volatile u64 max_budget_us = 5000;	/* vtime credit an idle task may bank */

#define SHARED_DSQ 0

static u64 vtime_now;	/* vtime of the most recently started task */

s32 BPF_STRUCT_OPS(vtime_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		schedcp_dispatch(p, SCX_DSQ_LOCAL, slice_ns(slice_us), 0);
	return cpu;
}

void BPF_STRUCT_OPS(vtime_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 budget = clamp_u64(max_budget_us * NSEC_PER_USEC, 0, 10 * SCHEDCP_SLICE_MAX);
	u64 vtime = p->scx.dsq_vtime;

	if (vtime_before(vtime, vtime_now - budget))
		vtime = vtime_now - budget;
	schedcp_dispatch_vtime(p, SHARED_DSQ, slice_ns(slice_us), vtime, enq_flags);
}

void BPF_STRUCT_OPS(vtime_dispatch, s32 cpu, struct task_struct *prev)
{
	schedcp_consume(SHARED_DSQ);
}

void BPF_STRUCT_OPS(vtime_running, struct task_struct *p)
{
	/* Racy across CPUs, but any error is small and temporary. */
	if (vtime_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

void BPF_STRUCT_OPS(vtime_stopping, struct task_struct *p, bool runnable)
{
	u64 slice = slice_ns(slice_us);
	u64 used = p->scx.slice < slice ? slice - p->scx.slice : 0;

	p->scx.dsq_vtime += used * 100 / (p->scx.weight ?: 1);
}

void BPF_STRUCT_OPS(vtime_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(vtime_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_OPS(vtime,
	    .select_cpu	= (void *)vtime_select_cpu,
	    .enqueue	= (void *)vtime_enqueue,
	    .dispatch	= (void *)vtime_dispatch,
	    .running	= (void *)vtime_running,
	    .stopping	= (void *)vtime_stopping,
	    .enable	= (void *)vtime_enable,
	    .init	= (void *)vtime_init);
