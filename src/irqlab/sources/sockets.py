"""/proc/net/udp and /proc/net/udp6: one row per UDP socket, with its queue and its drops.

net/ipv4/udp.c, udp4_format_sock() (v6.18) prints
  "%5d: %08X:%04X %08X:%04X %02X %08X:%08X %02X:%08lX %08X %5u %8d %lu %d %pK %u"
  bucket, local addr:port, remote addr:port, state, tx_queue:rx_queue, tr:tm->when,
  retrnsmt, uid, timeout, inode, ref, pointer, drops
and net/ipv6/datagram.c, __ip6_dgram_sock_seq_show(), the same with 128-bit addresses.

An IPv4 address is a __be32 printed with %08X, so the hex reads as the printing machine's
u32 (127.0.0.1 is "0100007F" on x86); an IPv6 address is its four s6_addr32 words, each
printed the same way. Ports went through ntohs() first: plain numbers. rx_queue is the bytes
waiting in the receive queue (udp_rqueue_get()); drops is sk_drops, the datagrams the socket
refused (receive buffer full, memory, filter): the last column, Linux >= 2.6.36.

socket_owners() maps socket inodes to processes through the /proc/PID/fd/N links
("socket:[INODE]", fs/proc/fd.c shows d_path of sockfs: net/socket.c, sockfs_dname()).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from irqlab.errors import MissingSource, ParseError, PermissionDenied, SourceError
from irqlab.model.net import UdpSocket
from irqlab.sources.fs import Roots, list_dir, read_text

ByteOrder = Literal["little", "big"]
# bucket .. ref, pointer: every kernel prints these 12; drops makes 13.
MIN_COLUMNS = 12
DROPS_COLUMN = 12
_HEX = re.compile(r"[0-9A-Fa-f]+\Z")
_DEC = re.compile(r"[0-9]+\Z")
_SOCKET_LINK = re.compile(r"socket:\[([0-9]+)\]\Z")



# --- pure parsers ---------------------------------------------------------------------------


def _hex(token: str, path: str, lineno: int, what: str) -> int:
    if _HEX.match(token) is None:
        raise ParseError(path, lineno, token, f"{what} is not hexadecimal")
    return int(token, 16)


def _dec(token: str, path: str, lineno: int, what: str) -> int:
    if _DEC.match(token) is None:
        raise ParseError(path, lineno, token, f"{what} is not a decimal integer")
    return int(token)


def parse_address(token: str, path: str, lineno: int, byteorder: ByteOrder = "little") -> tuple[int, str, int]:
    """(family, address, port) of "0100007F:0035" or a 32-digit IPv6 "ADDR:PORT" as the kernel prints it."""
    addr, sep, port = token.partition(":")
    if not sep or len(addr) not in (8, 32) or len(port) != 4:
        raise ParseError(path, lineno, token, "not an 'ADDRESS:PORT' of 8 or 32 hex digits")
    _hex(addr, path, lineno, "address")
    # Each 32-bit word was printed as the printing machine's u32 of network-order bytes.
    raw = b"".join(int(addr[i : i + 8], 16).to_bytes(4, byteorder) for i in range(0, len(addr), 8))
    family = 4 if len(raw) == 4 else 6
    text = str(ipaddress.IPv4Address(raw) if family == 4 else ipaddress.IPv6Address(raw))
    return family, text, _hex(port, path, lineno, "port")


def _row(tokens: list[str], path: str, lineno: int, byteorder: ByteOrder) -> UdpSocket:
    family, local, lport = parse_address(tokens[1], path, lineno, byteorder)
    rfamily, remote, rport = parse_address(tokens[2], path, lineno, byteorder)
    if rfamily != family:
        raise ParseError(path, lineno, tokens[2], "remote address of another family than the local one")
    tx, sep, rx = tokens[4].partition(":")
    if not sep:
        raise ParseError(path, lineno, tokens[4], "not 'tx_queue:rx_queue'")
    return UdpSocket(
        family=family,
        local_address=local,
        local_port=lport,
        remote_address=remote,
        remote_port=rport,
        state=_hex(tokens[3], path, lineno, "state"),
        tx_queue_bytes=_hex(tx, path, lineno, "tx_queue"),
        rx_queue_bytes=_hex(rx, path, lineno, "rx_queue"),
        uid=_dec(tokens[7], path, lineno, "uid"),
        inode=_dec(tokens[9], path, lineno, "inode"),
        drops=_dec(tokens[DROPS_COLUMN], path, lineno, "drops") if len(tokens) > DROPS_COLUMN else None,
    )


def parse_udp(text: str, path: str = "/proc/net/udp", byteorder: ByteOrder = "little") -> tuple[UdpSocket, ...]:
    """Parse /proc/net/udp or /proc/net/udp6 (header line first).

    byteorder: of the machine that printed the file (x86 and arm64 are little-endian).
    """
    out: list[UdpSocket] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens or (lineno == 1 and tokens[0] == "sl"):
            continue
        if lineno == 1:
            raise ParseError(path, 1, line.strip(), "no 'sl local_address ...' header")
        if len(tokens) < MIN_COLUMNS or not tokens[0].endswith(":"):
            raise ParseError(path, lineno, line.strip(), f"{len(tokens)} columns, expected 'N: ...' with at least {MIN_COLUMNS}")
        out.append(_row(tokens, path, lineno, byteorder))
    return tuple(out)


def parse_socket_link(target: str) -> int | None:
    """The inode of an fd link target "socket:[12345]"; None for any other target."""
    m = _SOCKET_LINK.match(target)
    return int(m.group(1)) if m else None


# --- reads -----------------------------------------------------------------------------------


def read_udp(roots: Roots, byteorder: ByteOrder = "little") -> tuple[UdpSocket, ...]:
    """UDP sockets of /proc/net/udp and /proc/net/udp6 (absent without IPv6) under roots."""
    path = roots.proc("net", "udp")
    sockets = parse_udp(read_text(path), str(path), byteorder)
    path6 = roots.proc("net", "udp6")
    try:
        sockets += parse_udp(read_text(path6), str(path6), byteorder)
    except MissingSource:
        pass
    return sockets


@dataclass(frozen=True, slots=True)
class SocketOwners:
    """Which processes hold each socket inode, from /proc/PID/fd."""

    pids_by_inode: Mapping[int, tuple[int, ...]]
    comms: Mapping[int, str]  # pid -> comm, for the pids above
    denied: int = 0  # processes whose fd directory this user may not list (other users')
    problems: tuple[str, ...] = field(default=())  # other failures, one line each


def _fd_inodes(fd_dir: str, names: list[str]) -> set[int]:
    found: set[int] = set()
    for name in names:
        try:
            # readlink only: the target text is what is wanted, nothing is followed.
            inode = parse_socket_link(os.readlink(f"{fd_dir}/{name}"))
        except OSError:
            continue  # closed since the listing
        if inode is not None:
            found.add(inode)
    return found


def socket_owners(roots: Roots, inodes: Iterable[int] | None = None) -> SocketOwners:
    """Map socket inodes (all of them, or only `inodes`) to the PIDs holding them."""
    wanted = None if inodes is None else set(inodes)
    owners: dict[int, list[int]] = {}
    denied = 0
    problems: list[str] = []
    proc = str(roots.procfs)
    for pid in sorted(int(n) for n in list_dir(roots.procfs) if n.isascii() and n.isdigit()):
        fd_dir = f"{proc}/{pid}/fd"
        try:
            names = list_dir(fd_dir)
        except MissingSource:
            continue  # exited since the listing, or a capture without fd/
        except PermissionDenied:
            denied += 1  # another user's process (ptrace access mode: proc_fd_permission())
            continue
        except SourceError as exc:
            problems.append(str(exc))
            continue
        for inode in _fd_inodes(fd_dir, names):
            if wanted is None or inode in wanted:
                owners.setdefault(inode, []).append(pid)
    pids = {pid for held in owners.values() for pid in held}
    return SocketOwners(
        pids_by_inode={inode: tuple(held) for inode, held in owners.items()},
        comms={pid: comm for pid in sorted(pids) if (comm := _comm(proc, pid)) is not None},
        denied=denied,
        problems=tuple(problems),
    )


def _comm(proc: str, pid: int) -> str | None:
    try:
        return read_text(f"{proc}/{pid}/comm").rstrip("\n")
    except SourceError:
        return None
