"""Guest output is hostile bounded data, and the trial guest sees only a minimal root."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from schedcp_common.vm import Outcome
from schedcp_common.vm.guestfiles import GuestFileError, read_bounded
from schedcp_common.workload.run import Mixed, invocation
from schedcp_helper.verifier.target import Target
from schedcp_helper.verifier.token import load_secret
from schedcp_helper.verifier.trial import PKG_ROOT, trial_cpus, trial_root


def test_a_regular_small_file_is_read(tmp_path):
    (tmp_path / "result.json").write_text('{"ok": true}')
    assert read_bounded(tmp_path / "result.json") == b'{"ok": true}'


@pytest.mark.parametrize("kind", ["symlink-secret", "symlink-zero", "fifo", "huge", "missing"])
def test_planted_results_are_refused(tmp_path, kind):
    """The host-side reader followed a planted symlink (is_file() + read_text(), no cap):
    -> a 0600 key came back, -> /dev/zero was an unbounded read."""
    res = tmp_path / "result.json"
    secret = tmp_path / "secret"
    secret.write_bytes(b"k" * 32)
    secret.chmod(0o600)
    if kind == "symlink-secret":
        res.symlink_to(secret)
    elif kind == "symlink-zero":
        res.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(res)  # a reader without O_NONBLOCK would block here forever
    elif kind == "huge":
        with res.open("wb") as f:
            f.truncate(64 * 1024 * 1024)
    with pytest.raises(GuestFileError):
        read_bounded(res, limit=8 * 1024 * 1024)


@pytest.mark.vm
def test_the_trial_guest_sees_neither_host_secrets_nor_the_token_key(guest, tmp_path):
    target = Target.detect()
    root, python = trial_root(target, Path(invocation(Mixed()).argv[0]))
    key_path = tmp_path / "state" / "token.key"
    key = load_secret(key_path)
    script = (
        f"cat /etc/shadow {key_path} 2>/dev/null | sha256sum > seen.txt\n"
        f"ls /etc /var/lib /home 2>&1 > listing.txt\n"
        f"PYTHONPATH={PKG_ROOT} {python} -S -c 'import schedcp_helper.loader, json; "
        f"print(\"python-ok\")'\n"
        "ln -s /etc/shadow planted.json\n"
    )
    r = guest(script, root=root)
    assert r.result.outcome is Outcome.EXITED and r.result.returncode == 0, r.output
    assert "python-ok" in r.output  # the trial's interpreter and our package are there
    seen = (r.out_dir / "seen.txt").read_text().split()[0]
    assert seen == hashlib.sha256(b"").hexdigest()  # nothing of either file was readable
    assert hashlib.sha256(key).hexdigest() != seen
    assert "shadow" not in (r.out_dir / "listing.txt").read_text()
    with pytest.raises(GuestFileError):  # what a guest plants is not followed on the host
        read_bounded(r.out_dir / "planted.json")


@pytest.mark.vm
def test_a_scheduler_cannot_tell_it_is_on_trial_by_hostname_or_cmdline(guest):
    """BPF reads the UTS nodename and the boot command line easily: neither may say
    "schedcp" (it was hostname schedcp-guest and schedcp.guest=1 on the cmdline)."""
    import platform
    import sys

    r = guest("cat /proc/cmdline\nuname -n\n"
              f"{sys.executable} -c 'from schedcp_common.vm.guest import in_guest; "
              "print(in_guest())'\n")
    assert r.result.returncode == 0, r.output
    cmdline, nodename, inside = r.output.splitlines()[:3]
    assert "schedcp" not in cmdline.lower() and "rdinit" not in cmdline
    assert nodename == (platform.node() or "localhost")
    assert inside == "True"  # our own code still knows


def test_the_trial_gets_the_machines_cpu_count_capped_for_tcg():
    assert trial_cpus(2, kvm=False) == 2
    assert trial_cpus(1, kvm=False) == 2  # never fewer than two: SMP paths must run
    assert trial_cpus(32, kvm=False) == 4 and trial_cpus(32, kvm=True) == 16
    assert trial_cpus(8, kvm=True) == 8
