"""Scheduler-specific static checks: what the kernel verifier does not look for.

The kernel verifier proves memory safety and termination; it happily loads a scheduler that
forgets a task (enqueue returns without dispatching: a stall 30 s later), never drains a queue it
created, or hands out minute-long slices. These checks read the compiled object (``bpfobj``) and
report each finding by name, so a person — or the agent — knows what to fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .bpfobj import BpfObject, Function

DISPATCH = frozenset({"scx_bpf_dispatch", "scx_bpf_dispatch_vtime", "scx_bpf_dsq_insert",
                      "scx_bpf_dsq_insert_vtime"})
CONSUME = frozenset({"scx_bpf_consume", "scx_bpf_dsq_move_to_local"})
MOVE_FROM = frozenset({"scx_bpf_dispatch_from_dsq", "scx_bpf_dispatch_vtime_from_dsq",
                       "scx_bpf_dsq_move", "scx_bpf_dsq_move_vtime"})
CREATE_DSQ = "scx_bpf_create_dsq"
HELPER_MAP_PUSH = 87  # bpf_map_push_elem: parking a task in a queue map for .dispatch
SLICE_MIN_NS = 50_000  # below this the scheduler spends its time switching
SLICE_MAX_NS = 1_000_000_000  # one task holding a CPU for more than 1 s is a stall to a person
SCX_SLICE_INF = (1 << 64) - 1  # "until preempted": allowed, the kernel's idle path uses it
MAX_MAP_ENTRIES = 1 << 20
MAX_TIMEOUT_MS = 30_000  # the kernel's SCX_WATCHDOG_MAX_TIMEOUT
# eBPF instruction classes and opcodes (linux/bpf_common.h, linux/bpf.h) this module reads
BPF_LD, BPF_LDX, BPF_STX, BPF_ALU, BPF_JMP32, BPF_ALU64 = 0x00, 0x01, 0x03, 0x04, 0x06, 0x07
BPF_JA = 0x00  # op of an unconditional jump; JMP32|JA ("gotol") keeps its offset in imm
MOV64_IMM, MOV32_IMM = 0xB7, 0xB4  # BPF_ALU64|BPF_MOV|BPF_K, BPF_ALU|BPF_MOV|BPF_K
LD_IMM64 = 0x18  # BPF_LD|BPF_IMM|BPF_DW: a 64-bit constant (or a map/variable address)
WRITES_DST = (BPF_LD, BPF_ALU, BPF_ALU64, BPF_LDX, BPF_STX)
U64, U32 = (1 << 64) - 1, (1 << 32) - 1


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    message: str
    severe: bool = True  # False: a warning that does not fail the stage


def _successors(fn: Function, slot: int) -> list[int]:
    insn = fn.insns[slot]
    if insn.is_exit:
        return []
    nxt = slot + insn.size
    if not insn.is_jump or insn.is_call:
        return [nxt]
    target = slot + 1 + (insn.imm if insn.cls == BPF_JMP32 and insn.op == BPF_JA else insn.off)
    if insn.op == BPF_JA:
        return [target]
    return [nxt, target]


def _callee(obj: BpfObject, fn: Function, slot: int) -> str | None:
    """The subprogram a bpf-to-bpf call reaches, if any."""
    insn = fn.insns[slot]
    if insn.reloc in obj.functions:  # call via the callee's own symbol
        return insn.reloc
    if insn.reloc and insn.reloc not in obj.kfuncs:  # call via a section symbol (.text)
        return obj.function_at(insn.reloc, insn.imm + 1)
    if insn.src == 1 and insn.reloc is None:  # same-section relative call
        return obj.function_at(fn.section, fn.start + slot + insn.imm + 1)
    return None


def _const_arg(fn: Function, slot: int, reg: int) -> int | None:
    """The constant last moved into ``reg`` before ``slot`` in straight-line code, if any."""
    for prev in range(slot - 1, -1, -1):
        insn = fn.insns.get(prev)
        if insn is None:
            continue
        if insn.is_jump:
            return None  # a branch: the value may come from elsewhere
        if insn.dst != reg or insn.cls not in WRITES_DST:
            continue
        if insn.code in (MOV64_IMM, MOV32_IMM):
            return insn.imm & (U64 if insn.code == MOV64_IMM else U32)
        if insn.code == LD_IMM64 and insn.reloc is None:
            return insn.imm64
        return None  # computed or loaded: not a constant we can see
    return None


def _calls(obj: BpfObject, root: str) -> Iterable[tuple[Function, int, str]]:
    """(function, slot, kfunc) for every kfunc call reachable from ``root``."""
    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in obj.functions:
            continue
        seen.add(name)
        fn = obj.functions[name]
        for slot, insn in fn.insns.items():
            if not insn.is_call:
                continue
            if insn.reloc in obj.kfuncs:
                yield fn, slot, insn.reloc
            elif callee := _callee(obj, fn, slot):
                todo.append(callee)


def _must_dispatch(obj: BpfObject, name: str, memo: dict[str, bool], parks: bool) -> int | None:
    """None if every path through ``name`` dispatches (or parks) the task; else an exit slot
    reached without doing so. Greatest fixpoint: loops the verifier bounds count as covered."""
    fn = obj.functions[name]
    memo.setdefault(name, True)  # recursion guard (the verifier forbids real recursion)

    def disp(slot: int) -> bool:
        insn = fn.insns[slot]
        if not insn.is_call:
            return False
        if insn.reloc in DISPATCH:
            return True
        if parks and insn.src == 0 and insn.reloc is None and insn.imm == HELPER_MAP_PUSH:
            return True
        callee = _callee(obj, fn, slot)
        if callee and callee in obj.functions:
            if callee not in memo:
                memo[callee] = _must_dispatch(obj, callee, memo, parks) is None
            return memo[callee]
        return False

    must = {s: True for s in fn.insns}
    changed = True
    while changed:
        changed = False
        for slot in sorted(fn.insns, reverse=True):
            succ = [s for s in _successors(fn, slot) if s in fn.insns]
            val = disp(slot) or (bool(succ) and all(must[s] for s in succ))
            if val != must[slot]:
                must[slot], changed = val, True
    if must.get(0, True):
        return None
    slot = 0  # walk a witness path to the exit that skips dispatch
    for _ in range(len(fn.insns) + 1):
        bad = [s for s in _successors(fn, slot) if s in fn.insns and not must[s]]
        if not bad:
            return slot
        slot = bad[0]
    return slot


def check_enqueue(obj: BpfObject) -> Finding:
    prog = obj.ops.get("enqueue")
    if prog is None:
        return Finding("enqueue-dispatches", True, "no ops.enqueue: the kernel queues tasks on "
                       "the global DSQ itself")
    parks = "dispatch" in obj.ops
    exit_slot = _must_dispatch(obj, prog, {}, parks)
    if exit_slot is None:
        return Finding("enqueue-dispatches", True, f"every path through {prog} dispatches")
    return Finding("enqueue-dispatches", False,
                   f"{prog} can return without dispatching the task (path ending at instruction "
                   f"{exit_slot}); the task would never run and the watchdog ejects the "
                   "scheduler: call scx_bpf_dispatch()/scx_bpf_dsq_insert() on every path")


def check_dsqs(obj: BpfObject) -> Finding:
    created = {_const_arg(fn, s, 1) for fn, s, k in _calls(obj, obj.ops.get("init", ""))
               if k == CREATE_DSQ}
    for name in obj.functions:
        for fn, s, k in _calls(obj, name):
            if k == CREATE_DSQ and name != obj.ops.get("init"):
                created.add(_const_arg(fn, s, 1))
    if not created:
        return Finding("custom-dsqs-consumed", True, "no custom DSQs")
    dispatch = obj.ops.get("dispatch")
    if dispatch is None:
        return Finding("custom-dsqs-consumed", False, "custom DSQs are created but there is no "
                       "ops.dispatch to move their tasks to a CPU: they would never run")
    consumed: set[int | None] = set()
    for fn, s, k in _calls(obj, dispatch):
        if k in CONSUME:
            consumed.add(_const_arg(fn, s, 1))
        elif k in MOVE_FROM:
            consumed.add(_const_arg(fn, s, 3))
    if not consumed:
        return Finding("custom-dsqs-consumed", False, f"{dispatch} never consumes a DSQ "
                       "(scx_bpf_consume/scx_bpf_dsq_move_to_local): tasks queued on custom "
                       "DSQs would starve")
    missing = sorted(d for d in created if d is not None) if None not in consumed else []
    missing = [d for d in missing if d not in consumed]
    if missing:
        ids = ", ".join(hex(d) for d in missing)
        return Finding("custom-dsqs-consumed", False, f"DSQ(s) {ids} are created but {dispatch} "
                       "never consumes them: their tasks would starve")
    return Finding("custom-dsqs-consumed", True, f"{dispatch} consumes the custom DSQs")


def _slice_ns(name: str, value: int) -> int:
    for suffix, scale in (("_ns", 1), ("_us", 1000), ("_ms", 1_000_000)):
        if name.endswith(suffix):
            return value * scale
    return value


def check_slices(obj: BpfObject, tunables: dict[str, int] | None = None) -> Finding:
    """Constant slices and slice-named tunables (at their effective value) within bounds."""
    tunables = tunables or {}
    problems = []
    for name in obj.functions:
        fn = obj.functions[name]
        for slot, insn in fn.insns.items():
            if not (insn.is_call and insn.reloc in DISPATCH):
                continue
            c = _const_arg(fn, slot, 3)
            if c is not None and c not in (0, SCX_SLICE_INF) and not (
                SLICE_MIN_NS <= c <= SLICE_MAX_NS
            ):
                problems.append(f"{name} dispatches with a constant slice of {c} ns")
    for var in obj.rodata:
        if "slice" not in var:
            continue
        value = tunables.get(var, obj.rodata_value(var))
        ns = _slice_ns(var, int(value))
        if ns and not SLICE_MIN_NS <= ns <= SLICE_MAX_NS:
            problems.append(f"tunable {var} = {value} is {ns} ns")
    if problems:
        return Finding("slice-bounds", False, "; ".join(problems) + f" — slices must lie within "
                       f"{SLICE_MIN_NS // 1000} us .. {SLICE_MAX_NS // 1_000_000} ms")
    return Finding("slice-bounds", True, "slices within bounds")


def check_kfuncs(obj: BpfObject, kernel_funcs: frozenset[str]) -> list[Finding]:
    out = []
    missing_strong = sorted(k for k, weak in obj.kfuncs.items()
                            if not weak and k not in kernel_funcs)
    missing_weak = sorted(k for k, weak in obj.kfuncs.items() if weak and k not in kernel_funcs)
    if missing_strong:
        out.append(Finding("kfuncs-available", False, "the target kernel lacks "
                           f"{', '.join(missing_strong)}; use the 6.12 names through "
                           "schedcp.bpf.h or guard them with bpf_ksym_exists()"))
    else:
        out.append(Finding("kfuncs-available", True,
                           f"{len(obj.kfuncs)} kernel functions, all present in the target"))
    if missing_weak:
        out.append(Finding("kfuncs-weak", True, f"weak, absent in the target: "
                           f"{', '.join(missing_weak)} (fine when guarded by bpf_ksym_exists)",
                           severe=False))
    return out


def check_maps(obj: BpfObject) -> Finding:
    bad = [f"{m.name} ({m.max_entries} entries)" for m in obj.maps
           if m.max_entries is not None and m.max_entries > MAX_MAP_ENTRIES]
    if bad:
        return Finding("maps-bounded", False, f"maps too large: {', '.join(bad)}; at most "
                       f"{MAX_MAP_ENTRIES} entries each")
    return Finding("maps-bounded", True, f"{len(obj.maps)} map(s), all bounded")


def check_watchdog(obj: BpfObject) -> Finding:
    t = obj.ops_fields.get("timeout_ms", 0)
    if t > MAX_TIMEOUT_MS:
        return Finding("watchdog-timeout", False, f"timeout_ms = {t}: the kernel refuses more "
                       f"than {MAX_TIMEOUT_MS}")
    if t == 0:
        return Finding("watchdog-timeout", True, "timeout_ms unset: the kernel's 30 s applies; "
                       "a shorter one makes a stalling scheduler fail faster", severe=False)
    return Finding("watchdog-timeout", True, f"timeout_ms = {t}")


def analyse(obj: BpfObject, kernel_funcs: frozenset[str],
            tunables: dict[str, int] | None = None) -> list[Finding]:
    return [check_enqueue(obj), check_dsqs(obj), check_slices(obj, tunables),
            *check_kfuncs(obj, kernel_funcs), check_maps(obj), check_watchdog(obj)]
