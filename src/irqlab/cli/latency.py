"""`irqlab latency`: timer wake-up latency per CPU, budgets with PASS/FAIL, and breach causes."""

from __future__ import annotations

import argparse
import os
import sys
import time

from irqlab.cli import common

PARSER_KW = dict(
    description="Measure timer wake-up latency like cyclictest: one pinned SCHED_FIFO process per "
    "CPU sleeps to absolute deadlines (clock_nanosleep TIMER_ABSTIME) and records how late it "
    "woke. Like cyclictest, it holds /dev/cpu_dma_latency at 0 us while measuring (root; "
    "--no-dma-latency not to). Prints min/avg/percentiles/max per CPU, histograms, PASS/FAIL per latency budget "
    "class, and with --explain what ran on the CPU during each late wake-up (root: tracefs).",
    epilog="""\
examples:
  irqlab latency -D 10                       10 s on every CPU, 1000 us interval, FIFO 95
  irqlab latency -a 1 -i 200 -D 30 --hist log2
                                             CPU 1 only, 200 us period, log2 histogram
  irqlab latency --budget examples/budgets.toml
                                             PASS/FAIL per class (exit 2 on any FAIL)
  irqlab latency -D 10 --explain --explain-over 100
                                             what delayed every wake-up later than 100 us
  irqlab latency -D 10 --explain --realtime 1
                                             the same under a flood on every CPU: irqlab's trace
                                             reader at SCHED_FIFO 1 (below the probe) is not starved
  irqlab latency --irq-threads               irq/N threads ranked against the probe

exit codes: 0 ok, 2 a budget class FAILed, 3 error, 64 usage
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)

SUFFIX = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# What --kernel traces (analysis/wakeup.py): the probe's hrtimer expiry, its waking, its switch-in.
WAKEUP_EVENTS = ("timer:hrtimer_expire_entry", "sched:sched_waking", "sched:sched_switch")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interval", type=int, default=1000, metavar="US", help="wake-up period in us (default 1000)")
    p.add_argument("-D", "--duration", metavar="TIME", help="run time: 30, 30s, 5m, 1h (default 5 s unless -l)")
    p.add_argument("-l", "--loops", type=int, metavar="N", help="wake-ups per CPU (with -D: whichever ends first)")
    p.add_argument("-a", "-C", "--cpus", dest="cpus", metavar="LIST", help='CPUs to measure, e.g. "0-3,8" (default: all allowed)')
    p.add_argument("-p", "--priority", type=int, default=95, metavar="PRIO", help="real-time priority 1..99 (default 95)")
    p.add_argument("--policy", choices=("fifo", "rr", "other"), default="fifo", help="scheduling policy (default fifo)")
    p.add_argument("--hist", choices=("linear", "log2"), help="also print the histogram per CPU")
    p.add_argument("--hist-limit", type=int, default=1000, metavar="US", help="end of the 1 us linear buckets; above is the overflow row (default 1000)")
    p.add_argument("--budget", metavar="FILE", help="TOML latency budget: measure each class, print PASS/FAIL")
    p.add_argument("--explain", action="store_true", help="trace the measured CPUs and attribute each late wake-up (root)")
    p.add_argument("--explain-over", type=float, metavar="US", help="wake-ups later than this are explained (default 50, or a class's tightest limit)")
    p.add_argument("--explain-top", type=int, default=3, metavar="N", help="print the N worst breaches in full (default 3)")
    p.add_argument("--buffer-kb", type=int, default=8192, metavar="KB", help="trace buffer per CPU for --explain (default 8192)")
    common.add_realtime(p)
    p.add_argument("--kernel", action="store_true",
                   help="also time each wake-up from kernel events (root): timer IRQ latency (deadline -> "
                   "hrtimer expiry), thread latency (expiry -> switch-in) and their sum, beside the probe's own figure; "
                   "in-kernel BPF histograms, or the tracefs trace window when BPF is unavailable or with --explain")
    p.add_argument("--kernel-backend", choices=("auto", "bpf", "tracefs"), default="auto",
                   help="where --kernel times wake-ups (default auto: bpf when permitted, else tracefs with the reason)")
    p.add_argument("--irq-threads", action="store_true", help="list irq/N-name threads against the probe's priority (no measurement unless -D/-l/--budget)")
    p.add_argument("--no-dma-latency", dest="dma_latency", action="store_false", default=None,
                   help="do not hold /dev/cpu_dma_latency at 0 us while measuring (by default it is held, as "
                   "cyclictest does; without root it cannot be and the header says so)")
    p.add_argument("--dma-latency", dest="dma_latency", action="store_true",
                   help="the default, kept for old scripts; given explicitly, failing to hold it is an error")
    common.add_json(p)


def parse_duration(text: str) -> float:
    """'30', '30s', '5m', '1h' -> seconds."""
    from irqlab.errors import UsageError

    t = text.strip().lower()
    unit = t[-1] if t and t[-1] in SUFFIX else ""
    try:
        value = float(t[: len(t) - len(unit)]) * SUFFIX[unit]
    except ValueError:
        raise UsageError(f"-D {text!r}: not a duration like 30, 30s, 5m or 1h") from None
    if not 0 < value <= 86_400:
        raise UsageError(f"-D {text!r}: must be more than 0 and at most 24 h")
    return value


def _check(args: argparse.Namespace) -> None:
    from irqlab.errors import UsageError

    if not 50 <= args.interval <= 10_000_000:
        raise UsageError(f"-i {args.interval}: the interval must be 50..10000000 us")
    if args.loops is not None and args.loops < 1:
        raise UsageError(f"-l {args.loops}: must be at least 1")
    if not 1 <= args.priority <= 99:
        raise UsageError(f"-p {args.priority}: real-time priorities are 1..99")
    if not 1 <= args.hist_limit <= 1_000_000:
        raise UsageError(f"--hist-limit {args.hist_limit}: must be 1..1000000 us")
    if args.explain_over is not None and not 0 < args.explain_over <= 10_000_000:
        raise UsageError(f"--explain-over {args.explain_over:g}: must be more than 0 us")
    if args.kernel_backend == "bpf" and args.explain:
        raise UsageError("--kernel-backend bpf: not with --explain (which times wake-ups from its trace window)")
    if args.kernel and args.budget:
        raise UsageError("--kernel: not with --budget (budgets judge the probe's own figures)")
    if not 64 <= args.buffer_kb <= 1 << 20:
        raise UsageError(f"--buffer-kb {args.buffer_kb}: must be 64..1048576")
    _check_realtime(args, args.priority, "-p")


def _check_realtime(args: argparse.Namespace, priority: int, where: str) -> None:
    """--realtime must stay below the probe's priority: the reader would delay the wake-ups it measures."""
    from irqlab.errors import UsageError

    rt = getattr(args, "realtime", None)
    if rt is not None and args.policy != "other" and rt >= priority:
        raise UsageError(f"--realtime {rt}: must be below the probe's priority ({where} {priority}), or irqlab's "
                         "own reader would delay the wake-ups it measures")


def selected_cpus(args: argparse.Namespace) -> tuple[int, ...]:
    from irqlab.errors import UsageError

    allowed = sorted(os.sched_getaffinity(0))
    cpus = common.cpus_of(args) or tuple(allowed)
    outside = [c for c in cpus if c not in allowed]
    if outside:
        raise UsageError(f"-a: CPU {outside[0]} is not online or not allowed for this process (allowed: {allowed})")
    return cpus


def loops_of(interval_ns: int, duration_s: float | None, loops: int | None) -> int:
    by_time = int(duration_s * 1e9) // interval_ns if duration_s is not None else None
    if by_time is None and loops is None:
        by_time = 5 * 1_000_000_000 // interval_ns
    return max(1, min(v for v in (by_time, loops) if v is not None))


class Progress:
    """The live line on stderr: the current max per CPU, at most 4 times a second."""

    def __init__(self, total_s: float) -> None:
        self.total_s, self.t0, self.last, self.shown = total_s, time.monotonic(), 0.0, False

    def __call__(self, maxima: dict[int, int]) -> None:
        now = time.monotonic()
        if now - self.last < 0.25:
            return
        self.last, self.shown = now, True
        cells = "  ".join(f"CPU{c} max {v / 1000:.1f} us" for c, v in sorted(maxima.items()))
        sys.stderr.write(f"\r\x1b[K{now - self.t0:5.1f}/{self.total_s:.0f} s  {cells}")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _note_once(runs, policy: str) -> None:
    """Say once what makes these numbers weaker than a root SCHED_FIFO run."""
    sched = next((r.sched_error for r in runs.cpus if r.sched_error), None)
    if sched:
        print(f"irqlab latency: real-time policy refused ({sched}); ran SCHED_OTHER, so the numbers "
              "include scheduler noise (run as root for SCHED_FIFO)", file=sys.stderr)
    elif policy == "other":
        print("irqlab latency: --policy other: the numbers include scheduler noise", file=sys.stderr)
    lock = next((r.lock_error for r in runs.cpus if r.lock_error), None)
    if lock:
        print(f"irqlab latency: memory not locked (mlockall: {lock}); page faults may show as latency", file=sys.stderr)


def kernel_backend(args) -> tuple[str | None, str | None]:
    """(where --kernel times wake-ups, why not BPF when auto fell back); (None, None) without --kernel."""
    from irqlab.bpf.backend import check_permitted
    from irqlab.bpf.syscall import BpfUnavailable

    if not args.kernel:
        return None, None
    if args.kernel_backend == "tracefs":
        return "tracefs", None
    if args.explain:  # the window is traced anyway: its timestamps are the breach breakdown's too
        return "tracefs", "kernel timing from the trace window (--explain traces it anyway)"
    reason = check_permitted() or _hist_too_big(args)
    if reason is None:
        return "bpf", None
    if args.kernel_backend == "bpf":
        raise BpfUnavailable(f"--kernel-backend bpf: {reason}")
    return "tracefs", f"BPF not used ({reason}); kernel timing from the tracefs trace window"


def _hist_too_big(args) -> str | None:
    from irqlab.bpf.backend import MAX_VALUE_BYTES
    from irqlab.bpf.wakeup_hist import series_layout

    lay = series_layout(_kernel_layout(args))
    return f"--hist-limit {args.hist_limit} us is more buckets than a map element holds" if lay.words * 8 > MAX_VALUE_BYTES else None


def _kernel_layout(args):
    from irqlab.model.trace_result import HistogramLayout

    return HistogramLayout(1_000, args.hist_limit * 1000)


def measure_once(args, cpus, interval_ns: int, loops: int, priority: int, explain_over_ns: int | None):
    """One probe run (with tracing around it for --explain): (ProbeRun, EventBatch|None, own tids).

    With --kernel on the BPF backend, the programs are loaded before the probe starts and
    their maps read after it ends into args.kernel_counts (a bpf.wakeup_hist.WakeupCounts).
    """
    from contextlib import ExitStack

    from irqlab.probe.runner import measure

    progress = Progress(loops * interval_ns / 1e9) if sys.stderr.isatty() and not args.json else None
    backend = getattr(args, "kernel_source", None)
    with ExitStack() as stack:
        args.dma_state = hold_dma(args, stack)
        tracer = stack.enter_context(_tracer(args, cpus)) if args.explain or backend == "tracefs" else None
        hist = None
        if backend == "bpf":
            from irqlab.bpf.wakeup_hist import WakeupHist

            hist = stack.enter_context(WakeupHist(_kernel_layout(args)))
        own: dict[int, str] = {}

        def start_tracing(pids: dict[int, int]) -> None:
            if hist is not None:
                hist.add_probes(pids)
            if tracer is not None:
                tracer.start()
                own.update(own_threads())  # the reader thread exists from here on

        try:
            run = measure(cpus, interval_ns, loops, args.policy, priority, explain_over_ns, on_progress=progress,
                          before_start=start_tracing if tracer or hist else None)
        finally:
            if progress:
                progress.clear()
        if hist is not None:
            from irqlab.bpf.wakeup_hist import settle

            settle()
            args.kernel_counts = hist.read()
        if tracer is None:
            return run, None, {}
        tracer.stop()
        return run, tracer.events(), own


def hold_dma(args, stack) -> str:
    """Hold /dev/cpu_dma_latency at 0 for the run unless --no-dma-latency; what happened, for the header.

    The default (no flag) falls back to a note when the file cannot be opened, so unprivileged
    runs keep working; an explicit --dma-latency that fails is an error, as it always was.
    """
    from irqlab.errors import IrqlabError
    from irqlab.probe import dma

    if args.dma_latency is False:
        return "not held (--no-dma-latency)"
    try:
        stack.enter_context(dma.hold_zero())
    except IrqlabError as exc:
        if args.dma_latency:
            raise
        reason = str(exc).split(": ", 1)[-1]
        if not getattr(args, "dma_noted", False):
            print(f"irqlab latency: /dev/cpu_dma_latency not held at 0 ({reason}); deep C-state exits may show "
                  "as latency", file=sys.stderr)
            args.dma_noted = True
        return f"not held ({reason})"
    return "held at 0 us"


def _tracer(args, cpus):
    """The --explain tracer: raw events (tracefs) of what ran on the measured CPUs."""
    from irqlab.tracer.lifecycle import LATENCY_EVENTS, EventSet, open_tracer

    events = LATENCY_EVENTS if args.explain else EventSet(())
    if getattr(args, "kernel_source", None) == "tracefs":  # the probe's own chain: expiry -> waking -> switch-in
        events = EventSet(tuple(dict.fromkeys(events.required + WAKEUP_EVENTS)), events.optional)
    # A drain every 0.5 s, not the default 0.1 s: reading trace_pipe_raw runs on the measured
    # CPUs too, and its time shows up in the breakdown under irqlab's own name (own_threads()).
    return open_tracer("tracefs", events=events, buffer_kb=args.buffer_kb, cpus=cpus, poll_s=DRAIN_S)


def own_threads() -> dict[int, str]:
    """This process's threads, named as irqlab's, so a breach they caused says so."""
    return {int(t): f"irqlab itself (tid {t}: main or trace reader)" for t in os.listdir(f"/proc/{os.getpid()}/task")}


def task_comms() -> dict[int, str]:
    """ksoftirqd/N and irq/N names from /proc, for threads that never switched in while traced."""
    from irqlab.sources.fs import Roots
    from irqlab.sources.tasks import read_tasks

    tasks, _ = read_tasks(Roots.of(None, None))
    return {t.pid: t.comm for t in tasks}


def explain_run(run, batch, comms, own):
    """Explanations of every kept breach of a run, worst first, and their summed blame."""
    from irqlab.analysis.latency import Breach, explain, summarize_blame

    breaches = [Breach(r.cpu, r.pid, d, w) for r in run.cpus for d, w in r.breaches]
    exps = sorted(explain(batch, breaches, {**comms, **own}), key=lambda e: -e.breach.latency_ns)
    return exps, summarize_blame(exps)


def run(args: argparse.Namespace) -> int:
    _check(args)
    common.enter_realtime(args, "latency")
    cpus = selected_cpus(args)
    if args.irq_threads and args.duration is None and args.loops is None and not args.budget:
        return _irq_threads_only(args, cpus)
    if args.budget:
        return _budget(args, cpus)
    return _single(args, cpus)


def _irq_threads_only(args, cpus) -> int:
    from irqlab.outputs.latency_json import document, threads_json
    from irqlab.outputs.latency_text import thread_lines

    notes = _thread_notes(cpus, args.policy, args.priority)
    if args.json:
        _print_json(document(_meta(args, cpus, None), irq_threads=threads_json(notes)))
    else:
        print("\n".join(thread_lines(notes, args.policy, args.priority)))
    return 0


def _thread_notes(cpus, policy: str, priority: int):
    from irqlab.analysis.latency import irq_thread_notes
    from irqlab.sources.fs import Roots
    from irqlab.sources.tasks import read_tasks

    tasks, _ = read_tasks(Roots.of(None, None))
    return irq_thread_notes(tasks, cpus, policy, priority)


def _meta(args, cpus, interval_ns: int | None, loops: int | None = None) -> dict:
    from irqlab.cpulist import format_cpulist

    return {"cpus": format_cpulist(cpus), "interval_us": None if interval_ns is None else interval_ns / 1000,
            "loops": loops, "policy": args.policy, "priority": args.priority if args.policy != "other" else 0}


def _print_json(doc: dict) -> None:
    from irqlab.outputs.jsonout import dumps

    print(dumps(doc))


def probe_json(run) -> list[dict]:
    wall = max(run.end_ns - run.start_ns, 1)
    return [{"cpu": r.cpu, "pid": r.pid, "policy": r.policy, "priority": r.priority, "locked": r.lock_error is None,
             "cpu_time_ms": round(r.cpu_time_ns / 1e6, 3), "cpu_pct": round(100 * r.cpu_time_ns / wall, 3),
             "stopped_early": r.stopped} for r in run.cpus]


def probe_cost_line(run) -> str:
    wall = max(run.end_ns - run.start_ns, 1)
    cells = ", ".join(f"CPU{r.cpu} {100 * r.cpu_time_ns / wall:.2f} %" for r in run.cpus)
    r0 = run.cpus[0]
    sched = f"{r0.policy} {r0.priority}" if r0.policy != "other" else "other"
    return f"# probe: {sched}, pids {','.join(str(r.pid) for r in run.cpus)}; its own CPU time: {cells} of one CPU"


def _single(args, cpus) -> int:
    from irqlab.analysis.latency import summarize

    interval_ns = args.interval * 1000
    duration = parse_duration(args.duration) if args.duration else None
    loops = loops_of(interval_ns, duration, args.loops)
    over_ns = int((args.explain_over or 50) * 1000) if args.explain else None
    comms = task_comms() if args.explain else {}
    args.kernel_source, args.kernel_fallback = kernel_backend(args)
    if args.kernel_fallback and not args.json:
        print(f"irqlab latency: {args.kernel_fallback}", file=sys.stderr)
    run, batch, own = measure_once(args, cpus, interval_ns, loops, args.priority, over_ns)
    _note_once(run, args.policy)
    report = summarize({r.cpu: r.samples_ns for r in run.cpus}, {r.cpu: r.missed for r in run.cpus},
                       limit_ns=args.hist_limit * 1000)
    exps, blame = explain_run(run, batch, comms, own) if args.explain else (None, None)
    wakeups = kernel_wakeups(args, run, batch) if args.kernel else None
    notes = _thread_notes(cpus, run.cpus[0].policy, run.cpus[0].priority) if args.irq_threads else None
    if args.json:
        _emit_json(args, cpus, interval_ns, loops, run, report, exps, blame, notes, batch, wakeups)
    else:
        _emit_text(args, cpus, interval_ns, run, report, exps, blame, notes, over_ns, batch, wakeups)
    return 0


def _trace_line(batch, over_ns: int, exps) -> str:
    state = "complete" if batch.complete else "LOST EVENTS on CPU " + ",".join(str(c) for c, n in sorted(batch.lost.items()) if n)
    return f"# {len(exps)} wake-ups later than {over_ns / 1000:g} us explained from {len(batch)} trace events ({state})"


DRAIN_S = 0.5  # the --explain tracer's drain period (_tracer above)


def lost_lines(args, batch) -> list[str]:
    """The lost-events lines of a trace, with the user's own command again: --realtime 1 when the
    reader ran SCHED_OTHER, and a buffer that holds 4 drain periods at the busiest CPU's rate."""
    import shlex

    from irqlab.analysis.latency import buffer_to_hold, busiest_loss
    from irqlab.outputs.latency_text import lost_lines as render

    lost = {c: n for c, n in batch.lost.items() if n}
    if not lost:
        return []
    cpu, rate = busiest_loss(batch, DRAIN_S)
    bigger = buffer_to_hold(rate, 4 * DRAIN_S, args.buffer_kb)
    argv = list(getattr(args, "argv", ()) or ["latency"])
    again = [a for i, a in enumerate(argv) if not a.startswith("--buffer-kb") and not (i and argv[i - 1] == "--buffer-kb")]
    if args.realtime is None:
        again += ["--realtime", "1"]
    if bigger > args.buffer_kb:
        again += ["--buffer-kb", str(bigger)]
    return render(lost, cpu, rate, args.buffer_kb, bigger, args.realtime, DRAIN_S, shlex.join(["irqlab", *again]))


def kernel_matched(run, batch):
    """The trace window's timing of every probe wake-up, met with the probe's samples, per CPU."""
    from irqlab.analysis.wakeup import wakeup_report

    return wakeup_report(batch, [(r.cpu, r.pid, r.samples_ns) for r in run.cpus], run.start_ns, run.interval_ns)


def kernel_wakeups(args, run, batch):
    """The kernel's timing of the probe's wake-ups (--kernel), per CPU, from whichever backend ran."""
    from irqlab.analysis.wakeup import summarize_bpf, summarize_matched

    layout = _kernel_layout(args)
    if args.kernel_source == "bpf":
        c = args.kernel_counts
        return summarize_bpf([(r.cpu, r.pid, r.samples_ns) for r in run.cpus], c.parts, c.counters,
                             layout.bucket_ns, layout.limit_ns)
    return tuple(summarize_matched(w, layout.bucket_ns, layout.limit_ns) for w in kernel_matched(run, batch))


def _emit_text(args, cpus, interval_ns, run, report, exps, blame, notes, over_ns, batch, wakeups) -> None:
    from irqlab.cpulist import format_cpulist
    from irqlab.outputs import latency_text as lt

    secs = (run.end_ns - run.start_ns) / 1e9
    stopped = ", stopped early by a signal" if any(r.stopped for r in run.cpus) else ""
    out = [f"# irqlab latency: CPUs {format_cpulist(cpus)}, interval {interval_ns / 1000:g} us, {secs:.1f} s{stopped}; "
           f"/dev/cpu_dma_latency {args.dma_state}",
           "# timer wake-up latency = wake-up time - deadline (CLOCK_MONOTONIC), in us; "
           f"OVER_LIMIT counts wake-ups above {args.hist_limit} us"]
    out += lt.stats_lines(report)
    out.append(probe_cost_line(run))
    if args.hist:
        out += [""] + lt.hist_lines(report, args.hist)
    if wakeups is not None:
        out += [""] + lt.wakeup_lines(wakeups, args.kernel_fallback)
        misses = args.kernel_counts.misses if args.kernel_source == "bpf" else 0
        if misses:
            out.append(f"# BPF: {misses} program runs skipped by the kernel (another BPF program was running on "
                       "that CPU); their wake-ups may be untimed")
        if batch is not None and args.kernel_source == "tracefs" and not batch.complete and exps is None:
            out.append(f"# trace: LOST EVENTS on CPU {','.join(str(c) for c, n in sorted(batch.lost.items()) if n)}")
            out += lost_lines(args, batch)
    if exps is not None:
        out += ["", _trace_line(batch, over_ns, exps), *lost_lines(args, batch)]
        for e in exps[: args.explain_top]:
            out += lt.explanation_lines(e, run.start_ns)
        if len(exps) > 1:
            out += [f"# all {len(exps)} breaches summed (time on the probe's CPU between deadline and wake-up)"]
            out += lt.blame_lines(blame, len(exps))
    if notes is not None:
        out += ["", "# irq/N threads on the probe's CPUs"] + lt.thread_lines(notes, run.cpus[0].policy, run.cpus[0].priority)
    print("\n".join(out))


def _emit_json(args, cpus, interval_ns, loops, run, report, exps, blame, notes, batch, wakeups) -> None:
    from irqlab.outputs import latency_json as lj

    meta = _meta(args, cpus, interval_ns, loops)
    meta["duration_s"] = round((run.end_ns - run.start_ns) / 1e9, 3)
    meta["dma_latency"] = args.dma_state
    explained = None
    if exps is not None:
        explained = {"over_us": args.explain_over or 50, "trace_events": len(batch), "trace_complete": batch.complete,
                     "trace_lost": lj.lost_json(batch.lost),
                     "breaches": [lj.explanation_json(e) for e in exps[: max(args.explain_top, 0)]],
                     "summary": lj.blame_json(blame), "count": len(exps)}
    kernel = None
    if wakeups is not None:
        kernel = {"source": args.kernel_source, "fallback": args.kernel_fallback, "cpus": lj.wakeup_json(wakeups)}
        if args.kernel_source == "bpf":
            kernel["bpf_recursion_misses"] = args.kernel_counts.misses
        if args.kernel_source == "tracefs":
            kernel["trace_complete"] = batch.complete
            kernel["trace_lost"] = lj.lost_json(batch.lost)
    _print_json(lj.document(meta, probe=probe_json(run), latency=lj.report_json(report), explain=explained,
                            kernel_wakeup=kernel,
                            irq_threads=None if notes is None else lj.threads_json(notes)))


def load_budget(path: str):
    """Read and validate a budget file; as root, refuse one that others may write."""
    from irqlab.analysis.latency_budget import BudgetError, parse_budgets
    from irqlab.schema import load_toml
    from irqlab.sources.trust import root_refusal

    return parse_budgets(load_toml(path, BudgetError, what="budget file", check=root_refusal), path)


def _budget(args, cpus) -> int:
    import dataclasses

    from irqlab.analysis.latency import evaluate, summarize
    from irqlab.cli.main import EXIT_CRITICAL, EXIT_OK

    classes = load_budget(args.budget)
    for cls in classes:
        if cls.priority:
            _check_realtime(args, cls.priority, f"class {cls.name!r} priority")
    allowed = set(os.sched_getaffinity(0))
    comms = task_comms() if args.explain else {}
    verdicts, details = [], []
    for cls in classes:
        ccpus = cls.cpus or cpus
        if not set(ccpus) <= allowed:
            from irqlab.analysis.latency_budget import BudgetError

            raise BudgetError(f"{args.budget}: class {cls.name!r}: cpus: CPU {sorted(set(ccpus) - allowed)[0]} is not online/allowed")
        interval_ns = cls.interval_ns or args.interval * 1000
        duration = cls.duration_s or (parse_duration(args.duration) if args.duration else None)
        loops = loops_of(interval_ns, duration, args.loops)
        over_ns = int(args.explain_over * 1000) if args.explain_over else min(v for _, v in cls.limits())
        run, batch, own = measure_once(args, ccpus, interval_ns, loops, cls.priority or args.priority,
                                  over_ns if args.explain else None)
        _note_once(run, args.policy)
        report = summarize({r.cpu: r.samples_ns for r in run.cpus}, {r.cpu: r.missed for r in run.cpus},
                           limit_ns=args.hist_limit * 1000)
        verdict = evaluate(dataclasses.replace(cls, cpus=tuple(ccpus)), report.overall.stats)
        verdicts.append(verdict)
        exps = explain_run(run, batch, comms, own) if batch is not None else None
        details.append((cls, ccpus, interval_ns, run, report, verdict, exps, batch, over_ns))
    _emit_budget(args, verdicts, details)
    return EXIT_OK if all(v.passed for v in verdicts) else EXIT_CRITICAL


def _emit_budget(args, verdicts, details) -> None:
    from irqlab.cpulist import format_cpulist
    from irqlab.outputs import latency_json as lj
    from irqlab.outputs import latency_text as lt

    if args.json:
        classes = []
        for _cls, ccpus, interval_ns, run, report, verdict, exps, batch, over_ns in details:
            row = {**lj.verdict_json(verdict), "cpus": format_cpulist(ccpus), "interval_us": interval_ns / 1000,
                   "dma_latency": args.dma_state,
                   "probe": probe_json(run), "latency": lj.report_json(report)}
            if exps is not None:
                row["explain"] = {"over_us": over_ns / 1000, "count": len(exps[0]), "trace_complete": batch.complete,
                                  "trace_lost": lj.lost_json(batch.lost),
                                  "breaches": [lj.explanation_json(e) for e in exps[0][: args.explain_top]],
                                  "summary": lj.blame_json(exps[1])}
            classes.append(row)
        _print_json(lj.document({"budget": args.budget, "policy": args.policy}, classes=classes,
                                result="PASS" if all(v.passed for v in verdicts) else "FAIL"))
        return
    out = [f"# irqlab latency --budget {args.budget}: timer wake-up latency per class, in us"]
    out += lt.verdict_lines(verdicts)
    for cls, ccpus, interval_ns, run, report, _verdict, exps, batch, over_ns in details:
        out += ["", f"# {cls.name}: CPUs {format_cpulist(ccpus)}, interval {interval_ns / 1000:g} us; "
                f"/dev/cpu_dma_latency {args.dma_state}"]
        out += lt.stats_lines(report)
        if exps is not None and exps[0]:
            out.append(_trace_line(batch, over_ns, exps[0]))
            out += lost_lines(args, batch)
            for e in exps[0][: args.explain_top]:
                out += lt.explanation_lines(e, run.start_ns)
    print("\n".join(out))
