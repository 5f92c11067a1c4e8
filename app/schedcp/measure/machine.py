"""Where a measurement was made: stored with every lesson, because an effect measured on one
kernel, CPU model or core count says little about another."""

from __future__ import annotations

import os
import platform
from functools import lru_cache


@lru_cache(maxsize=1)
def machine() -> dict[str, object]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"kernel": platform.release(), "cpu_model": model or platform.machine(),
            "ncpus": os.cpu_count() or 1}
