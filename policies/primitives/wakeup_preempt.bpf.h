/* ---
name = "wakeup_preempt"
summary = "A target set (tgids or a cgroup) whose waking tasks preempt a CPU running anything else."
description = """
Marks a target application by process id (the `targets` map, filled by the helper) or by
cgroup (the target_cgid tunable, including sub-cgroups), remembers per CPU whether a target
is running there, and when a target task wakes with no idle CPU, puts it straight on the
local queue of a CPU running a non-target with the preempt flag, so it runs at once instead
of waiting for a slice to end. This is what makes a game, a video call or an editor stay
smooth while a build saturates every core. Costs the preempted background work a slice.
"""
goals = ["responsiveness"]
workloads = ["game", "interactive", "media"]
compose = """
Declares the tunable target_cgid. In .enqueue: if wakeup_preempt_is_target(p) and
wakeup_preempt_enqueue(p, enq_flags, slice) returns true, the task is placed; else queue it
(e.g. on priority_dsq's HI queue). Call wakeup_preempt_running(p) from .running and
wakeup_preempt_stopping() from .stopping. Never decide by process name: the helper fills
`targets` from the workload profile.
"""
--- */

const volatile u64 target_cgid = 0;	/* cgroup id of the target, 0 = none */

#define WAKEUP_PREEMPT_MAX_CPUS		64	/* CPUs scanned for one to preempt */
#define WAKEUP_PREEMPT_CGROUP_DEPTH	16

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);	/* tgid */
	__type(value, u8);	/* present = target */
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u8);	/* a target runs on this CPU now */
} wakeup_preempt_busy SEC(".maps");

static __always_inline bool wakeup_preempt_is_target(struct task_struct *p)
{
	u32 tgid = p->tgid;
	struct kernfs_node *kn;
	int i;

	if (bpf_map_lookup_elem(&targets, &tgid))
		return true;
	if (!target_cgid)
		return false;
	kn = p->cgroups->dfl_cgrp->kn;
	for (i = 0; i < WAKEUP_PREEMPT_CGROUP_DEPTH && kn; i++) {
		if (kn->id == target_cgid)
			return true;
		kn = kn->parent;
	}
	return false;
}

/* A CPU @p may use that runs a non-target, starting at its last CPU; -1 if none. */
static __always_inline s32 wakeup_preempt_cpu(struct task_struct *p)
{
	s32 prev = scx_bpf_task_cpu(p), cpu;
	u32 i, n = scx_bpf_nr_cpu_ids();
	u8 *busy;

	for (i = 0; i < n && i < WAKEUP_PREEMPT_MAX_CPUS; i++) {
		cpu = (prev + i) % n;
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		busy = bpf_map_lookup_percpu_elem(&wakeup_preempt_busy, &(u32){0}, cpu);
		if (busy && !*busy)
			return cpu;
	}
	return -1;
}

/* On wake-up, preempt a non-target CPU for @p; false if @p must be queued instead. */
static __always_inline bool wakeup_preempt_enqueue(struct task_struct *p, u64 enq_flags, u64 slice)
{
	s32 cpu;

	if (!(enq_flags & SCX_ENQ_WAKEUP) || (cpu = wakeup_preempt_cpu(p)) < 0)
		return false;
	schedcp_dispatch(p, SCX_DSQ_LOCAL_ON | cpu, slice, enq_flags | SCX_ENQ_PREEMPT);
	return true;
}

static __always_inline void wakeup_preempt_running(struct task_struct *p)
{
	u8 *busy = bpf_map_lookup_elem(&wakeup_preempt_busy, &(u32){0});

	if (busy)
		*busy = wakeup_preempt_is_target(p);
}

static __always_inline void wakeup_preempt_stopping(void)
{
	u8 *busy = bpf_map_lookup_elem(&wakeup_preempt_busy, &(u32){0});

	if (busy)
		*busy = 0;
}
