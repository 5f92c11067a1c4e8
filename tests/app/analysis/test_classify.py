"""Classification on synthetic process snapshots: one desktop scene per kind."""

from __future__ import annotations

from schedcp.analysis import classify
from schedcp.model import ProcessInfo


def P(pid, comm, ppid=1, cpu=0.0, exe="", cmdline=None, threads=1) -> ProcessInfo:
    return ProcessInfo(pid=pid, comm=comm, exe=exe or f"/usr/bin/{comm}",
                       cmdline=cmdline or [comm], ppid=ppid, cpu_percent=cpu, threads=threads)


DESKTOP = [  # a quiet session underneath every scene
    P(1, "systemd"), P(50, "gnome-shell", cpu=1.0, threads=20), P(51, "Xwayland", 50, 0.5),
    P(52, "pipewire", cpu=0.5), P(53, "firefox", 50, 0.5, threads=60),
]


def test_idle_machine():
    kind, conf, reasons = classify(DESKTOP, 8)
    assert kind == "idle" and conf >= 0.9, reasons


def test_game_under_steam_proton():
    scene = [
        *DESKTOP,
        # not a host path
        P(100, "steam", 50, 1.5, exe="/home/u/.steam/ubuntu12_32/steam", threads=80),
        P(101, "steamwebhelper", 100, 3.0),
        P(200, "reaper", 100, 0.0, cmdline=["reaper", "SteamLaunch", "AppId=1091500"]),
        P(210, "pv-bwrap", 200, 0.0),
        P(300, "GameThread.exe", 210, 310.0, threads=90,
          # not a host path
          exe="/home/u/.steam/steam/steamapps/common/Proton 9.0/files/bin/wine64-preloader",
          cmdline=["Z:\\games\\Cyberpunk2077.exe"]),
        P(301, "wineserver", 210, 12.0),
    ]
    kind, conf, reasons = classify(scene, 8)
    assert kind == "game" and conf >= 0.8, reasons


def test_kernel_build_make_and_cc1():
    scene = [*DESKTOP, P(400, "make", 50, 2.0, cmdline=["make", "-j8"])]
    for i in range(6):  # make -> gcc -> cc1, and an assembler
        scene += [P(410 + i, "gcc", 400, 1.0, exe="/usr/bin/x86_64-linux-gnu-gcc-12"),
                  P(420 + i, "cc1", 410 + i, 95.0, exe="/usr/libexec/gcc/x86_64-linux-gnu/12/cc1")]
    scene.append(P(430, "as", 415, 20.0))
    kind, conf, reasons = classify(scene, 8)
    assert kind == "build" and conf >= 0.8, reasons


def test_batch_of_same_executable_workers():
    scene = [*DESKTOP, P(500, "bash", 50, 0.0)]
    scene += [P(510 + i, "sim", 500, 97.0, exe="/opt/sim/bin/sim") for i in range(6)]
    kind, conf, reasons = classify(scene, 8)
    assert kind == "batch" and conf >= 0.8, reasons


def test_batch_on_a_saturated_machine_counts_fair_shares():
    """40 workers on 2 CPUs get 5 % each: still CPU-bound, still a batch."""
    workers = [P(600 + i, "python3", 1, 5.0, exe="/usr/bin/python3.11") for i in range(40)]
    scene = [*DESKTOP, *workers]
    kind, conf, reasons = classify(scene, 2)
    assert kind == "batch" and conf >= 0.8, reasons


def test_browser_in_the_foreground_is_interactive_not_batch():
    scene = [*DESKTOP, P(700, "chrome", 50, 40.0, threads=40)]
    scene += [P(710 + i, "chrome", 700, 60.0, cmdline=["chrome", "--type=renderer"])
              for i in range(3)]  # several busy renderers of one executable
    kind, conf, reasons = classify(scene, 8)
    assert kind == "interactive" and conf >= 0.7, reasons


def test_unknown_app_in_the_foreground_is_interactive():
    scene = [*DESKTOP, P(800, "myeditor", 50, 30.0, exe="/opt/my/myeditor")]
    assert classify(scene, 8)[1] <= 0.3  # without the hint: a guess
    kind, conf, reasons = classify(scene, 8, foreground=800)
    assert kind == "interactive" and conf >= 0.7, reasons


def test_video_player_is_media():
    scene = [p for p in DESKTOP if p.comm != "pipewire"]
    scene += [P(900, "mpv", 50, 25.0, threads=12), P(52, "pipewire", 1, 4.0)]
    kind, conf, reasons = classify(scene, 8)
    assert kind == "media" and conf >= 0.8, reasons


def test_ambiguous_mix_has_low_confidence():
    scene = [
        *DESKTOP,
        P(100, "steam", 50, 1.0), P(300, "game.exe", 100, 150.0, exe="/x/wine64-preloader"),
        P(400, "make", 50, 1.0), P(420, "cc1", 400, 95.0), P(421, "cc1", 400, 95.0),
    ]
    kind, conf, reasons = classify(scene, 8)
    assert kind in ("game", "build") and conf < 0.5, (kind, conf, reasons)
    assert any("ambiguous" in r for r in reasons)


def test_no_signal_falls_back_with_low_confidence():
    scene = [*DESKTOP, *(P(1000 + i, f"daemon{i}", 1, 12.0) for i in range(4))]
    kind, conf, _ = classify(scene, 8)
    assert kind == "interactive" and conf <= 0.3


def test_root_scope_sees_its_tree_and_its_ancestors():
    scene = [
        *DESKTOP,
        P(400, "make", 50, 1.0), P(420, "cc1", 400, 95.0), P(421, "cc1", 400, 95.0),
        P(500, "bash", 50, 0.0), *[P(510 + i, "sim", 500, 97.0) for i in range(3)],
        P(100, "steam", 50, 1.0), P(200, "reaper", 100, 0.0),
        P(300, "sh", 200, 0.0), P(301, "game", 300, 90.0, exe="/games/game.x86_64"),
    ]
    assert classify(scene, 8, root=500)[0] == "batch"
    assert classify(scene, 8, root=400)[0] == "build"
    assert classify(scene, 8, root=300)[0] == "game"  # Steam is an ancestor, outside the tree


def test_runnable_marks_a_starved_process_cpu_bound():
    scene = [*DESKTOP, *(P(510 + i, "sim", 50, 30.0) for i in range(2))]
    assert classify(scene, 8)[0] != "batch"
    kind, _, reasons = classify(scene, 8, runnable={510: 1.0, 511: 0.95})
    assert kind == "batch", reasons


def test_a_program_run_by_make_is_not_a_build():
    """`make test` running a suite that spawns workers: the workers are a batch."""
    scene = [*DESKTOP, P(400, "make", 50, 0.0), P(401, "sh", 400), P(402, "pytest", 401, 3.0,
             exe="/usr/bin/python3.11"), *(P(410 + i, "sim", 402, 95.0) for i in range(4))]
    assert classify(scene, 8, root=402)[0] == "batch"
    assert classify([*scene, P(420, "cc1", 401, 90.0)], 8, root=420)[0] == "build"
