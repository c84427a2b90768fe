"""The interrupt path's kernel threads: ksoftirqd/N, irq/N-name and napi/DEV-ID, from /proc/PID.

ksoftirqd/N runs softirqs that overflowed irq_exit() on CPU N (kernel/softirq.c,
softirq_threads: .thread_comm = "ksoftirqd/%u"). irq/N-name runs the threaded handler of
IRQ N (kernel/irq/manage.c, setup_irq_thread(): "irq/%d-%s", and "irq/%d-s-%s" for the
secondary thread of a forced-threaded IRQ). napi/DEV-ID polls NAPI instance ID of device DEV
while it runs threaded (net/core/dev.c, napi_kthread_create(): "napi/%s-%d"); its work is
thread time, not NET_RX softirq time. All are children of kthreadd (pid 2).

The scan reads /proc/PID/comm first, since it is one short read, and reads stat, status
and schedstat only for threads whose name matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from irqlab.cpulist import parse_cpulist, parse_cpumask
from irqlab.errors import MissingSource, ParseError, SourceError, reason_of
from irqlab.model.snapshot import POLICY_NAMES, TaskInfo
from irqlab.model.unreadable import Unreadable
from irqlab.sources.fs import Roots, list_dir, read_text

T = TypeVar("T")

# --- pure parsers ---------------------------------------------------------------------------

# /proc/PID/stat fields by their proc(5) numbers (fs/proc/array.c, do_task_stat()).
# rt_priority and policy are the last ones we need: Linux >= 2.5.19.
STAT_FIELDS: dict[str, int] = {
    "ppid": 4,
    "flags": 9,
    "utime": 14,
    "stime": 15,
    "priority": 18,
    "nice": 19,
    "processor": 39,
    "rt_priority": 40,
    "policy": 41,
}
_LAST_FIELD = max(STAT_FIELDS.values())

# include/linux/sched.h: "#define PF_KTHREAD 0x00200000 /* I am a kernel thread */".
PF_KTHREAD = 0x00200000


def _int(token: str, path: str, line: int, what: str) -> int:
    """A decimal integer as the kernel prints it (%d, %u, %lu); ASCII only."""
    digits = token.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ParseError(path, line, token, f"{what} is not a decimal integer")
    return int(token)


def parse_pid_stat(text: str, path: str = "stat") -> dict[str, int | str]:
    """Parse /proc/PID/stat into pid, comm, state and the STAT_FIELDS, by proc(5) number."""
    # The comm in parentheses is whatever the task named itself: it may hold spaces and
    # ")" (prctl(PR_SET_NAME, "a) b")), so the comm ends at the LAST ")" of the line.
    start, end = text.find("("), text.rfind(")")
    if start < 0 or end < start:
        raise ParseError(path, 1, text[:40], "no '(comm)' in stat")
    pid = text[:start].strip()
    rest = text[end + 1 :].split()  # rest[0] is field 3, so field n is rest[n - 3]
    if len(rest) < _LAST_FIELD - 2:
        raise ParseError(path, 1, text[-40:], f"stat has {len(rest) + 2} fields, need {_LAST_FIELD}")
    fields: dict[str, int | str] = {"pid": _int(pid, path, 1, "pid"), "comm": text[start + 1 : end]}
    fields["state"] = rest[0]
    for name, number in STAT_FIELDS.items():
        fields[name] = _int(rest[number - 3], path, 1, name)
    return fields


def parse_schedstat(text: str, path: str = "schedstat") -> int:
    """Run time in ns: the first of /proc/PID/schedstat's "run_ns wait_ns timeslices"."""
    # fs/proc/base.c, proc_pid_schedstat(); it prints "0 0 0" when sched_info is off
    # (CONFIG_SCHED_INFO without schedstats or delayacct), so 0 can mean "not counted".
    tokens = text.split()
    if not tokens:
        raise ParseError(path, 1, "", "empty schedstat")
    value = _int(tokens[0], path, 1, "run time")
    if value < 0:
        raise ParseError(path, 1, tokens[0], "run time is negative")
    return value


