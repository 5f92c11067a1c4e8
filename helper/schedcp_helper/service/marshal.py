"""Results as D-Bus values: flat a{sv} dictionaries a tray reads without parsing anything."""

from __future__ import annotations

import json

from dbus_next import Variant


def _s(v) -> Variant:
    return Variant("s", "" if v is None else str(v))


def status_dict(st: dict) -> dict[str, Variant]:
    """The core's status as a flat a{sv}: what a tray shows without parsing anything."""
    cur = st.get("current") or {}
    spec = cur.get("spec") or {}
    lkg = st.get("last_known_good") or {}
    return {
        "supported": Variant("b", bool(st.get("supported"))),
        "state": _s(st.get("state")), "ops": _s(st.get("ops")), "target": _s(st.get("target")),
        "deployment": _s(cur.get("id")), "deployment_state": _s(cur.get("state")),
        "deployment_name": _s(spec.get("name")), "deployment_kind": _s(spec.get("kind")),
        "deployment_owner": _s(cur.get("owner")),
        # "scx_loader" when scx_loader runs our packaged scheduler for us, else ""
        "deployment_via": _s(cur.get("via")),
        "deployment_started": Variant("d", float(cur.get("started") or 0.0)),
        # the running scheduler's last output (scx_* children), at most 4000 characters
        "deployment_output": _s(st.get("output")),
        "last_known_good": _s(lkg.get("name")), "last_known_good_kind": _s(lkg.get("kind")),
        # why nothing can be verified here ("" when it can): no sched_ext and no guest kit
        "target_problem": _s(st.get("target_problem")),
        # where verification trials run: "in-place" inside a micro-VM, else "micro-vm"
        "trials": _s(st.get("trials")),
        **others_dict(st.get("others") or {}),
        # schedulers the kernel ejected, waiting for the user's resume: JSON list
        "suspended": _s(json.dumps(st.get("suspended") or [])),
    }


def others_dict(o: dict) -> dict[str, Variant]:
    """Who holds the CPU scheduler and which other tuners are here (coexist.Survey)."""
    att = o.get("attached") or {}
    return {
        "others": _s(o.get("line")),  # "scx_lavd via scx_loader (Gaming)"
        "attached_owner": _s(att.get("owner")),  # schedcp|scx_loader|scx.service|process|unknown
        "attached_name": _s(att.get("name")), "attached_mode": _s(att.get("mode")),
        "attached_pid": Variant("u", int(att.get("pid") or 0)),
        "attached_via": _s(att.get("via")),  # ours, held through scx_loader
        "tuners_present": Variant("as", [str(t) for t in o.get("present") or []]),
        "tuners_active": Variant("as", [str(t) for t in o.get("active") or []]),
        "taken_over": _s(o.get("taken_over")),  # whose scheduler we stopped and will give back
        "given_back": _s(o.get("given_back")),  # what the last give-back did
        "conflict": _s(o.get("conflict")),  # another tool tried to start one while ours runs
    }


def schedulers_list(policies: list[dict]) -> list[dict[str, Variant]]:
    """HelperCore.schedulers() as aa{sv}; the tunables' metadata as one JSON string."""
    return [{"name": _s(p["name"]), "kind": _s(p["kind"]), "summary": _s(p["summary"]),
             "goals": Variant("as", p["goals"]), "workloads": Variant("as", p["workloads"]),
             "available": Variant("b", p["available"]), "verified": Variant("b", p["verified"]),
             "tunables": _s(json.dumps(p["tunables"]))} for p in policies]
