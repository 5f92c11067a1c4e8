"""The guest kit is trusted only through its sha256 manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from schedcp_common.vm.kit import Kit, KitError, find_kit, import_kit


def make_kit(root: Path, release: str = "6.12.1-test") -> Path:
    files = {
        f"bzImage-{release}": b"kernel",
        f"config-{release}": b"# CONFIG_JUMP_LABEL is not set\n",
        "bin/bpftool": b"tool",
        "include/vmlinux.h": b"struct x;",
    }
    lines = []
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {rel}")
    (root / "include" / "bpf").mkdir()
    (root / "include" / "bpf" / "bpf_helpers.h").write_text("/* unlisted header */")
    (root / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
    return root


def test_a_verified_kit_names_its_parts(tmp_path):
    kit = Kit.load(make_kit(tmp_path))
    assert kit.release == "6.12.1-test"
    assert kit.bzimage.read_bytes() == b"kernel"
    assert kit.bpftool == tmp_path / "bin" / "bpftool"


def test_a_modified_file_is_named(tmp_path):
    make_kit(tmp_path)
    (tmp_path / "bin" / "bpftool").write_bytes(b"tampered")
    with pytest.raises(KitError, match="bin/bpftool does not match"):
        Kit.load(tmp_path)


def test_missing_file_and_missing_manifest(tmp_path):
    with pytest.raises(KitError, match=r"no MANIFEST.sha256"):
        Kit.load(tmp_path)
    make_kit(tmp_path)
    (tmp_path / "include" / "vmlinux.h").unlink()
    with pytest.raises(KitError, match=r"vmlinux\.h is missing"):
        Kit.load(tmp_path)


def test_manifest_paths_cannot_escape(tmp_path):
    make_kit(tmp_path)
    (tmp_path / "MANIFEST.sha256").write_text("0" * 64 + "  ../../etc/passwd\n")
    with pytest.raises(KitError, match="malformed"):
        Kit.load(tmp_path)


def test_prebuilt_kit_is_imported_into_the_cache(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    make_kit(shared)
    (shared / "README.md").write_text("not copied")
    (shared / "bin" / "bpftool").chmod(0o555)
    cache = tmp_path / "cache"
    kit = find_kit(cache=cache, shared=shared)
    assert kit.root == cache / "6.12.1-test"
    assert (kit.root / "include" / "bpf" / "bpf_helpers.h").exists()
    assert not (kit.root / "README.md").exists()
    assert find_kit(cache=cache, shared=tmp_path / "elsewhere").root == kit.root  # cached now


def test_a_corrupt_prebuilt_kit_is_rejected_and_nothing_is_cached(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    make_kit(shared)
    (shared / "bzImage-6.12.1-test").write_bytes(b"truncated")
    cache = tmp_path / "cache"
    with pytest.raises(KitError, match=r"prebuilt kit rejected: .*bzImage-6\.12\.1-test"):
        import_kit(shared, cache)
    assert not cache.exists() or not any(cache.iterdir())


def test_no_kit_anywhere_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr("schedcp_common.vm.kit.shared_dir", lambda: None)
    with pytest.raises(KitError, match="schedcp vm-kit --build"):
        find_kit(cache=tmp_path / "empty")
