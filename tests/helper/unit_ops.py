"""The helper's own operations, run inside tests/helper/unitbox.py (as the unit would run them).

VerifyPolicy(fifo), VerifySource (a user-written scheduler, and one that does not compile) go
through HelperCore exactly as the D-Bus service calls them, up to the micro-VM: the trial's
host side builds the workload probe and then stops, because booting a guest is not what this
test is about (tests/system/ boots the installed unit). Any exception is reported with the D-Bus
error the service would send. Prints one JSON document on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from schedcp_helper.core import HelperCore
from schedcp_helper.service import errors
from schedcp_helper.verifier import pipeline

STOP = "stopped before the micro-VM (unit restrictions test)"
USER_SOURCE = b"""#include "schedcp.bpf.h"
/* a user's own scheduler: one shared queue, like fifo, under another name */
#define Q 7
s32 BPF_STRUCT_OPS(mine_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
    bool idle = false;
    s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);

    if (idle)
        schedcp_dispatch(p, SCX_DSQ_LOCAL, 5000000, 0);
    return cpu;
}
void BPF_STRUCT_OPS(mine_enqueue, struct task_struct *p, u64 enq_flags)
{
    schedcp_dispatch(p, Q, 5000000, enq_flags);
}
void BPF_STRUCT_OPS(mine_dispatch, s32 cpu, struct task_struct *prev)
{
    schedcp_consume(Q);
}
s32 BPF_STRUCT_OPS_SLEEPABLE(mine_init)
{
    return scx_bpf_create_dsq(Q, -1);
}
SCHEDCP_OPS(mine,
        .select_cpu    = (void *)mine_select_cpu,
        .enqueue    = (void *)mine_enqueue,
        .dispatch    = (void *)mine_dispatch,
        .init    = (void *)mine_init);
"""
BROKEN_SOURCE = b'#include "schedcp.bpf.h"\nint f(void) { return undeclared_thing; }\n'
probes: list[str] = []


def host_side_of_trial(target, req, progress=None) -> dict:
    """What run_trial does on the host before it boots the guest: build the probe."""
    from schedcp_helper.workload.run import Mixed, invocation

    probe = invocation(Mixed()).argv[0]
    probes.append(probe)
    return {"guest_error": STOP}


def one(fn) -> dict:
    try:
        report = fn()
    except Exception as e:  # what the D-Bus service would answer
        mapped = errors.from_exception(e)
        return {"error": type(e).__name__, "message": str(e),
                "dbus": mapped.name if mapped else "internal error",
                "trace": traceback.format_exc()[-1500:]}
    return {"stages": [[s.name, s.verdict, s.message] for s in report.stages]}


def owned_by_others(*roots: str) -> list[str]:
    """Files under ``roots`` not owned by root (the sandbox's leftovers)."""
    found = []
    for root in roots:
        for d, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                p = os.path.join(d, name)
                if os.lstat(p).st_uid != 0:
                    found.append(p)
    return found


def main() -> None:
    pipeline.run_trial = host_side_of_trial
    core = HelperCore()
    out = {
        "fifo": one(lambda: core.verify_policy("fifo", {}, 1000)),
        "user": one(lambda: core.verify_source(USER_SOURCE, {}, 1000, "mine")),
        "broken": one(lambda: core.verify_source(BROKEN_SOURCE, {}, 1000, "broken")),
        "probes": probes,
        "probe_runs": [os.access(p, os.X_OK) for p in probes],
        "tmp": sorted(os.listdir("/tmp")),
        "not_root_owned": owned_by_others("/tmp", str(core.state_dir),
                                          *(str(Path(p).parent) for p in probes)),
        "state_dir": str(core.state_dir),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
