"""`irqlab isolation`: for the CPUs meant to be quiet, what may land there, what did, why, and the fix."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from irqlab.cli import common

if TYPE_CHECKING:
    from irqlab.analysis.isolation_trace import TraceAttribution
    from irqlab.sources.fs import Roots
    from irqlab.tracer.lifecycle import Tracer

PARSER_KW = dict(
    description="Take the CPUs meant to be quiet (isolcpus=, nohz_full=, rcu_nocbs=, irqaffinity= "
    "on the kernel command line, /sys/devices/system/cpu/{isolated,nohz_full}, or --cpus), sample "
    "for --duration seconds, and print for each: what may land there (IRQs, managed IRQs, RPS/XPS "
    "queues, IRQ and NAPI threads), what did (device IRQs, local timer, IPIs by kind, softirqs by "
    "vector), its cause, and the command that removes it with its undo. Nothing is written.",
    epilog="""\
examples:
  irqlab isolation                       the CPUs the kernel command line isolates, 3 s sample
  irqlab isolation --cpus 2-3 --json     treat CPUs 2-3 as meant to be quiet, JSON for scripts

verdict: noisy when any class of interruption reaches 1/s (the local timer of a nohz_full CPU:
2/s); see docs/isolation.md.
exit codes: 0 every CPU quiet, 1 some CPU noisy, 3 error, 64 usage (no CPU declared quiet)
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpus", metavar="LIST", help='the CPUs meant to be quiet, e.g. "2-3" (default: from the kernel command line and sysfs)')
    p.add_argument("-d", "--duration", type=float, default=3.0, metavar="SECONDS", help="sampling time (default 3)")
    common.add_realtime(p)
    common.add_json(p)


def declared(roots: Roots, cpus_arg: str | None, online: tuple[int, ...]) -> tuple[dict[int, tuple[str, ...]], frozenset[int]]:
    """CPU -> what declares it quiet (--cpus, else the kernel command line and sysfs under roots); and the nohz_full CPUs."""
    from irqlab.errors import UsageError
    from irqlab.sources.cmdline import read_kernel_isolation

    kernel = read_kernel_isolation(roots)
    nohz = frozenset(kernel.nohz_full) | frozenset(kernel.sys_nohz_full)
    if cpus_arg is None:
        quiet = kernel.quiet_cpus(online)
        if not quiet:
            raise UsageError("no CPU is meant to be quiet: the kernel command line has no isolcpus=, nohz_full=, rcu_nocbs= "
                             "or irqaffinity=, and /sys/devices/system/cpu/isolated is empty; name them with --cpus LIST")
        return quiet, nohz
    cpus = common.online_cpu_list(cpus_arg, "--cpus", online)
    declared = kernel.quiet_cpus(online)
    return {c: ("--cpus", *declared.get(c, ())) for c in cpus}, nohz


@contextmanager
def _tracer() -> Iterator[tuple[Tracer | None, str]]:
    """The tracefs tracer of irqlab isolation's events (root), or None and the one line that says why not."""
    import os

    from irqlab.analysis.isolation_trace import ISOLATION_EVENTS, ISOLATION_OPTIONAL
    from irqlab.errors import TracefsUnavailable
    from irqlab.tracer.lifecycle import EventSet, open_tracer

    if os.geteuid() != 0:
        yield None, ("who caused each interruption is not traced: attribution needs root "
                     "(tracepoints ipi:*, csd:csd_queue_cpu, timer:*, workqueue:*, irq:*)")
        return
    try:
        tracer = open_tracer("tracefs", events=EventSet(ISOLATION_EVENTS, ISOLATION_OPTIONAL), buffer_kb=4096)
    except TracefsUnavailable as exc:
        yield None, f"who caused each interruption is not traced: {exc}"
        return
    with tracer:
        yield tracer, ""


def _attribution(tracer: Tracer, cpus: tuple[int, ...]) -> TraceAttribution:
    from irqlab.analysis.isolation_trace import attribute

    tracer.stop()
    batch = tracer.events()
    return attribute(batch, cpus, batch.window_ns / 1e9)


def run(args: argparse.Namespace) -> int:
    common.enter_realtime(args, "isolation")  # first: the imports below (numpy) starve under a flood too
    import time

    started, cpu0 = time.monotonic(), time.process_time()

    from irqlab.analysis.delta import compute_rates
    from irqlab.analysis.isolation import isolation_report
    from irqlab.cli.main import EXIT_OK, EXIT_WARNING
    from irqlab.cli.plan import read_balancer
    from irqlab.errors import UsageError
    from irqlab.sources.fs import Roots
    from irqlab.sources.host import read_host
    from irqlab.sources.sampler import Sampler, SampleSpec

    if not args.duration > 0 or args.duration > 3600:
        raise UsageError(f"--duration {args.duration:g}: must be more than 0 and at most 3600 seconds")
    roots = Roots()  # a live sample: a capture is one instant, and has no /proc/cmdline
    quiet, nohz = declared(roots, args.cpus, read_host(roots).online_cpus or ())
    sampler = Sampler(roots, SampleSpec(irqinfo=True, tasks=True, net=True, netns=True, threads=True))
    with _tracer() as (tracer, note):
        if tracer is not None:
            tracer.start()
        first = sampler.take()
        if sys.stderr.isatty() and not args.json:
            print(f"sampling for {args.duration:g} s ...", file=sys.stderr, flush=True)
        time.sleep(args.duration)
        rates = compute_rates(first, sampler.take())
        attribution = _attribution(tracer, tuple(quiet)) if tracer is not None else None
    balancer, notes = read_balancer(roots)
    for n in notes:
        print(f"irqlab isolation: note: {n}", file=sys.stderr)
    report = isolation_report(rates, quiet, nohz, attribution, note, balancer)
    code = EXIT_WARNING if any(c.verdict == "noisy" for c in report.cpus) else EXIT_OK
    if args.json:
        from irqlab.outputs.isolation_json import isolation_json
        from irqlab.outputs.jsonout import dumps

        sys.stdout.write(dumps(isolation_json(report, rates, code)))
    else:
        from irqlab.outputs.isolation_text import render_isolation

        sys.stdout.write(render_isolation(report, rates))
    common.note_starved("isolation", "sampling", time.monotonic() - started, time.process_time() - cpu0, args.duration, args)
    return code
