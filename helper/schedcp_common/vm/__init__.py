"""The micro-VM: a qemu guest with a sched_ext kernel, for tests, the demo and the verifier."""

from .guest import GuestConfig, GuestError, GuestResult, Outcome, default_config, kit_config, run
from .kit import Kit, KitError, build_kit, find_kit

__all__ = [
    "GuestConfig", "GuestError", "GuestResult", "Kit", "KitError", "Outcome", "build_kit",
    "default_config", "find_kit", "kit_config", "run",
]
