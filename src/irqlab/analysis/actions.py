"""Actions: one write a finding recommends, for this machine, with the value it replaces and the undo.

Values only; nothing here writes. `command` and `undo` are shell lines a person can paste:
sysctls through `sysctl -w`, sysfs and procfs files through `echo VALUE > PATH`, a task's
policy or CPUs through `chrt`/`taskset`. A file of a device in another network namespace is
written from inside it: `ip netns exec NAME` for a named namespace (it mounts that
namespace's /sys itself), else `nsenter -t PID -n` with a private mount namespace and a fresh
sysfs mount, because /sys/class/net shows the devices of the namespace that mounted it
(fs/sysfs/mount.c, sysfs_get_tree(): the mount takes the mounter's network namespace).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from irqlab.cpulist import format_cpulist, format_cpumask
from irqlab.model.net import NetNamespace

SYSCTL_ROOT = "/proc/sys/"


@dataclass(frozen=True, slots=True)
class ActionNamespace:
    """Where a write must run: a network namespace other than the host's."""

    label: str  # "netns x", "netns of iperf3 (pid 812)"
    name: str | None = None  # its `ip netns` name, if any
    pid: int | None = None  # a process in it, for nsenter

    @property
    def enter(self) -> str:
        """The prefix that runs a command inside it."""
        if self.name:
            return f"ip netns exec {shlex.quote(self.name)}"
        if self.pid is not None:
            return f"nsenter -t {self.pid} -n"
        return ""


@dataclass(frozen=True, slots=True)
class Action:
    """One knob to change: where, from what, to what, why, and what it should do."""

    kind: str  # "rps", "irq-affinity", "sysctl", "threaded-napi", "task-affinity", "task-policy"
    path: str  # the file written ("/proc/irq/38/smp_affinity_list"); for a task: "pid 812"
    old: str
    new: str
    why: str
    effect: str
    namespace: ActionNamespace | None = None  # None: the host's (or a global knob)
    pid: int | None = None  # the task of a task-affinity / task-policy action

    @property
    def command(self) -> str:
        return self._line(self.new)

    @property
    def undo(self) -> str:
        return self._line(self.old)

    def _line(self, value: str) -> str:
        if self.kind == "task-affinity":
            return f"taskset -pc {value} {self.pid}"
        if self.kind == "task-policy":
            policy, _, prio = value.partition(" ")
            flag = {"fifo": "-f", "rr": "-r", "other": "-o", "batch": "-b", "idle": "-i"}.get(policy, "-o")
            return f"chrt {flag} -p {prio or 0} {self.pid}"
        if self.path.startswith(SYSCTL_ROOT) and self.namespace is None:
            key = self.path[len(SYSCTL_ROOT):].replace("/", ".")
            return f"sysctl -w {key}={value}"
        # A device name may hold shell characters (dev_valid_name() refuses only "/", ":" and
        # whitespace): the path is quoted like the value.
        write = f"echo {shlex.quote(value)} > {shlex.quote(self.path)}"
        ns = self.namespace
        if ns is None:
            return write
        if ns.name:
            return f"{ns.enter} sh -c {shlex.quote(write)}"
        if self.path.startswith("/sys/"):
            # A private mount namespace and a sysfs of the entered network namespace.
            inner = f"mount -t sysfs sysfs /sys && {write}"
            return f"{ns.enter} unshare -m sh -c {shlex.quote(inner)}"
        return f"{ns.enter} sh -c {shlex.quote(write)}"


# --- builders ---------------------------------------------------------------------------------


def namespace_of(ns: NetNamespace | None) -> ActionNamespace | None:
    """Where to write a file of a device in ns; None for the host's own namespace."""
    if ns is None or ns.host:
        return None
    return ActionNamespace(ns.label, ns.names[0] if ns.names else None, ns.pid)


def rps_action(ns: NetNamespace | None, device: str, queue: int, old: tuple[int, ...], new: tuple[int, ...], why: str, effect: str) -> Action:
    """rps_cpus of one rx queue (a hex mask, net/core/net-sysfs.c store_rps_map())."""
    width = max((*old, *new, 0)) + 1
    return Action(
        "rps",
        f"/sys/class/net/{device}/queues/rx-{queue}/rps_cpus",
        format_cpumask(old, width) if old else "0",
        format_cpumask(new, width) if new else "0",
        why,
        effect,
        namespace_of(ns),
    )


def irq_affinity_action(irq: str, old: tuple[int, ...], new: tuple[int, ...], why: str, effect: str) -> Action:
    return Action("irq-affinity", f"/proc/irq/{irq}/smp_affinity_list", format_cpulist(old), format_cpulist(new), why, effect)


def sysctl_action(key: str, old: int, new: int, why: str, effect: str) -> Action:
    """A net.core.* sysctl: global (init_net's table, net/core/sysctl_net_core.c), written on the host."""
    return Action("sysctl", SYSCTL_ROOT + key.replace(".", "/"), str(old), str(new), why, effect)


def threaded_napi_action(ns: NetNamespace | None, device: str, old: int, why: str, effect: str) -> Action:
    return Action("threaded-napi", f"/sys/class/net/{device}/threaded", str(old), "1", why, effect, namespace_of(ns))


def task_affinity_action(pid: int, old: tuple[int, ...], new: tuple[int, ...], why: str, effect: str) -> Action:
    return Action("task-affinity", f"pid {pid}", format_cpulist(old), format_cpulist(new), why, effect, pid=pid)
