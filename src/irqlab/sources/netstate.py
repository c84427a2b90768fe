"""The network state of every namespace: devices, MIB counters, UDP sockets and NAPI instances, for the doctor.

Live, the host's own namespace is read in place, and every other namespace a process is in
(or `ip netns` named) is read from inside it by a forked child (sources/netns.py,
call_in_each_netns(), one child for all of them) through the very same readers (the NAPI instances too: a netlink socket answers for the
namespace it was opened in). Unprivileged, setns(2) is refused: those
namespaces are listed as not entered, with the reason, never silently left out.

A capture (`irqlab snapshot --net`) holds the host's files under its proc/ and sys/, and each
other namespace under netns/INODE/{proc,sys} with netns/INODE/namespace.json naming it; the
socket owners are kept as the kernel shows them, proc/PID/fd/N links whose text is
"socket:[INODE]".
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path

from irqlab.errors import MissingSource, ParseError, SourceError, reason_of
from irqlab.model.net import NapiInstance, NetDevice, NetNamespace, NetState, NetView, UdpSocket
from irqlab.model.unreadable import Unreadable
from irqlab.sources.fs import Roots, list_dir, read_text
from irqlab.sources.netdev import read_netdevs
from irqlab.sources.netns import NETNS_RUN_DIR, call_in_each_netns, parse_ns_link, read_netns
from irqlab.sources.netstat import read_netstat
from irqlab.sources.sockets import read_udp, socket_owners

NAMESPACE_META = "namespace.json"


def _unreadable(source: str, exc: SourceError) -> Unreadable:
    return Unreadable(source, exc.path, reason_of(exc), str(exc))


def read_net_view(roots: Roots, namespace: NetNamespace) -> NetView:
    """One namespace's devices, counters and UDP sockets as `roots` shows them.

    A file that is missing or unreadable is recorded in `unreadable`; a garbled one too (the
    doctor explains what it can from the rest, and says which file it could not read).
    """
    unreadable: list[Unreadable] = []
    counters: dict[tuple[str, str], int] = {}
    try:
        counters = read_netstat(roots)
    except SourceError as exc:
        unreadable.append(_unreadable("netstat", exc))
    udp: tuple[UdpSocket, ...] = ()
    try:
        udp = read_udp(roots)
    except SourceError as exc:
        unreadable.append(_unreadable("udp", exc))
    devices: tuple[NetDevice, ...] = ()
    try:
        found = read_netdevs(roots)
        devices, more = found.devices, found.unreadable
        unreadable.extend(more)
    except SourceError as exc:
        unreadable.append(_unreadable("netdev", exc))
    napis: tuple[NapiInstance, ...] = ()
    note = "a capture holds no netlink answers: NAPI ids and per-NAPI settings unknown"
    if roots.is_live:
        napis, note = _napis()
    return NetView(namespace, counters, udp, devices, tuple(unreadable), napis, note)


def _napis() -> tuple[tuple[NapiInstance, ...], str]:
    """This namespace's NAPI instances over netlink, or none and why (an old kernel is no error)."""
    from irqlab.sources.napi import read_napis  # pyroute2: only for a live network read

    try:
        return read_napis(), ""
    except SourceError as exc:
        return (), exc.message


def own_namespace(roots: Roots) -> int | None:
    """The inode of this process's network namespace (None when /proc/self cannot say)."""
    path = f"{roots.procfs}/self/ns/net"
    try:
        return parse_ns_link(os.readlink(path), path)
    except (OSError, ParseError):
        return None


def _host(inode: int | None, spaces: Iterable[NetNamespace]) -> NetNamespace:
    for ns in spaces:
        if ns.inode == inode:
            return NetNamespace(ns.inode, ns.pid, ns.nprocs, ns.comms, ns.names, ns.ns_path, host=True)
    return NetNamespace(inode or 0, None, 0, (), (), "/proc/self/ns/net", host=True)


