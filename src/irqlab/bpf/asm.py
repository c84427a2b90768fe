"""An eBPF assembler and disassembler: instructions as data, named registers, label jumps.

Encodings follow include/uapi/linux/bpf.h and bpf_common.h (v6.18): one instruction is
8 bytes, little-endian: u8 code, u8 (src_reg << 4 | dst_reg), s16 off, s32 imm. A 64-bit
immediate load (BPF_LD | BPF_DW | BPF_IMM) takes two slots; src_reg 1 marks a map fd
(BPF_PSEUDO_MAP_FD), 2 a map value address (BPF_PSEUDO_MAP_VALUE, second imm = offset).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum


class Reg(IntEnum):
    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3
    R4 = 4
    R5 = 5
    R6 = 6
    R7 = 7
    R8 = 8
    R9 = 9
    R10 = 10  # read-only frame pointer


R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = Reg

# Instruction classes, sizes, modes (bpf_common.h, bpf.h).
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
SIZES = {"w": 0x00, "h": 0x08, "b": 0x10, "dw": 0x18}
SIZE_BYTES = {"w": 4, "h": 2, "b": 1, "dw": 8}
MODE_IMM, MODE_MEM, MODE_ATOMIC = 0x00, 0x60, 0xC0
SRC_K, SRC_X = 0x00, 0x08
ALU_OPS = {"add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40, "and": 0x50, "lsh": 0x60,
           "rsh": 0x70, "neg": 0x80, "mod": 0x90, "xor": 0xA0, "mov": 0xB0, "arsh": 0xC0}
JMP_OPS = {"ja": 0x00, "jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jset": 0x40, "jne": 0x50, "jsgt": 0x60,
           "jsge": 0x70, "call": 0x80, "exit": 0x90, "jlt": 0xA0, "jle": 0xB0, "jslt": 0xC0, "jsle": 0xD0}
PSEUDO_MAP_FD, PSEUDO_MAP_VALUE = 1, 2

# Helper ids (bpf.h, enum bpf_func_id / __BPF_FUNC_MAPPER order, v6.18).
HELPERS = {"map_lookup_elem": 1, "map_update_elem": 2, "map_delete_elem": 3, "ktime_get_ns": 5,
           "get_smp_processor_id": 8, "get_current_pid_tgid": 14, "get_current_comm": 16}
_HELPER_NAMES = {v: k for k, v in HELPERS.items()}
_ALU_NAMES = {v: k for k, v in ALU_OPS.items()}
_JMP_NAMES = {v: k for k, v in JMP_OPS.items()}
_SIZE_NAMES = {v: k for k, v in SIZES.items()}
_INSN = struct.Struct("<BBhi")


@dataclass(frozen=True, slots=True)
class Insn:
    """One 8-byte slot: opcode, registers, offset, immediate (the second slot of LD_IMM64 too)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        return _INSN.pack(self.code, (self.src << 4) | self.dst, self.off, self.imm)


def encode(insns: list[Insn]) -> bytes:
    return b"".join(i.encode() for i in insns)


def decode(blob: bytes) -> list[Insn]:
    if len(blob) % 8:
        raise ValueError(f"{len(blob)} bytes is not a whole number of 8-byte instructions")
    out = []
    for code, regs, off, imm in _INSN.iter_unpack(blob):
        out.append(Insn(code, regs & 0xF, regs >> 4, off, imm))
    return out


def _s32(value: int) -> int:
    """An imm as the kernel stores it: signed 32 bits (0xffffffff -> -1)."""
    if not -(1 << 31) <= value < (1 << 32):
        raise ValueError(f"immediate {value} does not fit in 32 bits")
    return value - (1 << 32) if value >= (1 << 31) else value


@dataclass(frozen=True, slots=True)
class _Jump:
    """A jump waiting for its label's position (resolved by Asm.assemble)."""

    insn: Insn
    label: str


