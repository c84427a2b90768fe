"""Threaded NAPI and per-NAPI settings on this kernel: a veth pair in a namespace the test makes and removes.

Root and live: run under the live lock (`flock /tmp/irqlab-live.lock ...`). veth gets NAPI
instances once GRO is on (drivers/net/veth.c, veth_napi_enable() from veth_set_features()).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from irqlab.mitigate.knobs import HostKnobs, napi_knob
from irqlab.mitigate.netns import run_in_netns
from irqlab.model.knob import PlannedWrite
from irqlab.sources.fs import Roots
from irqlab.sources.napi import read_napis
from irqlab.sources.netstate import read_net_state
from irqlab.sources.tasks import read_tasks

pytestmark = [pytest.mark.live, pytest.mark.root]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def veth():
    if os.geteuid() != 0:
        pytest.fail("needs root: creates a network namespace and a veth pair")
    ns = f"irqlabnapi{os.getpid()}"
    _ip("netns", "add", ns)
    try:
        _ip("-n", ns, "link", "add", "nva", "type", "veth", "peer", "name", "nvb")
        for dev in ("nva", "nvb"):
            _ip("-n", ns, "link", "set", dev, "up")
            subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", "on"], check=True, capture_output=True, timeout=20)
        yield ns
    finally:
        _ip("netns", "del", ns)


def _sysfs(dev: str, attr: str) -> str:
    with open(f"/sys/class/net/{dev}/{attr}") as f:
        return f.read().strip()


def _inside(ns: str, dev: str):
    """(dev's NAPI instances over netlink, its sysfs napi knobs), read inside ns."""
    def read() -> list:
        index = int(_sysfs(dev, "ifindex"))
        napis = [[n.id, n.pid, n.threaded, n.defer_hard_irqs, n.gro_flush_timeout_ns, n.irq_suspend_timeout_ns]
                 for n in read_napis(index)]
        return [napis, {a: _sysfs(dev, a) for a in ("threaded", "napi_defer_hard_irqs", "gro_flush_timeout")}]
    return run_in_netns(ns, read)


def test_threaded_napi_switched_on_by_the_watch_rung_shows_its_kthread_and_is_restored(veth, tmp_path):
    with HostKnobs.open(Roots(), str(tmp_path / "journal")) as knobs:
        assert knobs.apply(PlannedWrite("napi", "nva/threaded", "1", "test", dev="nva", attr="threaded", netns=veth)) == "0"
        state = read_net_state(Roots(), walk=True)
        view = next(v for v in state.views if veth in v.namespace.names)
        nva = next(d for d in view.devices if d.name == "nva")
        (napi,) = view.napis_of(nva)
        assert nva.threaded == 1 and napi.threaded == 1 and napi.pid
        tasks, _ = read_tasks(Roots())
        thread = next(t for t in tasks if t.pid == napi.pid)
        assert (thread.kind, thread.comm) == ("napi", f"napi/nva-{napi.id}")
        assert thread.policy == "other" and thread.last_cpu is not None
        (restored,) = knobs.restore()
        assert restored.outcome == "restored"
    napis, files = _inside(veth, "nva")
    assert files["threaded"] == "0" and napis[0][2] == 0


def test_per_napi_settings_read_over_netlink_match_sysfs_and_a_per_napi_write_is_restored(veth, tmp_path):
    with HostKnobs.open(Roots(), str(tmp_path / "journal")) as knobs:
        for attr, value in (("napi_defer_hard_irqs", "2"), ("gro_flush_timeout", "200000")):
            knobs.apply(PlannedWrite("napi", f"nvb/{attr}", value, "test", dev="nvb", attr=attr, netns=veth))
        napis, files = _inside(veth, "nvb")
        ((napi_id, _, _, defer, flush, suspend),) = napis
        assert (str(defer), str(flush)) == (files["napi_defer_hard_irqs"], files["gro_flush_timeout"]) == ("2", "200000")
        write = PlannedWrite("napi", "nvb napi", "1000000", "test", dev="nvb", attr="irq-suspend-timeout", netns=veth, napi_id=napi_id)
        assert knobs.knob(write) == napi_knob("nvb", "irq-suspend-timeout", veth, napi_id)
        assert knobs.apply(write) == str(suspend) == "0"
        assert knobs.read(write) == "1000000"
        assert _inside(veth, "nvb")[0][0][5] == 1000000
        assert {r.outcome for r in knobs.restore()} == {"restored"}
    napis, files = _inside(veth, "nvb")
    assert napis[0][3:] == [0, 0, 0] and (files["napi_defer_hard_irqs"], files["gro_flush_timeout"]) == ("0", "0")
