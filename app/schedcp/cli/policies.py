"""`schedcp policies search|show`: ask the policy repository what fits a workload; read an
entry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NoReturn

from ..exitcodes import Exit
from ..vocabulary import GOALS
from .args import UsageError, command, positive_int, suggestion
from .args import goal as goal_arg

# below this score a hit is noise, not a match (measured: gibberish tops out at 0.12 with the
# MiniLM embedder and 0.08 with the hash one; real queries' first hits score 0.18-0.63)
MIN_SCORE = {"hash": 0.10, "default": 0.15}


def min_score(embedder_id: str) -> float:
    return MIN_SCORE["hash"] if embedder_id.startswith("hash") else MIN_SCORE["default"]


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "policies", "search and show schedulers and BPF code primitives",
                "The local policy repository: packaged scx_* schedulers, SchedCP's own BPF "
                "policies, composable code primitives and promoted custom policies, searched "
                "by meaning.",
                ("schedcp policies search game with stutter", "schedcp policies show ljf"))
    p.add_argument("--db", type=Path, default=None,
                   help="repository file (default: the per-user data dir)")
    p.add_argument("--embedder", choices=("auto", "minilm", "minilm-dense", "hash"), default=None,
                   help="default: $SCHEDCP_EMBEDDER, else the packaged model when installed")
    psub = p.add_subparsers(dest="policies_command", required=True, metavar="ACTION")
    s = command(psub, "search", "entries closest in meaning to QUERY",
                "Entries closest in meaning to QUERY, best first, with their score (0..1). "
                "Hits below a minimum score are not shown; when none is left the answer is "
                "\"no good match\" (exit status 1).",
                ("schedcp policies search kernel build with many jobs",
                 "schedcp policies search --goal responsiveness game",
                 "schedcp policies search --kind primitive idle cpu"))
    s.add_argument("query", nargs="+", help="what the workload is or what you want")
    s.add_argument("--goal", type=goal_arg, metavar="GOAL", help="only entries that list this "
                   f"goal: {', '.join(GOALS)} (latency = responsiveness)")
    s.add_argument("--kind", default="bpf,scx,custom", help="bpf, scx, custom or primitive "
                   "(comma-separated for several; default: all but the code primitives)")
    s.add_argument("-k", type=positive_int, default=5, help="how many at most")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_search)
    w = command(psub, "show", "one entry: description, tunables, presets, source",
                examples=("schedcp policies show vtime", "schedcp policies show scx_lavd --json"))
    w.add_argument("name")
    w.add_argument("--json", action="store_true", help="machine-readable output")
    w.set_defaults(func=cmd_show)


def _open(args: argparse.Namespace):
    from ..repo import PolicyRepository

    return PolicyRepository.open(args.db, embedder=args.embedder)


def _fail(msg: str) -> NoReturn:
    raise UsageError(msg)


def cmd_search(args: argparse.Namespace) -> int:
    query = " ".join(args.query)
    try:
        with _open(args) as repo:
            hits = repo.search(query, k=args.k, kind=args.kind, goal=args.goal)
            embedder = repo.embedder.id
    except ValueError as e:
        return _fail(str(e))
    floor = min_score(embedder)
    good = [h for h in hits if h.score >= floor]
    if args.json:
        print(json.dumps({"query": query, "embedder": embedder, "min_score": floor,
                          "hits": [h.__dict__ for h in good],
                          "below_min_score": [h.__dict__ for h in hits if h.score < floor]},
                         indent=2))
        return Exit.OK if good else Exit.FAILED
    if not good:
        best = f" (the closest, {hits[0].name}, scores {hits[0].score:.2f})" if hits else ""
        print(f"no good match for {query!r}{best}. Describe the workload or what you want, "
              "e.g. 'game with stutter', 'kernel build', 'battery life'.")
        return Exit.FAILED
    hits = good
    width = max(len(h.name) for h in hits)
    for h in hits:
        print(f"{h.score:5.2f}  {h.name:<{width}}  {h.kind:<9}  {h.summary}")
    return Exit.OK


def _show_text(e) -> str:
    lines = [f"{e.name} ({e.kind})", e.summary, "", e.description, ""]
    if e.goals or e.workloads:
        lines.append(f"goals: {', '.join(e.goals) or '-'}    "
                     f"workloads: {', '.join(e.workloads) or '-'}")
    if e.tunables:
        lines.append("tunables:")
        for name, t in e.tunables.items():
            rng = f" {t['min']}..{t['max']}" if "min" in t else ""
            choices = f" {'|'.join(t['choices'])}" if t.get("choices") else ""
            unit = f" {t['unit']}" if t.get("unit") else ""
            lines.append(f"  {name} ({t['type']}{rng}{choices}{unit}, default {t['default']})"
                         f"{': ' + t['help'] if t.get('help') else ''}")
    for goal, values in e.presets.items():
        lines.append(f"preset {goal}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    if e.source:
        lines += ["", "source:", e.source.rstrip()]
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        try:
            entry = repo.get(args.name)
        except KeyError:
            names = list(repo.names())
            best = suggestion(args.name, names)
            hint = f"did you mean {best!r}? " if best else ""
            return _fail(f"no entry named {args.name!r}; {hint}known: {', '.join(names)}")
    print(json.dumps(entry.to_dict(), indent=2) if args.json else _show_text(entry))
    return Exit.OK
