#!/bin/bash
# The test's administrator, as root (systest-root.service, Type=notify): installs the built
# packages with apt as a user would, puts the guest kit where the helper's unit looks for it,
# tells systemd it is ready (the autologin waits for that), then does the root-only steps the
# user's session asks for through request files. /mnt/systest is the host's per-test folder.
S=/mnt/systest
export DEBIAN_FRONTEND=noninteractive
{
    echo "==== install"
    start=$(cut -d' ' -f1 /proc/uptime)
    cd "$S/debs" && apt install -y --no-install-recommends ./*.deb; echo "rc=$?"
    echo "seconds $start $(cut -d' ' -f1 /proc/uptime)"
    echo "==== kit"
    mkdir -p /var/cache/schedcp/vm && cp -a "$S/kit/." "/var/cache/schedcp/vm/$(cat "$S/kit-release")/"
    echo "rc=$?"
} > "$S/install.log" 2>&1
systemd-notify --ready
while :; do
    for r in "$S"/req/*; do
        name=${r##*/}
        case "$name" in *.out|*.done|'*') continue ;; esac
        rm -f "$S/req/$name.done" "$S/req/$name.out" "$r"
        case "$name" in
            restart-helper) systemctl restart schedcp-helper; echo "rc=$?"
                            systemctl show -p ActiveState -p MainPID schedcp-helper ;;
            kill-helper) pid=$(systemctl show -p MainPID --value schedcp-helper)
                         kill -9 "$pid"; echo "killed $pid rc=$?" ;;
            journal) journalctl -b --no-pager -o short-monotonic -u schedcp-helper \
                         -u polkit -u dbus | tail -n 300 ;;
            *) echo "unknown request" ;;
        esac > "$S/req/$name.out" 2>&1
        : > "$S/req/$name.done"
    done
    sleep 0.5
done
