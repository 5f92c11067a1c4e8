"""The micro-VM both parts of `schedcp demo` run in: one command line in a guest, its output
streamed to ours. A module of its own so that the batch part (``schedcp.demo``) and the latency
part (``schedcp.demo_latency``) both import it and not each other."""

from __future__ import annotations

import sys
from pathlib import Path


def boot(line: str, out_dir: Path, env: dict[str, str], announce: bool = False,
         **cfg) -> int | None:
    """Run ``line`` in a micro-VM (``cfg``: GuestConfig fields), streaming what it prints;
    returns its exit status, None when the guest cannot start (the reason on stderr)."""
    from schedcp_common.vm import GuestError, KitError, default_config, guest

    try:
        config = default_config(out_dir=out_dir, env=env, **cfg)
        if announce:
            print(f"booting the sched_ext micro-VM ({config.kernel.name}) ...", flush=True)
        r = guest.run(line, config, lambda b: (sys.stdout.buffer.write(b),
                                               sys.stdout.buffer.flush()))
    except (GuestError, KitError) as e:
        print(f"schedcp demo: {e}", file=sys.stderr)
        return None
    if r.message:
        print(f"schedcp demo: {r.message}", file=sys.stderr)
    return r.returncode
