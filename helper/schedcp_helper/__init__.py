"""SchedCP's privileged side: it compiles, verifies, loads and watches sched_ext schedulers.

Nothing here imports the unprivileged app (``schedcp``); the app reaches it over D-Bus.
"""
