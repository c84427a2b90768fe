"""Records -> EventBatch columns: the table in model/events.py, names, symbols."""

from __future__ import annotations

import numpy as np

from irqlab.model.events import VECTOR_BY_ID, VECTOR_NAMES, EventKind
from irqlab.tracing.decode import SPECS, decode, gather, string_at
from irqlab.tracing.formats import Field
from irqlab.tracing.rawtrace import read_capture
from irqlab.tracing.symbols import Kallsyms


def test_system_vectors_carry_their_vector_number_and_a_small_id_naming_the_row(fixtures):
    batch = read_capture(fixtures / "tracing/lightload").decode()
    vec = batch.select(batch.kind == EventKind.VECTOR_ENTRY)
    assert len(vec) > 0
    rows = {(int(a0), VECTOR_NAMES[VECTOR_BY_ID[int(a1)]]) for a0, a1 in zip(vec.arg0, vec.arg1)}
    assert (236, "LOC") in rows  # LOCAL_TIMER_VECTOR 0xec (arch/x86/include/asm/irq_vectors.h)


def test_every_vector_tracepoint_pair_has_a_spec():
    for name in VECTOR_NAMES:
        assert SPECS[f"irq_vectors:{name}_entry"][0] is EventKind.VECTOR_ENTRY
        assert SPECS[f"irq_vectors:{name}_exit"][0] is EventKind.VECTOR_EXIT


def test_sched_switch_pid_is_the_task_switched_out_and_arg0_the_one_switched_in(fixtures):
    batch = read_capture(fixtures / "tracing/lightload").decode()
    sw = batch.select(batch.kind == EventKind.SCHED_SWITCH)
    # On each CPU, the next event after a switch runs in the task switched in.
    for cpu in set(sw.cpu.tolist()):
        on = batch.select(batch.cpu == cpu)
        idx = np.nonzero(on.kind == EventKind.SCHED_SWITCH)[0]
        idx = idx[idx + 1 < len(on)]
        assert (on.pid[idx + 1] == on.arg0[idx]).all()
    assert all(p in batch.comms for p in sw.arg0.tolist())


def test_events_that_are_not_in_the_table_are_skipped(fixtures):
    cap = read_capture(fixtures / "tracing/lightload")
    buf, cpus = cap.buffer()
    recs = cap.records()
    only_softirq = type(cap.catalog)({i: f for i, f in cap.catalog.by_id.items() if f.system == "irq"},
                                     cap.catalog.common_type, cap.catalog.common_pid)
    batch = decode(buf, recs, cpus, only_softirq)
    assert 0 < len(batch) < len(recs)
    assert not np.isin(batch.kind, (EventKind.SCHED_SWITCH, EventKind.VECTOR_ENTRY)).any()


def test_fields_are_read_by_their_format_width_and_sign():
    data = np.frombuffer(bytes([0xFF, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, 0xFE, 0xFF, 0, 0]), np.uint8)
    offs = np.array([0], np.int64)
    assert gather(data, offs, Field("x", "int", 0, 4, True)).tolist() == [-1]
    assert gather(data, offs, Field("x", "unsigned int", 0, 4, False)).tolist() == [0xFFFFFFFF]
    assert gather(data, offs, Field("x", "u64", 0, 8, False)).tolist() == [0x1FFFFFFFF]
    assert gather(data, offs, Field("x", "short", 8, 2, True)).tolist() == [-2]


def test_a_data_loc_string_pointing_outside_its_record_is_not_read():
    payload = np.frombuffer((0x0040_0010).to_bytes(4, "little") + b"abc\0", np.uint8)
    assert string_at(payload, 0, 8, Field("name", "char", 0, 4, False, None, True)) == "?"
    ok = np.frombuffer((0x0004_0004).to_bytes(4, "little") + b"abc\0", np.uint8)
    assert string_at(ok, 0, 8, Field("name", "char", 0, 4, False, None, True)) == "abc"


def test_tasklet_addresses_are_named_from_kallsyms_and_hidden_addresses_name_nothing():
    text = ("ffffffff81000000 T _stext\nffffffff81a00000 t tcp_tasklet_func\n"
            "ffffffff81a00100 T next_func\nffffffff82000000 D some_data\n")
    syms = Kallsyms.parse(text)
    addr = np.int64(np.uint64(0xFFFFFFFF81A00000).view(np.int64))  # as the batch stores a u64
    assert syms.lookup([int(addr), int(addr) + 8]) == {int(addr): "tcp_tasklet_func", int(addr) + 8: "tcp_tasklet_func+0x8"}
    hidden = Kallsyms.parse("0000000000000000 T _stext\n0000000000000000 t tcp_tasklet_func\n")
    assert hidden.lookup([int(addr)]) == {}
