"""HostInfo: best effort, never an exception."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

import pytest

from irqlab.model.snapshot import HostInfo
from irqlab.sources.fs import Roots
from irqlab.sources.host import read_host

VM = Path(__file__).resolve().parent.parent / "fixtures" / "irqinfo" / "vm-6.18-2cpu"


def write(base: Path, rel: str, text: str) -> None:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_capture_of_this_vm_names_the_machine() -> None:
    host = read_host(Roots.capture(VM))
    assert host == HostInfo(
        hostname="vm",
        kernel="6.18.44-fc-v782",
        machine="x86_64",  # from the captured kernel.arch, not from this interpreter
        clk_tck=os.sysconf("SC_CLK_TCK"),
        possible_cpus=(0, 1),
        online_cpus=(0, 1),
    )


def test_capture_without_kernel_arch_does_not_guess_the_machine(tmp_path: Path) -> None:
    write(tmp_path, "proc/sys/kernel/osrelease", "5.15.0-91-generic\n")
    write(tmp_path, "sys/devices/system/cpu/possible", "0-7\n")
    write(tmp_path, "sys/devices/system/cpu/online", "0-3,5\n")  # CPUs 4, 6 and 7 offline
    host = read_host(Roots.capture(tmp_path))
    assert host.machine == "" and host.hostname == "" and host.kernel == "5.15.0-91-generic"
    assert host.possible_cpus == tuple(range(8)) and host.online_cpus == (0, 1, 2, 3, 5)


def test_empty_root_gives_empty_fields_not_errors(tmp_path: Path) -> None:
    host = read_host(Roots(tmp_path / "proc", tmp_path / "sys"))
    assert (host.hostname, host.kernel, host.machine) == ("", "", "")
    assert host.possible_cpus is None and host.online_cpus is None


def test_garbled_cpu_list_is_none(tmp_path: Path) -> None:
    write(tmp_path, "sys/devices/system/cpu/online", "zero to three\n")
    write(tmp_path, "sys/devices/system/cpu/possible", "0-3\n")
    host = read_host(Roots.capture(tmp_path))
    assert host.online_cpus is None and host.possible_cpus == (0, 1, 2, 3)


@pytest.mark.live
def test_live_host_matches_what_python_says() -> None:
    host = read_host(Roots())
    assert host.hostname == socket.gethostname()
    assert host.kernel == platform.release()
    assert host.machine == os.uname().machine
    assert host.online_cpus is not None and len(host.online_cpus) == os.sysconf("SC_NPROCESSORS_ONLN")
    assert host.possible_cpus is not None and set(host.online_cpus) <= set(host.possible_cpus)
