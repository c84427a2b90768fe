"""/sys/class/net/DEV: counters, RPS/XPS masks, NAPI knobs, node and driver (sources/netdev.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from irqlab.errors import MissingSource, ParseError
from irqlab.sources.fs import Roots
from irqlab.sources.netdev import parse_int, queue_index, read_netdev, read_netdevs

NET = Path(__file__).resolve().parent.parent / "fixtures" / "net"


def roots(tree: str) -> Roots:
    return Roots(NET / "proc-owners", NET / tree)


def test_this_vm_virtio_nic_every_statistics_file_and_knob() -> None:
    base = NET / "sys-vm-6.18" / "class" / "net" / "eth0"
    dev = read_netdev(roots("sys-vm-6.18"), "eth0")
    on_disk = {p.name: int(p.read_text()) for p in (base / "statistics").iterdir()}
    assert dict(dev.statistics) == on_disk and len(on_disk) == 24
    assert dev.stat("rx_missed_errors") == on_disk["rx_missed_errors"] and dev.stat("no_such") is None
    assert dev.driver == "virtio_net" and dev.numa_node is None  # virtio has no numa_node file
    assert (dev.threaded, dev.napi_defer_hard_irqs, dev.gro_flush_timeout_ns) == (0, 0, 0)
    assert [(q.index, q.rps_cpus, q.rps_flow_cnt) for q in dev.rx_queues] == [(0, (), 0)]
    # xps_cpus is hidden on a single-queue device: the queue is there, its mask unknown.
    assert [(q.index, q.xps_cpus) for q in dev.tx_queues] == [(0, None)]


def test_masks_wider_than_32_cpus_are_comma_grouped() -> None:
    dev = read_netdev(roots("sys-mq"), "ens1f0")
    assert [q.rps_cpus for q in dev.rx_queues] == [(), (0, 1, *range(32, 40))]
    assert [q.rps_flow_cnt for q in dev.rx_queues] == [0, 4096]
    assert [q.xps_cpus for q in dev.tx_queues] == [(0,), (39,)]
    assert (dev.threaded, dev.napi_defer_hard_irqs, dev.gro_flush_timeout_ns) == (1, 2, 20000)
    assert (dev.numa_node, dev.driver) == (1, "ixgbe")
    assert (dev.stat("rx_packets"), dev.stat("rx_dropped"), dev.stat("tx_dropped")) == (123456789012, 17, 3)


def test_a_kernel_before_5_11_has_no_napi_knobs_and_a_virtual_device_no_parent() -> None:
    found = read_netdevs(roots("sys-mq"))
    assert [d.name for d in found.devices] == ["ens1f0", "old0"]
    old = found.devices[1]
    assert (old.threaded, old.napi_defer_hard_irqs, old.gro_flush_timeout_ns) == (None, None, None)
    assert (old.numa_node, old.driver) == (None, None)
    assert [q.rps_flow_cnt for q in old.rx_queues] == [None]
    assert found.unreadable == ()


def test_a_malformed_mask_is_one_unreadable_with_file_line_and_token_and_the_rest_is_read() -> None:
    found = read_netdevs(roots("sys-bad-mask"))
    (dev,) = found.devices
    assert dev.rx_queues[0].rps_cpus is None and dev.stat("rx_dropped") == 7
    (bad,) = found.unreadable
    path = str(NET / "sys-bad-mask" / "class" / "net" / "eth0" / "queues" / "rx-0" / "rps_cpus")
    assert (bad.source, bad.path, bad.reason) == ("netdev", path, "parse")
    assert bad.message == f"{path}: line 1: CPU mask group is not 1-8 hex digits (at 'zz')"


def test_parse_int_refuses_what_is_not_a_number() -> None:
    assert parse_int("-1\n", "numa_node") == -1
    with pytest.raises(ParseError) as err:
        parse_int("1O\n", "threaded")
    assert (err.value.path, err.value.line, err.value.token) == ("threaded", 1, "1O")


def test_queue_names_sort_by_number_not_text() -> None:
    assert sorted(q for q in map(queue_index, ["rx-10", "rx-2", "tx-0", "byte_queue_limits"]) if q) == [
        ("rx", 2), ("rx", 10), ("tx", 0)]


def test_a_device_that_is_not_there_is_missing() -> None:
    with pytest.raises(MissingSource):
        read_netdev(roots("sys-mq"), "eth9")
