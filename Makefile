# One command for each job; every target sets up what it needs first (idempotent).
VENV ?= .venv
export VENV

.PHONY: screenshots setup test test-long test-system demo bench lint deb soak
setup:
	bash packaging/setup-dev.sh

# The test command (CI runs exactly this): the suite with a fresh HOME, TMPDIR and XDG folders
# and only the venv setup built (packaging/run-tests.sh says why).
test: setup
	bash packaging/run-tests.sh

# The generated-schedulers VM test on the demo-sized batch (24 jobs, 15-25 min;
# SCHEDCP_LONG_VM=short for the short batch); `make test` skips it, saying why.
test-long: setup
	SCHEDCP_LONG_VM=1 bash packaging/run-tests.sh tests/app/agent/test_generated_vm.py

# The installed product on a Debian 12 machine booted with systemd in the micro-VM (25-40 min).
test-system: setup
	SCHEDCP_SYSTEM_TEST=1 bash packaging/run-tests.sh tests/system

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
	$(VENV)/bin/python bench/sched_latency.py --virtual-time --cpus 1 --hogs 2 --duration-s 1
	$(VENV)/bin/python bench/sched_latency.py --virtual-time --cpus 2 --hogs 4 --duration-s 1
	$(VENV)/bin/python bench/real_workloads.py --table latency --virtual-time --cpus 1 --seconds 1 \
		--variants default,interactive,fifo,vtime,scx_simple
	$(VENV)/bin/python bench/real_workloads.py --table latency --virtual-time --cpus 2 --seconds 1 \
		--variants default,interactive,fifo,vtime,scx_simple
	$(VENV)/bin/python bench/real_workloads.py --table latency --virtual-time --cpus 1 --seconds 1 \
		--load build --build-jobs 8 --workloads frames,cyclictest --variants default,interactive-6ms
	$(VENV)/bin/python bench/real_workloads.py --table batch \
		--variants default,fifo,vtime,ljf,interactive,powersave,scx_simple
	$(VENV)/bin/python bench/real_workloads.py --table build --build-lib subcmd -n 8 \
		--variants default,vtime,ljf,interactive,scx_simple
	$(VENV)/bin/python bench/real_workloads.py --table build --build-lib subcmd -n 6 \
		--variants default,scx_simple,interactive,default-again
	$(VENV)/bin/python bench/optimize_picks.py
	$(VENV)/bin/python bench/agent_loop.py
	$(VENV)/bin/python bench/null_experiment.py --vm

# Debian 12 packages into dist/: schedcp-helper (root, Debian deps only) and schedcp (app + tray).
deb: setup
	bash packaging/build-deb.sh dist

# the README's screenshots, from the scripted walk-through of every tray menu item in each
# helper state on the real desktop stack (issue #18); all of its screenshots stay in $(SHOTS)
SHOTS := build/walkthrough
screenshots: setup
	rm -rf $(SHOTS) && mkdir -p $(SHOTS)
	SCHEDCP_WALKTHROUGH=$(abspath $(SHOTS)) $(VENV)/bin/python -m pytest -q -p no:cacheprovider \
		tests/app/tray/test_walkthrough.py
	cp $(SHOTS)/unsupported-01-menu.png docs/screenshots/tray-menu.png
	cp $(SHOTS)/unsupported-*-what-is-missing-*.png docs/screenshots/missing.png
	cp $(SHOTS)/unsupported-*-analyze-*.png docs/screenshots/optimize.png
	cp $(SHOTS)/unsupported-*-settings.png docs/screenshots/settings.png
	cp $(SHOTS)/supported-*-notification.png docs/screenshots/notification.png
	cp $(SHOTS)/supported-*-history.png docs/screenshots/history.png
	cp $(SHOTS)/supported-*-profiles-edit-profiles.png docs/screenshots/profiles.png

lint: setup
	$(VENV)/bin/ruff check app helper tests bench

# issue 15's fault campaign: kill -9 at each step of deploy/keep/revert/recover, on a normal,
# full and read-only state folder, 20 trials each (root: it mounts small tmpfs folders); then
# the same against the real kernel in the micro-VM (helper or loader killed, 20 per step/victim)
soak: setup
	$(VENV)/bin/python -m schedcp_helper.soak 20
	SCHEDCP_FAULT_TRIALS=20 bash packaging/run-tests.sh tests/helper/test_faults_vm.py
