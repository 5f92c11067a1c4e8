/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp_ljf - longest job first, for batches with a long tail.
 *
 * A batch of 39 short jobs and 1 long one on 2 CPUs finishes, under fair
 * sharing, about when the long job has had half a CPU for the whole run:
 * makespan ~ total_short/2 + long. Starting the long job first and giving it
 * long slices lets the short ones drain on the other CPU meanwhile, so the
 * makespan approaches max(long, total/CPUs).
 *
 * A job's length is its expected runtime (the `expected_runtime` map, filled
 * per tgid by the helper from the workload profile), or the CPU time it has
 * used if that is more: a job that overran its hint, e.g. because the machine
 * is slower than the profile says, is still a long job and keeps its place.
 * Tasks without a hint that burn CPU without sleeping are ranked by the CPU
 * time they have used (long-running so far => likely long).
 *
 * Batch tasks wait in a queue ordered by (enqueue time - length), the length
 * capped at max_boost_ms: a long job may jump ahead of at most max_boost_ms of
 * arrivals, so every batch task waits less than about max_boost_ms plus one
 * round of the tasks queued before it (keep it well under the 5 s watchdog).
 * sched_ext asks for the next task before it re-queues the one whose slice
 * ended, so dispatch keeps that task running while it still ranks before the
 * queue's head; otherwise the long job would lose its CPU to a short one at
 * every slice end and wait for the next one to free up.
 * Everything else (short CPU bursts: shells, daemons, the desktop) goes to a
 * queue consumed first, a task waking from sleep at its head, one whose slice
 * ended at its tail; a task that stops sleeping is reclassified as batch after
 * batch_min_us of CPU, and the batch queue is served at least every
 * BATCH_MAX_WAIT_NS regardless.
 */
#include "schedcp.bpf.h"

const volatile u64 slice_us = 20000;		/* batch slice; jobs of equal rank take turns */
const volatile u64 short_slice_us = 5000;	/* slice of non-batch tasks */
const volatile u64 batch_min_us = 100000;	/* unhinted CPU burst that makes a task batch */
const volatile u64 max_boost_ms = 1000;	/* most a long job may jump the queue by */

#define NORMAL_DSQ	0
#define BATCH_DSQ	1
/* Batch work runs at least this often even while short tasks keep coming. */
#define BATCH_MAX_WAIT_NS	(200 * NSEC_PER_MSEC)
/* Longest queue jump allowed, whatever max_boost_ms says: below the watchdog. */
#define MAX_BOOST_MS		3000

static u64 batch_served_at;	/* last time the batch queue was served or found empty */

/* tgid -> expected total runtime in ns; filled by the helper, never by name. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u64);
} expected_runtime SEC(".maps");

/*
 * Hints for processes not yet born: the n-th child process a parent forks
 * (key: parent tgid, n) gets that expected runtime as it forks, so a batch's
 * jobs are ranked from their first slice. fork_seq counts each watched
 * parent's children; the helper resets it when it fills fork_hints.
 */
struct fork_key {
	u32 parent;
	u32 index;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fork_key);
	__type(value, u64);
} fork_hints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, u32);
} fork_seq SEC(".maps");

struct task_ctx {
	u64 runtime;	/* CPU time used since the task started */
	u64 burst;	/* CPU time used since it last slept */
	u64 started_at;	/* when it last got a CPU */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

/* Expected total runtime of @p in ns, or 0 when it is not a batch task. */
static u64 job_len_ns(struct task_struct *p, struct task_ctx *tctx)
{
	u32 tgid = p->tgid;
	u64 *hint = bpf_map_lookup_elem(&expected_runtime, &tgid);

	if (hint)
		return *hint > tctx->runtime ? *hint : tctx->runtime + 1;
	if (tctx->burst >= batch_min_us * NSEC_PER_USEC)
		return tctx->runtime;
	return 0;
}

/* Queue position of batch task @p if queued now; 0 if @p is not a batch task. */
static u64 batch_key(struct task_struct *p, u64 now)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	u64 len, cap = clamp_u64(max_boost_ms, 1, MAX_BOOST_MS) * NSEC_PER_MSEC;

	if (!tctx || !(len = job_len_ns(p, tctx)))
		return 0;
	return now - (len < cap ? len : cap);
}

