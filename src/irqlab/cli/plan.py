"""`irqlab plan`: a placement of NIC queue IRQs, RPS, XPS and napi threads, written as TOML to edit and apply."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from irqlab.cli import common

if TYPE_CHECKING:
    from irqlab.analysis.placement import Balancer
    from irqlab.sources.fs import Roots

PARSER_KW = dict(
    description="Compute a placement from the interrupt map: each NIC queue's IRQ on one of the "
    "device's NUMA-local housekeeping CPUs (online minus the CPUs meant to be quiet: isolcpus=, "
    "nohz_full=, rcu_nocbs=, outside irqaffinity=), each queue's rps_cpus and xps_cpus on the same "
    "CPU, every other movable IRQ and every threaded-NAPI kthread (napi/DEV-ID) off the quiet CPUs; "
    "managed and per-CPU IRQs left alone, with why (IRQ threads follow their IRQ). Writes a TOML plan to read, edit, and give to `irqlab apply`.",
    epilog="""\
examples:
  irqlab plan -o /root/irq.plan                 plan for this machine, into a file
  irqlab plan --cpus-housekeeping 0-1 --dev eth0    only eth0, keeping CPUs 2- quiet
  irqlab apply /root/irq.plan                   what applying it would write (a dry run)

The plan format is documented in docs/plan.md.
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    common.add_roots(p)
    p.add_argument("--cpus-housekeeping", metavar="LIST",
                   help='the CPUs that take interrupts, e.g. "0-1" (default: online minus the quiet CPUs)')
    p.add_argument("--dev", action="append", default=[], metavar="NAME",
                   help="plan only this network device (any namespace; repeatable); default: all but lo, "
                   "and every movable IRQ on a quiet CPU")
    p.add_argument("-o", "--output", metavar="FILE", help="write the plan here (default: standard output)")


def read_balancer(roots: Roots) -> tuple[Balancer | None, list[str]]:
    """A running irqbalance with what it bans (sources/irqbalance.py), for plan and isolation; and notes."""
    from irqlab.analysis.placement import Balancer
    from irqlab.errors import SourceError
    from irqlab.sources.irqbalance import read_irqbalance
    from irqlab.sources.procs import pids_named

    try:
        ib = read_irqbalance(roots)
    except SourceError as exc:  # a broken environment file: the daemon's bans are unknown
        pids = pids_named(roots, "irqbalance")
        return (Balancer(pids[0]) if pids else None), [f"irqbalance's bans unknown: {exc}"]
    if ib.pid is None:
        return None, list(ib.notes)
    cpus, why = ib.banned()
    irqs = ib.running.banned_irqs if ib.running is not None else ib.config.banned_irqs if ib.config is not None else ()
    return Balancer(ib.pid, cpus, why, irqs), list(ib.notes)


def run(args: argparse.Namespace) -> int:
    from irqlab.analysis.placement import plan_placement
    from irqlab.cli.map import gather
    from irqlab.cpulist import format_cpulist
    from irqlab.errors import MissingSource, UsageError
    from irqlab.outputs.plan_toml import render_plan_toml
    from irqlab.sources.cmdline import read_kernel_isolation
    from irqlab.sources.tasks import read_tasks
    from irqlab.sources.vectors import read_vector_matrix

    roots = common.roots_of(args)
    m, notes = gather(roots, walk=roots.is_live and os.geteuid() == 0)
    online = m.online or ()
    if not online:
        raise UsageError("the online CPUs are unknown (no /sys/devices/system/cpu/online under --sysfs)")
    managed_irq: tuple[int, ...] = ()
    try:
        kernel = read_kernel_isolation(roots)
        kernel_quiet, managed_irq = tuple(kernel.quiet_cpus(online)), kernel.managed_irq_cpus
    except MissingSource as exc:  # a capture without proc/cmdline
        kernel_quiet = ()
        notes.append(f"{exc.path}: missing; no CPU is counted as quiet but those --cpus-housekeeping leaves out")
    if args.cpus_housekeeping is not None:
        hk = common.online_cpu_list(args.cpus_housekeeping, "--cpus-housekeeping", online)
        clash = sorted(set(hk) & set(kernel_quiet))
        if clash:
            notes.append(f"--cpus-housekeeping includes CPU {format_cpulist(clash)}, which the kernel command line means to be quiet")
        quiet = tuple(c for c in online if c not in hk)
    else:
        hk, quiet = None, kernel_quiet
    known = {nd.device.name for nd in m.netdevs}
    for dev in args.dev:
        if dev not in known:
            raise UsageError(f"--dev {dev}: no such network device (known: {', '.join(sorted(known)) or 'none'})")
    balancer, balancer_notes = read_balancer(roots) if roots.is_live else (None, [])
    # debugfs is read where it is mounted and never mounted by irqlab: without it, estimated
    matrix = read_vector_matrix()[0] if roots.is_live else None
    notes += balancer_notes
    tasks, unreadable = read_tasks(roots)  # the napi/DEV-ID threads and the CPUs they may run on
    notes += [f"{u.path}: {u.message}" for u in unreadable]
    try:
        placement = plan_placement(m, quiet, housekeeping=hk, devices=tuple(args.dev), balancer=balancer,
                                   vectors=matrix, managed_irq_cpus=managed_irq, tasks=tasks)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    header = "\n".join(f"note: {n}" for n in notes)
    text = render_plan_toml(placement, header)
    for w in placement.warnings:
        sys.stderr.write(f"irqlab plan: warning: {w}\n")
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        sys.stderr.write(f"irqlab plan: {len(placement.writes)} write(s), {len(placement.left_alone)} left alone, "
                         f"in {args.output}; `irqlab apply {args.output}` shows them\n")
    else:
        sys.stdout.write(text)
    return 0
