"""NAME=VALUE command-line pairs (--set, --hint), parsed one way for the root CLI and the
loader's own command line."""

from __future__ import annotations


def split_pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    """["a=1", ...] → [("a", "1"), ...]; ValueError (saying which option) for anything else."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} wants NAME=VALUE, got {item!r}")
        out.append((key, value))
    return out


def parse_value(text: str) -> int | bool | str:
    """true/false, an integer (0x.. and 0o.. too), else the text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text, 0)
    except ValueError:
        return text


def parse_pairs(items: list[str], what: str) -> dict[str, int | bool | str]:
    return {k: parse_value(v) for k, v in split_pairs(items, what)}
