"""/proc/net/snmp, snmp6 and netstat: every counter by (section, name) (sources/netstat.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from irqlab.errors import ParseError
from irqlab.sources.fs import Roots
from irqlab.sources.netstat import parse_pairs, parse_snmp6, read_netstat

NET = Path(__file__).resolve().parent.parent / "fixtures" / "net"


def pairs_simply(text: str) -> dict[tuple[str, str], int]:
    """The header/value pairs read the plainest way, to hold the parser to."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    out = {}
    for names, values in zip(lines[0::2], lines[1::2]):
        for name, value in zip(names[1:], values[1:]):
            out[(names[0].rstrip(":"), name)] = int(value)
    return out


@pytest.mark.parametrize("name", ["snmp-vm-6.18", "netstat-vm-6.18"])
def test_every_field_of_this_vm_capture_is_kept_by_name(name: str) -> None:
    text = (NET / name).read_text()
    counters = parse_pairs(text, name)
    assert counters == pairs_simply(text)
    # Sections the kernel prints that no list in the parser names are there too.
    assert {s for s, _ in counters} >= ({"Ip", "Icmp", "Tcp", "Udp", "UdpLite"} if name.startswith("snmp") else {"TcpExt", "IpExt"})


def test_tcp_maxconn_minus_one_is_a_number_not_an_error() -> None:
    counters = parse_pairs((NET / "snmp-vm-6.18").read_text())
    assert counters[("Tcp", "MaxConn")] == -1
    assert counters[("Udp", "RcvbufErrors")] == 0


def test_snmp6_one_name_value_per_line_splits_section_from_name() -> None:
    counters = parse_snmp6((NET / "snmp6-vm-6.18").read_text())
    assert ("Udp6", "RcvbufErrors") in counters
    assert ("UdpLite6", "RcvbufErrors") in counters  # "UdpLite6", not "Udp" + "Lite6..."
    assert ("Icmp6", "InMsgs") in counters and ("Ip6", "InReceives") in counters
    assert len(counters) == len([line for line in (NET / "snmp6-vm-6.18").read_text().splitlines() if line.strip()])


@pytest.mark.parametrize(
    ("name", "parser", "line", "token"),
    [
        ("snmp-bad-value", parse_pairs, 10, "1O"),
        ("snmp6-bad-value", parse_snmp6, 78, "0x1f"),
        ("netstat-short-values", parse_pairs, 4, "IpExt:"),
    ],
)
def test_malformed_file_gives_one_parse_error_with_file_line_and_token(name: str, parser, line: int, token: str) -> None:
    path = str(NET / name)
    with pytest.raises(ParseError) as err:
        parser((NET / name).read_text(), path)
    assert err.value.path == path and err.value.line == line
    assert err.value.token.startswith(token)
    assert str(err.value).startswith(f"{path}: line {line}: ")


def test_values_under_a_header_of_another_section_are_refused() -> None:
    with pytest.raises(ParseError, match="another section") as err:
        parse_pairs("Udp: InDatagrams NoPorts\nTcp: 1 2\n", "snmp")
    assert (err.value.line, err.value.token) == (2, "Tcp:")


def test_read_netstat_merges_the_three_files_and_snmp6_may_be_absent(tmp_path: Path) -> None:
    net = tmp_path / "proc" / "net"
    net.mkdir(parents=True)
    shutil.copy(NET / "snmp-vm-6.18", net / "snmp")
    shutil.copy(NET / "netstat-vm-6.18", net / "netstat")
    roots = Roots(tmp_path / "proc", tmp_path / "sys")
    without6 = read_netstat(roots)
    assert ("Udp6", "RcvbufErrors") not in without6 and ("TcpExt", "TCPBacklogDrop") in without6
    shutil.copy(NET / "snmp6-vm-6.18", net / "snmp6")
    with6 = read_netstat(roots)
    assert with6[("Udp6", "RcvbufErrors")] == 0
    assert set(with6) - set(without6) == set(parse_snmp6((NET / "snmp6-vm-6.18").read_text()))
