"""A thin ctypes binding to the few libbpf calls the scheduler loader needs.

ctypes instead of a C extension or hand-made bpf() syscalls: libbpf already does ELF parsing,
CO-RE relocation and struct_ops set-up, and binding it needs no compiler and no new dependency.
sched_ext schedulers use ``.struct_ops.link`` maps, which need libbpf >= 1.2 (Debian 12 ships
1.1), so the library is chosen explicitly: ``$SCHEDCP_LIBBPF`` or a new-enough system copy.

Struct layouts mirror libbpf 1.5's ``libbpf.h``/``btf.h``; ``sz`` fields keep older or newer
libbpf compatible (libbpf ignores or zero-checks the tail it does not know).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_long,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from dataclasses import dataclass

log = logging.getLogger(__name__)

MIN_VERSION = (1, 2)
ENV_VAR = "SCHEDCP_LIBBPF"

BPF_MAP_TYPE_STRUCT_OPS = 26
LIBBPF_INFO = 1  # enum libbpf_print_level: WARN 0, INFO 1, DEBUG 2

BTF_KIND_INT = 1
BTF_KIND_PTR = 2
BTF_KIND_ARRAY = 3
BTF_KIND_STRUCT = 4
BTF_KIND_ENUM = 6
BTF_KIND_TYPEDEF = 8
BTF_KIND_VOLATILE = 9
BTF_KIND_CONST = 10
BTF_KIND_RESTRICT = 11
BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15
BTF_KIND_TYPE_TAG = 18
BTF_KIND_ENUM64 = 19
BTF_INT_SIGNED = 1 << 0
BTF_INT_BOOL = 1 << 2
MODIFIERS = (BTF_KIND_TYPEDEF, BTF_KIND_VOLATILE, BTF_KIND_CONST, BTF_KIND_RESTRICT,
             BTF_KIND_TYPE_TAG)


class LibbpfError(OSError):
    """A libbpf call failed; ``errno`` is the positive error code."""


class LibbpfUnavailable(RuntimeError):
    """No usable libbpf: missing, or older than 1.2; the message says what to set."""


class bpf_object_open_opts(Structure):
    """``struct bpf_object_open_opts`` of libbpf 1.5 (88 bytes on x86-64)."""

    _fields_ = (
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd", c_uint32),  # `__u32 :32`, a removed field
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_void_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
        ("bpf_token_path", c_char_p),
    )


class btf_type(Structure):
    _fields_ = (("name_off", c_uint32), ("info", c_uint32), ("size_or_type", c_uint32))

    @property
    def kind(self) -> int:
        return (self.info >> 24) & 0x1F

    @property
    def vlen(self) -> int:
        return self.info & 0xFFFF


class btf_var_secinfo(Structure):
    _fields_ = (("type", c_uint32), ("offset", c_uint32), ("size", c_uint32))


class btf_member(Structure):
    _fields_ = (("name_off", c_uint32), ("type", c_uint32), ("offset", c_uint32))


PRINT_FN = CFUNCTYPE(c_int, c_int, c_void_p, c_void_p)  # (level, fmt, va_list)

# (name, restype, argtypes); pointer-returning calls set errno on failure (libbpf >= 1.0).
_SIGNATURES: tuple[tuple[str, object, tuple], ...] = (
    ("libbpf_major_version", c_uint32, ()),
    ("libbpf_minor_version", c_uint32, ()),
    ("libbpf_set_print", c_void_p, (PRINT_FN,)),
    ("libbpf_get_error", c_long, (c_void_p,)),
    ("bpf_object__open_file", c_void_p, (c_char_p, POINTER(bpf_object_open_opts))),
    ("bpf_object__load", c_int, (c_void_p,)),
    ("bpf_object__close", None, (c_void_p,)),
    ("bpf_object__btf", c_void_p, (c_void_p,)),
    ("bpf_object__find_map_by_name", c_void_p, (c_void_p, c_char_p)),
    ("bpf_object__next_map", c_void_p, (c_void_p, c_void_p)),
    ("bpf_map__name", c_char_p, (c_void_p,)),
    ("bpf_map__type", c_int, (c_void_p,)),
    ("bpf_map__fd", c_int, (c_void_p,)),
    ("bpf_map__key_size", c_uint32, (c_void_p,)),
    ("bpf_map__value_size", c_uint32, (c_void_p,)),
    ("bpf_map__initial_value", c_void_p, (c_void_p, POINTER(c_size_t))),
    ("bpf_map__set_initial_value", c_int, (c_void_p, c_void_p, c_size_t)),
    ("bpf_map__attach_struct_ops", c_void_p, (c_void_p,)),
    ("bpf_link__destroy", c_int, (c_void_p,)),
    ("bpf_link__fd", c_int, (c_void_p,)),
    ("bpf_map_update_elem", c_int, (c_int, c_void_p, c_void_p, c_uint64)),
    ("bpf_map_delete_elem", c_int, (c_int, c_void_p)),
    ("btf__find_by_name_kind", c_int, (c_void_p, c_char_p, c_uint32)),
    ("btf__type_by_id", POINTER(btf_type), (c_void_p, c_uint32)),
    ("btf__name_by_offset", c_char_p, (c_void_p, c_uint32)),
)


@dataclass(frozen=True)
class Libbpf:
    """The loaded library with typed functions, plus where it came from and its version."""

    lib: ctypes.CDLL
    path: str
    version: tuple[int, int]

    def __getattr__(self, name: str):
        return getattr(self.lib, name)


_lock = threading.Lock()
_loaded: Libbpf | None = None
_messages: list[str] = []
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = (c_char_p, c_size_t, c_void_p, c_void_p)
_libc.vsnprintf.restype = c_int


@PRINT_FN
def _print(level: int, fmt: int, args: int) -> int:
    """Format libbpf's message with libc (the va_list cannot be read from Python) and keep it."""
    buf = ctypes.create_string_buffer(16384)
    n = _libc.vsnprintf(buf, len(buf), fmt, args)  # x86-64: va_list arrives as a pointer
    text = buf.value.decode(errors="replace")
    if n >= len(buf):
        text += "...[truncated]\n"
    if level <= LIBBPF_INFO:  # debug level narrates every relocation: log it, do not keep it
        with _lock:
            _messages.append(text)
    log.debug("libbpf[%d]: %s", level, text.rstrip())
    return 0