class Asm:
    """Builds a program: methods append instructions; jumps name labels; assemble() resolves them."""

    def __init__(self) -> None:
        self._items: list[Insn | _Jump] = []
        self._labels: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def emit(self, insn: Insn) -> Asm:
        self._items.append(insn)
        return self

    def label(self, name: str) -> Asm:
        if name in self._labels:
            raise ValueError(f"label {name!r} defined twice")
        self._labels[name] = len(self._items)
        return self

    # ALU: `src` is a Reg (BPF_X) or an int immediate (BPF_K); 64-bit unless alu32.
    def alu(self, op: str, dst: Reg, src: Reg | int = 0, alu32: bool = False) -> Asm:
        cls = ALU if alu32 else ALU64
        if isinstance(src, Reg):
            return self.emit(Insn(cls | ALU_OPS[op] | SRC_X, dst, src))
        return self.emit(Insn(cls | ALU_OPS[op] | SRC_K, dst, 0, 0, _s32(src)))

    def mov(self, dst: Reg, src: Reg | int) -> Asm:
        return self.alu("mov", dst, src)

    def add(self, dst: Reg, src: Reg | int) -> Asm:
        return self.alu("add", dst, src)

    def sub(self, dst: Reg, src: Reg | int) -> Asm:
        return self.alu("sub", dst, src)

    def lsh(self, dst: Reg, src: Reg | int) -> Asm:
        return self.alu("lsh", dst, src)

    def rsh(self, dst: Reg, src: Reg | int) -> Asm:
        return self.alu("rsh", dst, src)

    def ldx(self, size: str, dst: Reg, src: Reg, off: int) -> Asm:
        """dst = *(size *)(src + off)"""
        return self.emit(Insn(LDX | MODE_MEM | SIZES[size], dst, src, off))

    def stx(self, size: str, dst: Reg, off: int, src: Reg) -> Asm:
        """*(size *)(dst + off) = src"""
        return self.emit(Insn(STX | MODE_MEM | SIZES[size], dst, src, off))

    def st(self, size: str, dst: Reg, off: int, imm: int) -> Asm:
        """*(size *)(dst + off) = imm"""
        return self.emit(Insn(ST | MODE_MEM | SIZES[size], dst, 0, off, _s32(imm)))

    def ld_imm64(self, dst: Reg, imm: int, pseudo: int = 0, imm_hi: int | None = None) -> Asm:
        """dst = 64-bit imm (two slots); with pseudo, imm is a map fd and imm_hi the value offset."""
        imm &= (1 << 64) - 1
        lo, hi = imm & 0xFFFFFFFF, imm >> 32 if imm_hi is None else imm_hi
        self.emit(Insn(LD | SIZES["dw"] | MODE_IMM, dst, pseudo, 0, _s32(lo)))
        return self.emit(Insn(0, 0, 0, 0, _s32(hi)))

    def ld_map_fd(self, dst: Reg, fd: int) -> Asm:
        return self.ld_imm64(dst, fd, PSEUDO_MAP_FD, 0)

    def ld_map_value(self, dst: Reg, fd: int, offset: int = 0) -> Asm:
        """dst = address of (array map fd's element 0) + offset, resolved by the verifier."""
        return self.ld_imm64(dst, fd, PSEUDO_MAP_VALUE, offset)

    def call(self, helper: str | int) -> Asm:
        ident = HELPERS[helper] if isinstance(helper, str) else helper
        return self.emit(Insn(JMP | JMP_OPS["call"], 0, 0, 0, ident))

    def exit(self) -> Asm:
        return self.emit(Insn(JMP | JMP_OPS["exit"]))

    def jmp(self, op: str, dst: Reg, src: Reg | int, label: str, jmp32: bool = False) -> Asm:
        """if (dst op src) goto label"""
        cls = JMP32 if jmp32 else JMP
        if isinstance(src, Reg):
            insn = Insn(cls | JMP_OPS[op] | SRC_X, dst, src)
        else:
            insn = Insn(cls | JMP_OPS[op] | SRC_K, dst, 0, 0, _s32(src))
        self._items.append(_Jump(insn, label))
        return self

    def ja(self, label: str) -> Asm:
        self._items.append(_Jump(Insn(JMP | JMP_OPS["ja"]), label))
        return self

    def assemble(self) -> list[Insn]:
        """The instructions with every label resolved to a relative offset (target - pc - 1)."""
        out = []
        for pc, item in enumerate(self._items):
            if isinstance(item, _Jump):
                if item.label not in self._labels:
                    raise ValueError(f"jump to undefined label {item.label!r}")
                off = self._labels[item.label] - pc - 1
                if not -(1 << 15) <= off < (1 << 15):
                    raise ValueError(f"jump to {item.label!r} is out of range ({off})")
                i = item.insn
                item = Insn(i.code, i.dst, i.src, off, i.imm)
            out.append(item)
        return out


