"""The CPU facts and originals an affinity write needs, read through sources/ (host, irqinfo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from irqlab.errors import MissingSource, ParseError
from irqlab.mitigate.affinity import affinity_path, isolated_cpus, online_cpus, read_affinity
from irqlab.sources.fs import Roots


def roots_with(tmp_path: Path, **cpu_files: str) -> Roots:
    cpu = tmp_path / "sys/devices/system/cpu"
    cpu.mkdir(parents=True)
    for name, text in cpu_files.items():
        (cpu / name).write_text(text)
    irq = tmp_path / "proc/irq/41"
    irq.mkdir(parents=True)
    (irq / "smp_affinity_list").write_text("0-1,3\n")
    return Roots(tmp_path / "proc", tmp_path / "sys")


def test_online_cpus_are_the_kernels_list(tmp_path):
    assert online_cpus(roots_with(tmp_path, online="0-1,3\n")) == (0, 1, 3)


def test_missing_online_cpus_is_an_error_for_a_writer(tmp_path):
    with pytest.raises(MissingSource):
        online_cpus(roots_with(tmp_path))


def test_a_garbled_online_list_names_its_file(tmp_path):
    with pytest.raises(ParseError) as err:
        online_cpus(roots_with(tmp_path, online="0-1,x\n"))
    assert err.value.path.endswith("sys/devices/system/cpu/online") and err.value.token == "x"


@pytest.mark.parametrize(("text", "want"), [(None, ()), ("\n", ()), ("2-3\n", (2, 3)), ("garbled\n", ())])
def test_isolated_cpus_absent_empty_listed_or_garbled(tmp_path, text, want):
    files = {} if text is None else {"isolated": text}
    assert isolated_cpus(roots_with(tmp_path, **files)) == want


def test_the_original_affinity_is_the_kernels_text_from_the_file_that_is_written(tmp_path):
    roots = roots_with(tmp_path)
    assert affinity_path(roots, 41) == str(tmp_path / "proc/irq/41/smp_affinity_list")
    assert read_affinity(roots, 41) == "0-1,3"
    with pytest.raises(MissingSource):
        read_affinity(roots, 42)  # freed
