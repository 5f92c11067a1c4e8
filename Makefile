# One command for each job; every target sets up what it needs first (idempotent).
VENV ?= .venv
export VENV

.PHONY: setup test demo bench lint deb
setup:
	bash packaging/setup-dev.sh

# The test command (CI runs exactly this).
test: setup
	$(VENV)/bin/python -m pytest

# The main job: the whole observe -> plan -> execute -> learn loop inside the sched_ext micro-VM
# (offline planner, no API key) on a batch long-tail workload; prints before/after.
demo: setup
	$(VENV)/bin/schedcp demo

# Benchmarks print ratios measured side by side in one run (see each script's docstring).
bench: setup
	$(VENV)/bin/python bench/vm_boot.py
	$(VENV)/bin/python bench/verifier_stages.py
	$(VENV)/bin/python bench/sched_batch.py
	$(VENV)/bin/python bench/sched_latency.py --hogs 4
	$(VENV)/bin/python bench/sched_latency.py --hogs 16
	$(VENV)/bin/python bench/agent_loop.py
	$(VENV)/bin/python bench/null_experiment.py --vm

# Debian 12 packages into dist/: schedcp-helper (root, Debian deps only) and schedcp (app + tray).
deb: setup
	bash packaging/build-deb.sh dist

lint: setup
	$(VENV)/bin/ruff check app helper tests bench
