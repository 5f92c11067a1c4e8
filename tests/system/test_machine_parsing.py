"""Host-only checks of how the system test reads what its machine wrote (hostile data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.system.machine import cmdline, exit_status, read_guest_file, sections


def test_sections_and_exit_status() -> None:
    s = sections("noise\n==== a\nx\nrc=0\n==== b-2\nrc=1\nrc=3\n==== c\n")
    assert list(s) == ["a", "b-2", "c"]
    assert exit_status(s["a"]) == 0 and exit_status(s["b-2"]) == 3 and exit_status(s["c"]) is None
    assert exit_status("rc=0 but not alone\n") is None


def test_a_section_the_guest_repeats_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        sections("==== status\nrc=1\n==== status\nrc=0\n")


def test_guest_files_are_read_as_bounded_regular_files(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"ok\x00\xff" + b"x" * 100)
    assert read_guest_file(tmp_path / "log", limit=6) == "ok\ufffdxx"
    assert read_guest_file(tmp_path / "absent") == ""
    (tmp_path / "link").symlink_to(tmp_path / "log")
    with pytest.raises(OSError):  # a planted symlink is not followed (ELOOP)
        read_guest_file(tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):
        read_guest_file(tmp_path / "fifo")


def test_the_boot_line_does_not_name_schedcp() -> None:
    # a scheduler on trial in this machine reads /proc/cmdline as easily as in the micro-VM
    assert "schedcp" not in cmdline().lower()
