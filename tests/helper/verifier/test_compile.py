"""Stage (a): hostile sources are refused before clang, and clang runs boxed."""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pytest

from schedcp_helper.verifier.compile import (
    MAX_SOURCE_BYTES,
    CompileError,
    InputError,
    _sandbox,
    check_source,
    compile_source,
    scrub,
)

from .conftest import BAD, BPF


@pytest.mark.parametrize("source, message", [
    (b"", "source is empty"),
    (b"int x;\0", "NUL bytes"),
    (b"\xff\xfe int x;", "not UTF-8"),
    (b"#include </etc/shadow>\n", "#include </etc/shadow> is not allowed"),
    (b'#include "../../etc/passwd"\n', "is not allowed"),
    (b"  #  include_next <vmlinux.h>\n", "#include_next"),
    (b'asm(".incbin \\"/etc/shadow\\"");', "inline assembly"),
    (b'__asm__("r0 = 1");', "inline assembly"),
    (b"#if __has_include(</root/.ssh/id_rsa>)\n#endif\n", "__has_include"),  # not a host path
    (b'#line 1 "x"\n', "#line"),
])
def test_hostile_sources_are_refused_with_the_reason(source, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        check_source(source)


def test_comments_and_compiler_barriers_are_fine():
    check_source(b'// asm and #include <x> in a comment\n/* asm */ int x;\n'
                 b'void f(void) { asm volatile("" ::: "memory"); }\n')


def test_a_huge_source_is_refused_before_compiling(tmp_path):
    spec = importlib.util.spec_from_file_location("huge", BAD / "huge_source.py")
    huge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(huge)
    path = huge.generate(tmp_path / "huge.bpf.c", 4)
    assert path.stat().st_size > MAX_SOURCE_BYTES
    with pytest.raises(InputError, match="the limit is"):
        compile_source(path.read_bytes(), [], [])


def test_compile_errors_come_back_without_sandbox_paths(vm_kit):
    src = (BAD / "compile_error.bpf.c").read_bytes()
    with pytest.raises(CompileError) as e:
        compile_source(src, [vm_kit.include], [BPF / "schedcp.bpf.h"])
    assert "error:" in e.value.log and "schedcp-cc-" not in e.value.log
    assert str(e.value).startswith("compile failed: sched.bpf.c:")


def test_a_good_source_compiles_to_a_bpf_object(vm_kit):
    obj = compile_source((BPF / "fifo.bpf.c").read_bytes(), [vm_kit.include],
                         [BPF / "schedcp.bpf.h"])
    assert obj.data[:4] == b"\x7fELF" and obj.data[18] == 247  # e_machine EM_BPF
    again = compile_source((BPF / "fifo.bpf.c").read_bytes(), [vm_kit.include],
                           [BPF / "schedcp.bpf.h"])
    assert again.data == obj.data  # reproducible: verdicts are cached by the object's hash


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to nobody and a private netns need root")
def test_the_sandbox_drops_to_nobody_without_network_or_privileges():
    probe = (
        "import os, socket, resource\n"
        "s = socket.socket(); s.settimeout(1)\n"
        "try:\n    s.connect(('127.0.0.1', 22)); net = 'reachable'\n"
        "except OSError as e:\n    net = e.errno\n"
        "print(os.getuid(), os.getgid(), os.getgroups(), net, "
        "resource.getrlimit(resource.RLIMIT_CPU)[0], open('/proc/self/status').read()"
        ".split('NoNewPrivs:')[1].split()[0])\n"
    )
    nobody = pwd.getpwnam("nobody")
    r = subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True, text=True,
                       preexec_fn=_sandbox(nobody.pw_uid, nobody.pw_gid), cwd="/")
    uid, gid, groups, net, cpu, nnp = r.stdout.split(maxsplit=5)[:6] if r.stdout else [""] * 6
    assert r.returncode == 0, r.stderr
    assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
    assert groups == "[]"
    assert net == "101"  # ENETUNREACH: a fresh network namespace has not even loopback up
    assert int(cpu) == 60
    assert nnp.strip() == "1"


BYPASSES = sorted(BAD.glob("bypass_*.bpf.c"))
PASSWD_LINES = [ln for ln in Path("/etc/passwd").read_text().splitlines() if ln.strip()]


@pytest.mark.parametrize("path", BYPASSES, ids=lambda p: p.stem)
def test_text_filter_bypasses_are_refused_by_what_clang_did(vm_kit, path):
    """Each of these passes the text filter; clang's dependency list or its generated assembly
    gives it away, and nothing of the host file reaches the caller."""
    check_source(path.read_bytes())  # the text filter alone is talked around
    with pytest.raises(CompileError) as e:
        compile_source(path.read_bytes(), [vm_kit.include], [BPF / "schedcp.bpf.h"])
    said = f"{e.value}\n{e.value.log}"
    assert "outside the allowed headers" in said or "inline assembly is not allowed" in said
    assert not any(line in said for line in PASSWD_LINES), said


def test_a_crashing_compiler_leaves_no_dump_behind(vm_kit):
    tmp = Path(tempfile.gettempdir())

    def dumps() -> set[Path]:  # clang names them after the input: sched-<hex>.c and .sh
        return {p for p in tmp.glob("sched-*") if p.suffix in (".c", ".sh")}

    before = dumps()
    src = b'#include "schedcp.bpf.h"\n#pragma clang __debug crash\nint x;\n'
    with pytest.raises(CompileError):
        compile_source(src, [vm_kit.include], [BPF / "schedcp.bpf.h"])
    assert dumps() == before


def test_only_the_allowed_headers_are_in_the_sandbox(vm_kit):
    assert (vm_kit.include / "bpf" / "libbpf.h").is_file()  # in the kit, not allowed
    src = b'#include "schedcp.bpf.h"\n%:include "bpf/libbpf.h"\n'
    with pytest.raises(CompileError, match=r"not found|outside"):
        compile_source(src, [vm_kit.include], [BPF / "schedcp.bpf.h"])


def test_scrub_keeps_only_the_source_and_allowed_headers():
    log = ("In file included from sched.bpf.c:4:\n/etc/passwd:1:5: error: unknown type\n"
           "    1 | root:x:0:0:root:/root:/bin/bash\n      |     ^\n"
           "sched.bpf.c:7:1: warning: unused\n    7 | int y;\n1 error generated.\n")
    out = scrub(log)
    assert "root:x" not in out and "/etc/passwd" not in out
    assert "sched.bpf.c:7:1: warning: unused" in out and "int y;" in out
    assert "1 error generated." in out
