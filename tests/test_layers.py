"""The three import packages import each other only downwards, as the README's layout says: the
app (``schedcp``) reaches the helper over D-Bus (``schedcp.client``) and never imports
``schedcp_helper``; the helper never imports the app; ``schedcp_common`` (policy metadata, the
micro-VM, the workload probe) imports neither. Read from the source (AST), so an import inside
a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"schedcp": ROOT / "app" / "schedcp",
            "schedcp_helper": ROOT / "helper" / "schedcp_helper",
            "schedcp_common": ROOT / "helper" / "schedcp_common"}
# what each package may not import
FORBIDDEN = {"schedcp": {"schedcp_helper"},
             "schedcp_helper": {"schedcp"},
             "schedcp_common": {"schedcp", "schedcp_helper"}}


def imported_packages(source: str, module: str) -> set[str]:
    """The top-level packages ``source`` (the module named ``module``) imports, relative
    imports resolved against ``module``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.add(module.split(".")[0])  # relative: stays inside its own package
            elif node.module:
                found.add(node.module.split(".")[0])
    return found


def modules(package: str) -> list[tuple[str, Path]]:
    root = PACKAGES[package]
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def test_the_reader_sees_every_kind_of_import():
    src = ("import schedcp_helper.vm\n"
           "def f():\n    from schedcp_common.vm import guest\n"
           "from . import sibling\n")
    assert imported_packages(src, "schedcp.demo") == {"schedcp_helper", "schedcp_common",
                                                       "schedcp"}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_package_imports_upwards_or_across(package: str):
    seen = modules(package)
    assert len(seen) > 5, f"{package}: found only {len(seen)} modules under {PACKAGES[package]}"
    wrong = {mod: sorted(imported_packages(path.read_text(), mod) & FORBIDDEN[package])
             for mod, path in seen}
    assert {m: w for m, w in wrong.items() if w} == {}
