"""Screenshots of the windows for docs/screenshots (run by hand; the tray menu, notification,
settings and analysis-progress shots come from the real-tray test with SCHEDCP_SCREENSHOTS set:
``SCHEDCP_SCREENSHOTS=docs/screenshots pytest tests/app/tray/test_tray_x11.py``):

    QT_QPA_PLATFORM=offscreen python -m tests.app.tray.screenshots docs/screenshots

The history window shows a real run: docs/screenshots/demo-history.json is what
``schedcp demo --iterations 3 --save FILE`` wrote in the sched_ext micro-VM (every step of two
optimize runs of a batch workload and the helper's deployments), read through the window's
demo loader (``schedcp.tray.records.from_demo``). The kept deployment is selected: its
before/after makespans, what changed, why and the effect.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

DEMO = Path(__file__).resolve().parents[3] / "docs" / "screenshots" / "demo-history.json"


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication([sys.argv[0]])

    from schedcp.tray.history_window import HistoryWindow
    from schedcp.tray.records import from_demo

    records = from_demo(json.loads(DEMO.read_text()))
    win = HistoryWindow(lambda: records)
    win.resize(1000, 660)
    win.show()
    while win.loading:
        app.processEvents()
    kept = next(i for i, r in enumerate(win.rows) if r.state == "kept")
    win.tree.setCurrentItem(win.tree.topLevelItem(kept))
    app.processEvents()
    time.sleep(0.3)
    app.processEvents()
    win.grab().save(str(out / "history.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
