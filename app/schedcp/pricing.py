"""Model ids and their prices: the one place the default model and the price table live.

No heavy imports: the tray's settings, the CLI and the MCP server read the default from here.
An unknown model is not an error: the brain still runs and counts tokens, it just cannot put
dollars on them (``price_for`` returns None and says why), unless the user passes a price.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger("schedcp.pricing")

DEFAULT_MODEL = "claude-sonnet-5-5"
# offered in the tray's model box (any other id may be typed in)
MODELS = ("claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5", "claude-fable-5-2")
# the local brain's default server: Ollama's OpenAI-compatible endpoint
DEFAULT_LOCAL_URL = "http://127.0.0.1:11434/v1"


@dataclass(frozen=True)
class Price:
    """USD per million tokens. ``long`` applies to every token of a request whose prompt
    (input + cache reads + cache writes) exceeds ``long_above`` tokens (Haiku 5.5's tier)."""

    input: float
    output: float
    cache_write: float  # 5-minute cache writes
    cache_read: float  # cache hits and refreshes
    long: Price | None = None
    long_above: int = 0

    def cost(self, inp: int, out: int, cache_write: int, cache_read: int) -> float:
        p = self
        if self.long is not None and inp + cache_write + cache_read > self.long_above:
            p = self.long
        return (inp * p.input + out * p.output + cache_write * p.cache_write
                + cache_read * p.cache_read) / 1e6

    @classmethod
    def parse(cls, text: str) -> Price:
        """``IN,OUT[,CACHE_WRITE[,CACHE_READ]]`` in USD per million tokens; the cache prices
        default to Anthropic's usual 1.25x and 0.1x of the input price."""
        parts = [p.strip() for p in text.split(",")]
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"price {text!r}: numbers IN,OUT[,CACHE_WRITE[,CACHE_READ]] in "
                             "USD per million tokens") from None
        if not 2 <= len(nums) <= 4 or any(not 0 <= n < 10_000 for n in nums):
            raise ValueError(f"price {text!r}: 2 to 4 numbers in 0..10000, "
                             "IN,OUT[,CACHE_WRITE[,CACHE_READ]]")
        inp, out = nums[0], nums[1]
        write = nums[2] if len(nums) > 2 else round(inp * 1.25, 6)
        read = nums[3] if len(nums) > 3 else round(inp * 0.1, 6)
        return cls(inp, out, write, read)


# Anthropic's list prices, USD per million tokens, from the "Model pricing" table of
# https://platform.claude.com/docs/en/about-claude/pricing and the model overview pages,
# checked 2026-12-03. Sonnet 5.5 and Opus 5.5 read the cache at 0.05x input (Sonnet 5.5 since
# the cut of 2026-10-07), not the older 0.1x. Pass --price for anything newer.
PRICES_CHECKED = "2026-12-03"
PRICES_SOURCE = "https://platform.claude.com/docs/en/about-claude/pricing"
PRICES: dict[str, Price] = {
    "claude-fable-5-2": Price(8.0, 40.0, 10.0, 0.2),
    "claude-fable-5-1": Price(10.0, 50.0, 12.5, 0.25),
    "claude-fable-5": Price(10.0, 50.0, 12.5, 1.0),
    "claude-opus-5-5": Price(4.0, 20.0, 5.0, 0.2),
    "claude-opus-5": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-8": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-7": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-6": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-1": Price(15.0, 75.0, 18.75, 1.5),
    "claude-sonnet-5-5": Price(2.0, 10.0, 2.5, 0.1),
    "claude-sonnet-5": Price(2.0, 10.0, 2.5, 0.2),
    "claude-sonnet-4-6": Price(3.0, 15.0, 3.75, 0.3),
    "claude-sonnet-4-5": Price(3.0, 15.0, 3.75, 0.3),
    "claude-sonnet-4": Price(3.0, 15.0, 3.75, 0.3),
    "claude-haiku-5-5": Price(0.1, 0.5, 0.125, 0.01, long=Price(0.5, 2.5, 0.625, 0.05),
                              long_above=100_000),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.1),
}
_DATED = re.compile(r"^(?P<base>.+)-\d{8}$")


def price_for(model: str, prices: dict[str, Price] | None = None) -> Price | None:
    """The price of ``model`` (exactly, or with a date suffix: "claude-sonnet-4-5-20250929"),
    ``prices`` first; None, with a warning, when nobody knows it."""
    table = {**PRICES, **(prices or {})}
    if model in table:
        return table[model]
    m = _DATED.match(model)
    if m and m["base"] in table:
        return table[m["base"]]
    log.warning("no price for model %r (table checked %s); counting tokens without dollars. "
                "Give one with --price IN,OUT (USD per million tokens)", model, PRICES_CHECKED)
    return None
