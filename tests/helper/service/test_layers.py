"""The service's walls (issue 19): HelperCore is the only way into the helper's domain."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import schedcp_helper.service as service
from schedcp_helper.core import HelperCore

SERVICE = Path(service.__file__).parent


def _public_methods() -> set[str]:
    return {n for n, v in inspect.getmembers(HelperCore)
            if not n.startswith("_") and callable(v) and not isinstance(v, property)}


def _core_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """Attributes read off ``core`` or ``self.core``."""
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = node.value
            if (isinstance(base, ast.Name) and base.id == "core") or (
                    isinstance(base, ast.Attribute) and base.attr == "core"):
                uses.append((node.lineno, node.attr))
    return uses


def test_the_service_touches_only_the_cores_public_methods():
    methods = _public_methods()
    assert {"deploy", "switch", "keep", "revert", "status", "schedulers"} <= methods
    assert "deployer" not in methods and "policies" not in methods
    bad, seen = [], 0
    for path in sorted(SERVICE.glob("*.py")):
        for line, attr in _core_uses(ast.parse(path.read_text())):
            seen += 1
            if attr not in methods:
                bad.append(f"{path.name}:{line}: core.{attr}")
    assert seen > 15  # the check reads the real call sites
    assert bad == []


def test_the_check_would_catch_a_reach_into_the_deployer():
    tree = ast.parse("def f(self):\n    return self.core.deployer.current, core.state_dir\n")
    assert {a for _, a in _core_uses(tree)} == {"deployer", "state_dir"}
    assert not {"deployer", "state_dir"} & _public_methods()