def _live_view() -> NetView:
    """Run inside a namespace's child: read it as if it were the host."""
    own = own_namespace(Roots())
    return read_net_view(Roots(), NetNamespace(own or 0, None, 0, (), (), ""))


def read_net_state(roots: Roots | None = None, *, walk: bool = True, run_dir: Path = NETNS_RUN_DIR) -> NetState:
    """The host's network state and, with walk, every other namespace's (live or captured)."""
    roots = roots or Roots()
    if not roots.is_live:
        return _captured(roots, walk)
    try:
        listing = read_netns(roots, run_dir)
        spaces, denied, refused = listing.namespaces, listing.denied, listing.refused
    except SourceError:
        spaces, denied, refused = (), 0, ()
    host = _host(own_namespace(roots), spaces)
    views = [read_net_view(roots, host)]
    not_entered: list[tuple[NetNamespace, str]] = []
    if walk:
        others = [ns for ns in spaces if ns.inode != host.inode]
        # One forked child reads them all (a fork per namespace cost 15-25 ms each here).
        for ns, got in zip(others, call_in_each_netns(others, _live_view)):
            if isinstance(got, SourceError):
                not_entered.append((ns, str(got)))
                continue
            views.append(NetView(ns, got.counters, got.udp, got.devices, got.unreadable, got.napis, got.napi_note))
    return dataclasses.replace(_with_owners(roots, views, not_entered, denied), refused=refused, reader_root=os.geteuid() == 0)


def _with_owners(roots: Roots, views: list[NetView], not_entered: list[tuple[NetNamespace, str]], denied: int) -> NetState:
    # Socket inodes are unique in the whole system (sockfs), so one /proc/PID/fd walk in the
    # reader's PID namespace finds the owners of every namespace's sockets. Only sockets that
    # dropped something need an owner; the walk is skipped when none did.
    dropping = {s.inode for v in views for s in v.udp if s.drops}
    pids: dict[int, tuple[int, ...]] = {}
    comms: dict[int, str] = {}
    if dropping:
        owners = socket_owners(roots, dropping)
        pids, comms = dict(owners.pids_by_inode), dict(owners.comms)
    return NetState(tuple(views), tuple(not_entered), denied, pids, comms)


def _captured(roots: Roots, walk: bool) -> NetState:
    """A capture's network state: its own files, and netns/INODE/ for the other namespaces."""
    top = roots.procfs.parent
    host = NetNamespace(0, None, 0, (), (), "", host=True)
    meta = _namespace_meta(top / NAMESPACE_META)
    if meta is not None:
        host = NetNamespace(meta.inode, meta.pid, meta.nprocs, meta.comms, meta.names, meta.ns_path, host=True)
    views = [read_net_view(roots, host)]
    if walk:
        try:
            entries = sorted(list_dir(top / "netns"))
        except MissingSource:
            entries = []
        for entry in entries:
            sub = top / "netns" / entry
            ns = _namespace_meta(sub / NAMESPACE_META)
            if ns is None:
                ns = NetNamespace(int(entry) if entry.isdigit() else 0, None, 0, (), (entry,), "")
            views.append(read_net_view(Roots.capture(sub), ns))
    return _with_owners(roots, views, [], 0)


def namespace_meta(ns: NetNamespace) -> str:
    """namespace.json's text for a capture."""
    return json.dumps({"inode": ns.inode, "pid": ns.pid, "nprocs": ns.nprocs, "comms": list(ns.comms),
                       "names": list(ns.names)}, sort_keys=True) + "\n"


def _namespace_meta(path: Path) -> NetNamespace | None:
    try:
        data = json.loads(read_text(path))
        return NetNamespace(int(data["inode"]), data.get("pid"), int(data.get("nprocs", 0)),
                            tuple(map(str, data.get("comms", ()))), tuple(map(str, data.get("names", ()))), "")
    except MissingSource:
        return None
    except (SourceError, ValueError, KeyError, TypeError) as exc:
        raise ParseError(str(path), 1, "", f"not a namespace description: {exc}") from None