def take_messages() -> str:
    """libbpf's own messages since the last call (warnings, relocation and load errors)."""
    with _lock:
        text = "".join(_messages)
        _messages.clear()
    return text


def _bind(lib: ctypes.CDLL) -> None:
    for name, restype, argtypes in _SIGNATURES:
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _version(lib: ctypes.CDLL) -> tuple[int, int]:
    for name in ("libbpf_major_version", "libbpf_minor_version"):
        if not hasattr(lib, name):
            return (0, 0)  # older than 0.6: no version functions at all
        getattr(lib, name).restype = c_uint32
    return (lib.libbpf_major_version(), lib.libbpf_minor_version())


def open_library(path: str | None = None) -> Libbpf:
    """Open ``path``, else ``$SCHEDCP_LIBBPF``, else the system ``libbpf.so.1``; check >= 1.2.

    When the system's is missing or too old (Debian 12 ships 1.1) and nothing was named, the
    verified guest kit's libbpf is used: it is the one the kit's bpftool and the verifier's
    trials use, checked against the kit's manifest. Without a kit the error says what to set.
    """
    explicit = path or os.environ.get(ENV_VAR) or None
    if explicit:
        return _open(explicit, f"{ENV_VAR}={explicit}")
    try:
        return _open("libbpf.so.1", "the system libbpf.so.1")
    except LibbpfUnavailable:
        kit_lib = _kit_library()
        if kit_lib is None:
            raise
        return _open(kit_lib, f"the guest kit's {kit_lib}")


def _kit_library() -> str | None:
    from schedcp_common.vm.kit import KitError, find_kit

    try:
        return str(find_kit().libbpf)
    except KitError:
        return None


def _open(name: str, where: str) -> Libbpf:
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        raise LibbpfUnavailable(
            f"cannot load {where}: {e}. Set {ENV_VAR} to a libbpf.so.1 >= "
            f"{MIN_VERSION[0]}.{MIN_VERSION[1]} (the guest kit ships lib/libbpf.so.1.5.0)"
        ) from None
    version = _version(lib)
    if version < MIN_VERSION:
        origin = "the system libbpf" if where == "the system libbpf.so.1" else where
        raise LibbpfUnavailable(
            f"{origin} is version {version[0]}.{version[1]}, too old: sched_ext schedulers "
            f"need libbpf >= {MIN_VERSION[0]}.{MIN_VERSION[1]} for .struct_ops.link maps. "
            f"Set {ENV_VAR} to a newer libbpf.so.1 (the guest kit ships lib/libbpf.so.1.5.0)"
        )
    _bind(lib)
    lib.libbpf_set_print(_print)
    return Libbpf(lib=lib, path=name, version=version)


def libbpf() -> Libbpf:
    """The process-wide library (libbpf's print callback is global, so is this)."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = open_library()
        return _loaded


def check_ptr(ptr: int | None, what: str) -> int:
    """Raise LibbpfError for a NULL result, with libbpf's errno."""
    if not ptr:
        err = ctypes.get_errno() or 22
        raise LibbpfError(err, f"{what}: {os.strerror(err)}")
    return ptr


def check_int(ret: int, what: str) -> int:
    """Raise LibbpfError for a negative ``-errno`` result."""
    if ret < 0:
        raise LibbpfError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


def member_types(t: ctypes._Pointer, cls: type[Structure]) -> ctypes.Array:
    """The ``vlen`` records (secinfos, members) that follow a BTF type in memory."""
    base = ctypes.addressof(t.contents) + ctypes.sizeof(btf_type)
    return (cls * t.contents.vlen).from_address(base)


def int_encoding(t: ctypes._Pointer) -> int:
    """BTF_KIND_INT's encoding bits (signed/bool), stored in the u32 after the type."""
    raw = c_uint32.from_address(ctypes.addressof(t.contents) + ctypes.sizeof(btf_type)).value
    return (raw >> 24) & 0x0F
