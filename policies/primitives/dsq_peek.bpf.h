/* ---
name = "dsq_peek"
summary = "Peek at a queue's head without dequeuing, e.g. to let the previous task run on."
description = """
Reads the first task of a vtime-ordered dispatch queue through the DSQ iterator without
taking it off the queue. sched_ext asks for the next task before it re-queues the task whose
slice just ended, so without a peek a long job loses its CPU to the queue's head at every
slice end. With it, .dispatch can compare the previous task's key with the head's and simply
refill the previous task's slice when it still ranks first: fewer switches and the intended
order kept. Used by ljf.
"""
goals = ["throughput"]
workloads = ["batch", "build"]
compose = """
In .dispatch(cpu, prev): if prev && (prev->scx.flags & SCX_TASK_QUEUED) &&
dsq_peek_prev_ranks_first(dsq, key_of_prev), set prev->scx.slice = slice and return without
consuming. dsq_peek_head_vtime(dsq, &vtime) gives the head's key (false if empty).
"""
--- */

static __always_inline bool dsq_peek_head_vtime(u64 dsq, u64 *vtime)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *head;
	bool found = false;

	bpf_iter_scx_dsq_new(&it, dsq, 0);
	head = bpf_iter_scx_dsq_next(&it);
	if (head) {
		*vtime = head->scx.dsq_vtime;
		found = true;
	}
	bpf_iter_scx_dsq_destroy(&it);
	return found;
}

/* Whether a task with queue key @key ranks before the head of @dsq (true if it is empty). */
static __always_inline bool dsq_peek_prev_ranks_first(u64 dsq, u64 key)
{
	u64 head;

	return !dsq_peek_head_vtime(dsq, &head) || vtime_before(key, head);
}
