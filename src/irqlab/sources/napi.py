"""NAPI instances and their per-NAPI configuration, from the netdev generic netlink family.

The family is declared in the kernel's Documentation/netlink/specs/netdev.yaml (v6.18) and
include/uapi/linux/netdev.h; pyroute2 (0.9) has no class for it, so the attribute set
"napi" is declared here as a pyroute2 message (`napi_msg`) and pyroute2 does the decoding.
`napi-get` (a dump, optionally filtered by ifindex) needs no privilege; `napi-set` needs
CAP_NET_ADMIN (GENL_ADMIN_PERM) and is made by mitigate/napi.py with `napi_set_msg`.

A socket talks to the network namespace it was opened in: sources/netns.py's child opens one
inside each namespace. A kernel without the family (before 6.9), or whose family has no
napi-get, is not an error: `read_napis()` raises NapiUnavailable, a MissingSource whose
message says why, and the snapshot says so in its status.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterable, Mapping

from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, genlmsg, nla_base_string
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import GenericNetlinkSocket

from irqlab.errors import MissingSource, PermissionDenied, SourceError
from irqlab.model.net import NapiInstance

FAMILY = "netdev"  # NETDEV_FAMILY_NAME
WHERE = "netlink:netdev"  # the "path" errors name
# enum netdev cmd (include/uapi/linux/netdev.h, v6.18): napi-get since 6.9, napi-set since 6.13.
CMD_NAPI_GET = 11
CMD_NAPI_SET = 14

# attribute-set napi, in order from NETDEV_A_NAPI_IFINDEX = 1.
_ATTRS = ("IFINDEX", "ID", "IRQ", "PID", "DEFER_HARD_IRQS", "GRO_FLUSH_TIMEOUT", "IRQ_SUSPEND_TIMEOUT", "THREADED")
# The spec's type "uint" (NLA_UINT) is 4 or 8 bytes, as the value needs (nla_put_uint()).
_UINT_ATTRS = ("GRO_FLUSH_TIMEOUT", "IRQ_SUSPEND_TIMEOUT")
# napi-set's attributes, by the names mitigate/ and the journal use.
SET_ATTRS: Mapping[str, str] = {
    "defer-hard-irqs": "DEFER_HARD_IRQS",  # u32, at most S32_MAX (NLA_POLICY_FULL_RANGE)
    "gro-flush-timeout": "GRO_FLUSH_TIMEOUT",  # uint, ns
    "irq-suspend-timeout": "IRQ_SUSPEND_TIMEOUT",  # uint, ns
    "threaded": "THREADED",  # u32 enum napi-threaded: 0 disabled, 1 enabled, 2 busy-poll (6.18)
}


class napi_msg(genlmsg):  # type: ignore[misc]  # noqa: N801 - pyroute2's naming of message classes
    """netdev's attribute set "napi" as it comes back: uint attributes of either width."""

    prefix = "NETDEV_A_NAPI_"

    class uint(nla_base_string):  # type: ignore[misc]  # noqa: N801
        """NLA_UINT: a u32, or a u64 when the value needs it; host byte order like every NLA integer."""

        __slots__ = ()

        def decode(self) -> None:
            nla_base_string.decode(self)
            self.value = int.from_bytes(self["value"], sys.byteorder)  # type: ignore[misc]

    nla_map = (("NETDEV_A_NAPI_UNSPEC", "none"),) + tuple(
        (f"NETDEV_A_NAPI_{a}", "uint" if a in _UINT_ATTRS else "uint32") for a in _ATTRS)


class napi_set_msg(genlmsg):  # type: ignore[misc]  # noqa: N801
    """The same attribute set as napi-set sends it: uints as u64 (NLA_UINT takes either width)."""

    prefix = "NETDEV_A_NAPI_"
    nla_map = (("NETDEV_A_NAPI_UNSPEC", "none"),) + tuple(
        (f"NETDEV_A_NAPI_{a}", "uint64" if a in _UINT_ATTRS else "uint32") for a in _ATTRS)


class NapiUnavailable(MissingSource):
    """This kernel (or this namespace, or this user) gives no NAPI instances: why, in one line."""


def napi_of(attrs: Mapping[str, int]) -> NapiInstance:
    """A NapiInstance from one napi-get reply's attributes (names without the prefix, lower case)."""
    def get(name: str) -> int | None:
        value = attrs.get(name)
        return None if value is None else int(value)

    return NapiInstance(
        id=int(attrs["id"]),
        ifindex=int(attrs["ifindex"]),
        irq=get("irq"),
        pid=get("pid"),
        defer_hard_irqs=get("defer_hard_irqs"),
        gro_flush_timeout_ns=get("gro_flush_timeout"),
        irq_suspend_timeout_ns=get("irq_suspend_timeout"),
        threaded=get("threaded"),
    )


def attrs_of(msg: genlmsg) -> dict[str, int]:
    """A decoded napi_msg's attributes as {"id": 257, "ifindex": 4, ...}."""
    return {name.removeprefix("NETDEV_A_NAPI_").lower(): value for name, value in msg["attrs"] if value is not None}


def napis_of(messages: Iterable[genlmsg]) -> tuple[NapiInstance, ...]:
    """The NAPI instances of a napi-get dump's replies, by ifindex and id."""
    out = [napi_of(attrs_of(m)) for m in messages]
    return tuple(sorted(out, key=lambda n: (n.ifindex, n.id)))


def open_family() -> GenericNetlinkSocket:
    """A socket bound to the netdev family in this process's network namespace; NapiUnavailable without it."""
    sock = GenericNetlinkSocket()
    try:
        sock.bind(FAMILY, napi_msg)
    except NetlinkError as exc:
        sock.close()
        if exc.code == errno.ENOENT:
            raise NapiUnavailable(WHERE, "no netdev netlink family (Linux < 6.9): per-NAPI ids and settings unknown") from None
        raise SourceError(WHERE, f"cannot resolve the netdev netlink family: {exc}") from None
    except OSError as exc:
        sock.close()
        raise SourceError(WHERE, f"cannot open a generic netlink socket: {exc.strerror or exc}") from None
    return sock


def dump_napis(sock: GenericNetlinkSocket, ifindex: int | None = None) -> tuple[NapiInstance, ...]:
    """napi-get as a dump (every instance, or one device's)."""
    msg = napi_msg()
    msg["cmd"] = CMD_NAPI_GET
    msg["version"] = 1
    if ifindex is not None:
        msg["attrs"].append(("NETDEV_A_NAPI_IFINDEX", ifindex))
    try:
        return napis_of(sock.nlm_request(msg, msg_type=sock.prid, msg_flags=NLM_F_REQUEST | NLM_F_DUMP))
    except NetlinkError as exc:
        if exc.code == errno.EOPNOTSUPP:
            raise NapiUnavailable(WHERE, "the netdev netlink family has no napi-get (Linux < 6.9)") from None
        if exc.code == errno.EPERM:
            raise PermissionDenied(WHERE, "napi-get refused (EPERM)") from None
        raise SourceError(WHERE, f"napi-get failed: {exc}") from None


def read_napis(ifindex: int | None = None) -> tuple[NapiInstance, ...]:
    """Every NAPI instance of this network namespace (or of one device) with its configuration."""
    sock = open_family()
    try:
        return dump_napis(sock, ifindex)
    finally:
        sock.close()
