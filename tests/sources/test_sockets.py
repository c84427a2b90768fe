"""/proc/net/udp{,6} rows and socket inodes -> processes (sources/sockets.py)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from irqlab.errors import ParseError
from irqlab.sources.fs import Roots
from irqlab.sources.sockets import parse_address, parse_socket_link, parse_udp, read_udp, socket_owners
from privilege import as_nobody

NET = Path(__file__).resolve().parent.parent / "fixtures" / "net"


def test_this_vm_capture_a_full_socket_that_dropped_and_a_connected_one() -> None:
    # Captured with a 1 KiB SO_RCVBUF socket on 127.0.0.1:40000 sent 50 datagrams it never read,
    # from a socket bound to 0.0.0.0:40001 and connect()ed to it.
    full, sender = parse_udp((NET / "udp-vm-6.18").read_text())
    assert (full.family, full.local_address, full.local_port) == (4, "127.0.0.1", 40000)
    assert (full.rx_queue_bytes, full.drops, full.inode, full.state) == (0x500, 49, 152841, 7)
    assert (sender.local_port, sender.remote_address, sender.remote_port, sender.state) == (40001, "127.0.0.1", 40000, 1)
    assert sender.drops == 0 and sender.uid == 0


def test_ipv6_words_are_each_little_endian_as_the_kernel_prints_them() -> None:
    rows = parse_udp((NET / "udp6-vm-6.18").read_text(), "udp6")
    assert [(r.family, r.local_address, r.local_port) for r in rows[:2]] == [(6, "::1", 40002), (6, "::", 40003)]
    # A v4-mapped bind shows in udp6 only (Python spells it "::ffff:7f00:1" before 3.13).
    assert ipaddress.IPv6Address(rows[2].local_address).ipv4_mapped == ipaddress.IPv4Address("127.0.0.1")
    assert [r.inode for r in rows] == [152843, 152844, 152845]


def test_a_big_endian_machine_prints_the_same_address_the_other_way() -> None:
    assert parse_address("7F000001:0035", "udp", 2, "big") == (4, "127.0.0.1", 53)
    assert parse_address("0100007F:0035", "udp", 2) == (4, "127.0.0.1", 53)


def test_a_kernel_without_the_drops_column_reads_drops_as_none() -> None:
    rows = parse_udp((NET / "udp-no-drops").read_text())
    assert [r.drops for r in rows] == [None, None]
    assert [r.rx_queue_bytes for r in rows] == [0x500, 0]


def test_malformed_address_gives_one_parse_error_with_file_line_and_token() -> None:
    path = str(NET / "udp-bad-address")
    with pytest.raises(ParseError) as err:
        parse_udp((NET / "udp-bad-address").read_text(), path)
    assert (err.value.path, err.value.line, err.value.token) == (path, 2, "0100007G")
    assert str(err.value).startswith(f"{path}: line 2: address is not hexadecimal")


def test_read_udp_joins_udp6_and_does_without_it(tmp_path: Path) -> None:
    net = tmp_path / "proc" / "net"
    net.mkdir(parents=True)
    shutil.copy(NET / "udp-vm-6.18", net / "udp")
    roots = Roots(tmp_path / "proc", tmp_path / "sys")
    assert [s.family for s in read_udp(roots)] == [4, 4]
    shutil.copy(NET / "udp6-vm-6.18", net / "udp6")
    assert [s.family for s in read_udp(roots)] == [4, 4, 6, 6, 6]


def test_fd_link_targets() -> None:
    assert parse_socket_link("socket:[152841]") == 152841
    assert parse_socket_link("pipe:[999]") is None
    assert parse_socket_link("/dev/null") is None
    assert parse_socket_link("socket:[12a]") is None


def test_owners_of_a_socket_shared_after_fork_and_only_the_inodes_asked_for() -> None:
    roots = Roots(NET / "proc-owners", NET / "sys-vm-6.18")
    everything = socket_owners(roots)
    assert everything.pids_by_inode == {152841: (100, 200), 152843: (200,), 777: (300,), 778: (301,)}
    assert everything.comms == {100: "dnsmasq", 200: "iperf3", 300: "nginx", 301: "nginx"}
    assert (everything.denied, everything.problems) == (0, ())
    asked = socket_owners(roots, [152841, 5])
    assert asked.pids_by_inode == {152841: (100, 200)} and set(asked.comms) == {100, 200}


def _owners_as_nobody(root: str) -> tuple[dict[int, tuple[int, ...]], int]:
    """socket_owners(root) run as an unprivileged user: in a child when we are root."""

    def owners() -> tuple[dict[int, tuple[int, ...]], int]:
        result = socket_owners(Roots(Path(root), Path(root)))
        return dict(result.pids_by_inode), result.denied

    return as_nobody(owners)


def test_another_users_fd_directory_is_counted_as_denied_not_raised() -> None:
    root = tempfile.mkdtemp(prefix="irqlab-t-owners-")
    try:
        shutil.copytree(NET / "proc-owners", root, symlinks=True, dirs_exist_ok=True)
        for d in [root, *(os.path.join(dp, n) for dp, dns, _ in os.walk(root) for n in dns)]:
            os.chmod(d, 0o755)
        os.chmod(os.path.join(root, "200", "fd"), 0o700 if os.geteuid() == 0 else 0o000)  # as for another user's process
        owners, denied = _owners_as_nobody(root)
        assert denied == 1
        assert owners == {152841: (100,), 777: (300,), 778: (301,)}
    finally:
        os.chmod(os.path.join(root, "200", "fd"), stat.S_IRWXU)
        shutil.rmtree(root)
