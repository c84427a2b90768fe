"""`irqlab trace`: handler durations, softirq raise->entry latency and ksoftirqd share from tracepoints."""

from __future__ import annotations

import argparse
import sys
import time

from irqlab.cli import common

PARSER_KW = dict(
    description="Trace the kernel's irq:*, irq_vectors:* and sched:* tracepoints in a private tracefs "
    "instance and report, per softirq vector, IRQ, system vector and tasklet: handler durations "
    "(count, total, avg, p50/p90/p99/p99.9/max), softirq raise -> entry latency, the share of "
    "softirq runs and time spent in ksoftirqd, and how many softirq passes restarted. Needs root "
    "(or tracefs access). A window in which the kernel dropped events is marked PARTIAL.",
    epilog="""\
examples:
  irqlab trace                          one 3-second window, all CPUs
  irqlab trace -d 10 --vector NET_RX    10 s, only the NET_RX rows
  irqlab trace 1 5 -C 1                 five 1-second reports of CPU1
  irqlab trace --irq 41,LOC --hist log2 one IRQ and the local timer, with bcc-style histograms
  irqlab trace --json > trace.json      the documented JSON (docs/trace.md)
  irqlab trace --realtime 1 -d 2        under a flood on every CPU: read at SCHED_FIFO 1

rules (docs/trace.md): durations are exit - entry on one CPU; NET subtracts nested hard IRQs;
latency runs from the first raise of a clear pending bit to the entry of that vector on
that CPU; runs cut by the window edges are counted as truncated, not measured.

exit codes: 0 ok, 3 tracefs unavailable or not permitted, 64 usage, 130 interrupted
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS", help="one window of SECONDS (default 3; not with interval)")
    p.add_argument("interval", nargs="?", type=float, help="seconds per report (repeated reports)")
    p.add_argument("count", nargs="?", type=int, help="number of reports (default: forever)")
    common.add_cpus(p)
    p.add_argument("--vector", metavar="LIST", help="only these softirq vectors, e.g. NET_RX,TIMER")
    p.add_argument("--irq", metavar="LIST", help="only these IRQs / system vectors, e.g. 41,LOC")
    p.add_argument("--hist", choices=("linear", "log2"), help="also print each handler's histogram")
    p.add_argument("-P", "--per-cpu", action="store_true", help="one row per handler and CPU")
    p.add_argument("--backend", choices=("auto", "bpf", "tracefs"), default="auto",
                   help="bpf aggregates in the kernel (nothing lost; needs root or CAP_BPF+CAP_PERFMON); "
                   "tracefs reads the ring buffer; auto (default) uses bpf when permitted, else says why and uses tracefs")
    p.add_argument("--tracefs", metavar="DIR", help="tracefs mount point (default: found in /proc/self/mounts)")
    p.add_argument("--buffer-kb", type=int, default=8192, metavar="N", help="ring buffer per CPU in KiB (default 8192)")
    p.add_argument("--bucket-us", type=int, default=1, metavar="N", help="linear histogram bucket (default 1 us)")
    p.add_argument("--limit-us", type=int, default=1000, metavar="N", help="linear histogram range before the overflow row (default 1000 us)")
    common.add_realtime(p)
    common.add_json(p)


def _vectors(text: str | None) -> tuple[int, ...] | None:
    from irqlab.errors import UsageError
    from irqlab.model.vectors import SOFTIRQ_NAMES, vector_nr

    if not text:
        return None
    out = []
    for name in text.split(","):
        nr = vector_nr(name)
        if nr is None:
            raise UsageError(f"--vector {name!r}: not a softirq vector ({', '.join(SOFTIRQ_NAMES)})")
        out.append(nr)
    return tuple(out)


def _irqs(text: str | None) -> tuple[str, ...] | None:
    from irqlab.errors import UsageError
    from irqlab.model.trace_result import X86_VECTORS

    if not text:
        return None
    out = []
    for item in text.split(","):
        item = item.strip().upper()
        if not item.isdigit() and item not in X86_VECTORS.values():
            raise UsageError(f"--irq {item!r}: not an IRQ number or a system vector name ({', '.join(sorted(set(X86_VECTORS.values())))})")
        out.append(item)
    return tuple(out)


def _windows(args: argparse.Namespace) -> tuple[float, int | None]:
    """(seconds per report, reports) from -d or `interval [count]`."""
    from irqlab.errors import UsageError

    if args.duration is not None and args.interval is not None:
        raise UsageError("give either -d SECONDS or `interval [count]`, not both")
    if args.interval is None:
        seconds = 3.0 if args.duration is None else args.duration
        common.check_interval(seconds, 1)
        return seconds, 1
    common.check_interval(args.interval, args.count)
    return args.interval, args.count


def run(args: argparse.Namespace) -> int:
    common.enter_realtime(args, "trace")  # first: the imports below (numpy) starve under a flood too
    from pathlib import Path

    from irqlab.analysis.trace_aggregate import with_napi_tasks
    from irqlab.errors import UsageError
    from irqlab.model.trace_result import HistogramLayout
    from irqlab.sources.fs import Roots
    from irqlab.sources.host import read_host
    from irqlab.sources.tasks import ksoftirqd_pids, read_tasks
    from irqlab.tracer.lifecycle import open_tracer

    seconds, count = _windows(args)
    # A CPU that is not online would be traced silently as "0 events".
    cpus = common.online_cpu_list(args.cpus, "-C", read_host(Roots()).online_cpus or ()) if args.cpus else None
    vectors, irqs = _vectors(args.vector), _irqs(args.irq)
    if not 4 <= args.buffer_kb <= 1 << 21:
        raise UsageError(f"--buffer-kb {args.buffer_kb}: must be between 4 and 2097152")
    if args.bucket_us < 1 or args.limit_us < args.bucket_us or args.limit_us % args.bucket_us or args.limit_us // args.bucket_us > 100_000:
        raise UsageError("--bucket-us must be >= 1 and divide --limit-us, with at most 100000 buckets")
    layout = HistogramLayout(args.bucket_us * 1000, args.limit_us * 1000)
    if sys.stderr.isatty() and not args.json and count == 1:
        print(f"tracing for {seconds:g} s ...", file=sys.stderr, flush=True)
    started, cpu0 = time.monotonic(), time.process_time()
    with open_tracer(args.backend, tracefs=Path(args.tracefs) if args.tracefs else None, cpus=cpus,
                     buffer_kb=args.buffer_kb, layout=layout, ksoftirqd_pids=ksoftirqd_pids(Roots()),
                     vectors=vectors, irqs=irqs, on_note=_note) as tracer:
        # napi/DEV-ID kthreads: full names, and their schedstat run time where BPF keeps no switches.
        before = read_tasks(Roots())[0]
        for result in tracer.windows(seconds, count):
            after = read_tasks(Roots())[0]
            emit(with_napi_tasks(result, before, after), args)
            before = after
    common.note_starved("trace", "tracing", time.monotonic() - started, time.process_time() - cpu0, seconds * (count or 1), args)
    return 0


def _note(note: str) -> None:
    """auto's one line on stderr when it falls back from BPF to tracefs."""
    print(f"irqlab trace: {note}", file=sys.stderr)


def emit(result, args: argparse.Namespace) -> None:
    """Print one window's report in the chosen form."""
    if args.json:
        from irqlab.outputs.jsonout import dumps
        from irqlab.outputs.trace_json import trace_json

        sys.stdout.write(dumps(trace_json(result), pretty=args.interval is None))
    else:
        from irqlab.outputs.trace_text import TextOptions, render_trace

        sys.stdout.write(render_trace(result, TextOptions(per_cpu=args.per_cpu, hist=args.hist)))
    sys.stdout.flush()