/* Whether @prev, runnable at the end of its slice, still ranks before the batch queue. */
static bool keep_running(struct task_struct *prev, u64 now)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *head;
	u64 key = batch_key(prev, now);
	bool keep = key != 0;

	bpf_iter_scx_dsq_new(&it, BATCH_DSQ, 0);
	head = bpf_iter_scx_dsq_next(&it);
	if (keep && head)
		keep = vtime_before(key, head->scx.dsq_vtime);
	bpf_iter_scx_dsq_destroy(&it);
	return keep;
}

s32 BPF_STRUCT_OPS(ljf_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	/* An idle CPU means nothing is queued to order against. */
	if (is_idle)
		schedcp_dispatch(p, SCX_DSQ_LOCAL, slice_ns(short_slice_us), 0);
	return cpu;
}

void BPF_STRUCT_OPS(ljf_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 key = batch_key(p, bpf_ktime_get_ns());

	/*
	 * A task that slept goes ahead of those that only used up their slice:
	 * new CPU-bound jobs stay here for their first batch_min_us, and the
	 * daemons and the desktop (and whoever sends our hints) must not queue
	 * behind a whole batch of them.
	 */
	if (!key)
		schedcp_dispatch(p, NORMAL_DSQ, slice_ns(short_slice_us),
				 enq_flags | (enq_flags & SCX_ENQ_WAKEUP ? SCX_ENQ_HEAD : 0));
	else
		schedcp_dispatch_vtime(p, BATCH_DSQ, slice_ns(slice_us), key, enq_flags);
}

void BPF_STRUCT_OPS(ljf_dispatch, s32 cpu, struct task_struct *prev)
{
	u64 now = bpf_ktime_get_ns();

	if (now - batch_served_at > BATCH_MAX_WAIT_NS && schedcp_consume(BATCH_DSQ)) {
		batch_served_at = now;
		return;
	}
	if (schedcp_consume(NORMAL_DSQ))
		return;
	batch_served_at = now;
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED) && keep_running(prev, now)) {
		prev->scx.slice = slice_ns(slice_us);	/* nothing dispatched: prev runs on */
		return;
	}
	schedcp_consume(BATCH_DSQ);
}

void BPF_STRUCT_OPS(ljf_running, struct task_struct *p)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);

	if (tctx)
		tctx->started_at = bpf_ktime_get_ns();
}

void BPF_STRUCT_OPS(ljf_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	u64 ran;

	if (!tctx || !tctx->started_at)
		return;
	ran = bpf_ktime_get_ns() - tctx->started_at;
	tctx->runtime += ran;
	tctx->burst += ran;
	tctx->started_at = 0;
}

void BPF_STRUCT_OPS(ljf_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);

	if (tctx && (deq_flags & SCX_DEQ_SLEEP))
		tctx->burst = 0;
}

/* A new process of a watched parent: its expected runtime by birth order. */
static void hint_from_fork(struct task_struct *p)
{
	struct task_struct *parent = bpf_get_current_task_btf();
	struct fork_key key = {.parent = parent->tgid};
	u32 tgid = p->tgid, *seq;
	u64 *ns;

	if (p->pid != p->tgid)	/* a thread: not a job of its own */
		return;
	seq = bpf_map_lookup_elem(&fork_seq, &key.parent);
	if (!seq)
		return;
	key.index = (*seq)++;	/* one parent forks one child at a time */
	ns = bpf_map_lookup_elem(&fork_hints, &key);
	if (ns)
		bpf_map_update_elem(&expected_runtime, &tgid, ns, BPF_ANY);
}

s32 BPF_STRUCT_OPS(ljf_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	if (!bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -12;	/* -ENOMEM */
	if (args->fork)
		hint_from_fork(p);
	return 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(ljf_init)
{
	s32 ret = scx_bpf_create_dsq(NORMAL_DSQ, -1);

	return ret ?: scx_bpf_create_dsq(BATCH_DSQ, -1);
}

SCHEDCP_OPS(ljf,
	    .select_cpu	= (void *)ljf_select_cpu,
	    .enqueue	= (void *)ljf_enqueue,
	    .dispatch	= (void *)ljf_dispatch,
	    .running	= (void *)ljf_running,
	    .stopping	= (void *)ljf_stopping,
	    .quiescent	= (void *)ljf_quiescent,
	    .init_task	= (void *)ljf_init_task,
	    .init	= (void *)ljf_init);
