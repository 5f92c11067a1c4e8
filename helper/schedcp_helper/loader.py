"""Load, tune and attach one sched_ext BPF scheduler object through libbpf.

Safety rests on the kernel, not on us: the struct_ops link is an fd held by this process, so if
the process dies for any reason the link closes and sched_ext falls back to the default
scheduler by itself. Tunables are the object's ``const volatile`` globals (.rodata), written
before load so the verifier sees them as constants.

Command line (used in the guest and by tests; imports kept minimal because guest Python is slow):
``python -m schedcp_helper.loader OBJ [--set name=value ...] [--hint tgid=ns ...]
[--hold-seconds S | --until-stdin-closes]`` prints ``{"attached": true, "ops": "..."}`` and holds.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

from . import libbpf as lb
from .pairs import parse_pairs, split_pairs

LOG_SIZE = 16 << 20  # verifier logs of large programs run to megabytes; the kernel truncates
RODATA = ".rodata"


class LoaderError(Exception):
    """Opening, tuning, attaching or updating failed; the message says which and why."""


class VerifierError(LoaderError):
    """The kernel refused the object at load time; ``log`` is the verifier's text, verbatim."""

    def __init__(self, message: str, log: str, libbpf_messages: str, errno: int):
        super().__init__(message)
        self.log = log
        self.libbpf_messages = libbpf_messages
        self.errno = errno

    def __str__(self) -> str:
        tail = self.log.strip().splitlines()[-3:] or self.libbpf_messages.strip().splitlines()[-3:]
        return "\n".join([self.args[0], *tail])


class Tunable(NamedTuple):
    size: int
    value: int | bool


@dataclass(frozen=True)
class _Var:
    name: str
    offset: int
    size: int
    signed: bool
    is_bool: bool


