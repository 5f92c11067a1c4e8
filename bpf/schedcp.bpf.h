/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp.bpf.h - the one header shared by SchedCP's sched_ext schedulers.
 *
 * vmlinux.h carries the sched_ext types but no kfunc prototypes, so they are
 * declared here. Every kfunc is __weak: a name the running kernel lacks then
 * resolves to NULL instead of failing the load, which lets the wrappers below
 * pick the v6.13+ name (scx_bpf_dsq_insert...) when present and the v6.12 name
 * (scx_bpf_dispatch...) otherwise, so one object loads on both. The verifier
 * drops the branch that calls the missing one as dead code.
 */
#ifndef __SCHEDCP_BPF_H
#define __SCHEDCP_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define PF_KTHREAD	0x00200000

/* v6.12 kfuncs */
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym __weak;
void scx_bpf_destroy_dsq(u64 dsq_id) __ksym __weak;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
			   bool *is_idle) __ksym __weak;
void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			    u64 enq_flags) __ksym __weak;
bool scx_bpf_consume(u64 dsq_id) __ksym __weak;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym __weak;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym __weak;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym __weak;
s32 scx_bpf_pick_idle_cpu(const cpumask_t *cpus_allowed, u64 flags) __ksym __weak;
s32 scx_bpf_pick_any_cpu(const cpumask_t *cpus_allowed, u64 flags) __ksym __weak;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym __weak;
u32 scx_bpf_nr_cpu_ids(void) __ksym __weak;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym __weak;
void scx_bpf_exit_bstr(s64 exit_code, char *fmt, unsigned long long *data,
		       u32 data__sz) __ksym __weak;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data_len) __ksym __weak;
/* DSQ iterator (v6.12+): peek at a queue without taking tasks off it */
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __ksym;
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __ksym;
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __ksym;

/* v6.13+ names of the same operations */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			      u64 enq_flags) __ksym __weak;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym __weak;

/* Queue @p on @dsq_id (FIFO) for @slice ns. */
static __always_inline void schedcp_dispatch(struct task_struct *p, u64 dsq_id, u64 slice,
					     u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, dsq_id, slice, enq_flags);
	else
		scx_bpf_dispatch(p, dsq_id, slice, enq_flags);
}

/* Queue @p on the custom DSQ @dsq_id ordered by @vtime (smallest runs first). */
static __always_inline void schedcp_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice,
						   u64 vtime, u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert_vtime))
		scx_bpf_dsq_insert_vtime(p, dsq_id, slice, vtime, enq_flags);
	else
		scx_bpf_dispatch_vtime(p, dsq_id, slice, vtime, enq_flags);
}

/* Move the first task of @dsq_id to this CPU's local DSQ; false if it was empty. */
static __always_inline bool schedcp_consume(u64 dsq_id)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		return scx_bpf_dsq_move_to_local(dsq_id);
	return scx_bpf_consume(dsq_id);
}

/* printf-style wrappers of the bstr kfuncs (same trick as the kernel's scx/common.bpf.h). */
#define ___schedcp_bstr(call, fmt, args...)					\
({										\
	static char ___fmt[] = fmt;						\
	unsigned long long ___param[___bpf_narg(args) ?: 1] = {};		\
	_Pragma("GCC diagnostic push")						\
	_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")			\
	___bpf_fill(___param, args);						\
	_Pragma("GCC diagnostic pop")						\
	call;									\
})
/* Unload cleanly, reporting @fmt in the exit info (visible in dmesg/debugfs). */
#define schedcp_exit(code, fmt, args...)					\
	___schedcp_bstr(scx_bpf_exit_bstr(code, ___fmt, ___param, sizeof(___param)), fmt, ##args)
/* Eject the scheduler as failed, reporting @fmt. */
#define schedcp_error(fmt, args...)						\
	___schedcp_bstr(scx_bpf_error_bstr(___fmt, ___param, sizeof(___param)), fmt, ##args)

/* Wrap-safe "a is earlier than b" for vtimes. */
static __always_inline bool vtime_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

static __always_inline u64 clamp_u64(u64 v, u64 lo, u64 hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

#define NSEC_PER_USEC	1000ULL
#define NSEC_PER_MSEC	1000000ULL

/* Bounds every policy keeps its slices in, whatever the tunables say. */
#define SCHEDCP_SLICE_MIN	(100 * NSEC_PER_USEC)
#define SCHEDCP_SLICE_MAX	(100 * NSEC_PER_MSEC)

static __always_inline u64 slice_ns(u64 us)
{
	return clamp_u64(us * NSEC_PER_USEC, SCHEDCP_SLICE_MIN, SCHEDCP_SLICE_MAX);
}

#define BPF_STRUCT_OPS(name, args...)						\
	SEC("struct_ops/"#name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...)					\
	SEC("struct_ops.s/"#name) BPF_PROG(name, ##args)

/*
 * SCHEDCP_OPS(policy, ...) defines the struct_ops map "<policy>_ops" named
 * "schedcp_<policy>" with a 5 s watchdog, so a stalling bug is ejected fast.
 */
#define SCHEDCP_OPS(policy, ...)						\
	SEC(".struct_ops.link")							\
	struct sched_ext_ops policy##_ops = {					\
		.timeout_ms = 5000,						\
		.name = "schedcp_" #policy,					\
		__VA_ARGS__,							\
	}

char _license[] SEC("license") = "GPL";

#endif /* __SCHEDCP_BPF_H */
