"""Write python3-deps.json: the tray's Python dependencies as one flatpak-builder module.

flatpak-builder builds offline, so every wheel is a `type: file` source with its sha256. The
requirements are pyproject.toml's [project].dependencies with the tray and local extras
(PySide6 comes from the io.qt.PySide.BaseApp base, not from here). Wheels are fetched with
`pip download` for the runtime's Python (KDE 6.8 = freedesktop 24.08: CPython 3.12, x86_64)
and named by PyPI's stable redirect URL
(files.pythonhosted.org/packages/<python tag>/<l>/<name>/<file>).

Usage: python3 gen_pip_sources.py [--python-version 3.12]   (rewrites python3-deps.json)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYPROJECT = HERE.parents[1] / "pyproject.toml"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pypi_url(wheel: str) -> str:
    dist, _version, pytag = wheel.split("-")[:3]
    return f"https://files.pythonhosted.org/packages/{pytag}/{dist[0]}/{dist}/{wheel}"


def module(requirements: list[str], python_version: str) -> dict:
    abi = "cp" + python_version.replace(".", "")
    with tempfile.TemporaryDirectory() as d:
        argv = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", d,
                "--python-version", python_version, "--implementation", "cp",
                "--abi", abi, "--abi", "abi3", "--abi", "none"]
        for p in PLATFORMS:
            argv += ["--platform", p]
        subprocess.run(argv + requirements, check=True)
        wheels = sorted(Path(d).glob("*.whl"))
        sources = [{"type": "file", "url": pypi_url(w.name),
                    "sha256": hashlib.sha256(w.read_bytes()).hexdigest()} for w in wheels]
    names = " ".join(r.split(">")[0].split("=")[0].split("<")[0].strip() for r in requirements)
    return {
        "name": "python3-deps",
        "buildsystem": "simple",
        # binary wheels for x86_64 only (apsw, pydantic-core, jiter, cryptography, ...)
        "only-arches": ["x86_64"],
        "build-commands": [
            "pip3 install --no-index --find-links=\"file://${PWD}\" --prefix=${FLATPAK_DEST} "
            f"--no-build-isolation {names}"
        ],
        "sources": sources,
    }


def requirements(pyproject: dict) -> list[str]:
    """The app's dependencies plus the tray and local-model extras (the tray offers a local
    model as its brain), without PySide6 (the base app has it)."""
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    extra = [*extras.get("tray", []), *extras.get("local", [])]
    return [r for r in [*project["dependencies"], *extra]
            if not r.lower().startswith("pyside6")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python-version", default="3.12")
    args = p.parse_args()
    deps = requirements(tomllib.loads(PYPROJECT.read_text()))
    out = HERE / "python3-deps.json"
    out.write_text(json.dumps(module(deps, args.python_version), indent=2) + "\n")
    print(f"{out}: {len(deps)} requirements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
