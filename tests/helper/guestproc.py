"""What the in-guest deploy scripts (guest_deploy.py, guest_faults.py) read of the guest: the
kernel's sched_ext state, waiting for one, and the processes running an executable."""

from __future__ import annotations

import os
import time
from pathlib import Path

from schedcp_helper.scxstate import read_state


def kernel() -> dict:
    st = read_state()
    return {"state": st.state, "ops": st.ops}


def wait_state(want: str, timeout: float = 10.0) -> float | None:
    """Seconds until the kernel's sched_ext state is ``want``, None if not within ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if read_state().state == want:
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


def pids_of(exe: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.readlink(p / "exe") == exe:
                    out.append(int(p.name))
            except OSError:
                pass
    return out
