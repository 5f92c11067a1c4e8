"""Stage (c): the static checks pass our schedulers and name what is wrong in bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp_helper.verifier.bpfobj import ObjectError, parse_object
from schedcp_helper.verifier.compile import compile_source
from schedcp_helper.verifier.static import analyse

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
