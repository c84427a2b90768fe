"""`irqlab map`: IRQ <-> device <-> queue <-> CPU <-> NUMA node, RPS/XPS, and what can move."""

from __future__ import annotations

import argparse
import os
import sys

from irqlab.cli import common

PARSER_KW = dict(
    description="One row per IRQ: its actions, PCI device and driver, queue (rx/tx/combined "
    "and index), the device's NUMA node, smp_affinity and effective affinity with their CPUs' "
    "nodes, and whether the affinity can be changed (movable) and why not. Then each network "
    "device's rx queues (rps_cpus, rps_flow_cnt), tx queues (xps_cpus) and threaded NAPI; as "
    "root, every network namespace's devices too.",
    epilog="""\
examples:
  irqlab map                            this machine, grouped by device
  irqlab map --json | jq '.irqs[] | select(.movable == false)'
  irqlab map --procfs CAP/proc --sysfs CAP/sys   a capture (movable is unknown there)

--json is documented in docs/map.md. CPU lists print as ranges ("0-575,1152").
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    common.add_roots(p)
    common.add_json(p)


def gather(roots, walk: bool):
    """Read every source of the map and build it; returns (IrqMap, notes)."""
    from irqlab.analysis.irqmap import build_map
    from irqlab.sources.host import read_host
    from irqlab.sources.interrupts import read_interrupts
    from irqlab.sources.irqinfo import read_irqinfo
    from irqlab.sources.netstate import read_net_state
    from irqlab.sources.numa import read_numa_nodes
    from irqlab.sources.pcidevs import read_netdev_links, read_pci_functions
    from irqlab.sources.tasks import read_tasks

    infos, unreadable = read_irqinfo(roots, fields=("affinity", "effective_affinity", "node", "actions"))
    lines = read_interrupts(roots).lines
    state = read_net_state(roots, walk=walk)
    views = [(v.namespace.label if not v.namespace.host else "host", v.devices) for v in state.views]
    notes = [f"{u.path}: {u.message}" for u in unreadable]
    notes += [f"namespace {ns.label} not read: {why}" for ns, why in state.not_entered]
    if not walk and roots.is_live:
        notes.append("other network namespaces are read as root only")
    napis = {(label, d.name): v.napis_of(d) for (label, _), v in zip(views, state.views) for d in v.devices}
    if state.views and state.views[0].napi_note:
        notes.append(f"NAPI instances: {state.views[0].napi_note}")
    tasks, _ = read_tasks(roots)  # the napi/DEV-ID threads: CPU, policy, priority
    m = build_map(infos, lines, read_pci_functions(roots), read_netdev_links(roots), views,
                  read_numa_nodes(roots), read_host(roots).online_cpus, napis, tasks)
    return m, notes


def run(args: argparse.Namespace) -> int:
    from irqlab.outputs.map_json import render_map_json
    from irqlab.outputs.map_text import render_map_text

    roots = common.roots_of(args)
    m, notes = gather(roots, walk=roots.is_live and os.geteuid() == 0)
    sys.stdout.write(render_map_json(m, notes) if args.json else render_map_text(m, notes))
    return 0
