"""The tool layer every brain and the MCP server share: searches leave code primitives out
unless asked, list_primitives stays small, errors carry one kind prefix and a "did you mean",
and an oversized result becomes valid JSON that says what to ask for instead."""

from __future__ import annotations

import json

import pytest

from schedcp.agent.tools import SPECS, AgentTools, ToolFailure, error_text, fit_result


def test_default_search_leaves_primitives_out(repo):
    tools = AgentTools(repo=repo)
    for query in ("runtime tracker vtime priority queue", "kernel compile with make -j"):
        hits = tools.call("search_policies", {"query": query, "k": 12})["hits"]
        assert hits and all(h["kind"] != "primitive" for h in hits)
    prims = tools.call("search_policies", {"query": "vtime", "k": 3, "kind": "primitive"})
    assert {h["kind"] for h in prims["hits"]} == {"primitive"}


def test_list_primitives_is_small_and_get_policy_has_the_code(repo):
    tools = AgentTools(repo=repo)
    text = json.dumps(tools.call("list_primitives"))
    assert len(text) < 5000, len(text)
    for p in json.loads(text)["primitives"]:
        src = tools.call("get_policy", {"name": p["name"]})["source"]
        assert "static __always_inline" in src or "#define" in src


def test_errors_name_the_kind_once_and_suggest(repo):
    tools = AgentTools(repo=repo)
    cases = [("get_polcy", {"name": "ljf"}, "did you mean 'get_policy'"),
             ("get_policy", {"nam": "ljf"}, "did you mean 'name'"),
             ("get_policy", {"name": "vtme"}, "did you mean 'vtime'"),
             ("details", {"what": "topolgy"}, "did you mean 'topology'"),
             ("record_lesson", {"workload_key": "k", "policy": "ljf", "outcome": "improve"},
              "did you mean 'improved'")]
    for name, args, hint in cases:
        with pytest.raises(ToolFailure) as e:
            tools.call(name, args)
        assert hint in str(e.value)
        shown = error_text(e.value)
        assert shown.startswith(f"{e.value.kind}: ") and shown.count(f"{e.value.kind}:") == 1
    try:
        tools.call("search_policies", {"query": "x", "kind": "kernel"})
    except ToolFailure as e:  # a ValueError inside: the prefix appears once
        assert error_text(e) == f"ValueError: {e}" and "ValueError" not in str(e)


def test_oversized_results_stay_valid_json():
    big = {"source": "x" * 30_000, "name": "ljf"}
    text = fit_result(big, 20_000)
    out = json.loads(text)
    assert len(text) < 1000 and out["kind"] == "TooLarge" and out["sizes"]["source"] > 30_000
    assert json.loads(fit_result({"a": 1}, 20_000)) == {"a": 1}


def test_every_spec_says_when_what_and_how_long():
    for spec in SPECS.values():
        text = spec.full_description()
        assert spec.returns and "Takes:" in text and "Side effects:" in text, spec.name
        assert spec.example is not None, spec.name
        for pname, prop in spec.schema["properties"].items():
            assert prop.get("description"), f"{spec.name}.{pname}"
        assert set(spec.example) <= set(spec.schema["properties"]), spec.name
        assert set(spec.schema["required"]) <= set(spec.example) or not spec.example


def test_internal_arguments_still_pass(repo):
    """Execution names generated code when it verifies it (``name``, not in the schema the
    models see): the unknown-argument check must not refuse it (the VM test caught that)."""
    import inspect

    tools = AgentTools(repo=repo)
    assert "name" in inspect.signature(tools.verify_source).parameters
    assert "name" not in SPECS["verify_source"].schema["properties"]
    with pytest.raises(ToolFailure) as e:  # gets past the argument check to the helper
        tools.client_factory = lambda: (_ for _ in ()).throw(OSError("no bus here"))
        tools.call("verify_source", {"source": "x", "name": "gen_x"})
    assert "no bus here" in str(e.value)


def test_each_spec_is_a_method_taking_what_its_schema_says():
    """The tool set is declared once (SPECS: what Claude, local models and MCP are shown); the
    methods that run it must take exactly that: every property a parameter, the required ones
    without a default, and any other parameter (internal, as verify_source's ``name``) optional."""
    import inspect

    assert len(SPECS) >= 19
    for name, spec in SPECS.items():
        method = getattr(AgentTools, name, None)
        assert callable(method), f"{name}: no AgentTools.{name}"
        params = dict(inspect.signature(method).parameters)
        params.pop("self")
        props, required = spec.schema["properties"], set(spec.schema["required"])
        assert set(props) <= set(params), f"{name}: schema names {set(props) - set(params)}"
        for pname, p in params.items():
            if pname in required:
                assert p.default is inspect.Parameter.empty, f"{name}.{pname} has a default"
            else:
                assert p.default is not inspect.Parameter.empty, f"{name}.{pname} is required"
