"""Layouts come from the kernel's own text files, captured on this kernel (v6.18)."""

from __future__ import annotations

import pytest

from irqlab.errors import ParseError
from irqlab.tracing.formats import load_format, parse_format, parse_header_event, parse_header_page
from irqlab.tracing.ringbuf import PageLayout


def test_header_page_gives_the_page_size_and_where_commit_and_data_are(fixtures):
    hp = parse_header_page((fixtures / "tracing/lightload/events/header_page").read_text())
    assert (hp.timestamp.offset, hp.timestamp.size) == (0, 8)
    assert (hp.commit.offset, hp.commit.size, hp.commit.signed) == (8, 8, True)
    assert hp.data.offset == 16 and hp.page_size == 4096


def test_header_event_gives_the_type_len_codes(fixtures):
    he = parse_header_event((fixtures / "tracing/lightload/events/header_event").read_text())
    assert (he.type_len_bits, he.time_delta_bits) == (5, 27)
    assert (he.padding, he.time_extend, he.time_stamp, he.data_max) == (29, 30, 31, 28)


def test_softirq_entry_vec_is_an_unsigned_int_after_the_common_fields(fixtures):
    fmt = load_format(fixtures / "tracing/lightload/events", "irq:softirq_entry")
    assert fmt.qualified == "irq:softirq_entry" and fmt.id > 0
    vec = fmt.field("vec")
    assert (vec.offset, vec.size, vec.signed, vec.array_len, vec.data_loc) == (8, 4, False, None, False)
    assert fmt.field("common_pid").signed


def test_irq_name_is_a_data_loc_string_and_comm_a_char_array(fixtures):
    entry = load_format(fixtures / "tracing/lightload/events", "irq:irq_handler_entry")
    assert entry.field("name").data_loc and entry.field("name").is_string
    switch = load_format(fixtures / "tracing/lightload/events", "sched:sched_switch")
    assert switch.field("prev_comm").array_len == 16 and switch.field("prev_comm").is_string
    assert switch.field("prev_state").size == 8 and switch.field("prev_state").signed


def test_a_file_that_is_not_a_format_file_is_refused_with_its_path():
    with pytest.raises(ParseError, match="myfile.*not an event format file"):
        parse_format("hello\nworld\n", "myfile")


def test_a_bad_event_id_quotes_the_token():
    with pytest.raises(ParseError, match="'12x'"):
        parse_format("name: x\nID: 12x\n", "f")


def test_header_event_without_the_type_codes_is_refused():
    with pytest.raises(ParseError, match="lacks padding"):
        parse_header_event("\ttype_len    :    5 bits\n\ttime_delta  :   27 bits\n")


def test_a_layout_with_an_odd_commit_width_is_refused():
    text = ("\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
            "\tfield: local_t commit;\toffset:8;\tsize:2;\tsigned:1;\n"
            "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n")
    he = parse_header_event("type_len : 5 bits\ntime_delta : 27 bits\npadding : type == 29\n"
                            "time_extend : type == 30\ntime_stamp : type == 31\ndata max type_len  == 28\n")
    with pytest.raises(ParseError, match="timestamp/commit width"):
        PageLayout.of(parse_header_page(text), he)
