"""Nothing in the project may depend on one machine's state: a literal path under /tmp, a home
folder or this workplace's checkout works where it was written and nowhere else (a test once ran
the guest side with a virtualenv at /tmp/v that only its author's machine had).

A line that names such a path as data (a fake process's executable, a path inside a test root or
the guest) says so with ``not a host path`` on that line or the one above.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("app/", "helper/", "bpf/", "bench/", "tests/", "packaging/", "resources/", ".ci/",
           "docs/", "Makefile", "README.md", "pyproject.toml")
TEXT = re.compile(r"\.(py|sh|c|h|md|toml|txt|cfg|ini|in|service|desktop|conf|rules|policy|"
                  r"xml|yml|yaml)$|(^|/)(Makefile|run|rules|control)$")
MACHINE_PATH = re.compile(
    r"(?<![\w.$})/-])"  # a path that starts here, not the tail of ${X}/tmp/… or a/tmp/…
    r"(/(?:var/)?tmp/[\w.-]+/"  # a fixed folder under /tmp
    r"|/root/|/home/\w"  # someone's home
    r"|/work/|/Users/\w)"  # a workplace
)
ALLOW = "not a host path"


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk it
        out = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
               and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]
    here = str(Path(__file__).relative_to(ROOT))  # names such paths to test the guard itself
    return [f for f in out if f.startswith(SCANNED) and TEXT.search(f) and f != here]


def machine_paths(text: str) -> list[tuple[int, str]]:
    lines = text.splitlines()
    found = []
    for n, line in enumerate(lines):
        if MACHINE_PATH.search(line) and ALLOW not in line and not (n and ALLOW in lines[n - 1]):
            found.append((n + 1, line.strip()[:160]))
    return found


def test_the_guard_sees_what_it_is_for():
    tmp_v = "/tmp" + "/v/bin/python"  # built, so that this file does not name one itself
    bad = [f'run(f"{tmp_v} {{SCRIPT}}", cfg)', "/root/.cache/schedcp/vm/x",
           "cd /home/alice/src", "PYTHONPATH=/work/main/app", "  /var/tmp/build/x.o"]
    assert [n for n, _ in machine_paths("\n".join(bad))] == [1, 2, 3, 4, 5]
    fine = ["tempfile.mkdtemp()", "${TMPDIR:-/tmp}/x", "/tmp", "/tmp/schedcp-leak-{id}",
            "/usr/share/schedcp/bpf/", "~/.cache/schedcp", "/opt/schedcp-test/venv",
            "exe='/opt/sim/bin/sim'",
            "/home", "# not a host path", "exe='/home/u/.steam/steam'  # not a host path"]
    assert machine_paths("\n".join(fine)) == []


def test_no_machine_specific_paths_in_the_project():
    offenders = []
    for rel in tracked_files():
        path = ROOT / rel
        if not path.is_file():
            continue
        for n, line in machine_paths(path.read_text(errors="replace")):
            offenders.append(f"{rel}:{n}: {line}")
    assert not offenders, ("paths that exist only on one machine (use the project's own "
                           "locations, sys.executable, tmp_path, or mark data with "
                           f"'{ALLOW}'):\n" + "\n".join(offenders))
