"""Code primitives: their headers parse; composed into schedulers, they build without warnings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from schedcp.repo.seed import SeedError, parse_primitive
from schedcp_common.vm import Kit

from .conftest import REPO_ROOT

PRIMS = REPO_ROOT / "policies" / "primitives"
NAMES = sorted(p.name.removesuffix(".bpf.h") for p in PRIMS.glob("*.bpf.h"))

# An interactive-style and an ljf-style scheduler built only from primitives: proves that they
# compose (no clashing names, the hooks fit the sched_ext callbacks) and that each one compiles.
COMPOSED = {
    "boost": """
#include "schedcp.bpf.h"
#include "idle_fastpath.bpf.h"
#include "priority_dsq.bpf.h"
#include "wakeup_preempt.bpf.h"
#include "vtime_fair.bpf.h"
#define SLICE (3 * NSEC_PER_MSEC)
s32 BPF_STRUCT_OPS(boost_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{ return idle_fastpath_select(p, prev_cpu, wake_flags, SLICE); }
void BPF_STRUCT_OPS(boost_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (wakeup_preempt_is_target(p)) {
		if (!wakeup_preempt_enqueue(p, enq_flags, SLICE))
			schedcp_dispatch(p, PRIORITY_DSQ_HI, SLICE, enq_flags);
		return;
	}
	schedcp_dispatch_vtime(p, PRIORITY_DSQ_LO, SLICE, vtime_fair_key(p, SLICE), enq_flags);
}
void BPF_STRUCT_OPS(boost_dispatch, s32 cpu, struct task_struct *prev)
{ priority_dsq_dispatch(100 * NSEC_PER_MSEC); }
void BPF_STRUCT_OPS(boost_running, struct task_struct *p)
{ vtime_fair_running(p); wakeup_preempt_running(p); }
void BPF_STRUCT_OPS(boost_stopping, struct task_struct *p, bool runnable)
{ vtime_fair_charge(p, SLICE); wakeup_preempt_stopping(); }
void BPF_STRUCT_OPS(boost_enable, struct task_struct *p) { vtime_fair_enable(p); }
s32 BPF_STRUCT_OPS_SLEEPABLE(boost_init) { return priority_dsq_init(); }
SCHEDCP_OPS(boost, .select_cpu = (void *)boost_select_cpu, .enqueue = (void *)boost_enqueue,
	.dispatch = (void *)boost_dispatch, .running = (void *)boost_running,
	.stopping = (void *)boost_stopping, .enable = (void *)boost_enable,
	.init = (void *)boost_init);
""",
    "longpack": """
#include "schedcp.bpf.h"
#include "runtime_tracker.bpf.h"
#include "expected_runtime.bpf.h"
#include "dsq_peek.bpf.h"
#include "cpu_packing.bpf.h"
#define DSQ 7
#define SLICE (20 * NSEC_PER_MSEC)
static u64 key_of(struct task_struct *p)
{
	struct runtime_tracker *rt = runtime_tracker_get(p);
	u64 len = rt ? expected_runtime_ns(p, rt->runtime) : 0;
	return bpf_ktime_get_ns() - (len < 2000 * NSEC_PER_MSEC ? len : 2000 * NSEC_PER_MSEC);
}
s32 BPF_STRUCT_OPS(lp_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{ return cpu_packing_select(p, prev_cpu, wake_flags, DSQ, 2, 4, SLICE); }
void BPF_STRUCT_OPS(lp_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (p->nr_cpus_allowed < scx_bpf_nr_cpu_ids()) {
		schedcp_dispatch(p, SCX_DSQ_GLOBAL, SLICE, enq_flags);
		return;
	}
	schedcp_dispatch_vtime(p, DSQ, SLICE, key_of(p), enq_flags);
	cpu_packing_kick(p, DSQ, 4);
}
void BPF_STRUCT_OPS(lp_dispatch, s32 cpu, struct task_struct *prev)
{
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED) &&
		dsq_peek_prev_ranks_first(DSQ, key_of(prev))) {
		prev->scx.slice = SLICE;
		return;
	}
	if (cpu_packing_may_consume(cpu, DSQ, 2, 4))
		schedcp_consume(DSQ);
}
void BPF_STRUCT_OPS(lp_running, struct task_struct *p) { runtime_tracker_running(p); }
void BPF_STRUCT_OPS(lp_stopping, struct task_struct *p, bool runnable)
{ runtime_tracker_stopping(p); }
void BPF_STRUCT_OPS(lp_quiescent, struct task_struct *p, u64 deq_flags)
{ runtime_tracker_quiescent(p, deq_flags); }
s32 BPF_STRUCT_OPS(lp_init_task, struct task_struct *p, struct scx_init_task_args *args)
{ return runtime_tracker_init_task(p); }
s32 BPF_STRUCT_OPS_SLEEPABLE(lp_init) { return scx_bpf_create_dsq(DSQ, -1); }
SCHEDCP_OPS(longpack, .select_cpu = (void *)lp_select_cpu, .enqueue = (void *)lp_enqueue,
	.dispatch = (void *)lp_dispatch, .running = (void *)lp_running,
	.stopping = (void *)lp_stopping, .quiescent = (void *)lp_quiescent,
	.init_task = (void *)lp_init_task, .init = (void *)lp_init);
""",
}


@pytest.mark.parametrize("name", NAMES)
def test_header_has_the_required_fields(name: str) -> None:
    e = parse_primitive(PRIMS / f"{name}.bpf.h")
    assert e.name == name and e.kind == "primitive"
    assert e.summary and "How to compose:" in e.description and e.goals and e.workloads
    assert e.source.count("/* ---") == 1


def test_malformed_header_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "oops.bpf.h"
    bad.write_text("/* no header */\n")
    with pytest.raises(SeedError, match=r"oops\.bpf\.h"):
        parse_primitive(bad)
    bad.write_text('/* ---\nname = "other"\n--- */\n')
    with pytest.raises(SeedError, match="file stem"):
        parse_primitive(bad)


def test_every_primitive_is_used_by_a_composition() -> None:
    used = {line.split('"')[1].removesuffix(".bpf.h") for src in COMPOSED.values()
            for line in src.splitlines() if line.startswith('#include "') and "schedcp" not in line}
    assert used == set(NAMES)


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_composed_scheduler_builds_without_warnings(vm_kit: Kit, tmp_path: Path, name: str) -> None:
    src = tmp_path / f"{name}.bpf.c"
    src.write_text(COMPOSED[name])
    cmd = ["clang-19", "-target", "bpf", "-O2", "-g", "-Wall", "-D__TARGET_ARCH_x86",
           "-I", str(vm_kit.include), "-I", str(vm_kit.include / "bpf"),
           "-I", str(REPO_ROOT / "bpf"), "-I", str(PRIMS),
           "-c", str(src), "-o", str(tmp_path / "x.o")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