def parse_status_allowed(text: str, path: str = "status") -> tuple[int, ...] | None:
    """CPUs from /proc/PID/status Cpus_allowed_list (else the Cpus_allowed mask); None if neither."""
    mask: tuple[str, int] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key == "Cpus_allowed_list":  # Linux >= 2.6.26
            return parse_cpulist(value, path, lineno)
        if key == "Cpus_allowed":
            mask = (value, lineno)
    return parse_cpumask(mask[0], path, mask[1]) if mask else None


# --- which threads ---------------------------------------------------------------------------

_KSOFTIRQD = re.compile(r"ksoftirqd/([0-9]+)")
# PREEMPT_RT (Linux >= 6.12, kernel/softirq.c timer_threads: .thread_comm = "ktimers/%u"):
# TIMER and HRTIMER softirqs raised from hard interrupt context run in ktimers/N, SCHED_FIFO 1.
_KTIMERS = re.compile(r"ktimers/([0-9]+)")
# The number must be followed by "-": a name cut right after the digits could be cut inside
# them. The rest is kept as is. Older kernels cut every comm at 15 characters (TASK_COMM_LEN
# 16), so "irq/45-eth0-TxRx-0" reads "irq/45-eth0-TxR"; newer ones show a kernel thread's
# full name, up to 63 characters (fs/proc/array.c, proc_task_name() -> get_kthread_comm(),
# absent from 5.15 builds and present in 5.19).
_IRQ_THREAD = re.compile(r"irq/([0-9]+)-")
_NAPI_THREAD = re.compile(r"napi/.")  # threaded NAPI: "napi/eth0-8193"; the id may be cut with the comm


def classify(comm: str) -> tuple[str, int | None, int | None] | None:
    """(kind, cpu, irq) for a ksoftirqd/N, ktimers/N (PREEMPT_RT) or irq/N-name comm; None for any other thread."""
    if (m := _KSOFTIRQD.fullmatch(comm)) is not None:
        return "ksoftirqd", int(m.group(1)), None
    if (m := _KTIMERS.fullmatch(comm)) is not None:
        return "ktimers", int(m.group(1)), None
    if (m := _IRQ_THREAD.match(comm)) is not None:
        return "irq", None, int(m.group(1))
    if _NAPI_THREAD.match(comm) is not None:
        return "napi", None, None
    return None


def policy_name(number: int) -> str:
    """The name of a scheduling policy number; "policyN" for one POLICY_NAMES lacks."""
    return POLICY_NAMES.get(number, f"policy{number}")


# --- the scan --------------------------------------------------------------------------------


class _Problems:
    """One Unreadable per (file, reason) for the whole scan, however many tasks hit it."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], Unreadable] = {}

    def add(self, name: str, exc: SourceError) -> None:
        reason = reason_of(exc)
        self.seen.setdefault((name, reason), Unreadable("tasks", exc.path, reason, f"{name}: {exc.message}"))


def _pids(roots: Roots, prune: bool) -> list[int]:
    """PIDs worth a comm read: kthreadd's children when pruning can be trusted, else all."""
    if prune:
        # /proc/2/task/2/children (CONFIG_PROC_CHILDREN): every kernel thread is forked by
        # kthreadd, so this one read skips all user processes.
        try:
            text = read_text(roots.proc("2", "task", "2", "children"))
            return [int(t) for t in text.split() if t.isascii() and t.isdigit()]
        except SourceError:
            pass  # no CONFIG_PROC_CHILDREN, or not allowed: scan everything
    return sorted(int(n) for n in list_dir(roots.procfs) if n.isascii() and n.isdigit())


def _optional(proc: str, pid: int, name: str, parser: Callable[[str, str], T], problems: _Problems) -> T | None:
    """A parsed per-PID file; None when missing (vanished, or not built in) or broken."""
    path = f"{proc}/{pid}/{name}"
    try:
        return parser(read_text(path), path)
    except MissingSource:
        return None
    except SourceError as exc:
        problems.add(name, exc)
        return None


