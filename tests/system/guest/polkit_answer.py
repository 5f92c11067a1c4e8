"""A polkit text agent that answers: run pkttyagent for this login session on a pty, run CMD,
type the administrator's password whenever the agent asks, and print one JSON line with CMD's
exit status and every authentication the agent was asked for (action ids). Runs in the test
machine as the logged-in user; standard library only.

    python3 polkit_answer.py PASSWORD_FILE [TIMEOUT_S] -- CMD...

CMD must be the process that calls the helper (polkit looks the agent up by that exact
process), so it is not wrapped in timeout(1): after TIMEOUT_S (default 600) it is killed here
and its status is 124.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

ASKED = re.compile(rb"AUTHENTICATING FOR (\S+)")


def main(argv: list[str]) -> int:
    with open(argv[1], "rb") as f:
        password = f.read().strip()
    cmd = argv[argv.index("--") + 1:]
    limit = float(argv[2]) if argv.index("--") > 2 else 600.0
    # pkttyagent registers for one process (its parent by default, which is not the caller
    # polkit asks about), so CMD starts held at a gate, the agent registers for CMD's pid (an
    # exec keeps it), and only then does CMD run
    gate_r, gate_w = os.pipe()
    child = subprocess.Popen(["sh", "-c", 'read _; exec "$@" </dev/null', "sh", *cmd],
                             stdin=gate_r, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.close(gate_r)
    notify_r, notify_w = os.pipe()
    pid, fd = pty.fork()
    if pid == 0:  # the agent, on its own pty (it reads the password from its controlling tty)
        os.close(notify_r)
        os.execvp("pkttyagent", ["pkttyagent", "--process", str(child.pid),
                                 "--notify-fd", str(notify_w)])
    os.close(notify_w)
    transcript, answered = b"", 0
    # the agent closes the notify fd once it is registered
    ready, _, _ = select.select([notify_r], [], [], 120)
    registered = bool(ready) and os.read(notify_r, 1) == b""
    os.write(gate_w, b"go\n")
    os.close(gate_w)
    out = b""
    fds = [fd, child.stdout.fileno()]
    deadline, timed_out = time.monotonic() + limit, False
    while fds:
        if time.monotonic() > deadline and child.poll() is None:
            child.kill()
            timed_out = True
        r, _, _ = select.select(fds, [], [], 1.0)
        for f in r:
            try:
                chunk = os.read(f, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                fds.remove(f)
                continue
            if f == fd:
                transcript += chunk
                if transcript.count(b"Password:") > answered:
                    os.write(fd, password + b"\n")
                    answered += 1
            else:
                out += chunk
        if child.poll() is not None and child.stdout.fileno() not in fds:
            break
    rc = 124 if timed_out else child.wait()
    child.wait()
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.2)
    os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace"))
    print("\nPOLKIT " + json.dumps({
        "rc": rc, "registered": registered,
        "asked": [m.decode(errors="replace") for m in ASKED.findall(transcript)],
        "password_prompts": transcript.count(b"Password:"),
        "transcript": transcript.decode(errors="replace")[-2000:]}))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
