"""Devices as the interrupt map sees them: PCI functions with their IRQs, NUMA nodes' CPUs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PciFunction:
    """One /sys/bus/pci/devices/ADDR entry: its IRQs, driver, NUMA node and child devices."""

    address: str  # "0000:00:03.0"
    irqs: tuple[int, ...]  # msi_irqs/ entries; else the legacy INTx line of its irq file
    msi: bool  # the IRQs came from msi_irqs/ (False: the INTx line)
    driver: str | None
    numa_node: int | None  # -1: the firmware gave none
    children: tuple[str, ...] = ()  # bus devices below it that own its IRQs ("virtio2")


@dataclass(frozen=True, slots=True)
class NetDeviceLink:
    """Where /sys/class/net/DEV/device leads: the PCI function and the bus device under it."""

    name: str  # "eth0"
    pci: str | None  # "0000:00:03.0"; None for virtual devices or non-PCI parents
    child: str | None  # "virtio2" when the netdev hangs below a bus device of that function
