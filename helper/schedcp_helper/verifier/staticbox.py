"""The static stage in a box: ELF/BTF parsing and the checks run as ``nobody`` under a time budget.

pyelftools and bpftool parse a hostile object; their cost grows with the object (the checks are
roughly quadratic in functions) and bpftool is C. So they run in a child process with the
compile sandbox's limits (no network, no privileges, CPU/memory/file limits) and a wall-clock
budget, in a root-owned folder holding copies of the object, bpftool and the kernel's function
list. The child prints findings as JSON; the helper reads at most ``MAX_OUTPUT`` bytes of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from .bpfobj import ObjectError, parse_object
from .compile import _sandbox, sandbox_failed, sandbox_ids
from .static import Finding, analyse

# wall clock, as compile's WALL_SECONDS: the work is bounded by the sandbox's RLIMIT_CPU (60 s);
# the wall budget only catches a child that stops making progress, and must leave room for a
# loaded host (under TCG at load 13 the checks of a 0.7 MB object took over 30 s of wall)
STATIC_SECONDS = 90.0
MAX_OUTPUT = 1 << 20
PKG_ROOT = Path(__file__).resolve().parents[2]  # the folder holding schedcp_helper


class StaticTimeout(Exception):
    """The static stage used up its time budget and was killed."""


def run_static(obj: Path, bpftool: Path, kernel_funcs: frozenset[str], tunables: dict[str, int],
               budget: float = STATIC_SECONDS) -> tuple[str, list[Finding]]:
    """(ops name, findings) for ``obj``; ObjectError if it cannot be read as a scheduler."""
    uid, gid = sandbox_ids()
    with tempfile.TemporaryDirectory(prefix="schedcp-static-") as d:
        box = Path(d)
        box.chmod(0o755)
        shutil.copyfile(obj, box / "sched.bpf.o")
        shutil.copyfile(bpftool, box / "bpftool")
        (box / "bpftool").chmod(0o755)
        (box / "funcs.txt").write_text("\n".join(sorted(kernel_funcs)))
        (box / "tunables.json").write_text(json.dumps(tunables))
        for p in ("sched.bpf.o", "funcs.txt", "tunables.json"):
            (box / p).chmod(0o644)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-s", "-m", "schedcp_helper.verifier.staticbox", str(box)],
                cwd=box, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                env={"PATH": "/usr/bin:/bin", "LANG": "C", "PYTHONPATH": str(PKG_ROOT),
                     "HOME": str(box), "TMPDIR": str(box)},
                preexec_fn=_sandbox(uid, gid))
        except subprocess.SubprocessError:  # the set-up before exec failed
            raise sandbox_failed("static-check") from None
        try:
            out, err = proc.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # bpftool too, not only the child
            proc.communicate()
            raise StaticTimeout(f"the static checks took longer than {budget:g} s and were "
                                "killed") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    try:
        result = json.loads(out[:MAX_OUTPUT])
    except ValueError:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"rc {proc.returncode}"]
        raise ObjectError(f"the static checks crashed: {tail[0][:200]}") from None
    if "error" in result:
        raise ObjectError(str(result["error"])[:500])
    return str(result["ops"])[:128], [Finding(**f) for f in result["findings"]]


def _main(box: Path) -> None:
    try:
        info = parse_object(box / "sched.bpf.o", box / "bpftool")
        funcs = frozenset((box / "funcs.txt").read_text().split())
        tunables = json.loads((box / "tunables.json").read_text())
        findings = analyse(info, funcs, tunables)
    except ObjectError as e:
        print(json.dumps({"error": str(e).replace(str(box) + "/", "")}))
        return
    print(json.dumps({"ops": info.ops_name, "findings": [asdict(f) for f in findings]}))


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
