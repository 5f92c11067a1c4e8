/* ---
name = "runtime_tracker"
summary = "Per-task CPU time in task storage: total runtime and the current burst since it last slept."
description = """
Keeps, for every task, the CPU time it has used since it started and since it last went to
sleep, in BPF task-local storage (freed with the task). The burst tells CPU hogs from
interactive tasks without looking at names: a task that has run 100 ms without sleeping is
batch work; one that sleeps every few milliseconds is interactive. The total tells long jobs
from short ones. Used by ljf to rank batch jobs and to classify tasks as batch.
"""
goals = ["throughput", "responsiveness", "balanced"]
workloads = ["batch", "build", "interactive"]
compose = """
Call runtime_tracker_init_task(p) from .init_task (return its value), runtime_tracker_running(p)
from .running, runtime_tracker_stopping(p) from .stopping and runtime_tracker_quiescent(p,
deq_flags) from .quiescent. Read runtime_tracker_get(p)->runtime / ->burst (check for NULL)
anywhere, e.g. in .enqueue to pick a queue or a vtime key. Combine with expected_runtime.
"""
--- */

struct runtime_tracker {
	u64 runtime;	/* CPU time used since the task started */
	u64 burst;	/* CPU time used since it last slept */
	u64 started_at;	/* when it last got a CPU, 0 while off-CPU */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct runtime_tracker);
} runtime_trackers SEC(".maps");

static __always_inline struct runtime_tracker *runtime_tracker_get(struct task_struct *p)
{
	return bpf_task_storage_get(&runtime_trackers, p, 0, 0);
}

static __always_inline s32 runtime_tracker_init_task(struct task_struct *p)
{
	if (!bpf_task_storage_get(&runtime_trackers, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -12;	/* -ENOMEM */
	return 0;
}

static __always_inline void runtime_tracker_running(struct task_struct *p)
{
	struct runtime_tracker *rt = runtime_tracker_get(p);

	if (rt)
		rt->started_at = bpf_ktime_get_ns();
}

static __always_inline void runtime_tracker_stopping(struct task_struct *p)
{
	struct runtime_tracker *rt = runtime_tracker_get(p);
	u64 ran;

	if (!rt || !rt->started_at)
		return;
	ran = bpf_ktime_get_ns() - rt->started_at;
	rt->runtime += ran;
	rt->burst += ran;
	rt->started_at = 0;
}

static __always_inline void runtime_tracker_quiescent(struct task_struct *p, u64 deq_flags)
{
	struct runtime_tracker *rt = runtime_tracker_get(p);

	if (rt && (deq_flags & SCX_DEQ_SLEEP))
		rt->burst = 0;
}
