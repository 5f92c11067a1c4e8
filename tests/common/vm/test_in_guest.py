"""Where verification trials run: in place exactly when this machine is a SchedCP micro-VM
(root's mark in /run), else in a micro-VM booted per verify. Host-only: the mark is built in a
temporary folder; the system test (tests/system) checks the same answer on a booted machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schedcp_common.vm import guest
from schedcp_helper.verifier import target as target_mod
from schedcp_helper.verifier.target import Target

NOBODY = 65534


def _mark(tmp_path: Path, folder_mode: int = 0o755) -> Path:
    folder = tmp_path / "schedcp"
    folder.mkdir()
    folder.chmod(folder_mode)
    mark = folder / "micro-vm"
    mark.write_text("")
    return mark


@pytest.fixture
def root_only():
    if os.geteuid() != 0:
        pytest.fail("the mark's ownership checks need root (chown)", pytrace=False)


def test_a_root_mark_means_in_guest(tmp_path: Path, root_only) -> None:
    assert guest.in_guest(_mark(tmp_path))
    assert not guest.in_guest(tmp_path / "absent")


def test_a_mark_a_user_could_make_does_not_count(tmp_path: Path, root_only) -> None:
    mark = _mark(tmp_path)
    os.chown(mark, NOBODY, NOBODY)  # a user's file
    assert not guest.in_guest(mark)
    os.chown(mark, 0, 0)
    os.chown(mark.parent, NOBODY, NOBODY)  # in a user's folder
    assert not guest.in_guest(mark)
    os.chown(mark.parent, 0, 0)
    mark.parent.chmod(0o777)  # in a folder anyone may write
    assert not guest.in_guest(mark)
    mark.parent.chmod(0o755)
    mark.unlink()
    mark.symlink_to(tmp_path)  # not a regular file
    assert not guest.in_guest(mark)
    mark.unlink()
    mark.mkdir()
    assert not guest.in_guest(mark)


def test_the_target_says_where_trials_run(tmp_path: Path, monkeypatch, root_only) -> None:
    mark = _mark(tmp_path)
    monkeypatch.setattr(guest, "GUEST_MARK", mark)
    monkeypatch.setattr(guest.in_guest, "__defaults__", (mark,))
    t = Target.detect()  # the kit is there (VM tests need it anyway): the mark decides
    assert t.direct and t.trials == "in-place" and t.kit is None
    mark.unlink()
    t = Target.detect()
    assert not t.direct and t.trials == "micro-vm"
    assert t.kit is not None or target_mod.Path("/sys/kernel/sched_ext").is_dir()
