"""Shape checks on a compiled scheduler object before any ELF or BTF parser runs on it as root.

The object came out of clang, but clang compiled hostile source: ``section(".BTF")`` data,
a second struct_ops map or a huge code section all compile. This reads only the ELF header,
the section table and the symbol table with bounds-checked ``struct`` unpacking, and refuses
anything but the shape a scheduler has: exactly one struct_ops map (the one the loader attaches
and the static stage reads), only the sections clang emits for one, data symbols only in data
sections, and bounded sizes. The richer parsers (pyelftools, bpftool) run later, unprivileged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .bpfobj import ObjectError

MAX_OBJECT_BYTES = 16 * 1024 * 1024
MAX_SECTIONS = 512
MAX_SYMBOLS = 65536
MAX_CODE_BYTES = 1024 * 1024  # 128k instructions; the kernel loads at most 1M per program
MAX_FUNCTIONS = 512  # the static stage's cost grows with functions x call sites
MAX_BTF_BYTES = 8 * 1024 * 1024
EM_BPF = 247
SHT_SYMTAB, SHT_NOBITS, SHT_REL = 2, 8, 9
SHF_EXECINSTR = 0x4
STT_OBJECT, STT_FUNC = 1, 2
SHN_LORESERVE = 0xFF00
EXACT = frozenset({"", ".text", ".symtab", ".strtab", ".shstrtab", "license", ".maps", ".BTF",
                   ".BTF.ext", ".llvm_addrsig", ".struct_ops", ".struct_ops.link", ".kconfig"})
PREFIXES = (".rodata", ".data", ".bss", ".debug_", "struct_ops/", "struct_ops.s/")
DATA_SECTIONS = (".rodata", ".data", ".bss", ".maps", ".struct_ops", "license", ".kconfig")
OPS_SECTIONS = (".struct_ops", ".struct_ops.link")


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int


@dataclass(frozen=True)
class Shape:
    ops_map: str  # the one struct_ops variable
    ops_section: str
    functions: int
    code_bytes: int


def _allowed(name: str) -> bool:
    if name.startswith(".rel") and name not in EXACT:
        name = name[4:]  # .rel.BTF, .relstruct_ops/fn: relocations of an allowed section
    return name in EXACT or name.startswith(PREFIXES)


def _cstr(table: bytes, off: int) -> str:
    if off >= len(table):
        raise ObjectError("a name points outside its string table")
    end = table.find(b"\0", off)
    if end < 0:
        raise ObjectError("an unterminated name in a string table")
    return table[off:end].decode("ascii", errors="replace")


def _sections(data: bytes) -> list[Section]:
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise ObjectError("not an ELF object")
    if data[4] != 2 or data[5] != 1:
        raise ObjectError("not a 64-bit little-endian ELF object")
    (e_type, e_machine, _v, _entry, phoff, shoff, _flags, _ehsize, _phentsize, phnum,
     shentsize, shnum, shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
    if e_machine != EM_BPF or e_type != 1:
        raise ObjectError("not a relocatable BPF object")
    if phnum or phoff:
        raise ObjectError("a BPF object has no program headers")
    if shentsize != 64 or not 0 < shnum <= MAX_SECTIONS or shoff + shnum * 64 > len(data):
        raise ObjectError(f"a bad section table ({shnum} sections)")
    raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * 64) for i in range(shnum)]
    for _name, typ, _fl, _addr, off, size, *_ in raw:
        if typ != SHT_NOBITS and off + size > len(data):
            raise ObjectError("a section reaches past the end of the file")
    if shstrndx >= shnum:
        raise ObjectError("no section name table")
    _n, _t, _f, _a, stroff, strsize, *_ = raw[shstrndx]
    names = data[stroff:stroff + strsize]
    return [Section(_cstr(names, r[0]), r[1], r[2], r[4], r[5], r[6]) for r in raw]


def check_object(data: bytes) -> Shape:
    """Refuse anything that is not shaped like one sched_ext scheduler; say what is wrong."""
    if len(data) > MAX_OBJECT_BYTES:
        raise ObjectError(f"object is {len(data)} bytes; the limit is {MAX_OBJECT_BYTES}")
    sections = _sections(data)
    seen: set[str] = set()
    for s in sections[1:]:
        if not _allowed(s.name):
            raise ObjectError(f"unexpected section {s.name[:40]!r} in the object")
        if s.name in seen:
            raise ObjectError(f"section {s.name[:40]!r} appears twice")
        seen.add(s.name)
        if s.name in (".BTF", ".BTF.ext") and s.size > MAX_BTF_BYTES:
            raise ObjectError(f"{s.name} is {s.size} bytes; the limit is {MAX_BTF_BYTES}")
    code = sum(s.size for s in sections if s.flags & SHF_EXECINSTR and s.type != SHT_NOBITS)
    if code > MAX_CODE_BYTES:
        raise ObjectError(f"{code // 8} instructions; the limit is {MAX_CODE_BYTES // 8}")
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if len(symtabs) != 1 or symtabs[0].link >= len(sections):
        raise ObjectError("the object needs exactly one symbol table")
    symtab = symtabs[0]
    if symtab.size % 24 or symtab.size // 24 > MAX_SYMBOLS:
        raise ObjectError("a bad symbol table")
    strtab = sections[symtab.link]
    strings = data[strtab.offset:strtab.offset + strtab.size]
    ops: list[tuple[str, Section, int, int]] = []
    functions = 0
    for i in range(symtab.size // 24):
        st_name, info, _other, shndx, value, size = struct.unpack_from(
            "<IBBHQQ", data, symtab.offset + i * 24)
        kind = info & 0xF
        if kind not in (STT_OBJECT, STT_FUNC) or shndx == 0 or shndx >= SHN_LORESERVE:
            continue
        if shndx >= len(sections):
            raise ObjectError("a symbol in a section that does not exist")
        sec, name = sections[shndx], _cstr(strings, st_name)
        if kind == STT_FUNC:
            if not sec.flags & SHF_EXECINSTR:
                raise ObjectError(f"function {name[:40]!r} outside a code section")
            functions += 1
            continue
        if not sec.name.startswith(DATA_SECTIONS):
            raise ObjectError(f"data {name[:40]!r} placed in section {sec.name[:40]!r}")
        if sec.name in OPS_SECTIONS:
            ops.append((name, sec, value, size))
    if functions > MAX_FUNCTIONS:
        raise ObjectError(f"{functions} functions; the limit is {MAX_FUNCTIONS}")
    if len(ops) != 1:
        names = ", ".join(n[:40] for n, *_ in ops) or "none"
        raise ObjectError(f"{len(ops)} struct_ops maps ({names}); exactly one is allowed: the "
                          "loader attaches one and the static checks must read that one")
    name, sec, value, size = ops[0]
    if value != 0 or size != sec.size:
        raise ObjectError(f"struct_ops {name[:40]!r} does not fill its section")
    return Shape(name, sec.name, functions, code)
