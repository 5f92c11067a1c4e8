"""The offline composer: new schedulers from ``policies/primitives/`` without an API key.

A template names the primitives it needs and the callbacks that tie them together; the
composer pastes each primitive's code (from the repository, header comment dropped: the
verifier allows only ``#include "schedcp.bpf.h"``) in order and appends the template's body.
The result is ordinary generated code: the same verifier checks it, the loop measures it, and
Learning promotes it into the repository when it beats the incumbent, so the next run
retrieves it (by name, re-verified) instead of composing again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = re.compile(r"/\* ---\n.*?\n--- \*/\n", re.S)


@dataclass(frozen=True)
class Template:
    name: str
    summary: str  # becomes the plan's rationale, then the promoted policy's description
    primitives: tuple[str, ...]
    kinds: tuple[str, ...]  # workload kinds it is meant for
    goals: tuple[str, ...]
    body: str


LONGTAIL = Template(
    "longtail",
    "Composed long-tail batch scheduler: short-burst tasks in a priority queue served first; "
    "batch jobs ordered longest expected runtime first (runtime tracker + expected-runtime "
    "hints), each job jumping at most 2 s ahead, the batch queue served at least every 200 ms.",
    ("runtime_tracker", "expected_runtime", "priority_dsq", "idle_fastpath"),
    ("batch", "build"), ("throughput", "balanced"), """
#define LT_SLICE	(20 * NSEC_PER_MSEC)
#define LT_SHORT_SLICE	(5 * NSEC_PER_MSEC)
#define LT_BATCH_BURST	(50 * NSEC_PER_MSEC)	/* ran this long without sleeping: batch */
#define LT_MAX_BOOST	(2000 * NSEC_PER_MSEC)

static __always_inline bool lt_is_batch(struct task_struct *p, u64 *key)
{
	struct runtime_tracker *rt = runtime_tracker_get(p);
	u64 len;

	if (!rt)
		return false;
	len = expected_runtime_ns(p, rt->runtime);
	if (!len && rt->burst < LT_BATCH_BURST)
		return false;
	if (!len)
		len = rt->runtime;
	*key = bpf_ktime_get_ns() - (len < LT_MAX_BOOST ? len : LT_MAX_BOOST);
	return true;
}

s32 BPF_STRUCT_OPS(longtail_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return idle_fastpath_select(p, prev_cpu, wake_flags, LT_SHORT_SLICE);
}

void BPF_STRUCT_OPS(longtail_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 key = 0;

	if (lt_is_batch(p, &key))
		schedcp_dispatch_vtime(p, PRIORITY_DSQ_LO, LT_SLICE, key, enq_flags);
	else
		schedcp_dispatch(p, PRIORITY_DSQ_HI, LT_SHORT_SLICE, enq_flags);
}

void BPF_STRUCT_OPS(longtail_dispatch, s32 cpu, struct task_struct *prev)
{
	priority_dsq_dispatch(200 * NSEC_PER_MSEC);
}

void BPF_STRUCT_OPS(longtail_running, struct task_struct *p) { runtime_tracker_running(p); }

void BPF_STRUCT_OPS(longtail_stopping, struct task_struct *p, bool runnable)
{
	runtime_tracker_stopping(p);
}

void BPF_STRUCT_OPS(longtail_quiescent, struct task_struct *p, u64 deq_flags)
{
	runtime_tracker_quiescent(p, deq_flags);
}

s32 BPF_STRUCT_OPS(longtail_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	return runtime_tracker_init_task(p);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(longtail_init) { return priority_dsq_init(); }

SCHEDCP_OPS(longtail,
	.select_cpu = (void *)longtail_select_cpu, .enqueue = (void *)longtail_enqueue,
	.dispatch = (void *)longtail_dispatch, .running = (void *)longtail_running,
	.stopping = (void *)longtail_stopping, .quiescent = (void *)longtail_quiescent,
	.init_task = (void *)longtail_init_task, .init = (void *)longtail_init);
""")

LATENCY = Template(
    "latency",
    "Composed latency scheduler: target tasks preempt background work on wakeup and wait in "
    "a priority queue served first; everything else shares a fair vtime queue served at "
    "least every 100 ms; idle CPUs are used at once.",
    ("idle_fastpath", "priority_dsq", "wakeup_preempt", "vtime_fair"),
    ("game", "interactive", "media"), ("responsiveness", "balanced"), """
#define LAT_SLICE	(3 * NSEC_PER_MSEC)

s32 BPF_STRUCT_OPS(latency_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return idle_fastpath_select(p, prev_cpu, wake_flags, LAT_SLICE);
}

void BPF_STRUCT_OPS(latency_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (wakeup_preempt_is_target(p)) {
		if (!wakeup_preempt_enqueue(p, enq_flags, LAT_SLICE))
			schedcp_dispatch(p, PRIORITY_DSQ_HI, LAT_SLICE, enq_flags);
		return;
	}
	u64 key = vtime_fair_key(p, LAT_SLICE);

	schedcp_dispatch_vtime(p, PRIORITY_DSQ_LO, LAT_SLICE, key, enq_flags);
}

void BPF_STRUCT_OPS(latency_dispatch, s32 cpu, struct task_struct *prev)
{
	priority_dsq_dispatch(100 * NSEC_PER_MSEC);
}

void BPF_STRUCT_OPS(latency_running, struct task_struct *p)
{
	vtime_fair_running(p);
	wakeup_preempt_running(p);
}

void BPF_STRUCT_OPS(latency_stopping, struct task_struct *p, bool runnable)
{
	vtime_fair_charge(p, LAT_SLICE);
	wakeup_preempt_stopping();
}

void BPF_STRUCT_OPS(latency_enable, struct task_struct *p) { vtime_fair_enable(p); }

s32 BPF_STRUCT_OPS_SLEEPABLE(latency_init) { return priority_dsq_init(); }

SCHEDCP_OPS(latency,
	.select_cpu = (void *)latency_select_cpu, .enqueue = (void *)latency_enqueue,
	.dispatch = (void *)latency_dispatch, .running = (void *)latency_running,
	.stopping = (void *)latency_stopping, .enable = (void *)latency_enable,
	.init = (void *)latency_init);
""")

TEMPLATES: dict[str, Template] = {t.name: t for t in (LONGTAIL, LATENCY)}


def template_for(kind: str, goal: str) -> Template | None:
    """The template for a workload kind and goal: kind and goal both match, else the goal
    alone (a batch that must stay responsive gets the latency template)."""
    for t in TEMPLATES.values():
        if kind in t.kinds and goal in t.goals:
            return t
    return next((t for t in TEMPLATES.values() if goal == t.goals[0]), None)


def compose(template: Template, repo) -> str:
    """The full C text: the one allowed include, each primitive's code, the template body."""
    parts = ['/* SPDX-License-Identifier: GPL-2.0 */\n/* ' + template.summary[:200]
             + ' */\n#include "schedcp.bpf.h"\n']
    for name in template.primitives:
        entry = repo.get(name)
        if entry.kind != "primitive" or not entry.source:
            raise ValueError(f"{name!r} is not a code primitive")
        parts.append(f"\n/* primitive: {name} */\n" + HEADER.sub("", entry.source, count=1))
    parts.append(template.body)
    return "".join(parts)
