"""``python -m schedcp_helper.service`` (``schedcp-helper-service``): the helper on the system bus.

Runs as root (systemd starts it on bus activation). ``--address`` picks another bus (tests run a
private system bus); ``--state-dir`` (or SCHEDCP_STATE_DIR) another state folder.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from .dbus import serve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="schedcp-helper-service", description=__doc__)
    p.add_argument("--state-dir", type=Path, help="state folder (default /var/lib/schedcp)")
    p.add_argument("--address", help="bus address (default: the system bus, or "
                   "DBUS_SYSTEM_BUS_ADDRESS)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if os.geteuid() != 0:
        logging.warning("not running as root: deploying schedulers will fail")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.state_dir, args.address,
                    ready=lambda: print("ready", flush=True), stop=stop)

    try:
        asyncio.run(run())
    except RuntimeError as e:
        logging.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
