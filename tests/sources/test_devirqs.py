"""A device's IRQs from its PCI function's msi_irqs/, read below an injected sysfs root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from irqlab.errors import UnsafeSource
from irqlab.sources.devirqs import block_irqs, netdev_irqs, root_disk_irqs
from irqlab.sources.fs import Roots

PCI = "devices/pci0000:00"


def _irqs(directory: Path, *numbers: int) -> None:
    (directory / "msi_irqs").mkdir(parents=True)
    for n in numbers:
        (directory / "msi_irqs" / str(n)).write_text("msix\n")


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def machine(tmp_path: Path) -> Roots:
    """A virtio NIC (eth0), a loopback without a device, a virtio disk vda with partition vda1."""
    sys = tmp_path / "sys"
    _irqs(sys / PCI / "0000:00:03.0", 26, 24, 25)
    (sys / PCI / "0000:00:03.0" / "virtio2").mkdir()
    _link(sys / "class/net/eth0/device", f"../../../{PCI}/0000:00:03.0/virtio2")
    (sys / "class/net/lo").mkdir(parents=True)
    _irqs(sys / PCI / "0000:00:04.0", 30, 31)
    vda = sys / PCI / "0000:00:04.0/virtio1/block/vda"
    (vda / "vda1").mkdir(parents=True)
    (vda / "vda1" / "partition").write_text("1\n")
    _link(vda / "device", "../../../virtio1")
    _link(sys / "dev/block/253:0", f"../../{PCI}/0000:00:04.0/virtio1/block/vda")
    _link(sys / "dev/block/253:1", f"../../{PCI}/0000:00:04.0/virtio1/block/vda/vda1")
    (tmp_path / "proc").mkdir()
    return Roots(tmp_path / "proc", sys)


def test_a_virtio_nic_has_the_msi_irqs_of_its_parent_pci_function(tmp_path):
    assert netdev_irqs(machine(tmp_path), "eth0") == (24, 25, 26)


def test_a_device_without_a_device_link_has_no_irqs(tmp_path):
    roots = machine(tmp_path)
    assert netdev_irqs(roots, "lo") == () and netdev_irqs(roots, "veth9") == ()


def test_a_partition_counts_as_its_whole_disk(tmp_path):
    roots = machine(tmp_path)
    assert block_irqs(roots, 253, 1) == block_irqs(roots, 253, 0) == (30, 31)


def test_a_root_that_is_no_block_device_here_has_no_disk_irqs(tmp_path):
    roots = machine(tmp_path)
    st = os.stat(tmp_path)
    assert f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}" not in {"253:0", "253:1"}
    assert root_disk_irqs(roots, str(tmp_path)) == ()
    assert root_disk_irqs(roots, str(tmp_path / "gone")) == ()


def test_the_root_disk_is_found_from_the_mount_points_device_number(tmp_path):
    roots = machine(tmp_path)
    st = os.stat(tmp_path)
    _link(roots.sys("dev", "block", f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"),
          f"../../{PCI}/0000:00:04.0/virtio1/block/vda/vda1")
    assert root_disk_irqs(roots, str(tmp_path)) == (30, 31)


def test_a_device_link_leading_out_of_the_sysfs_root_is_refused_not_followed(tmp_path):
    roots = machine(tmp_path / "capture")
    _irqs(tmp_path / "elsewhere", 99)
    _link(roots.sys("class", "net", "eth1", "device"), str(tmp_path / "elsewhere"))
    with pytest.raises(UnsafeSource, match="eth1/device"):
        netdev_irqs(roots, "eth1")


@pytest.mark.live
def test_this_machines_nics_irqs_are_listed_in_proc_irq():
    roots = Roots()
    for dev in os.listdir("/sys/class/net"):
        for irq in netdev_irqs(roots, dev):
            assert os.path.isdir(f"/proc/irq/{irq}"), (dev, irq)
