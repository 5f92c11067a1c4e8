"""``python -m schedcp.workloads``: see ``schedcp.workloads.cli``."""

from .cli import main

raise SystemExit(main())
