"""The step recorder of the in-guest service scripts (guest_e2e.py, guest_coexist.py): each
step's result or traceback and its time, saved as JSON after every step, so a guest that dies
halfway still leaves what it did."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path


def recorder(out: Path) -> tuple[dict, Callable[[], None], Callable[[str], Callable]]:
    """``(R, save, step)``: the results dict, its writer, and the ``@step(name)`` decorator that
    runs the function at once and records it."""
    results: dict = {"steps": {}, "timings": {}}

    def save() -> None:
        out.write_text(json.dumps(results, indent=1))

    def step(name: str):
        def wrap(fn):
            t0 = time.monotonic()
            try:
                results["steps"][name] = fn()
            except Exception:
                results["steps"][name] = {"error": traceback.format_exc()[-2000:]}
            results["timings"][name] = round(time.monotonic() - t0, 2)
            save()
            return fn
        return wrap

    return results, save, step
