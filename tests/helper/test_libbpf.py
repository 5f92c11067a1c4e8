"""The ctypes binding: library choice, struct layouts against libbpf.h, message capture."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schedcp_helper import libbpf as lb
from tests.fixtures.schedulers import compile_fixture, libbpf_path


def _cc(src: str, out: Path, *args: str) -> Path:
    c = out.with_suffix(".c")
    c.write_text(src)
    subprocess.run(["cc", "-o", str(out), str(c), *args], check=True, capture_output=True)
    return out


def test_open_opts_layout_matches_libbpf_h(vm_kit, tmp_path):
    fields = [f for f, _ in lb.bpf_object_open_opts._fields_ if not f.startswith("_")]
    prints = "".join(
        f'printf("{f} %zu\\n", offsetof(struct bpf_object_open_opts, {f}));' for f in fields)
    src = ("#include <stdio.h>\n#include <stddef.h>\n"
           "#include <bpf/libbpf.h>\n#include <bpf/btf.h>\n"
           "int main(void){" + prints +
           'printf("sizeof %zu\\n", sizeof(struct bpf_object_open_opts));'
           'printf("btf_type %zu\\n", sizeof(struct btf_type));'
           'printf("secinfo %zu\\n", sizeof(struct btf_var_secinfo));'
           'printf("member %zu\\n", sizeof(struct btf_member));return 0;}')
    exe = _cc(src, tmp_path / "layout", f"-I{vm_kit.include}")
    got = dict(line.split() for line in subprocess.check_output([str(exe)], text=True).splitlines())
    ours = {f: getattr(lb.bpf_object_open_opts, f).offset for f in fields}
    assert {f: int(got[f]) for f in fields} == ours
    assert int(got["sizeof"]) == ctypes.sizeof(lb.bpf_object_open_opts) == 88
    assert int(got["btf_type"]) == ctypes.sizeof(lb.btf_type)
    assert int(got["secinfo"]) == ctypes.sizeof(lb.btf_var_secinfo)
    assert int(got["member"]) == ctypes.sizeof(lb.btf_member)


def test_explicit_library_is_used_and_versioned(vm_kit):
    lib = lb.open_library(libbpf_path(vm_kit))
    assert lib.version >= (1, 2)
    assert lib.path.endswith("libbpf.so.1.5.0")


def test_env_var_selects_the_library(vm_kit, monkeypatch):
    monkeypatch.setenv(lb.ENV_VAR, libbpf_path(vm_kit))
    assert lb.open_library().path == libbpf_path(vm_kit)


def test_too_old_libbpf_is_refused_with_what_to_set(tmp_path, monkeypatch):
    old = _cc("unsigned libbpf_major_version(void){return 1;}"
              "unsigned libbpf_minor_version(void){return 1;}", tmp_path / "libold.so",
              "-shared", "-fPIC")
    monkeypatch.setenv(lb.ENV_VAR, str(old))
    with pytest.raises(lb.LibbpfUnavailable, match=r"version 1\.1, too old.*SCHEDCP_LIBBPF"):
        lb.open_library()


def test_system_libbpf_decision_matches_its_version():
    # A fresh process: once any libbpf.so.1 is loaded, dlopen("libbpf.so.1") returns that one.
    code = ("import ctypes, os\n"
            "from schedcp_helper import libbpf as lb\n"
            "os.environ.pop(lb.ENV_VAR, None)\n"
            "try:\n    v = lb._version(ctypes.CDLL('libbpf.so.1'))\nexcept OSError:\n    v = None\n"
            "print(v)\n"
            "try:\n    lib = lb.open_library()\n    print('ok', lib.version, lib.path)\n"
            "except lb.LibbpfUnavailable as e:\n    print('refused', e)\n"
            "print(lb._kit_library())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={k: v for k, v in os.environ.items()
                                          if k != lb.ENV_VAR}).stdout.splitlines()
    print(out)
    kit = out[2]
    system_ok = out[0] != "None" and tuple(
        int(x) for x in out[0].strip("()").split(",")) >= lb.MIN_VERSION
    if system_ok:
        assert out[1] == f"ok {out[0]} libbpf.so.1"
    elif kit != "None":  # Debian 12 (1.1) with the guest kit: the kit's, verified
        assert out[1].startswith("ok (1, 5)") and out[1].endswith(kit), out
    elif out[0] == "None":
        assert out[1].startswith("refused cannot load the system libbpf.so.1")
    else:
        assert out[1].startswith("refused the system libbpf is version")
        assert "too old" in out[1] and "SCHEDCP_LIBBPF" in out[1]


def test_without_a_kit_a_too_old_system_libbpf_is_refused(tmp_path):
    code = ("from schedcp_helper import libbpf as lb\n"
            "try:\n    print('ok', lb.open_library().path)\n"
            "except lb.LibbpfUnavailable as e:\n    print('refused', e)\n")
    env = {k: v for k, v in os.environ.items() if k != lb.ENV_VAR}
    env.update(SCHEDCP_VM_CACHE=str(tmp_path / "none"), SCHEDCP_SHARED_VM=str(tmp_path / "no"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.startswith("ok libbpf.so.1") or (
        out.startswith("refused") and "SCHEDCP_LIBBPF" in out), out


def test_missing_library_is_a_clear_error(tmp_path):
    with pytest.raises(lb.LibbpfUnavailable, match=r"cannot load SCHEDCP_LIBBPF=.*nope"):
        lb.open_library(str(tmp_path / "nope.so"))


def test_libbpf_messages_are_captured(vm_kit, tmp_path):
    lib = lb.open_library(libbpf_path(vm_kit))
    lb.take_messages()
    junk = tmp_path / "junk.bpf.o"
    junk.write_bytes(b"not an ELF file")
    opts = lb.bpf_object_open_opts(sz=ctypes.sizeof(lb.bpf_object_open_opts))
    assert not lib.bpf_object__open_file(str(junk).encode(), ctypes.byref(opts))
    assert ctypes.get_errno() != 0
    msgs = lb.take_messages()
    assert "libbpf: " in msgs and "elf" in msgs.lower()
    assert lb.take_messages() == ""  # taken once


def test_btf_walk_finds_datasec_and_struct_ops(vm_kit, tmp_path):
    lib = lb.open_library(libbpf_path(vm_kit))
    obj = lib.bpf_object__open_file(str(compile_fixture("tunable", vm_kit, tmp_path)).encode(),
                                    None)
    try:
        btf = lb.check_ptr(lib.bpf_object__btf(obj), "btf")
        sec = lib.btf__find_by_name_kind(btf, b".rodata", lb.BTF_KIND_DATASEC)
        assert sec > 0
        infos = lb.member_types(lib.btf__type_by_id(btf, sec), lb.btf_var_secinfo)
        names = [lib.btf__name_by_offset(btf, lib.btf__type_by_id(btf, i.type).contents.name_off)
                 for i in infos]
        assert set(names) == {b"slice_us", b"boost", b"nice_bias", b"small"}
        kinds, m = [], None
        while m := lib.bpf_object__next_map(obj, m):
            kinds.append((lib.bpf_map__name(m), lib.bpf_map__type(m)))
        assert (b"tunable_ops", lb.BPF_MAP_TYPE_STRUCT_OPS) in kinds
    finally:
        lib.bpf_object__close(obj)
