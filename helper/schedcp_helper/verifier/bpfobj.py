"""What a compiled scheduler object contains, read without loading it.

The static stage reasons about the object clang produced, not the source the caller sent: ELF
sections and relocations come from pyelftools, BTF (struct layouts, variables, maps) from
``bpftool btf dump ... format raw``. Nothing here touches the kernel.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

BTF_LINE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
BTF_MEMBER = re.compile(r"^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)")
BTF_SECVAR = re.compile(r"^\ttype_id=(\d+) offset=(\d+) size=(\d+) \((\w+) '([^']*)'\)")
ATTR = re.compile(r"(\w+)=(\S+)")


class ObjectError(Exception):
    """The file is not a sched_ext scheduler object we can analyse."""


@dataclass(frozen=True)
class Insn:
    idx: int  # instruction slot (a 16-byte ld_imm64 takes two; its second slot has no Insn)
    code: int
    dst: int
    src: int
    off: int
    imm: int
    imm64: int | None = None  # the full constant of ld_imm64
    reloc: str | None = None  # symbol named by a relocation at this instruction

    @property
    def cls(self) -> int:
        return self.code & 0x07

    @property
    def op(self) -> int:
        return self.code & 0xF0

    @property
    def is_jump(self) -> bool:
        return self.cls in (0x05, 0x06)

    @property
    def is_call(self) -> bool:
        return self.cls == 0x05 and self.op == 0x80

    @property
    def is_exit(self) -> bool:
        return self.cls == 0x05 and self.op == 0x90

    @property
    def size(self) -> int:
        return 2 if self.code == 0x18 else 1


@dataclass
class Function:
    name: str
    section: str
    insns: dict[int, Insn]  # slot → instruction, slots relative to the function's start
    start: int  # slot of the function's first instruction within its section


@dataclass(frozen=True)
class MapInfo:
    name: str
    max_entries: int | None
    map_type: int | None


@dataclass
class BpfObject:
    path: Path
    functions: dict[str, Function] = field(default_factory=dict)
    ops: dict[str, str] = field(default_factory=dict)  # sched_ext_ops member → program name
    ops_name: str = ""
    ops_fields: dict[str, int] = field(default_factory=dict)  # timeout_ms, flags, ...
    kfuncs: dict[str, bool] = field(default_factory=dict)  # extern function → declared weak
    rodata: dict[str, tuple[int, int]] = field(default_factory=dict)  # var → (offset, size)
    rodata_bytes: bytes = b""

    def rodata_value(self, name: str) -> int:
        off, size = self.rodata[name]
        return int.from_bytes(self.rodata_bytes[off:off + size], "little")
    maps: list[MapInfo] = field(default_factory=list)
    section_symbols: dict[tuple[str, int], str] = field(default_factory=dict)

    def function_at(self, section: str, slot: int) -> str | None:
        return self.section_symbols.get((section, slot))


def btf_types(obj: Path, bpftool: Path) -> dict[int, dict]:
    """Parse ``bpftool btf dump file OBJ format raw`` into id → {kind, name, attrs, members}."""
    r = subprocess.run([str(bpftool), "btf", "dump", "file", str(obj), "format", "raw"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise ObjectError(f"no BTF in the object (compile with -g): {r.stderr.strip()}")
    types: dict[int, dict] = {}
    cur: dict | None = None
    for line in r.stdout.splitlines():
        if m := BTF_LINE.match(line):
            cur = {"kind": m[2], "name": m[3], "attrs": dict(ATTR.findall(m[4])), "members": []}
            types[int(m[1])] = cur
        elif cur is not None and (m := BTF_MEMBER.match(line)):
            cur["members"].append((m[1], int(m[2]), int(m[3])))
        elif cur is not None and (m := BTF_SECVAR.match(line)):
            cur["members"].append((m[5], int(m[1]), int(m[2]), int(m[3]), m[4]))
    return types


def _decode(data: bytes, relocs: dict[int, str]) -> dict[int, Insn]:
    insns: dict[int, Insn] = {}
    slot = 0
    while slot * 8 + 8 <= len(data):
        code, regs, off, imm = struct.unpack_from("<BBhi", data, slot * 8)
        imm64 = None
        if code == 0x18 and slot * 8 + 16 <= len(data):
            hi = struct.unpack_from("<i", data, slot * 8 + 12)[0]
            imm64 = ((hi & 0xFFFFFFFF) << 32) | (imm & 0xFFFFFFFF)
        insn = Insn(slot, code, regs & 0x0F, regs >> 4, off, imm, imm64, relocs.get(slot * 8))
        insns[slot] = insn
        slot += insn.size
    return insns


def parse_object(path: Path, bpftool: Path) -> BpfObject:
    """Read programs, the sched_ext_ops instance, kfuncs, .rodata variables and maps."""
    obj = BpfObject(path=path)
    try:
        f = path.open("rb")
        elf = ELFFile(f)
    except Exception as e:  # pyelftools raises several unrelated types for garbage
        raise ObjectError(f"{path.name} is not an ELF object: {e}") from None
    with f:
        if elf["e_machine"] != "EM_BPF":
            raise ObjectError(f"{path.name} is not a BPF object ({elf['e_machine']})")
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise ObjectError(f"{path.name} has no symbol table")
        sections = {i: s.name for i, s in enumerate(elf.iter_sections())}
        symbols = list(symtab.iter_symbols())
        rodata_vars: dict[str, tuple[int, int]] = {}
        for sym in symbols:
            shndx = sym["st_shndx"]
            if sym["st_info"]["type"] == "STT_OBJECT" and isinstance(shndx, int) and (
                sections[shndx] == ".rodata"
            ):
                rodata_vars[sym.name] = (sym["st_value"], sym["st_size"])
            elif sym["st_info"]["type"] == "STT_FUNC" and isinstance(shndx, int):
                obj.section_symbols[(sections[shndx], sym["st_value"] // 8)] = sym.name
            elif shndx == "SHN_UNDEF" and sym.name and sym["st_info"]["type"] in (
                "STT_FUNC", "STT_NOTYPE"
            ):
                obj.kfuncs[sym.name] = sym["st_info"]["bind"] == "STB_WEAK"
        relocs_by_section: dict[str, dict[int, str]] = {}
        for sec in elf.iter_sections():
            if isinstance(sec, RelocationSection):
                target = sections[sec["sh_info"]]
                relocs_by_section[target] = {
                    r["r_offset"]: symbols[r["r_info_sym"]].name
                    or sections.get(symbols[r["r_info_sym"]]["st_shndx"], "")
                    for r in sec.iter_relocations()
                }
        for sec in elf.iter_sections():
            if sec["sh_type"] != "SHT_PROGBITS" or not sec["sh_flags"] & 0x4:  # SHF_EXECINSTR
                continue
            insns = _decode(sec.data(), relocs_by_section.get(sec.name, {}))
            starts = sorted(s for (name, s) in obj.section_symbols if name == sec.name)
            for i, start in enumerate(starts):
                end = starts[i + 1] if i + 1 < len(starts) else len(sec.data()) // 8
                fname = obj.section_symbols[(sec.name, start)]
                obj.functions[fname] = Function(
                    fname, sec.name,
                    {k - start: v for k, v in insns.items() if start <= k < end}, start,
                )
        ops_sec = elf.get_section_by_name(".struct_ops.link") or elf.get_section_by_name(
            ".struct_ops"
        )
        ops_data = ops_sec.data() if ops_sec is not None else b""
        ops_relocs = relocs_by_section.get(ops_sec.name, {}) if ops_sec is not None else {}
        rodata_sec = elf.get_section_by_name(".rodata")
        obj.rodata_bytes = rodata_sec.data() if rodata_sec is not None else b""

    obj.rodata = rodata_vars  # offsets from the symbol table: BTF's are fixed up only by libbpf
    types = btf_types(path, bpftool)
    by_name = {(t["kind"], t["name"]): t for t in types.values()}
    ops_type = by_name.get(("STRUCT", "sched_ext_ops"))
    if ops_type is None or not ops_data:
        raise ObjectError(f"{path.name} defines no sched_ext_ops in SEC(\".struct_ops.link\")")
    for member, _tid, bits in ops_type["members"]:
        off = bits // 8
        if off in ops_relocs:
            obj.ops[member] = ops_relocs[off]
        elif member == "name":
            obj.ops_name = ops_data[off:off + 128].split(b"\0", 1)[0].decode(errors="replace")
        elif member in ("timeout_ms", "dispatch_max_batch", "exit_dump_len"):
            obj.ops_fields[member] = struct.unpack_from("<I", ops_data, off)[0]
        elif member == "flags":
            obj.ops_fields[member] = struct.unpack_from("<Q", ops_data, off)[0]
    for t in types.values():
        if t["kind"] != "DATASEC":
            continue
        if t["name"] == ".maps":
            obj.maps = [_map_info(types, m[0], m[1]) for m in t["members"]]
    return obj


def _map_info(types: dict[int, dict], name: str, var_id: int) -> MapInfo:
    """BTF-defined maps encode ``__uint(max_entries, N)`` as a pointer to an array of N."""
    values: dict[str, int | None] = {"max_entries": None, "type": None}
    struct_t = types.get(types[var_id]["attrs"].get("type_id") and int(
        types[var_id]["attrs"]["type_id"].rstrip(",")), {})
    for member, tid, _bits in struct_t.get("members", []):
        if member in values and types.get(tid, {}).get("kind") == "PTR":
            arr = types.get(int(types[tid]["attrs"]["type_id"]), {})
            if arr.get("kind") == "ARRAY":
                values[member] = int(arr["attrs"]["nr_elems"])
    return MapInfo(name, values["max_entries"], values["type"])
