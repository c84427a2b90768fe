"""The isolation parameters of a kernel command line, and the two sysfs lists beside it."""

from __future__ import annotations

import pytest

from irqlab.errors import ParseError
from irqlab.sources.cmdline import KernelIsolation, parse_cmdline, read_kernel_isolation
from irqlab.sources.fs import Roots


def test_isolcpus_flags_are_split_from_its_cpu_list():
    k = parse_cmdline("BOOT_IMAGE=/vmlinuz isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 irqaffinity=0-1 quiet")
    assert (k.isolcpus, k.isolcpus_flags, k.nohz_full, k.rcu_nocbs, k.irqaffinity) == ((2, 3), ("managed_irq", "domain"), (2, 3), (2, 3), (0, 1))
    assert k.quiet_cpus((0, 1, 2, 3)) == {
        2: ("isolcpus=managed_irq,domain", "nohz_full", "rcu_nocbs", "outside irqaffinity"),
        3: ("isolcpus=managed_irq,domain", "nohz_full", "rcu_nocbs", "outside irqaffinity"),
    }


def test_isolcpus_without_flags_means_domain():
    assert parse_cmdline("isolcpus=1").isolcpus_flags == ("domain",)


def test_arguments_after_a_bare_double_dash_belong_to_init():
    assert parse_cmdline("quiet -- isolcpus=1 nohz_full=1") == KernelIsolation()


def test_irqaffinity_alone_declares_the_other_online_cpus_free_of_device_interrupts():
    assert parse_cmdline("irqaffinity=0").quiet_cpus((0, 1)) == {1: ("outside irqaffinity",)}


def test_a_bare_rcu_nocbs_declares_nothing():
    assert parse_cmdline("rcu_nocbs nohz_full=3").quiet_cpus((0, 1, 2, 3)) == {3: ("nohz_full",)}


def test_a_bad_cpu_list_is_one_parse_error_quoting_it():
    with pytest.raises(ParseError, match="at '2-x'"):
        parse_cmdline("nohz_full=2-x")


def test_the_sysfs_lists_are_read_and_a_missing_nohz_full_file_is_empty(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cmdline").write_text("console=ttyS0 isolcpus=3\n")
    cpu = tmp_path / "sys" / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "isolated").write_text("3\n")
    k = read_kernel_isolation(Roots(tmp_path / "proc", tmp_path / "sys"))
    assert (k.isolcpus, k.sys_isolated, k.sys_nohz_full) == ((3,), (3,), ())
    assert k.quiet_cpus((0, 1, 2, 3)) == {3: ("isolcpus=domain", "isolated (sysfs)")}
