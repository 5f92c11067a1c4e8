/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp_fifo - global FIFO, the baseline every other policy is compared to.
 *
 * A waking task goes straight to an idle CPU when there is one; otherwise it
 * joins one shared FIFO queue that every CPU pulls from. No priorities, no
 * weights: nice levels are ignored, so CPU hogs can delay interactive tasks by
 * up to (queue length x slice).
 */
#include "schedcp.bpf.h"

const volatile u64 slice_us = 20000;	/* time slice; clamped to 0.1-100 ms */

#define SHARED_DSQ 0

s32 BPF_STRUCT_OPS(fifo_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		schedcp_dispatch(p, SCX_DSQ_LOCAL, slice_ns(slice_us), 0);
	return cpu;
}

void BPF_STRUCT_OPS(fifo_enqueue, struct task_struct *p, u64 enq_flags)
{
	schedcp_dispatch(p, SHARED_DSQ, slice_ns(slice_us), enq_flags);
}

void BPF_STRUCT_OPS(fifo_dispatch, s32 cpu, struct task_struct *prev)
{
	schedcp_consume(SHARED_DSQ);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(fifo_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_OPS(fifo,
	    .select_cpu	= (void *)fifo_select_cpu,
	    .enqueue	= (void *)fifo_enqueue,
	    .dispatch	= (void *)fifo_dispatch,
	    .init	= (void *)fifo_init);
