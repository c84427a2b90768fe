"""units.printable: what a name from another machine may send to a terminal."""

from irqlab.units import printable


def test_printable_text_is_unchanged() -> None:
    assert printable("eth0-TxRx-3 nvme0q1, i8042") == "eth0-TxRx-3 nvme0q1, i8042"


def test_escape_sequence_is_shown_not_sent() -> None:
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"


def test_c0_del_c1_and_format_characters_are_escaped() -> None:
    assert printable("\t\r\x00\x7f\x9b\u202e") == "\\x09\\x0d\\x00\\x7f\\x9b\\u202e"


def test_non_ascii_printable_is_kept() -> None:
    assert printable("péché µs") == "péché µs"
