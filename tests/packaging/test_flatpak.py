"""The tray's flatpak manifest, checked as far as this machine can without Flathub runtimes:
its shape (a JSON schema of the flatpak-manifest(5) keys we use, so typos fail), the sandbox
holes it opens (and those it must not), every file it references, the app id against the desktop
entry and the AppStream metadata, and the pip sources against pyproject's dependencies."""

from __future__ import annotations

import glob
import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
FLATPAK = REPO / "packaging" / "flatpak"
MANIFEST = FLATPAK / "org.schedcp.Tray.json"


def _generator():
    """packaging/flatpak/gen_pip_sources.py (not importable by name: `packaging` is a PyPI
    library)."""
    spec = importlib.util.spec_from_file_location("gen_pip_sources",
                                                  FLATPAK / "gen_pip_sources.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

_SOURCE = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"enum": ["archive", "git", "file", "dir", "script", "shell", "patch"]},
        "path": {"type": "string"}, "url": {"type": "string", "pattern": "^https://"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "dest": {"type": "string"}, "dest-filename": {"type": "string"},
        "skip": {"type": "array", "items": {"type": "string"}},
        "only-arches": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
    "allOf": [{"if": {"properties": {"type": {"const": "file"}}, "required": ["url"]},
               "then": {"required": ["sha256"]}}],
}
MODULE_SCHEMA = {
    "type": "object",
    "required": ["name", "sources"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$"},
        "buildsystem": {"enum": ["autotools", "cmake", "cmake-ninja", "meson", "simple",
                                 "qmake"]},
        "only-arches": {"type": "array", "items": {"type": "string"}},
        "build-commands": {"type": "array", "items": {"type": "string"}},
        "sources": {"type": "array", "minItems": 1, "items": _SOURCE},
        "cleanup": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["app-id", "runtime", "runtime-version", "sdk", "command", "finish-args",
                 "modules"],
    "properties": {
        "app-id": {"type": "string",
                   "pattern": r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*){2,}$"},
        "runtime": {"type": "string"}, "runtime-version": {"type": "string"},
        "sdk": {"type": "string"}, "base": {"type": "string"},
        "base-version": {"type": "string"}, "command": {"type": "string"},
        "finish-args": {"type": "array", "items": {"type": "string", "pattern": "^--"}},
        "cleanup-commands": {"type": "array", "items": {"type": "string"}},
        "modules": {"type": "array", "minItems": 1,
                    "items": {"anyOf": [{"type": "string", "pattern": r"\.json$"},
                                        MODULE_SCHEMA]}},
    },
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def _modules(manifest: dict) -> list[dict]:
    """Inline modules and the ones included from JSON files beside the manifest."""
    return [json.loads((FLATPAK / m).read_text()) if isinstance(m, str) else m
            for m in manifest["modules"]]


def test_manifest_schema(manifest: dict) -> None:
    jsonschema.validate(manifest, MANIFEST_SCHEMA)
    for m in _modules(manifest):
        jsonschema.validate(m, MODULE_SCHEMA)
    assert MANIFEST.name == manifest["app-id"] + ".json"


def test_sandbox_holes(manifest: dict) -> None:
    args = set(manifest["finish-args"])
    needed = {"--system-talk-name=org.schedcp.Helper1",  # the host helper, and nothing else
              "--talk-name=org.freedesktop.Notifications", "--talk-name=org.freedesktop.secrets",
              "--socket=wayland", "--socket=fallback-x11", "--share=ipc"}
    assert needed <= args, needed - args
    # the whole point of a sandboxed tray: no host file system, no way out, no whole buses
    holes = ("--filesystem=host", "--filesystem=/", "--device=all",
             "--talk-name=org.freedesktop.Flatpak")
    forbidden = [a for a in args if a.startswith(holes)
                 or a in {"--socket=system-bus", "--socket=session-bus"}]
    assert not forbidden, forbidden


def test_every_referenced_file_exists(manifest: dict) -> None:
    app_id = manifest["app-id"]
    missing = [m for m in manifest["modules"] if isinstance(m, str) and not (FLATPAK / m).is_file()]
    for m in _modules(manifest):
        srcdir = None
        for s in m["sources"]:
            if "path" in s:
                p = (FLATPAK / s["path"]).resolve()
                if not p.exists():
                    missing.append(s["path"])
                if s["type"] == "dir":
                    srcdir = p
        if srcdir is None:
            continue
        # relative paths the build commands read from the source tree
        for cmd in m.get("build-commands", []):
            for word in cmd.replace("${FLATPAK_ID}", app_id).split():
                if "/" in word and not word.startswith(("$", "-", "/", '"')) \
                        and not glob.glob(str(srcdir / word)):
                    missing.append(word)
    assert not missing, missing


def test_app_id_matches_desktop_entry_and_metainfo(manifest: dict) -> None:
    app_id = manifest["app-id"]
    app = next(m for m in _modules(manifest) if m["name"] == "schedcp")
    cmds = "\n".join(app["build-commands"])
    # the desktop entry and icon are exported under the app id, as flatpak requires
    assert "resources/schedcp-tray.desktop ${FLATPAK_DEST}/share/applications/${FLATPAK_ID}" \
           ".desktop" in cmds
    assert "--set-icon=${FLATPAK_ID}" in cmds
    desktop = (REPO / "resources" / "schedcp-tray.desktop").read_text()
    exec_cmd = re.search(r"^Exec=(\S+)", desktop, re.M).group(1)
    assert exec_cmd == manifest["command"]
    # pip creates /app/bin/<command> from the entry point
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert manifest["command"] in scripts, f"pyproject has no {manifest['command']} script"
    meta = ET.parse(FLATPAK / f"{app_id}.metainfo.xml").getroot()
    assert meta.findtext("id") == app_id
    assert meta.findtext("launchable") == f"{app_id}.desktop"


def test_metainfo_validates() -> None:
    tool = shutil.which("appstreamcli")
    if tool is None:
        print("appstreamcli missing (apt-get install appstream): XML checks only")
        return
    metainfo = FLATPAK / "org.schedcp.Tray.metainfo.xml"
    r = subprocess.run([tool, "validate", "--no-net", str(metainfo)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pip_sources_cover_pyproject_dependencies(manifest: dict) -> None:
    deps = _generator().requirements(tomllib.loads((REPO / "pyproject.toml").read_text()))
    assert any(d.startswith("python-xlib") for d in deps)  # the tray extra is included
    wanted = {re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() for d in deps}
    mod = json.loads((FLATPAK / "python3-deps.json").read_text())
    installed = set(mod["build-commands"][0].split("--no-build-isolation", 1)[1].split())
    assert installed == wanted, "regenerate: python3 packaging/flatpak/gen_pip_sources.py"
    wheels = {s["url"].rsplit("/", 1)[1].split("-")[0].lower().replace("_", "-")
              for s in mod["sources"]}
    assert {w.replace("_", "-") for w in wanted} <= wheels, wanted - wheels
