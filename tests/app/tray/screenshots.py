"""Screenshots of the windows for docs/screenshots (run by hand; the tray menu, notification,
settings and analysis-progress shots come from the real-tray test with SCHEDCP_SCREENSHOTS set:
``SCHEDCP_SCREENSHOTS=docs/screenshots pytest tests/app/tray/test_tray_x11.py``):

    QT_QPA_PLATFORM=offscreen python -m tests.app.tray.screenshots docs/screenshots

The history window shows example records (this host cannot deploy: no sched_ext).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

T0 = 1795840000.0
EXAMPLE_HISTORY = [
    {"id": "a1", "name": "scx_rusty", "kind": "scx", "tunables": {}, "state": "reverted",
     "started": T0 - 7200, "reason": "runnable task stall", "previous": "", "metrics": [],
     "app": "blender", "why": "build-like: many short CPU-bound tasks", "source": "agent"},
    {"id": "a2", "name": "vtime", "kind": "bpf", "tunables": {"slice_us": 3000},
     "state": "kept", "started": T0, "reason": "", "previous": "",
     "metrics": [{"t": T0 + 1 + i, "value": v, "baseline": 4.1}
                 for i, v in enumerate((3.1, 2.7, 2.9, 2.6, 2.5, 2.8, 2.6, 2.4, 2.7, 2.5))],
     "app": "Firefox", "goal": "responsiveness", "source": "agent",
     "why": "interactive workload: short slices and wake-up preemption cut queueing",
     "before": {"runqueue_wait_ms_per_s": 4.1, "wake_p99_ms": 3.2},
     "after": {"runqueue_wait_ms_per_s": 2.6, "wake_p99_ms": 2.1}, "improvement": 0.34},
    {"id": "a3", "name": "ljf", "kind": "bpf", "tunables": {}, "state": "kept",
     "started": T0 + 3600, "reason": "", "previous": "vtime", "metrics": [],
     "app": "make", "goal": "throughput", "source": "profile", "why": "profile for make",
     "effect": "makespan \u221212 %"},
]


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication([sys.argv[0]])

    from schedcp.tray.history_window import HistoryWindow

    win = HistoryWindow(lambda: EXAMPLE_HISTORY)
    win.resize(980, 640)
    win.show()
    while win.loading:
        app.processEvents()
    win.tree.setCurrentItem(win.tree.topLevelItem(1))
    app.processEvents()
    time.sleep(0.3)
    app.processEvents()
    win.grab().save(str(out / "history.png"))

    return 0


if __name__ == "__main__":
    sys.exit(main())
