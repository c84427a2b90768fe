"""/proc/net/snmp, /proc/net/snmp6 and /proc/net/netstat: the stack's MIB counters by name.

/proc/net/snmp (net/ipv4/proc.c, snmp_seq_show()) and /proc/net/netstat (netstat_seq_show())
print each MIB as two lines, a header of names and a line of values, both opening with the
section ("Udp:", "TcpExt:"). Kernels add names at the end of a section over the years
(Udp's IgnoredMulti in 3.19, Ip's OutTransmits in 6.3), so nothing here
lists them: every name the header gives is kept, matched to its value by position.

Values are unsigned except Tcp's MaxConn, which snmp_seq_show_tcp_udp() prints with "%ld":
-1 means "no fixed limit" (RFC 2012 tcpMaxConn). Every value is read as a signed int.

/proc/net/snmp6 (net/ipv6/proc.c, snmp6_seq_show_item(): "%-32s\\t%lu") has one
"Udp6RcvbufErrors   value" line per counter instead; the section is the name's prefix up to
its "6" (Ip6, Icmp6, Udp6, UdpLite6). It is absent on a kernel without IPv6.
"""

from __future__ import annotations

import re

from irqlab.errors import ParseError
from irqlab.sources.fs import Roots, read_optional, read_text

Counters = dict[tuple[str, str], int]

_SECTION = re.compile(r"[A-Za-z][A-Za-z0-9]*:\Z")  # "Udp:", "TcpExt:", "MPTcpExt:"
_INT = re.compile(r"-?[0-9]+\Z")  # ASCII digits only: int() would take "+1", "1_0", "١"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_SNMP6_NAME = re.compile(r"([A-Za-z]+?6)([A-Za-z0-9_]+)\Z")  # "Udp6" + "RcvbufErrors"


def _int(token: str, path: str, lineno: int) -> int:
    if _INT.match(token) is None:
        raise ParseError(path, lineno, token, "counter is not a decimal integer")
    return int(token)


def _section(tokens: list[str], line: str, path: str, lineno: int) -> str:
    if not tokens or _SECTION.match(tokens[0]) is None:
        raise ParseError(path, lineno, line.strip(), "line does not open with a 'Section:' label")
    return tokens[0][:-1]


def parse_pairs(text: str, path: str = "/proc/net/snmp") -> Counters:
    """Parse header/value line pairs (/proc/net/snmp, /proc/net/netstat) into {(section, name): value}."""
    out: Counters = {}
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if len(lines) % 2:
        lineno, line = lines[-1]
        raise ParseError(path, lineno, line.strip(), "a header line without its line of values")
    for (hno, header), (vno, values) in zip(lines[0::2], lines[1::2]):
        names, numbers = header.split(), values.split()
        section = _section(names, header, path, hno)
        if _section(numbers, values, path, vno) != section:
            raise ParseError(path, vno, numbers[0], f"values under a '{section}:' header belong to another section")
        if len(names) != len(numbers):
            raise ParseError(path, vno, values.strip(), f"{len(numbers) - 1} values for {len(names) - 1} names")
        for name, number in zip(names[1:], numbers[1:]):
            if _NAME.match(name) is None:
                raise ParseError(path, hno, name, "not a counter name")
            if (section, name) in out:
                raise ParseError(path, hno, name, f"'{section}:{name}' appears twice")
            out[(section, name)] = _int(number, path, vno)
    return out


def parse_snmp6(text: str, path: str = "/proc/net/snmp6") -> Counters:
    """Parse /proc/net/snmp6 ("Udp6RcvbufErrors   0" per line) into {("Udp6", "RcvbufErrors"): 0}."""
    out: Counters = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2:
            raise ParseError(path, lineno, line.strip(), f"{len(tokens)} fields, expected 'name value'")
        m = _SNMP6_NAME.match(tokens[0])
        if m is None:
            raise ParseError(path, lineno, tokens[0], "not an IPv6 MIB name (Ip6..., Udp6...)")
        key = (m.group(1), m.group(2))
        if key in out:
            raise ParseError(path, lineno, tokens[0], "counter appears twice")
        out[key] = _int(tokens[1], path, lineno)
    return out


def read_netstat(roots: Roots) -> Counters:
    """Every counter of /proc/net/snmp, /proc/net/snmp6 (when IPv6 is built) and /proc/net/netstat."""
    snmp = roots.proc("net", "snmp")
    out = parse_pairs(read_text(snmp), str(snmp))
    snmp6 = roots.proc("net", "snmp6")
    text6 = read_optional(snmp6)
    if text6 is not None:
        out.update(parse_snmp6(text6, str(snmp6)))
    netstat = roots.proc("net", "netstat")
    out.update(parse_pairs(read_text(netstat), str(netstat)))
    return out
