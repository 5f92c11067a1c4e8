"""A private dbus-daemon that behaves as the system bus: the system bus's default policy, our
own bus policy (``packaging/dbus/org.schedcp.Helper1.conf``) and whatever else the caller
includes. ``schedcp demo`` runs the root helper on one inside its guest; the tests run theirs
(``tests/dbus_stack.py``, with polkitd and stand-ins) on the same policy.
"""

from __future__ import annotations

import selectors
import subprocess
from collections.abc import Sequence
from pathlib import Path

CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={sock}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
{includes}</busconfig>
"""
REPO = Path(__file__).resolve().parents[2]
OUR_CONF = "org.schedcp.Helper1.conf"
# generous: inside a TCG guest on a host at load 14 dbus-daemon took over 10 s to start
START_SECONDS = 60.0


def our_conf() -> list[Path]:
    """Our bus policy, the checkout's or the installed one (a list: none when neither is
    there, and the helper then cannot own its name)."""
    for folder in (REPO / "packaging" / "dbus", Path("/usr/share/dbus-1/system.d")):
        p = folder / OUR_CONF
        if p.is_file():
            return [p]
    return []


def bus_conf(sock: Path, includes: Sequence[Path] = (), include_dirs: Sequence[Path] = ()) -> str:
    lines = [f"  <include>{p}</include>\n" for p in includes]
    lines += [f"  <includedir>{p}</includedir>\n" for p in include_dirs]
    return CONF.format(sock=sock, includes="".join(lines))


def start_bus(folder: Path, sock: Path, includes: Sequence[Path] = (),
              include_dirs: Sequence[Path] = ()) -> tuple[subprocess.Popen, str]:
    """dbus-daemon listening on ``sock``, its config and log (``dbus.log``) in ``folder``;
    (the process, its address). RuntimeError with the log when it does not start: the caller
    stops nothing then, the process is already gone or killed here."""
    conf = folder / "bus.conf"
    conf.write_text(bus_conf(sock, includes, include_dirs))
    log = folder / "dbus.log"
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork",
                            "--print-address=1"], stdout=subprocess.PIPE,
                           stderr=log.open("w"), text=True)
    assert bus.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(bus.stdout, selectors.EVENT_READ)
    if not sel.select(START_SECONDS) or not bus.stdout.readline():
        bus.kill()
        bus.wait()
        raise RuntimeError(f"dbus-daemon did not start: {log.read_text()[-2000:]}")
    return bus, f"unix:path={sock}"
