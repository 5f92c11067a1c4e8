"""``python -m schedcp_helper.arms``: one of our schedulers compiled, or loaded straight into
this kernel and switched on and off on request, for A/B runs inside a throwaway guest.

This is the helper's compiler and loader run as a program, with none of its verification,
canary or D-Bus: it is for a guest the caller booted and will throw away (``schedcp demo``'s
latency part, whose virtual-time guest would take minutes for the verifier's stages). The app
drives it over a pipe and imports none of it:

- ``compile NAME OUT``: ``bpf/NAME.bpf.c`` compiled by the verifier's sandboxed compile, with
  the guest kit's headers, written to ``OUT``;
- ``serve OBJ TUNABLES_JSON``: loads ``OBJ`` with those tunables, prints ``ready``, then reads
  ``attach`` / ``detach`` lines and answers each with ``ok`` or ``error: ...``; closes the
  scheduler at end of input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path


def compile_policy(name: str, out: Path) -> None:
    from schedcp_common.vm.kit import find_kit

    from .core import default_bpf_dir
    from .verifier.compile import compile_source

    bpf = default_bpf_dir()
    obj = compile_source((bpf / f"{name}.bpf.c").read_bytes(), [find_kit().include],
                         [bpf / "schedcp.bpf.h"])
    out.write_bytes(obj.data)


class Arm:
    """One scheduler object, loaded once; attached and detached per request."""

    def __init__(self, obj: str, tunables: dict[str, int]) -> None:
        self.obj, self.tunables = obj, tunables
        self.sched = self._fresh()

    def _fresh(self):
        from .loader import BpfScheduler

        sched = BpfScheduler().open(self.obj)
        sched.set_tunables(self.tunables)
        sched.load()
        return sched

    def attach(self) -> None:
        if self.sched.attached:
            return
        try:
            self.sched.attach()
        except Exception:  # a struct_ops map that cannot be attached twice: load anew
            self.sched.close()
            self.sched = self._fresh()
            self.sched.attach()

    def detach(self) -> None:
        self.sched.detach()

    def close(self) -> None:
        self.sched.close()


def serve(obj: str, tunables: dict[str, int]) -> int:
    arm = Arm(obj, tunables)
    print("ready", flush=True)
    actions: dict[str, Callable[[], None]] = {"attach": arm.attach, "detach": arm.detach}
    try:
        for line in sys.stdin:
            action = actions.get(line.strip())
            if action is None:
                print(f"error: unknown request {line.strip()!r}", flush=True)
                continue
            try:
                action()
            except Exception as e:
                print(f"error: {type(e).__name__}: {e}".replace("\n", " "), flush=True)
            else:
                print("ok", flush=True)
    finally:
        arm.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "compile":
        try:
            compile_policy(args[1], Path(args[2]))
        except Exception as e:  # no clang / kit headers: the caller shows this one line
            print(e, file=sys.stderr)
            return 1
        return 0
    if len(args) == 3 and args[0] == "serve":
        return serve(args[1], json.loads(args[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
