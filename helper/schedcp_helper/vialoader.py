"""A packaged ``scx_*`` scheduler run by scx_loader on our behalf, so that scx_loader stays the
one source of truth for what runs (its ``CurrentScheduler``, its tray, ``scxctl``).

Used instead of starting the binary ourselves (``scxrun``) when scx_loader is on the bus and
lists the name in ``SupportedSchedulers``; our own BPF policies never go this way (scx_loader
cannot load them). What differs from a child of ours, and what the guard can still watch:

- the process is scx_loader's child, not ours: its output goes to scx_loader's journal, and it
  does not die with the helper (a helper crash leaves it running; the next start stops it
  unless it is the kept one, see ``HelperCore.recover``);
- the guard sees sysfs (state, ops, ``enable_seq``), the kernel log (the ejection reason) and
  the process holding the struct_ops link, found when it started: a new ``enable_seq`` or a
  gone holder means scx_loader restarted it after an ejection (its retry loop, the "ejection
  loop" of sched-ext/scx 3791), which trips the breaker like any ejection;
- stopping asks scx_loader (``StopScheduler``), and only while scx_loader still runs ours
  with our arguments: what a user switched to meanwhile is theirs, and not fought.

The D-Bus calls go through ``LoaderPort``, which the service layer provides.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Protocol

from .atomic import write_atomic
from .coexist import LoaderView, identify
from .errors import HelperError
from .scxstate import kernel_events, last_seq, read_state

VIA = "scx_loader"
log = logging.getLogger(__name__)


class LoaderPort(Protocol):
    """scx_loader over D-Bus, callable from a worker thread (never from the bus loop)."""

    def view(self) -> LoaderView | None: ...

    def switch(self, name: str, args: list[str]) -> None: ...

    def stop(self) -> None: ...


class ViaLoaderError(HelperError):
    """scx_loader did not get the scheduler running; the message says why."""


class ViaLoader:
    """One running deployment held through scx_loader (``Running`` for the Deployer)."""

    via = VIA
    output = ""  # scx_loader's journal has it; we never see the child's output

    def __init__(self, port: LoaderPort, name: str, args: list[str], marker: Path,
                 adopt: bool = False, timeout: float = 30.0, poll: float = 0.05):
        self.port, self.name, self.args, self.marker = port, name, list(args), marker
        before = read_state()
        if not before.supported:
            raise ViaLoaderError("this kernel lacks sched_ext (/sys/kernel/sched_ext is missing)")
        if adopt:  # after a restart: scx_loader still runs our kept one
            st = before
        else:
            seq = last_seq()
            write_atomic(marker, json.dumps({"name": name, "args": self.args}))
            try:
                port.switch(name, self.args)
                st = self._wait(before, timeout, poll, seq)
            except BaseException:
                with contextlib.suppress(Exception):  # scx_loader may still be retrying it
                    if self.still_ours(port.view()):
                        port.stop()
                self._release()
                raise
        self.ops, self.seq = st.ops, st.enable_seq
        self.pid = identify(st, loader=port.view()).pid

    def _wait(self, before, timeout: float, poll: float, seq: int | None):
        deadline = time.monotonic() + timeout
        while True:
            st = read_state()
            moved = st.enable_seq is None or st.enable_seq > (before.enable_seq or 0)
            if st.enabled and moved and self._ours_in(st.ops):
                return st
            if time.monotonic() > deadline:
                why = next((f" ({e.explanation})" for e in reversed(kernel_events(seq))
                            if e.kind == "disabled"), "")
                raise ViaLoaderError(f"scx_loader did not get {self.name} enabled within "
                                     f"{timeout:g} s{why}; its journal has the scheduler's "
                                     "output")
            time.sleep(poll)

    def _ours_in(self, ops: str) -> bool:
        short = self.name.removeprefix("scx_")
        return bool(ops) and (ops in (self.name, short) or ops.startswith(short + "_"))

    def still_ours(self, view: LoaderView | None) -> bool:
        """scx_loader runs our scheduler with our arguments (not something switched to since)."""
        return view is not None and view.current == self.name and list(view.args) == self.args

    def loader_view(self) -> LoaderView | None:
        """scx_loader's account now (None when it does not answer): who replaced ours."""
        try:
            return self.port.view()
        except Exception:
            return None

    def alive(self) -> bool:
        """Attached as we started it: same enable_seq, its process still there. Local reads only
        (the guard polls every second; no D-Bus round trip on that path)."""
        st = read_state()
        if not (st.enabled and st.ops == self.ops):
            return False
        if self.seq is not None and st.enable_seq != self.seq:
            return False
        return not self.pid or os.path.exists(f"/proc/{self.pid}")

    def stop(self, settle: float = 10.0) -> None:
        """Never raises (a revert or the helper's exit goes on): when scx_loader cannot be
        reached its scheduler stays, and Status names it as scx_loader's."""
        try:
            if self.still_ours(self.port.view()):
                self.port.stop()
                deadline = time.monotonic() + settle
                while read_state().state not in ("disabled", "") and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
        except Exception as e:
            log.warning("could not ask scx_loader to stop %s: %s", self.name, e)
        finally:
            self._release()

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            self.marker.unlink()


def left_behind(marker: Path) -> tuple[str, list[str]] | None:
    """(name, args) a previous helper asked scx_loader to run and never stopped, if any."""
    try:
        d = json.loads(marker.read_text())
        return str(d["name"]), [str(a) for a in d["args"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
