"""irqbalance: whether it runs, the CPUs it is banned from (file, running environment, its default), the IRQs it leaves."""

from __future__ import annotations

import pytest

from irqlab.errors import ParseError
from irqlab.sources.fs import Roots
from irqlab.sources.irqbalance import parse_args, parse_env_file, read_irqbalance


def machine(fixtures, name):
    base = fixtures / "irqbalance" / name
    return read_irqbalance(Roots(base / "proc", base / "sys"), etc=base / "etc")


def test_a_debian_file_and_the_running_daemon_ban_the_same_cpus_and_irqs(fixtures):
    ib = machine(fixtures, "debian-banned")
    assert ib.pid == 812 and ib.notes == ()
    assert ib.config is not None and ib.config.origin.endswith("etc/default/irqbalance")
    assert (ib.config.banned_cpus, ib.config.banned_irqs, ib.config.banned_modules) == ((2, 3), (38, 39), ("mlx5_core",))
    assert ib.running is not None and ib.running.banned_cpus == (2, 3) and ib.running.banned_irqs == (38, 39)
    assert ib.banned() == ((2, 3), "IRQBALANCE_BANNED_CPULIST=2-3 (pid 812)")


def test_a_daemon_started_before_its_file_changed_obeys_its_own_environment_and_the_difference_is_said(fixtures):
    ib = machine(fixtures, "rhel-stale-mask")
    assert ib.config is not None and ib.config.banned_cpus == (2, 3) and ib.config.origin.endswith("etc/sysconfig/irqbalance")
    assert ib.running is not None and ib.running.banned_cpus == (3,)
    assert ib.banned() == ((3,), "IRQBALANCE_BANNED_CPUS=00000008 (pid 1201)")
    assert len(ib.notes) == 1 and "bans CPUs 3 but" in ib.notes[0] and "says 2-3" in ib.notes[0]


def test_with_nothing_set_irqbalance_bans_the_isolated_and_nohz_full_cpus_itself(fixtures):
    ib = machine(fixtures, "default-isolated")
    assert ib.config is None and ib.running is not None and ib.running.banned_cpus is None
    cpus, why = ib.banned()
    assert cpus == (2, 3) and why.startswith("its default: the isolated and nohz_full CPUs")


def test_no_daemon_and_no_file(fixtures):
    ib = machine(fixtures, "not-running")
    assert (ib.pid, ib.running, ib.config) == (None, None, None) and ib.banned()[0] == ()


def test_an_unbalanced_quote_in_the_environment_file_is_one_error_naming_the_file_and_line(fixtures):
    with pytest.raises(ParseError) as exc:
        machine(fixtures, "bad-quotes")
    assert "etc/default/irqbalance: line 1: unbalanced quotes" in str(exc.value)


def test_every_spelling_of_a_banned_irq_and_module_is_read():
    assert parse_args(["--banirq=5", "--banirq", "6", "-i", "7", "-i8", "-m", "nvme", "--banmod=ixgbe", "--foreground"], "x") == (
        (5, 6, 7, 8), ("nvme", "ixgbe"))
    with pytest.raises(ParseError):
        parse_args(["--banirq=eth0"], "x")


def test_the_environment_file_reads_as_systemd_reads_it():
    text = "# c\n; c\n\nexport A=1\nB='x y'\nC=\"2-3\"\n"
    assert parse_env_file(text, "f") == {"A": "1", "B": "x y", "C": "2-3"}
    with pytest.raises(ParseError):
        parse_env_file("no equals sign\n", "f")
