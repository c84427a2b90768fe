"""`irqlab map` on a capture of this VM, and live: every `movable` claim checked by the kernel."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from irqlab.cli.main import main
from irqlab.sources.fs import Roots
from irqlab.sources.pcidevs import read_netdev_links, read_pci_functions

VM = Path(__file__).resolve().parent.parent / "fixtures" / "map" / "vm-6.18-2cpu"


def _run(capsys, *args: str) -> tuple[int, str]:
    rc = main(["map", "--procfs", str(VM / "proc"), "--sysfs", str(VM / "sys"), *args])
    return rc, capsys.readouterr().out


def test_the_vm_capture_maps_eth0_queues_to_virtio2_irqs(capsys):
    rc, out = _run(capsys, "--json")
    doc = json.loads(out)
    rows = {r["irq"]: r for r in doc["irqs"]}
    assert rc == 0 and doc["schema"] == 1 and doc["nodes"] == {"0": "0-1"}
    assert (rows["38"]["netdev"], rows["38"]["role"], rows["38"]["queue"]) == ("eth0", "rx", 0)
    assert (rows["39"]["role"], rows["39"]["device"]) == ("tx", "0000:00:03.0")
    assert rows["36"]["device"] == "0000:00:02.0" and rows["36"]["netdev"] is None
    assert rows["36"]["movable"] is None  # a capture keeps no file modes
    assert rows["LOC"]["movable"] is False
    eth0 = next(n for n in doc["netdevs"] if n["name"] == "eth0")
    assert eth0["irqs"] == ["37", "38", "39"] and eth0["rx_queues"][0]["rps_flow_cnt"] == 0


def test_the_text_groups_irqs_by_device(capsys):
    rc, out = _run(capsys)
    assert rc == 0
    assert "device 0000:00:03.0: driver virtio-pci, node -, netdev eth0" in out
    assert "host/eth0:" in out and "rx-0  rps_cpus off" in out


def test_a_netdev_link_out_of_the_capture_is_refused(tmp_path):
    from irqlab.errors import UnsafeSource

    net = tmp_path / "sys" / "class" / "net" / "eth9"
    net.mkdir(parents=True)
    (net / "device").symlink_to("/sys/bus/pci/devices")
    with pytest.raises(UnsafeSource):
        read_netdev_links(Roots(tmp_path / "proc", tmp_path / "sys"))


def test_the_vm_capture_has_its_pci_functions():
    fns = {f.address: f for f in read_pci_functions(Roots(VM / "proc", VM / "sys"))}
    assert fns["0000:00:02.0"].irqs == (35, 36) and fns["0000:00:02.0"].children == ("virtio1",)


@pytest.mark.live
@pytest.mark.root
def test_every_not_movable_claim_is_refused_by_the_kernel(capsys):
    """Write the current list back only where the map says no (movable claims: the next test)."""
    assert os.geteuid() == 0, "root test"
    assert main(["map", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["irqs"]
    numbered = [r for r in rows if r["irq"].isdigit()]
    assert numbered and all(r["movable"] is not None for r in numbered)
    refused = []
    for r in numbered:
        path = f"/proc/irq/{r['irq']}/smp_affinity_list"
        if r["movable"] or not os.path.exists(path):
            continue
        with open(path) as f:
            text = f.read().strip()
        fd = os.open(path, os.O_WRONLY) if os.access(path, os.W_OK) else None
        if fd is None:  # root is not held back by the mode: try the write itself
            try:
                fd = os.open(path, os.O_WRONLY)
            except PermissionError:
                refused.append(r["irq"])
                continue
        try:
            os.write(fd, text.encode())
        except OSError as exc:
            assert exc.errno in (errno.EPERM, errno.EIO), (r["irq"], exc)
            refused.append(r["irq"])
        else:
            pytest.fail(f"IRQ {r['irq']}: the map says not movable, the kernel took the write")
        finally:
            os.close(fd)
    if os.path.exists("/sys/kernel/irq/36/actions") and open("/sys/kernel/irq/36/actions").read().startswith("virtio1-req"):
        assert "36" in refused


@pytest.mark.live
@pytest.mark.root
def test_every_movable_claim_is_accepted_by_the_kernel_and_changes_nothing(capsys):
    """Write each movable IRQ's current list back: the kernel takes it, and the effective CPU stays
    (x86 keeps the vector when its CPU is online and in the new mask: arch/x86/kernel/apic/vector.c
    assign_vector_locked()), so nothing on the machine changes."""
    assert os.geteuid() == 0, "root test"
    assert main(["map", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["irqs"]
    movable = [r["irq"] for r in rows if r["irq"].isdigit() and r["movable"] and os.path.exists(f"/proc/irq/{r['irq']}/smp_affinity_list")]
    assert movable, "this VM has movable IRQs (eth0's queues)"
    for irq in movable:
        base = f"/proc/irq/{irq}"
        with open(f"{base}/smp_affinity_list") as f:
            text = f.read().strip()
        eff_path = f"{base}/effective_affinity_list"
        eff = open(eff_path).read().strip() if os.path.exists(eff_path) else None
        fd = os.open(f"{base}/smp_affinity_list", os.O_WRONLY)
        try:
            os.write(fd, text.encode())  # raises if the kernel refuses what the map called movable
        finally:
            os.close(fd)
        assert open(f"{base}/smp_affinity_list").read().strip() == text
        if eff is not None:
            assert open(eff_path).read().strip() == eff, f"IRQ {irq}: writing its own list back moved it"

