"""Fork one measuring process per CPU, start them together, gather what they measured."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait

import numpy as np

from irqlab.errors import IrqlabError
from irqlab.probe.worker import WorkerConfig, run_worker

START_DELAY_NS = 50_000_000  # "go" to first deadline: every child is back asleep by then
MAX_SAMPLES = 50_000_000  # per CPU: 400 MB of int64 is where a run stops being sensible


class ProbeError(IrqlabError):
    """A measuring process could not be started or did not report."""


@dataclass(frozen=True, eq=False, slots=True)
class CpuRun:
    """What one CPU's process measured; latencies in ns, deadlines on CLOCK_MONOTONIC."""

    cpu: int
    pid: int
    policy: str  # obtained, which is "other" when the real-time policy was refused
    priority: int
    sched_error: str | None
    lock_error: str | None
    samples_ns: np.ndarray  # int64, one per wake-up
    missed: int  # deadlines skipped because a wake-up overran whole periods
    breaches: tuple[tuple[int, int], ...]  # (deadline_ns, woke_ns) over --explain-over
    cpu_time_ns: int  # the probe's own CPU cost during the measurement
    stopped: bool  # ended early by a signal


@dataclass(frozen=True, eq=False, slots=True)
class ProbeRun:
    """A whole run: per-CPU results and its window on CLOCK_MONOTONIC."""

    cpus: tuple[CpuRun, ...]
    interval_ns: int
    start_ns: int
    end_ns: int


def measure(cpus: Sequence[int], interval_ns: int, loops: int, policy: str = "fifo", priority: int = 95,
            explain_over_ns: int | None = None, on_progress: Callable[[dict[int, int]], None] | None = None,
            before_start: Callable[[dict[int, int]], None] | None = None) -> ProbeRun:
    """Measure timer wake-up latency on each CPU for `loops` periods of interval_ns.

    before_start(pids by CPU) runs after every child is ready and before the first deadline
    (the tracing session starts there, so it sees the whole run).
    """
    if loops > MAX_SAMPLES:
        raise ProbeError(f"{loops} samples per CPU is more than {MAX_SAMPLES}; shorten -D or raise -i")
    every = max(1, 250_000_000 // interval_ns) if on_progress else 0
    ctx = mp.get_context("fork")  # the child needs no re-import; forked before any thread starts
    procs, conns = {}, {}
    try:
        for cpu in cpus:
            parent, child = ctx.Pipe()
            cfg = WorkerConfig(cpu, interval_ns, loops, policy, priority, explain_over_ns, every)
            inherited = (parent, *conns.values())
            p = ctx.Process(target=run_worker, args=(cfg, child, os.getpid(), inherited), name=f"irqlab-probe/{cpu}",
                            daemon=True)
            p.start()
            child.close()
            procs[cpu], conns[cpu] = p, parent
        pids = _await_ready(conns)
        if before_start is not None:
            before_start(pids)
        start_ns = time.monotonic_ns() + START_DELAY_NS
        for conn in conns.values():
            conn.send(("go", start_ns))
        runs = _collect(conns, procs, on_progress)
        return ProbeRun(tuple(runs[c] for c in cpus), interval_ns, start_ns, time.monotonic_ns())
    finally:
        _reap(procs)


def _await_ready(conns: dict) -> dict[int, int]:
    pids = {}
    for cpu, conn in conns.items():
        msg = _recv(conn, cpu)
        if msg[0] == "error":
            raise ProbeError(msg[2])
        pids[cpu] = msg[2]
    return pids


def _recv(conn, cpu: int):
    try:
        return conn.recv()
    except EOFError:
        raise ProbeError(f"the measuring process of CPU {cpu} died without a word") from None


def _collect(conns: dict, procs: dict, on_progress) -> dict[int, CpuRun]:
    runs: dict[int, CpuRun] = {}
    maxima: dict[int, int] = {}
    by_conn = {conn: cpu for cpu, conn in conns.items()}
    pending = set(by_conn)
    while pending:
        try:
            ready = wait(list(pending))
        except KeyboardInterrupt:  # Ctrl-C: stop the children, keep what they measured
            for p in procs.values():
                if p.is_alive():
                    os.kill(p.pid, signal.SIGTERM)
            continue
        for conn in ready:
            cpu = by_conn[conn]
            msg = _recv(conn, cpu)
            if msg[0] == "progress":
                maxima[cpu] = msg[2]
                if on_progress is not None:
                    on_progress(dict(maxima))
            elif msg[0] == "error":
                raise ProbeError(msg[2])
            elif msg[0] == "result":
                samples = np.frombuffer(conn.recv_bytes(), dtype=np.int64).copy()
                runs[cpu] = _cpu_run(cpu, msg[2], samples)
                pending.discard(conn)
    return runs


def _cpu_run(cpu: int, meta: dict, samples: np.ndarray) -> CpuRun:
    return CpuRun(cpu=cpu, pid=meta["pid"], policy=meta["policy"], priority=meta["priority"],
                  sched_error=meta["sched_error"], lock_error=meta["lock_error"], samples_ns=samples,
                  missed=meta["missed"], breaches=tuple(meta["breaches"]), cpu_time_ns=meta["cpu_time_ns"],
                  stopped=meta["stopped"])


def _reap(procs: dict) -> None:
    for p in procs.values():
        p.join(timeout=2)
        if p.is_alive():
            p.kill()
            p.join()