def _task(proc: str, pid: int, comm: str, problems: _Problems) -> TaskInfo | None:
    """TaskInfo of one matching thread; None if it vanished or is not a kernel thread."""
    kind, cpu, irq = classify(comm) or (None, None, None)
    if kind is None:
        return None
    stat = _optional(proc, pid, "stat", parse_pid_stat, problems)
    # A user process may call itself "ksoftirqd/0" (prctl PR_SET_NAME); only a thread with
    # PF_KTHREAD is the kernel's.
    if stat is None or not int(stat["flags"]) & PF_KTHREAD:
        return None
    status_path = f"{proc}/{pid}/status"
    try:
        allowed = parse_status_allowed(read_text(status_path), status_path)
    except MissingSource:
        return None  # status always exists while the task does: it exited mid-scan
    except SourceError as exc:
        problems.add("status", exc)
        allowed = None
    return TaskInfo(
        pid=pid,
        comm=comm,
        kind=kind,
        cpu=cpu,
        irq=irq,
        utime_ticks=int(stat["utime"]),
        stime_ticks=int(stat["stime"]),
        # schedstat is missing without CONFIG_SCHED_INFO (proc(5): since Linux 2.6.9).
        run_ns=_optional(proc, pid, "schedstat", parse_schedstat, problems),
        policy=policy_name(int(stat["policy"])),
        rt_priority=int(stat["rt_priority"]),
        nice=int(stat["nice"]),
        allowed_cpus=allowed,
        last_cpu=int(stat["processor"]),
    )


def _sort_key(task: TaskInfo) -> tuple[int, int, int]:
    if task.kind == "ksoftirqd":
        return (0, task.cpu or 0, task.pid)
    return (1, task.irq or 0, task.pid) if task.kind == "irq" else (2, 0, task.pid)


def read_tasks(roots: Roots, prune: bool | None = None) -> tuple[tuple[TaskInfo, ...], list[Unreadable]]:
    """Find the ksoftirqd/N, irq/N-name and napi/DEV-ID kernel threads under roots, ksoftirqd first.

    prune: only look at kthreadd's children, when the kernel offers /proc/2/task/2/children.
    The default prunes a live root only: a capture holds some PID directories and need not
    hold a children file that matches them. Threads that exit mid-scan are skipped silently.
    """
    problems = _Problems()
    try:
        pids = _pids(roots, roots.is_live if prune is None else prune)
    except SourceError as exc:
        return (), [Unreadable("tasks", exc.path, reason_of(exc), str(exc))]
    # Paths as plain strings: on a machine with 10,000 kernel threads, building a Path per
    # file costs as much as the read of comm itself.
    proc = str(roots.procfs)
    tasks = []
    for pid in pids:
        try:
            comm = read_text(f"{proc}/{pid}/comm")
        except MissingSource:
            continue  # exited since the listing, or a capture without this PID
        except SourceError as exc:
            problems.add("comm", exc)
            continue
        task = _task(proc, pid, comm.rstrip("\n"), problems)
        if task is not None:
            tasks.append(task)
    return tuple(sorted(tasks, key=_sort_key)), list(problems.seen.values())


def ksoftirqd_of(tasks: Iterable[TaskInfo]) -> tuple[int, ...]:
    """The pids of the ksoftirqd/N threads among tasks, in their order."""
    return tuple(t.pid for t in tasks if t.kind == "ksoftirqd")


def ksoftirqd_pids(roots: Roots) -> tuple[int, ...]:
    """The ksoftirqd/N pids under roots (a trace window in which one never switched in still
    counts its softirq runs as ksoftirqd's); () when the scan finds none or cannot list PIDs."""
    tasks, _ = read_tasks(roots)
    return ksoftirqd_of(tasks)
