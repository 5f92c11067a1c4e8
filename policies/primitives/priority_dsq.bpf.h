/* ---
name = "priority_dsq"
summary = "Two queues: a priority queue every CPU drains first, with a starvation bound for the rest."
description = """
Tasks you favour go to a high-priority dispatch queue that CPUs consume before the normal
queue, so they wait behind each other only, never behind background work. The normal queue
is still served at least every starve_ns even while favoured tasks keep every CPU busy, so
builds, downloads and daemons slow down but never stall (and the sched_ext watchdog never
fires). The core of the interactive policy and of ljf's short-task queue.
"""
goals = ["responsiveness", "balanced"]
workloads = ["game", "interactive", "media", "batch"]
compose = """
Call priority_dsq_init() from .init. In .enqueue, dispatch favoured tasks to PRIORITY_DSQ_HI and
the rest to PRIORITY_DSQ_LO (schedcp_dispatch or schedcp_dispatch_vtime). Call
priority_dsq_dispatch(starve_ns) from .dispatch. Define PRIORITY_DSQ_HI/LO before including to
move the queue ids. Pairs with wakeup_preempt (who is favoured) and vtime_fair (order inside a
queue).
"""
--- */

#ifndef PRIORITY_DSQ_HI
#define PRIORITY_DSQ_HI	100
#endif
#ifndef PRIORITY_DSQ_LO
#define PRIORITY_DSQ_LO	101
#endif

static u64 priority_dsq_lo_served_at;	/* last time LO was served or found empty */

static __always_inline s32 priority_dsq_init(void)
{
	s32 ret = scx_bpf_create_dsq(PRIORITY_DSQ_HI, -1);

	return ret ?: scx_bpf_create_dsq(PRIORITY_DSQ_LO, -1);
}

/* HI first; LO when HI is empty or LO has waited longer than @starve_ns. */
static __always_inline void priority_dsq_dispatch(u64 starve_ns)
{
	u64 now = bpf_ktime_get_ns();

	if (now - priority_dsq_lo_served_at > starve_ns && schedcp_consume(PRIORITY_DSQ_LO)) {
		priority_dsq_lo_served_at = now;
		return;
	}
	if (schedcp_consume(PRIORITY_DSQ_HI))
		return;
	priority_dsq_lo_served_at = now;
	schedcp_consume(PRIORITY_DSQ_LO);
}