def _operand(i: Insn) -> str:
    return f"r{i.src}" if i.code & SRC_X else str(i.imm)


def disasm_one(i: Insn, nxt: Insn | None = None) -> str:
    """One instruction in the kernel verifier's notation (kernel/bpf/disasm.c style)."""
    cls = i.code & 0x07
    if cls in (ALU, ALU64):
        op = _ALU_NAMES.get(i.code & 0xF0, f"alu?{i.code:#x}")
        w = "w" if cls == ALU else "r"
        if op == "neg":
            return f"{w}{i.dst} = -{w}{i.dst}"
        sym = {"add": "+=", "sub": "-=", "mul": "*=", "div": "/=", "or": "|=", "and": "&=", "lsh": "<<=",
               "rsh": ">>=", "mod": "%=", "xor": "^=", "mov": "=", "arsh": "s>>="}[op]
        src = f"{w}{i.src}" if i.code & SRC_X else str(i.imm)
        return f"{w}{i.dst} {sym} {src}"
    size = _SIZE_NAMES.get(i.code & 0x18, "?")
    cty = {"w": "u32", "h": "u16", "b": "u8", "dw": "u64"}[size]
    if cls == LDX:
        return f"r{i.dst} = *({cty} *)(r{i.src} {i.off:+d})"
    if cls == STX:
        if i.code & 0xE0 == MODE_ATOMIC:
            return f"lock *({cty} *)(r{i.dst} {i.off:+d}) += r{i.src}"
        return f"*({cty} *)(r{i.dst} {i.off:+d}) = r{i.src}"
    if cls == ST:
        return f"*({cty} *)(r{i.dst} {i.off:+d}) = {i.imm}"
    if cls == LD and i.code == LD | SIZES["dw"] | MODE_IMM:
        hi = nxt.imm if nxt is not None else 0
        if i.src == PSEUDO_MAP_FD:
            return f"r{i.dst} = map[fd:{i.imm}] ll"
        if i.src == PSEUDO_MAP_VALUE:
            return f"r{i.dst} = map[fd:{i.imm}][0]+{hi} ll"
        return f"r{i.dst} = {((hi & 0xFFFFFFFF) << 32) | (i.imm & 0xFFFFFFFF):#x} ll"
    if cls in (JMP, JMP32):
        op = _JMP_NAMES.get(i.code & 0xF0, f"jmp?{i.code:#x}")
        if op == "call":
            return f"call {_HELPER_NAMES.get(i.imm, '#' + str(i.imm))}#{i.imm}"
        if op == "exit":
            return "exit"
        if op == "ja":
            return f"goto pc{i.off:+d}"
        w = "w" if cls == JMP32 else "r"
        sym = {"jeq": "==", "jgt": ">", "jge": ">=", "jset": "&", "jne": "!=", "jsgt": "s>", "jsge": "s>=",
               "jlt": "<", "jle": "<=", "jslt": "s<", "jsle": "s<="}[op]
        src = f"{w}{i.src}" if i.code & SRC_X else str(i.imm)
        return f"if {w}{i.dst} {sym} {src} goto pc{i.off:+d}"
    return f"(code {i.code:#04x} dst r{i.dst} src r{i.src} off {i.off} imm {i.imm})"


def disasm(insns: list[Insn]) -> str:
    """The program as numbered lines; the second slot of a 64-bit load is folded into the first."""
    lines, pc = [], 0
    while pc < len(insns):
        i = insns[pc]
        wide = (i.code & 0x07) == LD and i.code == LD | SIZES["dw"] | MODE_IMM
        lines.append(f"{pc:4d}: {disasm_one(i, insns[pc + 1] if wide and pc + 1 < len(insns) else None)}")
        pc += 2 if wide else 1
    return "\n".join(lines)
