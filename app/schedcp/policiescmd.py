"""`schedcp policies search|show`: ask the policy repository what fits a workload; read an
entry."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .model import GOALS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policies", help="search and show schedulers and BPF code primitives",
                       description="The local policy repository: packaged scx_* schedulers, "
                       "SchedCP's own BPF policies, composable code primitives and promoted "
                       "custom policies, searched by meaning.")
    p.add_argument("--db", type=Path, default=None,
                   help="repository file (default: the per-user data dir)")
    p.add_argument("--embedder", choices=("auto", "minilm", "minilm-dense", "hash"), default=None,
                   help="default: $SCHEDCP_EMBEDDER, else the packaged model when installed")
    psub = p.add_subparsers(dest="policies_command", required=True, metavar="ACTION")
    s = psub.add_parser("search", help="entries closest in meaning to QUERY")
    s.add_argument("query", nargs="+", help="what the workload is or what you want")
    s.add_argument("--goal", choices=GOALS, help="only entries that list this goal")
    s.add_argument("--kind", default="bpf,scx,custom", help="bpf, scx, custom or primitive "
                   "(comma-separated for several; default: all but the code primitives)")
    s.add_argument("-k", type=int, default=5, help="how many (default 5)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_search)
    w = psub.add_parser("show", help="one entry: description, tunables, presets, source")
    w.add_argument("name")
    w.add_argument("--json", action="store_true", help="machine-readable output")
    w.set_defaults(func=cmd_show)


def _open(args: argparse.Namespace):
    from .repo import PolicyRepository

    return PolicyRepository.open(args.db, embedder=args.embedder)


def _fail(msg: str) -> int:
    print(f"schedcp policies: error: {msg}", file=sys.stderr)
    return 2


def cmd_search(args: argparse.Namespace) -> int:
    if args.k < 1:
        return _fail("-k must be at least 1")
    query = " ".join(args.query)
    try:
        with _open(args) as repo:
            hits = repo.search(query, k=args.k, kind=args.kind, goal=args.goal)
            embedder = repo.embedder.id
    except ValueError as e:
        return _fail(str(e))
    if args.json:
        print(json.dumps({"query": query, "embedder": embedder,
                          "hits": [h.__dict__ for h in hits]}, indent=2))
        return 0
    if not hits:
        print("no matching entries")
        return 1
    width = max(len(h.name) for h in hits)
    for h in hits:
        print(f"{h.score:5.2f}  {h.name:<{width}}  {h.kind:<9}  {h.summary}")
    return 0


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
            names = ", ".join(repo.names())
            return _fail(f"no entry named {args.name!r}; known: {names}")
    print(json.dumps(entry.to_dict(), indent=2) if args.json else _show_text(entry))
    return 0
