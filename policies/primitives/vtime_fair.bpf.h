/* ---
name = "vtime_fair"
summary = "Weighted virtual-time accounting: nice-aware fair sharing with bounded sleeper credit."
description = """
Charges each task the CPU time it used divided by its weight, so a nice -5 task advances
about three times slower than a nice 0 one and receives about three times the CPU. Queue
tasks by this virtual time (smallest first) for CFS-like fairness. A task that slept may
bank at most a budget of credit: enough to win the next wake-up, not enough to monopolise a
CPU after a long sleep. The basis of the vtime policy; combine with a priority queue to give
chosen tasks more than their fair share.
"""
goals = ["balanced", "responsiveness", "throughput"]
workloads = ["interactive", "build", "server", "media"]
compose = """
In .enqueue: schedcp_dispatch_vtime(p, DSQ, slice, vtime_fair_key(p, budget_ns), enq_flags) on a
DSQ created in .init; .dispatch consumes it. Call vtime_fair_running(p) from .running,
vtime_fair_charge(p, slice) from .stopping (slice = the slice @p was given) and
vtime_fair_enable(p) from .enable.
"""
--- */

static u64 vtime_fair_now;	/* vtime of the most recently started task */

/* Queue key of @p: its vtime, but at most @budget_ns behind the current vtime. */
static __always_inline u64 vtime_fair_key(struct task_struct *p, u64 budget_ns)
{
	u64 vtime = p->scx.dsq_vtime;

	if (vtime_before(vtime, vtime_fair_now - budget_ns))
		vtime = vtime_fair_now - budget_ns;
	return vtime;
}

static __always_inline void vtime_fair_running(struct task_struct *p)
{
	/* Racy across CPUs, but any error is small and temporary. */
	if (vtime_before(vtime_fair_now, p->scx.dsq_vtime))
		vtime_fair_now = p->scx.dsq_vtime;
}

/* Charge @p for the part of @slice it used, scaled by 100 / weight (nice 0 = 100). */
static __always_inline void vtime_fair_charge(struct task_struct *p, u64 slice)
{
	u64 used = p->scx.slice < slice ? slice - p->scx.slice : 0;

	p->scx.dsq_vtime += used * 100 / (p->scx.weight ?: 1);
}

static __always_inline void vtime_fair_enable(struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_fair_now;
}
