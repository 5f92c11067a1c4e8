/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp_interactive - keep a chosen app (a game, an editor) responsive.
 *
 * Target tasks are those whose tgid is in the `targets` map (filled by the
 * helper) or that live in cgroup target_cgid (or below it). They wait in a
 * priority queue that CPUs drain first, run with short slices so they come
 * back often, and when one wakes with no idle CPU, it goes straight to the
 * local queue of a CPU running a non-target and preempts it, so the target
 * runs right away. Everything else shares a second queue with longer slices
 * (fewer switches, better throughput) and is still served at least every
 * starve_ms, so a busy target cannot starve the system.
 */
#include "schedcp.bpf.h"

const volatile u64 slice_us = 3000;		/* slice of target tasks */
const volatile u64 bg_slice_us = 20000;		/* slice of everything else */
const volatile u64 target_cgid = 0;		/* cgroup id of the target, 0 = none */
const volatile u64 starve_ms = 100;		/* longest wait of non-target tasks */
const volatile bool preempt = true;		/* kick a CPU when a target wakes */

#define PRIO_DSQ	0
#define NORMAL_DSQ	1
#define MAX_CPUS	64	/* CPUs scanned for one to preempt */
#define MAX_CGROUP_DEPTH 16

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);	/* tgid */
	__type(value, u8);	/* any value: present = target */
} targets SEC(".maps");

/* Per CPU: is a target running there now? Non-targets are who we preempt. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u8);
} cpu_runs_target SEC(".maps");

static u64 normal_served_at;	/* last time the normal queue was served or found empty */

static bool in_target_cgroup(struct task_struct *p)
{
	struct kernfs_node *kn;
	int i;

	if (!target_cgid)
		return false;
	/* Plain reads of a trusted task's cgroup; the ids are the kernfs ids. */
	kn = p->cgroups->dfl_cgrp->kn;
	for (i = 0; i < MAX_CGROUP_DEPTH && kn; i++) {
		if (kn->id == target_cgid)
			return true;
		kn = kn->parent;
	}
	return false;
}

static bool is_target(struct task_struct *p)
{
	u32 tgid = p->tgid;

	return bpf_map_lookup_elem(&targets, &tgid) || in_target_cgroup(p);
}

/* Whether @cpu is one @p may use and runs a non-target now. */
static bool preemptible(struct task_struct *p, s32 cpu)
{
	u8 *busy;

	if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
		return false;
	busy = bpf_map_lookup_percpu_elem(&cpu_runs_target, &(u32){0}, cpu);
	return busy && !*busy;
}

/*
 * A CPU @p may use that runs a non-target; -1 if none. The waking CPU first:
 * preempting it needs no IPI (the switch happens on the way out of the wakeup,
 * e.g. the timer interrupt), then @p's last CPU and the rest in order.
 */
static s32 cpu_to_preempt(struct task_struct *p)
{
	s32 here = bpf_get_smp_processor_id(), prev = scx_bpf_task_cpu(p), cpu;
	u32 i, n = scx_bpf_nr_cpu_ids();

	if (preemptible(p, here))
		return here;
	for (i = 0; i < n && i < MAX_CPUS; i++) {
		cpu = (prev + i) % n;
		if (preemptible(p, cpu))
			return cpu;
	}
	return -1;
}

s32 BPF_STRUCT_OPS(interactive_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		schedcp_dispatch(p, SCX_DSQ_LOCAL,
				 slice_ns(is_target(p) ? slice_us : bg_slice_us), 0);
	return cpu;
}

void BPF_STRUCT_OPS(interactive_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu;

	if (!is_target(p)) {
		schedcp_dispatch(p, NORMAL_DSQ, slice_ns(bg_slice_us), enq_flags);
		return;
	}
	/* Straight onto that CPU's local queue, ahead of and preempting its task. */
	if (preempt && (enq_flags & SCX_ENQ_WAKEUP) && (cpu = cpu_to_preempt(p)) >= 0) {
		schedcp_dispatch(p, SCX_DSQ_LOCAL_ON | cpu, slice_ns(slice_us),
				 enq_flags | SCX_ENQ_PREEMPT);
		return;
	}
	schedcp_dispatch(p, PRIO_DSQ, slice_ns(slice_us), enq_flags);
}

void BPF_STRUCT_OPS(interactive_dispatch, s32 cpu, struct task_struct *prev)
{
	u64 now = bpf_ktime_get_ns();

	if (now - normal_served_at > starve_ms * NSEC_PER_MSEC && schedcp_consume(NORMAL_DSQ)) {
		normal_served_at = now;
		return;
	}
	if (schedcp_consume(PRIO_DSQ))
		return;
	normal_served_at = now;
	schedcp_consume(NORMAL_DSQ);
}

void BPF_STRUCT_OPS(interactive_running, struct task_struct *p)
{
	u8 *busy = bpf_map_lookup_elem(&cpu_runs_target, &(u32){0});

	if (busy)
		*busy = is_target(p);
}

void BPF_STRUCT_OPS(interactive_stopping, struct task_struct *p, bool runnable)
{
	u8 *busy = bpf_map_lookup_elem(&cpu_runs_target, &(u32){0});

	if (busy)
		*busy = 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(interactive_init)
{
	s32 ret = scx_bpf_create_dsq(PRIO_DSQ, -1);

	return ret ?: scx_bpf_create_dsq(NORMAL_DSQ, -1);
}

SCHEDCP_OPS(interactive,
	    .select_cpu	= (void *)interactive_select_cpu,
	    .enqueue	= (void *)interactive_enqueue,
	    .dispatch	= (void *)interactive_dispatch,
	    .running	= (void *)interactive_running,
	    .stopping	= (void *)interactive_stopping,
	    .init	= (void *)interactive_init);
