"""Code both sides of SchedCP import: the policy metadata, the sched_ext micro-VM and the
workload probe.

Nothing here is privileged or talks to D-Bus, and nothing here imports the app (``schedcp``)
or the helper (``schedcp_helper``): both import this package, never each other. It ships in
the schedcp-helper .deb (which the schedcp .deb depends on) and in the Flatpak.
"""
