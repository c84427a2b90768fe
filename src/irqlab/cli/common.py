"""Options shared by the sampling commands: roots, `interval [count]`, -C, --json."""

from __future__ import annotations

import argparse
import sys

from irqlab.errors import UsageError


def add_roots(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sources")
    group.add_argument("--procfs", metavar="DIR", help="read /proc from DIR (a capture's DIR/proc); default /proc")
    group.add_argument("--sysfs", metavar="DIR", help="read /sys from DIR (a capture's DIR/sys); default /sys")


def add_interval(parser: argparse.ArgumentParser, default_interval: float, default_count: int | None) -> None:
    parser.add_argument(
        "interval",
        nargs="?",
        type=float,
        default=default_interval,
        help=f"seconds between reports (default {default_interval:g})",
    )
    parser.add_argument(
        "count",
        nargs="?",
        type=int,
        default=default_count,
        help="number of reports (default: " + ("forever" if default_count is None else str(default_count)) + ")",
    )


def add_cpus(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-C", "--cpus", metavar="LIST", help='only these CPUs, e.g. "0-3,8"')


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (documented in docs/json.md)")


def add_json_schema(parser: argparse.ArgumentParser) -> None:
    """--json-schema for the rates of diff and top (docs/json.md)."""
    # Literal choices, not imported from outputs/jsonout.py: that module loads numpy, and
    # building the parser (`--help`) must not.
    parser.add_argument(
        "--json-schema", type=int, choices=(1, 2), default=2, metavar="N",
        help="with --json: 2 (default) keys each row's per-CPU deltas and rates by CPU id and "
        "leaves zero deltas out; 1 lists every CPU of every row, zeros included (44 MB at 1152 CPUs)",
    )


def roots_of(args: argparse.Namespace):
    from irqlab.sources.fs import Roots

    return Roots.of(args.procfs, args.sysfs)


def cpus_of(args: argparse.Namespace) -> tuple[int, ...] | None:
    """The -C list, or None for all CPUs (checked against no online set: captures have their own)."""
    return online_cpu_list(args.cpus, "-C", ()) if getattr(args, "cpus", None) else None


def check_cpus_present(command: str, only: tuple[int, ...] | None, present: tuple[int, ...], where: str) -> None:
    """-C names CPUs that the reading has: none of them is a usage error, some missing a note.

    mpstat -P refuses a CPU the machine does not have; a table with no CPU columns would say
    nothing, and its totals would still be every CPU's.
    """
    if only is None or not present:
        return
    from irqlab.cpulist import format_cpulist

    missing = sorted(set(only) - set(present))
    if len(missing) == len(only):
        raise UsageError(f"-C {format_cpulist(only)}: not among {where} CPUs ({format_cpulist(present)})")
    if missing:
        print(f"irqlab {command}: note: -C: {format_cpulist(missing)} not among {where} CPUs "
              f"({format_cpulist(present)}); left out", file=sys.stderr)


def check_interval(interval: float, count: int | None) -> None:
    if not interval > 0 or interval > 86_400:
        raise UsageError(f"interval {interval:g}: must be more than 0 and at most 86400 seconds")
    if count is not None and count < 1:
        raise UsageError(f"count {count}: must be at least 1")


def online_cpu_list(text: str, option: str, online: tuple[int, ...]) -> tuple[int, ...]:
    """A CPU list given on the command line (`--cpus 2-3`): parsed, not empty, every CPU online
    (when online is known); UsageError naming the option otherwise."""
    from irqlab.cpulist import format_cpulist, parse_cpulist
    from irqlab.errors import ParseError, UsageError

    try:
        cpus = parse_cpulist(text, option)
    except ParseError as exc:
        raise UsageError(f"{option} {text!r}: not a CPU list like 0-3,8 ({exc.message})") from None
    if not cpus:
        raise UsageError(f"{option}: empty CPU list")
    offline = sorted(set(cpus) - set(online)) if online else []
    if offline:
        raise UsageError(f"{option}: CPU {format_cpulist(offline)} not online (online: {format_cpulist(online)})")
    return cpus


def keep_freed_memory() -> None:
    """Ask glibc to reuse freed memory instead of returning it to the kernel at once.

    Each capture's /proc/interrupts is read into a fresh buffer (13 MB at 1152 CPUs), and the
    rates make arrays of 9.7 MB: glibc maps each with mmap and unmaps it when freed, so every
    one faults its pages in anew (a few us each in a VM). With the thresholds raised freed
    memory is reused: at 1152 CPUs the two loads and the rates fault 8,200 pages, not 9,500.
    A process-wide choice, so made by the one-shot commands (diff, top --replay/--once), not
    in a library module.
    """
    import ctypes  # numpy imports it anyway

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD (malloc.h): no mmap below 256 MiB
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of freed heap
    except (OSError, AttributeError):
        pass  # not glibc: its own allocator's defaults


def add_realtime(parser: argparse.ArgumentParser) -> None:
    """--realtime PRIO, as `perf record -r`: read and report at SCHED_FIFO PRIO."""
    parser.add_argument(
        "--realtime", type=int, metavar="PRIO",
        help="run at SCHED_FIFO priority PRIO (1-99; root or CAP_SYS_NICE), so that a flood on "
        "every CPU does not starve the reader; only this process, nothing to restore",
    )


def note_starved(command: str, what: str, wall_s: float, cpu_s: float, window_s: float, args: argparse.Namespace) -> None:
    """One line on stderr when the run waited far longer for a CPU than it sampled or traced.

    Under a flood on every CPU, interrupt work and the flood's SCHED_OTHER threads leave this
    process little CPU: a 1 s trace window was seen to take 17-53 s to start, drain and report.
    The figures stay right (rates divide by the measured interval; trace events carry kernel
    timestamps, and what a buffer could not hold is counted as lost), but the user waits, and a
    late reader loses more. `what` names the window: "tracing", "sampling".
    """
    import shlex

    waited = wall_s - window_s
    if not (waited > 10 and cpu_s < 0.5 * waited):
        return
    said = (f"irqlab {command}: this run took {wall_s:.0f} s for {window_s:g} s of {what} and used "
            f"{cpu_s:.1f} s of CPU: it waited for a CPU the rest of the time")
    realtime = getattr(args, "realtime", None)
    if realtime is not None:
        print(f"{said}, even at SCHED_FIFO {realtime}: interrupt work or real-time tasks at a higher "
              "priority held the CPUs (`ps -eLo pid,cls,rtprio,pcpu,comm --sort=-rtprio | head` lists them)",
              file=sys.stderr)
        return
    again = shlex.join(["irqlab", *(getattr(args, "argv", ()) or (command,)), "--realtime", "1"])
    print(f"{said} (interrupt work and other tasks held them). Under a flood, run it at a real-time "
          f"priority so that it reads and reports promptly: {again}", file=sys.stderr)


def enter_realtime(args: argparse.Namespace, command: str) -> None:
    """Switch this process to SCHED_FIFO args.realtime before it starts any thread.

    Only the calling thread changes (sched_setscheduler(0)); threads started later inherit it,
    so this runs first, before a tracer's drain thread. The policy ends with the process.
    """
    import os

    prio = getattr(args, "realtime", None)
    if prio is None:
        return
    if not 1 <= prio <= 99:
        raise UsageError(f"--realtime {prio}: must be between 1 and 99")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
    except PermissionError:
        from irqlab.errors import IrqlabError

        raise IrqlabError(f"--realtime {prio}: not permitted (needs root or CAP_SYS_NICE; "
                         f"or run `chrt -f {prio} irqlab {command} ...` as a user who may)") from None
