"""Collect the raw bytes of every kernel file irqlab reads, for `irqlab snapshot -o DIR`.

A capture is the kernel's own text, byte for byte, under the same relative paths, so that
`--procfs DIR/proc --sysfs DIR/sys` reads it back through the very same parsers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from irqlab.errors import MissingSource, SourceError
from irqlab.model.snapshot_dir import RawCapture
from irqlab.sources.fs import Roots, list_dir, read_bytes
from irqlab.sources.sysctl import KNOBS

# Counter files first: they are read back to back and stamped with one instant.
COUNTER_FILES: tuple[str, ...] = (
    "proc/interrupts",
    "proc/softirqs",
    "proc/stat",
    "proc/net/softnet_stat",
    "proc/uptime",
)
OTHER_FILES: tuple[str, ...] = (
    "proc/pressure/irq",
    "proc/sys/kernel/hostname",
    "proc/sys/kernel/osrelease",
    "proc/sys/kernel/arch",
    "proc/sys/kernel/version",  # uname -v: PREEMPT_RT, PREEMPT_DYNAMIC (sources/kernel.py)
    "sys/kernel/realtime",  # "1" on PREEMPT_RT (6.12+)
    "proc/irq/default_smp_affinity",
    "sys/devices/system/cpu/possible",
    "sys/devices/system/cpu/online",
    "sys/devices/system/cpu/present",
) + tuple("proc/sys/" + knob.replace(".", "/") for knob in KNOBS)
PROC_IRQ_FILES = ("smp_affinity", "smp_affinity_list", "effective_affinity", "effective_affinity_list", "node", "spurious", "affinity_hint")
SYS_IRQ_FILES = ("actions", "chip_name", "hwirq", "name", "type", "wakeup", "per_cpu_count")
TASK_FILES = ("comm", "stat", "schedstat", "status")


def _path(roots: Roots, rel: str) -> Path:
    top, _, rest = rel.partition("/")
    return roots.proc(rest) if top == "proc" else roots.sys(rest)


def _irq_dirs(roots: Roots) -> list[str]:
    try:
        return sorted((n for n in list_dir(roots.proc("irq")) if n.isdigit()), key=int)
    except SourceError:
        return []


NET_PROC_FILES = ("proc/net/snmp", "proc/net/snmp6", "proc/net/netstat", "proc/net/udp", "proc/net/udp6")
NETDEV_FILES = ("threaded", "napi_defer_hard_irqs", "gro_flush_timeout", "device/numa_node", "ifindex", "iflink")


def _grabber(roots: Roots, files: dict[str, bytes], skipped: list[str]) -> Callable[[str], None]:
    """grab(rel): read one file into files; a missing one is left out, an unreadable one skipped."""

    def grab(rel: str) -> None:
        try:
            files[rel] = read_bytes(_path(roots, rel))
        except MissingSource:
            pass
        except SourceError:
            skipped.append(rel)

    return grab


def _net_files(roots: Roots) -> tuple[dict[str, bytes], dict[str, str], list[str]]:
    """The files sources/netstate.py reads, as this process's network namespace shows them."""
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    skipped: list[str] = []

    grab = _grabber(roots, files, skipped)

    def listing(rel: str) -> list[str]:
        try:
            return sorted(list_dir(_path(roots, rel)))
        except SourceError:
            return []

    for rel in NET_PROC_FILES:
        grab(rel)
    for dev in listing("sys/class/net"):
        base = f"sys/class/net/{dev}"
        for name in listing(f"{base}/statistics"):
            grab(f"{base}/statistics/{name}")
        for queue in listing(f"{base}/queues"):
            for name in ("rps_cpus", "rps_flow_cnt", "xps_cpus"):
                grab(f"{base}/queues/{queue}/{name}")
        for name in NETDEV_FILES:
            grab(f"{base}/{name}")
        if "driver" in listing(f"{base}/device"):
            try:
                links[f"{base}/device/driver"] = "drivers/" + os.path.basename(os.readlink(_path(roots, f"{base}/device/driver")))
            except OSError:
                pass
    return files, links, skipped


