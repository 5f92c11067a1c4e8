"""SchedCP, the unprivileged side: workload detection, the agent, the CLI and the tray."""

__version__ = "0.1.0"
