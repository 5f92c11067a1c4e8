/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A user-written scheduler (the system test verifies and deploys it as new code):
 * the shipped FIFO, renamed.
 */
#include "schedcp.bpf.h"

const volatile u64 slice_us = 20000;	/* time slice; clamped to 0.1-100 ms */

#define SHARED_DSQ 0

s32 BPF_STRUCT_OPS(user_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		schedcp_dispatch(p, SCX_DSQ_LOCAL, slice_ns(slice_us), 0);
	return cpu;
}

void BPF_STRUCT_OPS(user_enqueue, struct task_struct *p, u64 enq_flags)
{
	schedcp_dispatch(p, SHARED_DSQ, slice_ns(slice_us), enq_flags);
}

void BPF_STRUCT_OPS(user_dispatch, s32 cpu, struct task_struct *prev)
{
	schedcp_consume(SHARED_DSQ);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(user_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_OPS(userfifo,
	    .select_cpu	= (void *)user_select_cpu,
	    .enqueue	= (void *)user_enqueue,
	    .dispatch	= (void *)user_dispatch,
	    .init	= (void *)user_init);