def _namespace_files() -> tuple[dict[str, bytes], dict[str, str], list[str]]:
    """Run inside another namespace's child: its net files, as the live machine shows them."""
    return _net_files(Roots())


def _collect_net(roots: Roots, files: dict[str, bytes], links: dict[str, str], skipped: list[str], stamps: dict[str, int]) -> None:
    """Every namespace's net files (the host's in place, the others under netns/INODE/), the
    threads' schedstat, and the fd links of the sockets that dropped."""
    from irqlab.sources.netns import call_in_each_netns
    from irqlab.sources.netstate import NAMESPACE_META, namespace_meta, read_net_state
    from irqlab.sources.threads import read_threads

    more, more_links, more_skipped = _net_files(roots)
    files.update(more)
    links.update(more_links)
    skipped.extend(more_skipped)
    state = read_net_state(roots)
    files[NAMESPACE_META] = namespace_meta(state.views[0].namespace).encode()
    others = [view.namespace for view in state.views[1:]]
    # One forked child visits them all, as the doctor's reads do (sources/netstate.py).
    for ns, got in zip(others, call_in_each_netns(others, _namespace_files)):
        top = f"netns/{ns.inode}"
        files[f"{top}/{NAMESPACE_META}"] = namespace_meta(ns).encode()
        if isinstance(got, SourceError):
            skipped.append(top)
            continue
        got_files, got_links, got_skipped = got
        files.update({f"{top}/{rel}": data for rel, data in got_files.items()})
        links.update({f"{top}/{rel}": text for rel, text in got_links.items()})
        skipped.extend(f"{top}/{rel}" for rel in got_skipped)
    for inode, pids in state.socket_pids.items():
        for pid in pids:
            links[f"proc/{pid}/fd/socket-{inode}"] = f"socket:[{inode}]"
            files.setdefault(f"proc/{pid}/comm", (state.comms.get(pid, "?") + "\n").encode())
    t0 = time.monotonic_ns()
    for thread in read_threads(roots):
        for name in ("stat", "schedstat"):
            rel = f"proc/{thread.pid}/task/{thread.tid}/{name}"
            try:
                files[rel] = read_bytes(_path(roots, rel))
            except SourceError:
                continue  # exited since the scan
    stamps["threads"] = (t0 + time.monotonic_ns()) // 2


def collect(roots: Roots, net: bool = False) -> RawCapture:
    """Read every file of a capture; missing ones are skipped, the rest recorded as skipped.

    net: also every network namespace's devices, MIB counters and UDP sockets, every thread's
    schedstat and the owners of sockets that dropped (what the doctor's causal chain reads).
    """
    from irqlab.sources.tasks import read_tasks

    files: dict[str, bytes] = {}
    skipped: list[str] = []

    grab = _grabber(roots, files, skipped)

    t0 = time.monotonic_ns()
    for rel in COUNTER_FILES:
        grab(rel)
    t1 = time.monotonic_ns()
    wall = time.time()
    for rel in OTHER_FILES:
        grab(rel)
    for irq in _irq_dirs(roots):
        for name in PROC_IRQ_FILES:
            grab(f"proc/irq/{irq}/{name}")
        for name in SYS_IRQ_FILES:
            grab(f"sys/kernel/irq/{irq}/{name}")
    tasks, _ = read_tasks(roots)
    for task in tasks:
        for name in TASK_FILES:
            grab(f"proc/{task.pid}/{name}")
    links: dict[str, str] = {}
    stamps: dict[str, int] = {}
    if net:
        _collect_net(roots, files, links, skipped, stamps)
    if "proc/interrupts" not in files:
        raise MissingSource(str(roots.proc("interrupts")), "no /proc/interrupts to capture")
    return RawCapture(files, (t0 + t1) // 2, wall, tuple(skipped), links, stamps)
