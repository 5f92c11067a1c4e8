"""`schedcp status|list|verify|deploy|keep|revert|history` against the real stack; exit codes and
messages for an absent helper, a refused user and a kernel without sched_ext."""

from __future__ import annotations

import json
import subprocess

import pytest

from schedcp.cli.main import main
from tests.dbus_stack import USER_NO, USER_ROOT

RUN_AS_USER = ("import argparse, sys; from schedcp.cli import helper as helpercmd; "
               "p = argparse.ArgumentParser(); s = p.add_subparsers(dest='command'); "
               "helpercmd.register(s); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")



@pytest.fixture
def on_stack(stack, monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", stack.address)
    return stack


def test_status_json_and_text(on_stack, capsys):
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["supported"] is False
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "sched_ext: not supported: this kernel (Linux " in out and "schedcp demo" in out


def test_list_history_revert(on_stack, capsys):
    assert main(["list"]) == 0
    assert "fifo" in capsys.readouterr().out
    assert main(["revert", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "default"
    assert main(["history", "--json", "--limit", "2"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_verify_refusal_exit_status(on_stack, tmp_path, capsys):
    src = tmp_path / "bad.bpf.c"
    src.write_text("int x = ;")
    assert main(["verify", "--source", str(src)]) == 1
    assert "refused at compile" in capsys.readouterr().out


def test_no_sched_ext_is_explained(on_stack, capsys):
    assert main(["deploy", "--scx", "scx_simple"]) == 5
    assert "sched_ext" in capsys.readouterr().err


def test_unknown_deployment(on_stack, capsys):
    assert main(["keep", "abcdef"]) == 1
    assert "no deployment 'abcdef'" in capsys.readouterr().err


def test_helper_absent(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/nobus")
    assert main(["status"]) == 3
    err = capsys.readouterr().err
    assert "not reachable" in err or "cannot connect" in err
    assert "installed" in err


def test_refused_user_gets_exit_4(stack):
    env = {"DBUS_SYSTEM_BUS_ADDRESS": stack.address, "PYTHONPATH": str(USER_ROOT / "lib")}
    r = subprocess.run(["runuser", "-u", USER_NO, "--", "env",
                        *(f"{k}={v}" for k, v in env.items()), str(stack.python), "-c",
                        RUN_AS_USER, "revert"], capture_output=True, text=True, cwd="/")
    assert r.returncode == 4, r.stderr
    assert "not authorized" in r.stderr and "polkit" in r.stderr
