"""Every thread's scheduler account, from /proc/PID/task/TID/{stat,schedstat}.

schedstat is "run_ns wait_ns timeslices" (fs/proc/base.c, proc_pid_schedstat(); the second
field is sched_info.run_delay: time spent runnable on a run queue, waiting for the CPU). The
difference of two readings says, per thread, how much of an interval it ran and how much it
waited; stat's field 39 (processor) says where it last ran. A kernel without
CONFIG_SCHED_INFO has no schedstat: then there are no threads to report.
"""

from __future__ import annotations

from irqlab.errors import MissingSource, ParseError, SourceError
from irqlab.model.net import ThreadSched
from irqlab.sources.fs import Roots, list_dir, read_text
from irqlab.sources.tasks import PF_KTHREAD, parse_pid_stat, policy_name


def parse_schedstat_triple(text: str, path: str = "schedstat") -> tuple[int, int, int]:
    """(run_ns, wait_ns, timeslices) of /proc/PID/schedstat."""
    tokens = text.split()
    if len(tokens) != 3 or not all(t.isascii() and t.isdigit() for t in tokens):
        raise ParseError(path, 1, text.strip(), "schedstat is not three decimal counters")
    return int(tokens[0]), int(tokens[1]), int(tokens[2])


def _numeric(names: list[str]) -> list[int]:
    return sorted(int(n) for n in names if n.isascii() and n.isdigit())


def read_threads(roots: Roots) -> tuple[ThreadSched, ...]:
    """Every thread under roots. Threads that exit mid-scan are skipped; a garbled file raises."""
    proc = str(roots.procfs)
    out: list[ThreadSched] = []
    for pid in _numeric(list_dir(proc)):
        try:
            tids = _numeric(list_dir(f"{proc}/{pid}/task"))
        except MissingSource:
            continue  # exited since the listing
        except SourceError:
            continue  # another user's process without root: /proc/PID/task is listable, but be safe
        for tid in tids:
            base = f"{proc}/{pid}/task/{tid}"
            try:
                stat = parse_pid_stat(read_text(f"{base}/stat"), f"{base}/stat")
                run_ns, wait_ns, _ = parse_schedstat_triple(read_text(f"{base}/schedstat"), f"{base}/schedstat")
            except MissingSource:
                continue  # exited since the listing, or no CONFIG_SCHED_INFO
            out.append(
                ThreadSched(
                    tid=tid,
                    pid=pid,
                    comm=str(stat["comm"]),
                    last_cpu=int(stat["processor"]),
                    run_ns=run_ns,
                    wait_ns=wait_ns,
                    policy=policy_name(int(stat["policy"])),
                    rt_priority=int(stat["rt_priority"]),
                    kthread=bool(int(stat["flags"]) & PF_KTHREAD),
                )
            )
    return tuple(out)
