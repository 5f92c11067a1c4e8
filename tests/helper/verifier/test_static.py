"""Stage (c): the static checks pass our schedulers and name what is wrong in bad ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schedcp_helper.verifier.bpfobj import ObjectError, parse_object
from schedcp_helper.verifier.compile import compile_source
from schedcp_helper.verifier.objcheck import MAX_OBJECT_BYTES, check_object
from schedcp_helper.verifier.static import analyse
from schedcp_helper.verifier.staticbox import run_static

from .conftest import BAD, BPF, expected_stage

GOOD = sorted(BPF.glob("*.bpf.c"))
STATIC_BAD = {
    "absurd_slice": "slice-bounds",
    "dsq_never_consumed": "custom-dsqs-consumed",
    "enqueue_no_dispatch": "enqueue-dispatches",
    "newer_kfunc": "kfuncs-available",
}


def build(target, tmp_path: Path, source: bytes) -> Path:
    obj = compile_source(source, [target.kit.include], [BPF / "schedcp.bpf.h"])
    path = tmp_path / "x.bpf.o"
    path.write_bytes(obj.data)
    return path


def failed(target, tmp_path, source: bytes, tunables=None) -> dict[str, str]:
    info = parse_object(build(target, tmp_path, source), target.bpftool)
    return {f.check: f.message for f in analyse(info, target.functions(), tunables)
            if f.severe and not f.ok}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_our_schedulers_pass_every_check(target, tmp_path, path):
    info = parse_object(build(target, tmp_path, path.read_bytes()), target.bpftool)
    assert info.ops_name == f"schedcp_{path.name.removesuffix('.bpf.c')}"
    assert "enqueue" in info.ops and info.ops_fields["timeout_ms"] > 0
    assert failed(target, tmp_path, path.read_bytes()) == {}


@pytest.mark.parametrize("name, check", sorted(STATIC_BAD.items()))
def test_each_static_fixture_fails_its_check(target, tmp_path, name, check):
    path = BAD / f"{name}.bpf.c"
    assert expected_stage(path) == "static"
    problems = failed(target, tmp_path, path.read_bytes())
    assert set(problems) == {check}, problems


def test_fixtures_for_later_stages_pass_the_static_checks(target, tmp_path):
    for path in sorted(BAD.glob("*.bpf.c")):
        if expected_stage(path) in ("kernel-verifier", "dynamic"):
            assert failed(target, tmp_path, path.read_bytes()) == {}, path.name


def test_an_out_of_range_slice_tunable_is_caught_at_its_effective_value(target, tmp_path):
    src = (BPF / "fifo.bpf.c").read_bytes()
    assert failed(target, tmp_path, src, {"slice_us": 5000}) == {}
    assert "tunable slice_us = 5000000" in failed(target, tmp_path, src,
                                                  {"slice_us": 5_000_000})["slice-bounds"]


def test_objects_without_a_scheduler_are_refused(target, tmp_path):
    src = b'#include "schedcp.bpf.h"\nint x SEC(".data") = 1;\n'
    with pytest.raises(ObjectError, match="no sched_ext_ops"):
        parse_object(build(target, tmp_path, src), target.bpftool)
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an elf")
    with pytest.raises(ObjectError, match="not an ELF"):
        parse_object(junk, target.bpftool)


def many_functions(n: int) -> bytes:
    body = "static __noinline int f0(int x) { return x; }\n" + "".join(
        f"static __noinline int f{i}(int x) {{ return f{i - 1}(x ^ {i}) + 1; }}\n"
        for i in range(1, n))
    return (f'#include "schedcp.bpf.h"\n{body}\n'
            "void BPF_STRUCT_OPS(many_enqueue, struct task_struct *p, u64 enq_flags)\n"
            f"{{ schedcp_dispatch(p, SCX_DSQ_GLOBAL, f{n - 1}(p->pid) * 1000, enq_flags); }}\n"
            "SCHEDCP_OPS(many, .enqueue = (void *)many_enqueue);\n").encode()


def test_many_functions_are_refused_before_the_quadratic_checks(target, tmp_path):
    """The static checks cost grows ~quadratically with functions (1k/2k/4k: 0.3/1.0/2.6 s):
    the object check caps the count before any of them runs."""
    shape = check_object(build(target, tmp_path, many_functions(100)).read_bytes())
    assert 100 <= shape.functions <= 101  # clang may fold the innermost one
    with pytest.raises(ObjectError, match=r"6\d\d functions; the limit is 512"):
        check_object(build(target, tmp_path, many_functions(600)).read_bytes())


@pytest.mark.parametrize("name, message", [
    ("two_struct_ops", "2 struct_ops maps (hidden_ops, two_struct_ops_ops)"),
    ("btf_section_data", "data 'crafted' placed in section '.BTF'"),
])
def test_misshapen_objects_are_refused_before_any_parser_runs(target, tmp_path, name, message):
    data = build(target, tmp_path, (BAD / f"{name}.bpf.c").read_bytes()).read_bytes()
    with pytest.raises(ObjectError, match=re.escape(message)):
        check_object(data)


def test_object_shape_limits(target, tmp_path):
    good = build(target, tmp_path, (BPF / "fifo.bpf.c").read_bytes()).read_bytes()
    assert check_object(good).ops_map == "fifo_ops"
    with pytest.raises(ObjectError, match="not an ELF"):
        check_object(b"\x7fELX" + good[4:])
    with pytest.raises(ObjectError, match=r"past the end|bad section table"):
        check_object(good[:len(good) // 2])  # truncated: the section table is gone
    with pytest.raises(ObjectError, match="limit is"):
        check_object(good + bytes(MAX_OBJECT_BYTES))


def test_the_boxed_static_stage_matches_the_in_process_one(target, tmp_path):
    obj = build(target, tmp_path, (BAD / "enqueue_no_dispatch.bpf.c").read_bytes())
    ops, findings = run_static(obj, target.bpftool, target.functions(), {})
    assert ops == "schedcp_enqueue_no_dispatch"
    info = parse_object(obj, target.bpftool)
    assert findings == analyse(info, target.functions(), {})
