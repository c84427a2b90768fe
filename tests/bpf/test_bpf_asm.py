"""The assembler against encodings fixed by include/uapi/linux/bpf.h and bpf_common.h (v6.18).

Each expected byte string is derived by hand from the header constants (class | size/op |
mode/source; regs byte = src << 4 | dst; off s16 LE; imm s32 LE), the way the kernel's own
samples/bpf/bpf_insn.h macros lay them out.
"""

from __future__ import annotations

import pytest

from irqlab.bpf.asm import R0, R1, R2, R3, R7, R9, R10, Asm, Insn, decode, disasm, encode


def one(build) -> bytes:
    a = Asm()
    build(a)
    return encode(a.assemble())


@pytest.mark.parametrize(
    "build, expected",
    [
        # BPF_ALU64 | BPF_MOV | BPF_K = 0x07 | 0xb0 | 0x00
        (lambda a: a.mov(R0, 0), "b700000000000000"),
        # BPF_JMP | BPF_EXIT
        (lambda a: a.exit(), "9500000000000000"),
        # BPF_ALU64 | BPF_MOV | BPF_X, dst r1 src r2 -> regs 0x21
        (lambda a: a.mov(R1, R2), "bf21000000000000"),
        # BPF_ALU64 | BPF_ADD | BPF_K with imm -1 -> ffffffff
        (lambda a: a.add(R1, -1), "07010000ffffffff"),
        # BPF_ALU (32-bit) | BPF_MOV | BPF_K
        (lambda a: a.alu("mov", R0, 1, alu32=True), "b400000001000000"),
        # BPF_ALU64 | BPF_LSH | BPF_K, BPF_RSH | BPF_X, BPF_DIV | BPF_K (imm 1000 = 0x3e8)
        (lambda a: a.lsh(R3, 3), "6703000003000000"),
        (lambda a: a.rsh(R3, R1), "7f13000000000000"),
        (lambda a: a.alu("div", R1, 1000), "37010000e8030000"),
        # BPF_LDX | BPF_MEM | BPF_DW, r0 = *(u64 *)(r1 + 8)
        (lambda a: a.ldx("dw", R0, R1, 8), "7910080000000000"),
        # BPF_LDX | BPF_MEM | BPF_W, r7 = *(u32 *)(r1 + 8)
        (lambda a: a.ldx("w", R7, R1, 8), "6117080000000000"),
        # BPF_STX | BPF_MEM | BPF_W, *(u32 *)(r10 - 4) = r1: regs 0x1a, off fffc
        (lambda a: a.stx("w", R10, -4, R1), "631afcff00000000"),
        # BPF_ST | BPF_MEM | BPF_DW, *(u64 *)(r9 + 16) = 1
        (lambda a: a.st("dw", R9, 16, 1), "7a09100001000000"),
        # BPF_JMP | BPF_CALL, imm = BPF_FUNC_map_lookup_elem (1) and ktime_get_ns (5)
        (lambda a: a.call("map_lookup_elem"), "8500000001000000"),
        (lambda a: a.call("ktime_get_ns"), "8500000005000000"),
    ],
)
def test_single_instructions_encode_as_the_uapi_header_says(build, expected):
    assert one(build).hex() == expected


def test_a_64_bit_immediate_load_takes_two_slots_low_word_first():
    # BPF_LD | BPF_DW | BPF_IMM = 0x18; second slot: code 0, imm = high 32 bits
    assert one(lambda a: a.ld_imm64(R1, 0x1122334455667788)).hex() == "1801000088776655" + "0000000044332211"


def test_a_map_fd_load_marks_src_reg_pseudo_map_fd():
    # BPF_PSEUDO_MAP_FD = 1 in src_reg: regs byte 0x11 for r1
    assert one(lambda a: a.ld_map_fd(R1, 5)).hex() == "1811000005000000" + "0000000000000000"


def test_a_map_value_load_carries_the_offset_in_the_second_imm():
    # BPF_PSEUDO_MAP_VALUE = 2; insn[1].imm = offset into the value
    assert one(lambda a: a.ld_map_value(R2, 7, 24)).hex() == "1822000007000000" + "0000000018000000"


def test_jumps_resolve_labels_forward_and_backward_relative_to_the_next_instruction():
    a = Asm()
    a.label("top").jmp("jeq", R0, 0, "end")  # pc 0 -> pc 3: off 2
    a.mov(R1, 1)
    a.ja("top")  # pc 2 -> pc 0: off -3
    a.label("end").exit()
    insns = a.assemble()
    # BPF_JMP | BPF_JEQ | BPF_K = 0x15; BPF_JMP | BPF_JA = 0x05
    assert insns[0].encode().hex() == "1500020000000000"
    assert insns[2].encode().hex() == "0500fdff00000000"


def test_register_compare_jumps_use_the_x_source_bit():
    a = Asm()
    a.jmp("jgt", R1, R2, "x").jmp("jlt", R1, 7, "x").label("x").exit()
    got = [i.encode().hex() for i in a.assemble()]
    # BPF_JMP | BPF_JGT | BPF_X = 0x2d (regs 0x21); BPF_JMP | BPF_JLT | BPF_K = 0xa5
    assert got[:2] == ["2d21010000000000", "a501000007000000"]


def test_an_undefined_label_is_an_error_not_a_zero_offset():
    with pytest.raises(ValueError, match="undefined label"):
        Asm().ja("nowhere").assemble()


def test_an_immediate_wider_than_32_bits_is_refused():
    with pytest.raises(ValueError, match="32 bits"):
        Asm().mov(R0, 1 << 33)


def test_decode_inverts_encode():
    a = Asm()
    a.ld_map_fd(R1, 3).mov(R2, R10).add(R2, -8).call(1).jmp("jeq", R0, 0, "out")
    a.ldx("dw", R1, R0, 0).add(R1, 1).stx("dw", R0, 0, R1).label("out").mov(R0, 0).exit()
    insns = a.assemble()
    assert decode(encode(insns)) == insns


def test_disassembly_reads_like_the_verifier_log():
    a = Asm()
    a.ld_map_fd(R1, 3).mov(R2, R10).add(R2, -8).call("map_lookup_elem").jmp("jeq", R0, 0, "out")
    a.ldx("dw", R1, R0, 8).stx("dw", R0, 8, R1).label("out").mov(R0, 0).exit()
    assert disasm(a.assemble()).splitlines() == [
        "   0: r1 = map[fd:3] ll",
        "   2: r2 = r10",
        "   3: r2 += -8",
        "   4: call map_lookup_elem#1",
        "   5: if r0 == 0 goto pc+2",
        "   6: r1 = *(u64 *)(r0 +8)",
        "   7: *(u64 *)(r0 +8) = r1",
        "   8: r0 = 0",
        "   9: exit",
    ]


def test_decode_rejects_a_partial_instruction():
    with pytest.raises(ValueError):
        decode(b"\x95\0\0\0")


def test_insn_is_a_value():
    assert Insn(0x95) == Insn(0x95, 0, 0, 0, 0)
