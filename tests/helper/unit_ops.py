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
# a user-written scheduler that passes compile and static (the agent tests' fixed one); the
# box runs this file as a script, so the repository root goes on the path for it
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.app.agent.sources import FIXED  # noqa: E402

USER_SOURCE = FIXED.encode()
BROKEN_SOURCE = b'#include "schedcp.bpf.h"\nint f(void) { return undeclared_thing; }\n'
probes: list[str] = []


def host_side_of_trial(target, req, progress=None) -> dict:
    """What run_trial does on the host before it boots the guest: build the probe."""
    from schedcp_common.workload.run import Mixed, invocation

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
