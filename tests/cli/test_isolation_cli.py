"""`irqlab isolation`: which CPUs it examines, and one clear line with exit 64 when none is meant to be quiet."""

from __future__ import annotations

import pytest

from irqlab.cli.isolation import declared
from irqlab.cli.main import EXIT_USAGE, main
from irqlab.errors import UsageError
from irqlab.sources.fs import Roots


def machine(tmp_path, cmdline: str, isolated: str = "") -> Roots:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cmdline").write_text(cmdline + "\n")
    cpu = tmp_path / "sys" / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "isolated").write_text(isolated + "\n")
    return Roots(tmp_path / "proc", tmp_path / "sys")


def test_no_declared_cpu_and_no_cpus_option_is_a_usage_error_naming_what_was_looked_for(tmp_path):
    with pytest.raises(UsageError, match="no CPU is meant to be quiet.*isolcpus=.*--cpus LIST"):
        declared(machine(tmp_path, "console=ttyS0 quiet"), None, (0, 1))


def test_the_kernel_command_line_declares_the_cpus_and_the_nohz_full_ones(tmp_path):
    quiet, nohz = declared(machine(tmp_path, "isolcpus=managed_irq,domain,2-3 nohz_full=3", "2-3"), None, (0, 1, 2, 3))
    assert quiet == {2: ("isolcpus=managed_irq,domain", "isolated (sysfs)"), 3: ("isolcpus=managed_irq,domain", "isolated (sysfs)", "nohz_full")}
    assert nohz == {3}


def test_cpus_option_replaces_the_declared_set_and_keeps_what_the_kernel_says_of_them(tmp_path):
    quiet, _ = declared(machine(tmp_path, "nohz_full=3"), "1,3", (0, 1, 2, 3))
    assert quiet == {1: ("--cpus",), 3: ("--cpus", "nohz_full")}


@pytest.mark.parametrize(("arg", "message"), [("1-x", "not a CPU list"), ("7", "CPU 7 not online")])
def test_a_bad_or_offline_cpus_list_is_one_usage_line(tmp_path, arg, message):
    with pytest.raises(UsageError, match=message):
        declared(machine(tmp_path, ""), arg, (0, 1))


def test_the_command_exits_64_on_a_bad_cpus_list(capsys):
    assert main(["isolation", "--cpus", "1-x", "--duration", "0.1"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("irqlab isolation: --cpus '1-x'")
