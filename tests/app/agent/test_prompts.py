"""The scheduler the system prompt teaches passes the verifier's host stages (input, compile,
static: the real code, on the guest kernel's vmlinux.h and kfunc list), and the prompt names
the schedcp.bpf.h wrappers rather than the raw kfuncs whose names changed in 6.13."""

from __future__ import annotations

from pathlib import Path

from schedcp.agent.prompts import PLANNING_SYSTEM, SKELETON
from schedcp_helper.verifier.bpfobj import parse_object
from schedcp_helper.verifier.compile import check_source, compile_source
from schedcp_helper.verifier.static import analyse
from schedcp_helper.verifier.target import Target

BPF = Path(__file__).resolve().parents[3] / "bpf"


def test_the_skeleton_passes_input_compile_and_static(vm_kit, tmp_path):
    target = Target.detect()
    check_source(SKELETON.encode())
    obj = compile_source(SKELETON.encode(), [target.kit.include], [BPF / "schedcp.bpf.h"])
    path = tmp_path / "mini.bpf.o"
    path.write_bytes(obj.data)
    info = parse_object(path, target.bpftool)
    assert info.ops_name == "schedcp_mini" and "enqueue" in info.ops
    bad = [f for f in analyse(info, target.functions(), {}) if f.severe and not f.ok]
    assert bad == [] and not obj.log.strip()


def test_the_prompt_teaches_the_wrappers_and_contains_the_skeleton():
    assert SKELETON in PLANNING_SYSTEM
    for wrapper in ("schedcp_dispatch(", "schedcp_dispatch_vtime(", "schedcp_consume(",
                    "SCHEDCP_OPS(", "BPF_STRUCT_OPS", "slice_ns("):
        assert wrapper in PLANNING_SYSTEM
    for raw in ("scx_bpf_dispatch(", "scx_bpf_consume(", "scx_bpf_dispatch_vtime("):
        assert raw not in PLANNING_SYSTEM  # renamed in 6.13: the wrappers pick the right one
    assert "handle" in PLANNING_SYSTEM and "verify_source" in PLANNING_SYSTEM
