"""Which deployments go to scx_loader (launch.Launcher): packaged schedulers it lists as
supported, never our BPF policies, nothing when it is absent. The port records what would
have been sent; the D-Bus path itself is tested in service/test_coexist.py (real bus)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schedcp_common.policy import default_policies_dir, load_policies
from schedcp_helper.coexist import LoaderView
from schedcp_helper.launch import Launcher, LaunchError
from schedcp_helper.records import Spec


class Port:
    def __init__(self, view: LoaderView | None):
        self.v, self.sent = view, []

    def view(self):
        return self.v

    def switch(self, name, args):
        self.sent.append(("switch", name, args))

    def stop(self):
        self.sent.append(("stop",))


@pytest.fixture
def launcher(tmp_path):
    return Launcher(tmp_path / "artifacts", load_policies(default_policies_dir()),
                    marker=tmp_path / "via-loader.json")


def test_our_bpf_policies_never_go_to_scx_loader(launcher):
    launcher.loader = port = Port(LoaderView(supported=("fifo", "scx_bpfland")))
    with pytest.raises(LaunchError, match="verified artifact"):
        launcher(Spec("bpf", "fifo", {}, "a" * 64))
    assert port.sent == []


def test_only_a_name_scx_loader_supports_goes_to_it(launcher):
    policy = launcher.policies["scx_bpfland"]
    spec = Spec("scx", "scx_bpfland", policy.resolved({"slice_us": 5000}))
    launcher.loader = Port(LoaderView(supported=("scx_lavd",)))
    assert launcher._via_loader(spec) is None
    launcher.loader = Port(None)  # not on the bus
    assert launcher._via_loader(spec) is None
    launcher.loader = None
    assert launcher._via_loader(spec) is None


def test_a_left_behind_canary_is_stopped_unless_it_is_the_kept_one(launcher):
    args = ["--slice-us", "5000", "--slice-us-lag", "40000"]
    marker: Path = launcher.marker
    kept = Spec("scx", "scx_bpfland",
                launcher.policies["scx_bpfland"].resolved({"slice_us": 5000}))
    launcher.loader = port = Port(LoaderView("scx_bpfland", 0, tuple(args)))
    marker.write_text(json.dumps({"name": "scx_bpfland", "args": args}))
    assert launcher.release_left_behind(kept) == "" and marker.exists() and port.sent == []
    assert launcher.release_left_behind(None) == "scx_bpfland"
    assert port.sent == [("stop",)] and not marker.exists()
