"""Policy metadata: what the helper validates every tunable against."""

from __future__ import annotations

import re

import pytest

from schedcp_common.policy import PolicyError, load_policy, parse_policy

GOOD = {
    "name": "vtime", "kind": "bpf", "source": "vtime.bpf.c", "summary": "fair",
    "description": "Weighted fair\n   scheduling.", "goals": ["balanced"], "workloads": ["build"],
    "tunables": {
        "slice_us": {"type": "int", "min": 100, "max": 100000, "default": 5000, "unit": "us"},
        "strict": {"type": "bool", "default": False},
        "mode": {"type": "enum", "choices": ["a", "b"], "default": "a"},
    },
    "presets": {"throughput": {"slice_us": 20000}},
}


def variant(**changes):
    data = {**GOOD, **changes}
    return parse_policy(data, data["name"])


def test_a_good_policy_parses_and_resolves():
    p = variant()
    assert p.description == "Weighted fair scheduling."
    assert p.presets == {"throughput": {"slice_us": 20000}}
    assert p.resolved({"slice_us": 700}) == {"slice_us": 700, "strict": False, "mode": "a"}


@pytest.mark.parametrize("values, message", [
    ({"slice_us": 50}, "50 us is outside 100..100000 us"),
    ({"slice_us": True}, "expected an integer"),
    ({"slice_us": "5000"}, "expected an integer"),
    ({"strict": 1}, "expected true or false"),
    ({"mode": "c"}, "expected one of a, b"),
    ({"slice": 5}, "unknown tunable(s) slice"),
])
def test_bad_values_are_refused_with_the_reason(values, message):
    with pytest.raises(PolicyError) as e:
        variant().validate_tunables(values)
    assert message in str(e.value)


@pytest.mark.parametrize("changes, message", [
    ({"name": "Bad Name"}, "must equal the file name"),
    ({"kind": "exe"}, "kind must be"),
    ({"source": "../x.c"}, "need source"),
    ({"goals": ["speed"]}, "goals must be"),
    ({"workloads": ["mining"]}, "workloads must be"),
    ({"summary": ""}, "`summary` is required"),
    ({"presets": {"throughput": {"slice_us": 1}}}, "preset throughput"),
    ({"presets": {"fast": {}}}, "unknown goal"),
    ({"tunables": {"x": {"type": "int", "default": 1}}}, "need integer min <= max"),
    ({"tunables": {"x": {"type": "int", "min": 0, "max": 3, "default": 9}}}, "default of x"),
    ({"tunables": {"x": {"type": "float", "default": 1}}}, "type must be"),
])
def test_bad_metadata_is_refused(changes, message):
    with pytest.raises(PolicyError, match=re.escape(message)):
        variant(**changes)


def test_scx_policies_need_a_binary_and_flags(tmp_path):
    f = tmp_path / "scx_demo.toml"
    f.write_text('name = "scx_demo"\nkind = "scx"\nbinary = "scx_demo"\nsummary = "s"\n'
                 'description = "d"\ngoals = ["balanced"]\n'
                 '[tunables.slice_us]\ntype = "int"\nmin = 1\nmax = 9\ndefault = 2\n')
    with pytest.raises(PolicyError, match="need a flag"):
        load_policy(f)
    f.write_text(f.read_text() + 'flag = "--slice-us"\n')
    assert load_policy(f).tunables["slice_us"].flag == "--slice-us"
    f.write_text("name = [")
    with pytest.raises(PolicyError, match=r"scx_demo\.toml"):
        load_policy(f)
