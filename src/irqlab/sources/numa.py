"""/sys/devices/system/node/nodeN/cpulist: which CPUs each NUMA node holds.

drivers/base/node.c (v6.18) prints each node's cpulist with "%*pbl". A kernel without
CONFIG_NUMA has no /sys/devices/system/node: one node (0) is then implied, and the caller
is told so by an empty result.
"""

from __future__ import annotations

from irqlab.cpulist import parse_cpulist
from irqlab.errors import MissingSource
from irqlab.sources.fs import Roots, list_dir, read_text


def read_numa_nodes(roots: Roots) -> dict[int, tuple[int, ...]]:
    """Node id -> its CPUs (memory-only nodes give ()); {} without CONFIG_NUMA."""
    base = roots.sys("devices", "system", "node")
    try:
        names = list_dir(base)
    except MissingSource:
        return {}
    nodes: dict[int, tuple[int, ...]] = {}
    for name in names:
        digits = name.removeprefix("node")
        if name.startswith("node") and digits.isascii() and digits.isdigit():
            path = base / name / "cpulist"
            nodes[int(digits)] = parse_cpulist(read_text(path), str(path))
    return dict(sorted(nodes.items()))


def cpu_nodes(nodes: dict[int, tuple[int, ...]]) -> dict[int, int]:
    """CPU id -> its node, from read_numa_nodes()."""
    return {cpu: node for node, cpus in nodes.items() for cpu in cpus}
