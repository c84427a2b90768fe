"""The interrupt map built from hand-made inputs: a 2-socket machine with a multi-queue NIC."""

from __future__ import annotations

from irqlab.analysis.irqmap import WHY_ARCH, WHY_MANAGED, WHY_NO_AFFINITY, WHY_READ_ONLY, WHY_UNKNOWN, build_map, parse_role, preflight
from irqlab.model.devices import NetDeviceLink, PciFunction
from irqlab.model.net import NetDevice, RxQueue, TxQueue
from irqlab.model.snapshot import IrqInfo, IrqLine

NODES = {0: tuple(range(0, 576)), 1: tuple(range(576, 1152))}
ONLINE = tuple(range(1152))


def _nic() -> NetDevice:
    rx = tuple(RxQueue(i, (), 0) for i in range(2))
    tx = tuple(TxQueue(i, (576 + i,)) for i in range(2))
    return NetDevice("ens1f0", {}, rx, tx, 0, None, None, 1, "ice")


def _map():
    infos = {
        100: IrqInfo(100, affinity=(600,), effective_affinity=(600,), actions=("ice-ens1f0-TxRx-0",), managed=False),
        101: IrqInfo(101, affinity=(601,), effective_affinity=(601,), actions=("ice-ens1f0-TxRx-1",), managed=False),
        120: IrqInfo(120, affinity=(0, 1), effective_affinity=(1,), actions=("nvme0q1",), managed=True),
        9: IrqInfo(9, affinity=tuple(range(1152)), effective_affinity=(0,), actions=("acpi",), managed=True),
        7: IrqInfo(7, actions=("chained",)),  # no smp_affinity
    }
    functions = [
        PciFunction("0000:81:00.0", (100, 101), True, "ice", 1),
        PciFunction("0000:01:00.0", (120,), True, "nvme", 0),
    ]
    links = [NetDeviceLink("ens1f0", "0000:81:00.0", None)]
    lines = [IrqLine("100", "100"), IrqLine("LOC", "LOC", description="Local timer interrupts")]
    return build_map(infos, lines, functions, links, [("host", [_nic()])], NODES, ONLINE)


def test_a_nic_queue_irq_is_mapped_to_its_netdev_queue_and_remote_node():
    row = next(r for r in _map().rows if r.irq == "100")
    assert (row.device, row.driver, row.netdev, row.role, row.queue) == ("0000:81:00.0", "ice", "ens1f0", "combined", 0)
    assert row.device_node == 1 and row.effective_nodes == (1,) and row.movable is True and row.why is None


def test_a_managed_queue_is_not_movable_and_says_why():
    rows = {r.irq: r for r in _map().rows}
    assert (rows["120"].movable, rows["120"].why) == (False, WHY_MANAGED)
    assert rows["120"].affinity_nodes == (0,)
    # read-only but not a device's MSI vector: the reason names what it may be
    assert (rows["9"].movable, rows["9"].why) == (False, WHY_READ_ONLY)
    assert rows["9"].affinity_nodes == (0, 1)
    assert (rows["7"].movable, rows["7"].why) == (False, WHY_NO_AFFINITY)
    assert (rows["LOC"].movable, rows["LOC"].why) == (False, WHY_ARCH)


def test_the_netdev_lists_its_irqs_and_queues():
    (nic,) = _map().netdevs
    assert nic.irqs == ("100", "101") and nic.pci == "0000:81:00.0"


def test_a_capture_cannot_tell_whether_an_irq_moves():
    m = build_map({5: IrqInfo(5, affinity=(0,))}, [], [], [], [], {}, None)
    assert (m.rows[0].movable, m.rows[0].why) == (None, WHY_UNKNOWN)


def test_queue_roles_from_action_names():
    assert parse_role("virtio2-input.0", "virtio2") == ("rx", 0)
    assert parse_role("virtio2-output.3", "virtio2") == ("tx", 3)
    assert parse_role("mlx5_comp7@pci:0000:03:00.0") == ("combined", 7)
    assert parse_role("enp1s0f0-rx-2", "enp1s0f0") == ("rx", 2)
    assert parse_role("virtio2-config", "virtio2") is None


def test_preflight_predicts_refusals():
    rows = {r.irq: r for r in _map().rows}
    assert preflight(rows["100"], [1], ONLINE) is None
    assert preflight(rows["120"], [1], ONLINE) == WHY_MANAGED
    assert "no online CPU" in (preflight(rows["100"], [5], (0, 1)) or "")
    assert "do not exist" in (preflight(rows["100"], [2000], ONLINE, ONLINE) or "")
    assert "empty" in (preflight(rows["100"], [], ONLINE) or "")
    assert preflight(rows["LOC"], [0], ONLINE) == WHY_ARCH
