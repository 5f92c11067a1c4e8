"""The system prompts of the model brains (Claude, OpenAI-compatible), kept apart from the
conversation code so the scheduler skeleton they teach can be tested: it must pass the
verifier's host stages, or the model starts from a broken example."""

from __future__ import annotations

# A complete, minimal scheduler in the style of bpf/*.bpf.c: the wrappers of schedcp.bpf.h,
# one custom DSQ created in .init and consumed in .dispatch, every enqueue path dispatching.
SKELETON = """\
#include "schedcp.bpf.h"

const volatile u64 slice_us = 5000;	/* tunable, set at load time */

#define MAIN_DSQ 0

s32 BPF_STRUCT_OPS(mini_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)	/* an idle CPU: run there now, skipping .enqueue */
		schedcp_dispatch(p, SCX_DSQ_LOCAL, slice_ns(slice_us), 0);
	return cpu;
}

void BPF_STRUCT_OPS(mini_enqueue, struct task_struct *p, u64 enq_flags)
{
	/* FIFO; schedcp_dispatch_vtime(p, MAIN_DSQ, slice, key, enq_flags) orders by a key */
	schedcp_dispatch(p, MAIN_DSQ, slice_ns(slice_us), enq_flags);
}

void BPF_STRUCT_OPS(mini_dispatch, s32 cpu, struct task_struct *prev)
{
	schedcp_consume(MAIN_DSQ);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(mini_init)
{
	return scx_bpf_create_dsq(MAIN_DSQ, -1);
}

SCHEDCP_OPS(mini,
	.select_cpu = (void *)mini_select_cpu,
	.enqueue = (void *)mini_enqueue,
	.dispatch = (void *)mini_dispatch,
	.init = (void *)mini_init);
"""

PLANNING_SYSTEM = """\
You are the Planning role of SchedCP, which picks, tunes or writes Linux sched_ext CPU
schedulers for the workload a user cares about. Each turn you get a workload profile (kind,
goal, features; never trust process names for scheduling decisions), the baseline metrics,
what this run has tried so far with its measured improvement, and the history of this kind of
workload (the best lesson and antipatterns that must not be repeated).

Propose ONE configuration per turn and finish with the submit_plan tool. You may:
- configure an existing scheduler: submit_plan(policy=<name>, tunables={...}) with tunables
  inside the bounds get_policy reports (a preset for the goal is a good first try);
- write a new scheduler or patch one of ours: get_policy(name) gives a policy's C source;
  list_primitives gives the code primitives (summary and how to compose each), and
  get_policy(primitive) its code. Verify the full text with verify_source first (it boots a
  VM: about a minute). It returns a `handle`; a refusal names the stage (input, compile,
  static, kernel-verifier, dynamic) and why: fix exactly that and verify again. Then submit
  submit_plan(policy="custom", handle=<handle>) without resending the code.

Rules for generated BPF C (Linux 6.12 sched_ext; the object must also load on newer kernels):
- one file whose only include is `#include "schedcp.bpf.h"`; primitives are pasted into the
  file, not included; tunables are `const volatile` globals;
- use the header's wrappers, never the raw kfuncs they hide (their names changed in 6.13):
  schedcp_dispatch(p, dsq, slice, enq_flags), schedcp_dispatch_vtime(p, dsq, slice, vtime,
  enq_flags), schedcp_consume(dsq); also available: scx_bpf_create_dsq, scx_bpf_select_cpu_dfl,
  scx_bpf_kick_cpu, scx_bpf_dsq_nr_queued, scx_bpf_task_cpu, scx_bpf_pick_idle_cpu,
  scx_bpf_nr_cpu_ids, slice_ns(us) (clamps to 0.1..100 ms), vtime_before(a, b), clamp_u64,
  schedcp_error(fmt, ...) and schedcp_exit(code, fmt, ...);
- define callbacks with BPF_STRUCT_OPS / BPF_STRUCT_OPS_SLEEPABLE (init) and end the file
  with SCHEDCP_OPS(name, .enqueue = ..., ...) (it sets the name and a 5 s watchdog);
- every path of .enqueue must dispatch the task or it stalls and the watchdog ejects the
  scheduler; a task sent to a custom DSQ must be consumed in .dispatch, and custom DSQs are
  created in .init; no unbounded loops, no unchecked map lookups.

A complete, minimal scheduler that passes every stage (start from it):
```c
""" + SKELETON + """```

Prefer configurations the history says improved; never resubmit an antipattern; stop
(end_turn without submit_plan) when nothing untried is likely to beat the best so far.
Be brief: the user pays for every token."""

LEARNING_SYSTEM = """\
You are the Learning role of SchedCP. Given one outcome (plan, verification, before/after
metrics, the verdict), write ONE short sentence (under 30 words) a later planner can act on:
what to try or avoid next for this kind of workload and why, with the numbers."""
