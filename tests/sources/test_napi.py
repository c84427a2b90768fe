"""The netdev netlink family's NAPI instances: a recorded 6.18 napi-get, NLA_UINT widths, an absent family."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from pyroute2.netlink import genlmsg
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import GenericNetlinkSocket

from irqlab.model.net import NapiInstance
from irqlab.sources import napi as napi_mod
from irqlab.sources.napi import NapiUnavailable, napi_msg, napi_set_msg, napis_of
from irqlab.sources.tasks import classify

FIXTURE = Path(__file__).parent.parent / "fixtures" / "napi" / "veth_6_18_napi_get.json"


class _u32_timeouts(genlmsg):
    """What a kernel sends when the timeouts fit in 32 bits: nla_put_uint() picks a u32."""

    prefix = "NETDEV_A_NAPI_"
    nla_map = tuple((name, "uint32" if kind != "none" else "none") for name, kind in napi_msg.nla_map)


def _wire(cls: type, attrs: list) -> bytes:
    msg = cls()
    msg["cmd"] = napi_mod.CMD_NAPI_GET
    msg["version"] = 1
    msg["attrs"] = [tuple(a) for a in attrs]
    msg.encode()
    return bytes(msg.data)


def _decoded(data: bytes) -> genlmsg:
    msg = napi_msg(data)
    msg.decode()
    return msg


def test_a_recorded_6_18_napi_get_of_a_threaded_veth_gives_its_instances_and_settings():
    replies = json.loads(FIXTURE.read_text())["replies"]
    napis = napis_of(_decoded(_wire(napi_set_msg, r)) for r in replies)
    assert napis == (
        NapiInstance(id=279, ifindex=2, irq=None, pid=None, defer_hard_irqs=0, gro_flush_timeout_ns=0,
                     irq_suspend_timeout_ns=0, threaded=0),
        NapiInstance(id=278, ifindex=3, irq=None, pid=15788, defer_hard_irqs=2, gro_flush_timeout_ns=200000,
                     irq_suspend_timeout_ns=0, threaded=1),
    )
    assert napis[1].suspends_irqs and not napis[0].suspends_irqs


@pytest.mark.parametrize("cls", [_u32_timeouts, napi_set_msg], ids=["u32", "u64"])
def test_gro_flush_timeout_and_irq_suspend_timeout_decode_at_either_nla_uint_width(cls):
    # NLA_UINT is 4 bytes when the value fits, else 8: a fixed-width declaration misreads one of them.
    attrs = [("NETDEV_A_NAPI_ID", 8193), ("NETDEV_A_NAPI_IFINDEX", 7), ("NETDEV_A_NAPI_IRQ", 41),
             ("NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT", 200000), ("NETDEV_A_NAPI_IRQ_SUSPEND_TIMEOUT", 20_000_000)]
    (n,) = napis_of([_decoded(_wire(cls, attrs))])
    assert (n.id, n.ifindex, n.irq, n.gro_flush_timeout_ns, n.irq_suspend_timeout_ns) == (8193, 7, 41, 200000, 20_000_000)
    assert n.defer_hard_irqs is None and n.threaded is None  # a 6.9-6.12 kernel sends no configuration


def test_a_kernel_without_the_netdev_family_is_a_missing_source_that_says_so(monkeypatch):
    def no_family(self, *args, **kwargs):
        raise NetlinkError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(GenericNetlinkSocket, "bind", no_family)
    with pytest.raises(NapiUnavailable, match="no netdev netlink family"):
        napi_mod.read_napis()


def test_a_napi_kthread_is_a_thread_of_the_interrupt_path():
    assert classify("napi/eth0-8193") == ("napi", None, None)
    assert classify("napi/enp1s0f0np0") == ("napi", None, None)  # cut at 15 characters on old kernels
    assert classify("napiworker") is None