class BpfScheduler:
    """One scheduler object through its life: open → tune → load → attach → detach → close."""

    def __init__(self, lib: lb.Libbpf | None = None):
        self._lib = lib
        self._obj: int | None = None
        self._link: int | None = None
        self._vars: dict[str, _Var] = {}
        self._log_buf: ctypes.Array | None = None
        self.path = ""
        self.loaded = False

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> BpfScheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def lib(self) -> lb.Libbpf:
        if self._lib is None:
            self._lib = lb.libbpf()
        return self._lib

    def open(self, obj_path: str | os.PathLike) -> BpfScheduler:
        """Parse the ELF object (no kernel involvement yet) and index its .rodata tunables."""
        if self._obj is not None:
            raise LoaderError("already open")
        self.path = os.fspath(obj_path)
        self._log_buf = ctypes.create_string_buffer(LOG_SIZE)
        opts = lb.bpf_object_open_opts()
        opts.sz = ctypes.sizeof(opts)
        opts.kernel_log_buf = ctypes.cast(self._log_buf, ctypes.c_void_p)
        opts.kernel_log_size = LOG_SIZE
        opts.kernel_log_level = 0  # libbpf retries a failed load at level 1 into our buffer
        lb.take_messages()
        obj = self.lib.bpf_object__open_file(self.path.encode(), ctypes.byref(opts))
        try:
            self._obj = lb.check_ptr(obj, f"cannot open {self.path}")
        except lb.LibbpfError as e:
            raise LoaderError(f"{e}\n{lb.take_messages()}".rstrip()) from None
        self._vars = self._rodata_vars()
        return self

    def load(self) -> None:
        """Create maps and load programs; the verifier's refusal becomes a VerifierError."""
        obj = self._need_obj()
        assert self._log_buf is not None
        self._log_buf[0] = b"\0"
        lb.take_messages()
        ret = self.lib.bpf_object__load(obj)
        if ret < 0:
            msgs = lb.take_messages()
            log = self._log_buf.value.decode(errors="replace")
            name = os.path.basename(self.path)
            raise VerifierError(f"kernel refused {name}: {os.strerror(-ret)}", log, msgs, -ret)
        self.loaded = True

    def attach(self) -> str:
        """Register the struct_ops (sched_ext enables it now) and hold the link; return ops name."""
        if not self.loaded:
            raise LoaderError("load() before attach()")
        if self._link is not None:
            raise LoaderError("already attached")
        st_map = self._struct_ops_map()
        lb.take_messages()
        link = self.lib.bpf_map__attach_struct_ops(st_map)
        if not link:
            err = ctypes.get_errno() or 22
            raise LoaderError(
                f"sched_ext refused {self.ops_name()}: {os.strerror(err)} "
                f"(see dmesg for the kernel's reason)\n{lb.take_messages()}".rstrip()
            )
        self._link = link
        return self.ops_name()

    def detach(self) -> None:
        """Destroy the link; sched_ext logs "unregistered from user space" and falls back."""
        if self._link is not None:
            link, self._link = self._link, None
            self.lib.bpf_link__destroy(link)

    def close(self) -> None:
        self.detach()
        if self._obj is not None:
            obj, self._obj = self._obj, None
            self.lib.bpf_object__close(obj)
        self.loaded = False

    @property
    def attached(self) -> bool:
        return self._link is not None

    # -- tunables ----------------------------------------------------------------------------
    def tunables(self) -> dict[str, Tunable]:
        """``const volatile`` scalars of .rodata: name → (size in bytes, current value)."""
        data = self._rodata_bytes()
        return {v.name: Tunable(v.size, _decode(data, v)) for v in self._vars.values()}

    def set_tunables(self, values: dict[str, int | bool]) -> None:
        """Write values into .rodata before load; unknown names and misfit values are refused.

        Only type and size are checked here; policy bounds are the caller's job.
        """
        if self.loaded:
            raise LoaderError("tunables are read-only once loaded (they are verifier constants)")
        unknown = sorted(set(values) - set(self._vars))
        if unknown:
            raise LoaderError(f"unknown tunable(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(self._vars)) or 'none'}")
        data = bytearray(self._rodata_bytes())
        for name, value in values.items():
            var = self._vars[name]
            data[var.offset:var.offset + var.size] = _encode(var, value)
        m = self._find_map(RODATA)
        buf = (ctypes.c_char * len(data)).from_buffer(data)
        lb.check_int(self.lib.bpf_map__set_initial_value(m, buf, len(data)),
                     "bpf_map__set_initial_value(.rodata)")

    # -- maps ------------------------------------------------------------------------------
    def update_map(self, name: str, key: int, value: int) -> None:
        """Set ``map[key] = value`` in a loaded map (hints: u32 tgid → u64 ns by default)."""
        if not self.loaded:
            raise LoaderError("load() before update_map()")
        m = self._find_map(name)
        kbuf = _int_bytes(key, self.lib.bpf_map__key_size(m), f"{name} key")
        vbuf = _int_bytes(value, self.lib.bpf_map__value_size(m), f"{name} value")
        ret = self.lib.bpf_map_update_elem(self.lib.bpf_map__fd(m), kbuf, vbuf, 0)
        if ret < 0:
            raise LoaderError(f"update of map {name}[{key}] failed: {os.strerror(-ret)}")

    def delete_map_key(self, name: str, key: int) -> bool:
        """Remove ``map[key]``; False if it was not there."""
        if not self.loaded:
            raise LoaderError("load() before delete_map_key()")
        m = self._find_map(name)
        kbuf = _int_bytes(key, self.lib.bpf_map__key_size(m), f"{name} key")
        ret = self.lib.bpf_map_delete_elem(self.lib.bpf_map__fd(m), kbuf)
        if ret == -2:  # ENOENT
            return False
        if ret < 0:
            raise LoaderError(f"delete of map {name}[{key}] failed: {os.strerror(-ret)}")
        return True

    def ops_name(self) -> str:
        """``sched_ext_ops.name`` as written in the object (what /sys/kernel/sched_ext shows)."""
        st_map = self._struct_ops_map()
        btf = self._btf()
        map_name = self.lib.bpf_map__name(st_map)
        var_id = self.lib.btf__find_by_name_kind(btf, map_name, lb.BTF_KIND_VAR)
        if var_id < 0:
            return map_name.decode()
        var_type = self.lib.btf__type_by_id(btf, var_id).contents.size_or_type
        struct = _resolve(self.lib, btf, var_type)
        for member in lb.member_types(self.lib.btf__type_by_id(btf, struct), lb.btf_member):
            if self.lib.btf__name_by_offset(btf, member.name_off) == b"name":
                size = ctypes.c_size_t()
                data = self.lib.bpf_map__initial_value(st_map, ctypes.byref(size))
                if not data:
                    break
                raw = ctypes.string_at(data + (member.offset & 0xFFFFFF) // 8, 128)
                return raw.split(b"\0", 1)[0].decode(errors="replace")
        return map_name.decode()

    # -- internals ---------------------------------------------------------------------------
    def _need_obj(self) -> int:
        if self._obj is None:
            raise LoaderError("open() first")
        return self._obj

    def _btf(self) -> int:
        return lb.check_ptr(self.lib.bpf_object__btf(self._need_obj()), "object has no BTF")

    def _find_map(self, name: str) -> int:
        m = self.lib.bpf_object__find_map_by_name(self._need_obj(), name.encode())
        if not m:
            raise LoaderError(f"{os.path.basename(self.path)} has no map {name!r}")
        return m

    def _struct_ops_map(self) -> int:
        obj, m, found = self._need_obj(), None, []
        while m := self.lib.bpf_object__next_map(obj, m):
            if self.lib.bpf_map__type(m) == lb.BPF_MAP_TYPE_STRUCT_OPS:
                found.append(m)
        if len(found) != 1:  # the verifier checked one; never guess which one to attach
            raise LoaderError(f"{os.path.basename(self.path)} defines {len(found)} struct_ops "
                              "maps; exactly one is allowed")
        return found[0]

    def _rodata_bytes(self) -> bytes:
        m = self.lib.bpf_object__find_map_by_name(self._need_obj(), RODATA.encode())
        if not m:
            return b""
        size = ctypes.c_size_t()
        ptr = self.lib.bpf_map__initial_value(m, ctypes.byref(size))
        return ctypes.string_at(ptr, size.value) if ptr else b""

    def _rodata_vars(self) -> dict[str, _Var]:
        """Scalar variables of the .rodata DATASEC, from the object's BTF."""
        btf = self.lib.bpf_object__btf(self._need_obj())
        if not btf:
            return {}
        sec_id = self.lib.btf__find_by_name_kind(btf, RODATA.encode(), lb.BTF_KIND_DATASEC)
        if sec_id < 0:
            return {}
        out = {}
        sec = self.lib.btf__type_by_id(btf, sec_id)
        for info in lb.member_types(sec, lb.btf_var_secinfo):
            var = self.lib.btf__type_by_id(btf, info.type).contents
            if var.kind != lb.BTF_KIND_VAR:
                continue
            name = self.lib.btf__name_by_offset(btf, var.name_off).decode()
            tid = _resolve(self.lib, btf, var.size_or_type)
            t = self.lib.btf__type_by_id(btf, tid)
            kind = t.contents.kind
            if kind == lb.BTF_KIND_INT:
                enc = lb.int_encoding(t)
                signed, is_bool = bool(enc & lb.BTF_INT_SIGNED), bool(enc & lb.BTF_INT_BOOL)
            elif kind in (lb.BTF_KIND_ENUM, lb.BTF_KIND_ENUM64):
                signed, is_bool = bool(t.contents.info & (1 << 31)), False  # kind_flag = signed
            else:
                continue  # arrays, structs, pointers are not tunables
            if info.size not in (1, 2, 4, 8):
                continue
            out[name] = _Var(name, info.offset, info.size, signed, is_bool)
        return out


def _resolve(lib: lb.Libbpf, btf: int, tid: int) -> int:
    """Follow typedef/const/volatile to the underlying type id."""
    while True:
        t = lib.btf__type_by_id(btf, tid)
        if not t or t.contents.kind not in lb.MODIFIERS:
            return tid
        tid = t.contents.size_or_type


def _decode(data: bytes, var: _Var) -> int | bool:
    raw = data[var.offset:var.offset + var.size]
    if len(raw) < var.size:
        return 0
    value = int.from_bytes(raw, "little", signed=var.signed)
    return bool(value) if var.is_bool else value


def _encode(var: _Var, value: object) -> bytes:
    if var.is_bool:
        if not isinstance(value, bool) and value not in (0, 1):
            raise LoaderError(f"{var.name} is a bool; got {value!r}")
        value = int(bool(value))
    elif isinstance(value, bool) or not isinstance(value, int):
        raise LoaderError(f"{var.name} is an integer; got {value!r}")
    lo, hi = _range(var.size, var.signed)
    if not lo <= value <= hi:
        kind = "s" if var.signed else "u"
        raise LoaderError(f"{var.name} ({kind}{var.size * 8}) cannot hold {value}: "
                          f"range {lo}..{hi}")
    return value.to_bytes(var.size, "little", signed=var.signed)


def _range(size: int, signed: bool) -> tuple[int, int]:
    bits = size * 8
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _int_bytes(value: int, size: int, what: str) -> ctypes.Array:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << (8 * size)):
        raise LoaderError(f"{what} {value!r} does not fit {size} unsigned bytes")
    return ctypes.create_string_buffer(value.to_bytes(size, "little"), size)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m schedcp_helper.loader",
                                description="Load and attach a sched_ext BPF scheduler; hold it.")
    p.add_argument("obj")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help=".rodata tunable (int, or true/false)")
    p.add_argument("--hint", action="append", default=[], metavar="KEY=VALUE",
                   help="entry of the hint map after load, e.g. tgid=ns")
    p.add_argument("--hint-map", default="hints", help="map --hint writes to (default: hints)")
    hold = p.add_mutually_exclusive_group()
    hold.add_argument("--hold-seconds", type=float, default=None)
    hold.add_argument("--until-stdin-closes", action="store_true")
    args = p.parse_args(argv)

    try:
        values = parse_pairs(args.set, "--set")
        hints = [(int(k, 0), int(v, 0)) for k, v in split_pairs(args.hint, "--hint")]
        if any(isinstance(v, str) for v in values.values()):
            raise ValueError("--set values are integers or true/false")
    except ValueError as e:
        p.error(str(e))
    try:
        with BpfScheduler() as s:
            s.open(args.obj)
            s.set_tunables(values)
            s.load()
            for key, value in hints:
                s.update_map(args.hint_map, key, value)
            ops = s.attach()
            print(json.dumps({"attached": True, "ops": ops}), flush=True)
            if args.until_stdin_closes:
                while sys.stdin.buffer.read(4096):
                    pass
            elif args.hold_seconds is not None:
                time.sleep(args.hold_seconds)
            else:
                while True:
                    time.sleep(3600)
    except VerifierError as e:
        print(json.dumps({"attached": False, "error": e.args[0], "verifier_log": e.log,
                          "libbpf": e.libbpf_messages}), flush=True)
        return 2
    except (LoaderError, lb.LibbpfUnavailable) as e:
        print(json.dumps({"attached": False, "error": str(e)}), flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
