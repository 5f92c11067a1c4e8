"""Generated schedulers for the scripted Claude scenario: the first forgets a task on one path
of ops.enqueue (the static stage refuses it), the second is the fix."""

FIXED = """\
/* gen: shared FIFO with an idle-CPU fast path */
#include "schedcp.bpf.h"

const volatile u64 slice_us = 10000;

#define Q 0

s32 BPF_STRUCT_OPS(gen_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
    bool is_idle = false;
    s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

    if (is_idle)
        schedcp_dispatch(p, SCX_DSQ_LOCAL, slice_ns(slice_us), 0);
    return cpu;
}

void BPF_STRUCT_OPS(gen_enqueue, struct task_struct *p, u64 enq_flags)
{
    schedcp_dispatch(p, Q, slice_ns(slice_us), enq_flags);
}

void BPF_STRUCT_OPS(gen_dispatch, s32 cpu, struct task_struct *prev)
{
    schedcp_consume(Q);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(gen_init)
{
    return scx_bpf_create_dsq(Q, -1);
}

SCHEDCP_OPS(gen,
        .select_cpu    = (void *)gen_select_cpu,
        .enqueue    = (void *)gen_enqueue,
        .dispatch    = (void *)gen_dispatch,
        .init    = (void *)gen_init);
"""

BROKEN = FIXED.replace(
    "    schedcp_dispatch(p, Q, slice_ns(slice_us), enq_flags);\n}",
    "    if (p->scx.weight < 100)\n        return;  /* forgets low-weight tasks */\n"
    "    schedcp_dispatch(p, Q, slice_ns(slice_us), enq_flags);\n}")
assert BROKEN != FIXED
