#!/bin/bash
# The user's path, run by the normal user's login shell on tty1 (an autologin logind session):
# nothing here is started by hand. Each step is a section "==== NAME" ending in "rc=N"; the host
# parses session.log strictly. Root-only steps are asked of the root agent (root.sh) through
# request files. Runs inside the test machine; /mnt/systest is the host's per-test folder.
S=/mnt/systest
F=$S/files
W=$HOME/systest
mkdir -p "$W"
sec() { echo "==== $1"; }
rc() { echo "rc=$1"; }
# a root-only step, done by the root agent; its output becomes this section's text
# (the agent takes the request file, drops its old answer, then writes .out and .done)
ask_root() {
    : > "$S/req/$1"
    for _ in $(seq 600); do [ -e "$S/req/$1" ] || break; sleep 0.5; done
    for _ in $(seq 600); do [ -e "$S/req/$1.done" ] && break; sleep 0.5; done
    cat "$S/req/$1.out" 2>/dev/null
}
# a command run beside a polkit text agent that types the administrator's password when asked;
# the command itself is the helper's caller (no timeout(1) in between: polkit looks the agent up
# by the caller's process), killed by the wrapper after 600 s
POLKIT=(python3 "$F/polkit_answer.py" "$F/admin-password" --)
json_get() {  # a key of the first JSON object in stdin, "" if there is none
    python3 -c '
import json, sys
t = sys.stdin.read(); i = t.find("{")
try:
    print(json.JSONDecoder().raw_decode(t[i:])[0].get(sys.argv[1], "") if i >= 0 else "")
except ValueError:
    print("")' "$1"
}
scx_state() { echo "state=$(cat /sys/kernel/sched_ext/state) ops=$(cat /sys/kernel/sched_ext/root/ops 2>/dev/null)"; }
helper_pid() { systemctl show -p MainPID --value schedcp-helper; }

sec start; cut -d' ' -f1 /proc/uptime; id -un; rc 0
sec session
loginctl show-session "$XDG_SESSION_ID" -p Remote -p Seat -p Active -p Class -p Type -p TTY \
    -p State; rc $?
sec boot; systemd-analyze time; systemctl is-system-running; systemctl --failed --no-legend; rc 0
sec helper-before; systemctl show -p ActiveState --value schedcp-helper; rc 0

sec status; timeout 600 schedcp status --json; rc $?
sec helper-unit
systemctl show schedcp-helper -p ActiveState -p ControlGroup -p CapabilityBoundingSet \
    -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp -p PrivateNetwork \
    -p RestrictNamespaces -p PrivateDevices -p DevicePolicy -p MemoryMax -p TasksMax; rc $?
sec helper-cgroup; cat "/proc/$(helper_pid)/cgroup"; rc $?
sec helper-proc; grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' "/proc/$(helper_pid)/status"; rc $?
sec scx-before; scx_state; rc 0

user_path() {
P=$1
sec "${P}verify-fifo"; timeout 1200 schedcp verify --json --policy fifo > "$W/fifo.json" 2>&1
r=$?; cat "$W/fifo.json"; rc $r
sec "${P}verify-user"
timeout 1200 schedcp verify --json --source "$F/userfifo.bpf.c" > "$W/user.json" 2>&1
r=$?; cat "$W/user.json"; rc $r
sec "${P}verify-user-bad"
timeout 1200 schedcp verify --json --source "$F/null_deref.bpf.c" 2>&1; rc $?

# a user-written scheduler is new code: polkit asks for the administrator's password
sec "${P}deploy-user"
token=$(json_get token < "$W/user.json")
timeout 900 "${POLKIT[@]}" schedcp deploy --json --keep --canary 3 "$token" 2>&1; rc $?
sec "${P}scx-after-deploy-user"; scx_state; rc 0
sec "${P}restart-helper"; ask_root restart-helper; rc 0
sec "${P}status-after-restart"; sleep 5; timeout 600 schedcp status --json 2>&1; rc $?
sec "${P}scx-after-restart"; scx_state; rc 0
# the tray from the package, in this session (offscreen: no X server in the machine), while the
# kept scheduler runs: it logs each state it shows; stopped once it shows one from the helper
sec "${P}tray"
QT_QPA_PLATFORM=offscreen schedcp-tray --no-foreground > "$W/tray.out" 2>&1 &
tpid=$!
for _ in $(seq 240); do
    kill -0 "$tpid" 2>/dev/null || break
    grep -q '^schedcp-tray: state: \(default\|optimized\|canary\|attention\)' "$W/tray.out" \
        && break
    sleep 1
done
kill -0 "$tpid" 2>/dev/null; alive=$?
kill "$tpid" 2>/dev/null; wait "$tpid"
tail -c 3000 "$W/tray.out"; echo "alive=$alive"; rc 0
sec "${P}status-with-tray"; timeout 600 schedcp status --json 2>&1; rc $?
# reverting what this user kept is free for the active user: no password
sec "${P}revert"; timeout 900 "${POLKIT[@]}" schedcp revert --json 2>&1; rc $?
sec "${P}scx-after-revert"; sleep 2; scx_state; rc 0

# the helper killed mid-deploy: the kernel falls back to its default, the next call works
sec "${P}kill-mid-deploy"
token=$(json_get token < "$W/fifo.json")
timeout 600 schedcp deploy --json --canary 120 "$token" > "$W/deploy-kill.out" 2>&1 &
dpid=$!
for _ in $(seq 120); do  # until the canary runs (or the deploy gave up)
    kill -0 "$dpid" 2>/dev/null || break
    [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] && break
    sleep 1
done
scx_state
ask_root kill-helper
killed=$(cut -d' ' -f1 /proc/uptime)
# the deploying client notices its helper died (HelperGone, exit 3) and exits by itself;
# a bound only, so that a regression shows as a failure rather than a hang
for _ in $(seq 240); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.25; done
kill -0 "$dpid" 2>/dev/null && { echo "client still waiting after the helper died"; kill "$dpid"; }
wait "$dpid"; echo "client-exit=$? after $killed $(cut -d' ' -f1 /proc/uptime)"
# the kernel disables a scheduler whose link closed from a work item: allow it a moment
for _ in $(seq 20); do [ "$(cat /sys/kernel/sched_ext/state)" = disabled ] && break; sleep 0.5; done
scx_state
cat "$W/deploy-kill.out"; rc 0
sec "${P}status-after-kill"; timeout 600 schedcp status --json 2>&1; rc $?
sec "${P}scx-after-kill"; scx_state; rc 0

# the whole loop on a small batch (the catalogue's batch-sha256 shape: short jobs + one long)
sec "${P}optimize"
printf '%s\n' 'for i in 1 2 3 4 5 6 7; do seq 20000 | sha256sum >/dev/null & done' \
    'seq 140000 | sha256sum >/dev/null & wait' > "$W/batch.sh"
timeout 2400 python3 "$F/polkit_answer.py" "$F/admin-password" 2300 -- schedcp optimize --json --goal throughput --max-iterations 1 \
    --canary 2 --trial-budget 60 -- sh "$W/batch.sh" 2>&1; rc $?
sec "${P}status-after-optimize"; timeout 600 schedcp status --json 2>&1; rc $?
sec "${P}scx-after-optimize"; scx_state; rc 0
sec "${P}revert-after-optimize"; timeout 900 "${POLKIT[@]}" schedcp revert --json 2>&1; rc $?
sec "${P}scx-end"; sleep 2; scx_state; rc 0
}

user_path ""
sec journal; ask_root journal; rc 0
sec end; cut -d' ' -f1 /proc/uptime; rc 0
