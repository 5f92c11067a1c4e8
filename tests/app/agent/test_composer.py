"""The offline composer: schedulers built from policies/primitives pass the verifier's host
stages (input, compile without warnings, static: the real code on the guest kernel's
vmlinux.h and kfunc list), and the offline planner proposes one for workloads no shipped
policy fits, re-using the promoted one by name on the next run."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.agent.composer import TEMPLATES, compose, template_for
from schedcp_helper.verifier.bpfobj import parse_object
from schedcp_helper.verifier.compile import check_source, compile_source
from schedcp_helper.verifier.static import analyse
from schedcp_helper.verifier.target import Target

BPF = Path(__file__).resolve().parents[3] / "bpf"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_composed_schedulers_pass_the_host_stages(vm_kit, repo, tmp_path, name):
    source = compose(TEMPLATES[name], repo)
    assert source.count("#include") == 1 and "--- */" not in source
    check_source(source.encode())
    target = Target.detect()
    obj = compile_source(source.encode(), [target.kit.include], [BPF / "schedcp.bpf.h"])
    assert not obj.log.strip(), obj.log
    path = tmp_path / "c.bpf.o"
    path.write_bytes(obj.data)
    info = parse_object(path, target.bpftool)
    assert info.ops_name == f"schedcp_{name}"
    bad = [f for f in analyse(info, target.functions(), {}) if f.severe and not f.ok]
    assert bad == []
    print(f"{name}: {len(source)} bytes of C from {len(TEMPLATES[name].primitives)} "
          f"primitives, {len(obj.data)} bytes of BPF")


def test_templates_by_kind_and_goal():
    assert template_for("batch", "throughput").name == "longtail"
    assert template_for("build", "balanced").name == "longtail"
    assert template_for("game", "responsiveness").name == "latency"
    assert template_for("batch", "responsiveness").name == "latency"
    assert template_for("idle", "battery") is None


def test_offline_planner_composes_when_no_shipped_policy_fits_and_reuses_the_promoted(repo):
    from schedcp.agent.offline import OfflinePlanner
    from schedcp.agent.tools import AgentTools, custom_name
    from schedcp.model import Lesson
    from tests.app.agent.test_offline import ctx_for, profile

    tools = AgentTools(repo=repo)
    # a batch that must stay responsive: no shipped policy lists both
    odd = profile("batch", "responsiveness", desc="batch jobs next to an interactive shell")
    first = OfflinePlanner(tools=tools).plan(ctx_for(repo, odd))
    assert first.source and first.policy == custom_name(first.source)
    assert "SCHEDCP_OPS(latency" in first.source and first.brain == "offline"
    assert first.rationale.startswith("Composed latency scheduler")

    # a long-tail batch: ljf fits, so "auto" does not compose; "always" puts it first
    batch = profile("batch", "throughput", desc="batch jobs with a long tail")
    auto = OfflinePlanner(tools=tools)
    assert auto.plan(ctx_for(repo, batch)).policy == "ljf"
    assert not any(a.source for a in auto.arms.values())
    always = OfflinePlanner(tools=tools, compose="always").plan(ctx_for(repo, batch))
    assert "SCHEDCP_OPS(longtail" in always.source

    # Learning promotes a composed winner (what roles.Learning does on "improved"); the next
    # run proposes it by name, without source: Execution fetches it and verifies it again
    name = custom_name(always.source)
    assert repo.promote(name, always.source, always.rationale, batch.key, 0.12)
    repo.record(Lesson(batch.key, name, {}, "improved", 0.12, "promoted"))
    again = OfflinePlanner(tools=tools, compose="always").plan(ctx_for(repo, batch))
    assert (again.policy, again.source) == (name, None)
    assert "best known" in again.rationale
    stored = tools.call("get_policy", {"name": name})
    assert stored["kind"] == "custom" and stored["source"] == always.source
    hits = tools.call("search_policies", {"query": "long-tail batch longest expected runtime "
                                                   "first", "k": 3})["hits"]
    assert name in [h["name"] for h in hits]
