"""debugfs irq/domains/VECTOR: the x86 vector matrix per CPU, or why it could not be read."""

from __future__ import annotations

import pytest

from irqlab.errors import ParseError
from irqlab.sources.vectors import parse_vector_matrix, read_vector_matrix


def test_a_cpu_with_no_vector_left_reads_as_zero_available(fixtures):
    path = fixtures / "vectors/VECTOR-cpu2-full"
    m = parse_vector_matrix(path.read_text(), str(path))
    assert sorted(m.cpus) == [0, 1, 2, 4, 5, 6, 7] and not m.estimated  # CPU3 offline: no row
    assert (m.cpus[2].available, m.cpus[2].allocated) == (0, 202) and m.cpus[6].available == 148


def test_a_row_without_a_vector_list_and_the_managed_columns(fixtures):
    path = fixtures / "vectors/VECTOR-idle"
    m = parse_vector_matrix(path.read_text(), str(path))
    assert m.cpus[3].available == 201 and m.cpus[3].allocated == 0
    assert (m.cpus[0].managed, m.cpus[0].managed_allocated) == (1, 1)


def test_another_domains_file_is_one_error(fixtures):
    path = fixtures / "vectors/not-vector"
    with pytest.raises(ParseError, match="not the x86 VECTOR domain"):
        parse_vector_matrix(path.read_text(), str(path))


def test_a_garbled_row_names_its_line():
    text = " | CPU | avl | man | mac | act | vectors\n     0   197     x     1    4  33-35\n"
    with pytest.raises(ParseError, match="line 2"):
        parse_vector_matrix(text, "VECTOR")


def test_debugfs_not_mounted_is_none_and_says_why(tmp_path):
    m, why = read_vector_matrix(tmp_path)
    assert m is None and "debugfs not mounted" in why
