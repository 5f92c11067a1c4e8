"""The one table of `schedcp` exit statuses. Every command returns one of these; the README's
"Exit status" table is generated from (and tested against) ``TABLE``.

``schedcp vm`` is the one exception by design: it exits with the guest command's own status
(124 on timeout, 130 on interrupt, 255 if the guest died), like ``timeout(1)`` or ``ssh``.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NO_HELPER = 3
    NOT_AUTHORIZED = 4
    NO_SCHED_EXT = 5
    OTHER_SCHEDULER = 6
    SUSPENDED = 7
    INTERRUPTED = 130
    BROKEN_PIPE = 141


TABLE: dict[Exit, str] = {
    Exit.OK: "done (for a search: something matched well)",
    Exit.FAILED: "the command ran but did not succeed: a verification refused the scheduler, "
                 "a canary reverted it, an optimization stopped on an error, no good match",
    Exit.USAGE: "bad input: an unknown command or option, a value out of range, a process or "
                "program that does not exist; nothing was run",
    Exit.NO_HELPER: "the SchedCP helper (schedcp-helper, on the system D-Bus) is not reachable",
    Exit.NOT_AUTHORIZED: "polkit refused the operation",
    Exit.NO_SCHED_EXT: "the command needs sched_ext and this kernel lacks it; nothing was run "
                       "(`schedcp status` reports it and exits 0)",
    Exit.OTHER_SCHEDULER: "another tool's scheduler is attached (scx_loader, scx.service) and "
                          "SchedCP does not replace it silently; --take-over does",
    Exit.SUSPENDED: "the scheduler was suspended after the kernel ejected it; --resume runs "
                    "it again",
    Exit.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM); whatever was deployed was reverted",
    Exit.BROKEN_PIPE: "the output was closed (e.g. `| head`)",
}

# helper errors (client.HelperError subclasses, agent ToolFailure kinds) -> status
BY_ERROR: dict[str, Exit] = {
    "HelperUnavailable": Exit.NO_HELPER,
    "HelperGone": Exit.NO_HELPER,  # it left the bus mid-call (killed, crashed, restarted)
    "NotAuthorized": Exit.NOT_AUTHORIZED,
    "NoSchedExt": Exit.NO_SCHED_EXT,
    "OtherScheduler": Exit.OTHER_SCHEDULER,
    "Suspended": Exit.SUSPENDED,
    "InvalidArgs": Exit.USAGE,
}


def for_error(kind: str) -> Exit:
    """The status for a helper error's class name (or a ToolFailure kind); FAILED otherwise."""
    return BY_ERROR.get(kind, Exit.FAILED)


def markdown_table() -> str:
    rows = ["| status | meaning |", "| --- | --- |"]
    rows += [f"| {int(code)} | {text} |" for code, text in TABLE.items()]
    return "\n".join(rows)
