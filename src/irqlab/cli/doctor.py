"""`irqlab doctor`: sample for a few seconds, then explain the interrupt load."""

from __future__ import annotations

import argparse
import sys

from irqlab.analysis.thresholds import STORM_CRIT_RATE, STORM_WARN_RATE
from irqlab.cli import common

PARSER_KW = dict(
    description="Sample the machine's interrupt counters for a few seconds, then print "
    "findings ranked by severity, each with the numbers that prove it and a concrete "
    "recommendation. Works without root; says what it could not read.",
    epilog="""\
examples:
  irqlab doctor                        3-second sample of this machine
  irqlab doctor --duration 10 --json   longer sample, JSON for scripts
  irqlab doctor --storm-warn 50000     lower the storm warning threshold
  irqlab doctor --procfs A/proc --sysfs A/sys --then B
                                       explain two captures made with `irqlab snapshot`
  irqlab doctor --sim examples/scenarios/dumazet-udp.toml
                                       explain a simulated machine, trace findings included

exit codes: 0 healthy, 1 warning, 2 critical, 3 error, 64 usage
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--duration", type=float, default=3.0, metavar="SECONDS", help="sampling time (default 3)")
    p.add_argument("--then", metavar="DIR", help="with --procfs/--sysfs of a capture A: the later capture B to compare")
    p.add_argument("--sim", metavar="SCENARIO", help="explain a simulated machine (irqlab sim's TOML scenario) instead of this one")
    p.add_argument("--interval", type=float, metavar="SECONDS", help="with --then: override the captures' time difference")
    p.add_argument("--storm-warn", type=float, default=STORM_WARN_RATE, metavar="RATE", help=f"interrupts/s of one IRQ that warn (default {STORM_WARN_RATE:.0f})")
    p.add_argument("--storm-crit", type=float, default=STORM_CRIT_RATE, metavar="RATE", help=f"interrupts/s of one IRQ that are critical (default {STORM_CRIT_RATE:.0f})")
    p.add_argument("--ksoftirqd-warn", type=float, default=10.0, metavar="PCT", help="ksoftirqd %%CPU that warns (default 10)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only warnings and critical findings")
    p.add_argument(
        "--trace",
        choices=("auto", "on", "off"),
        default="auto",
        help="also trace handler durations for up to --trace-seconds (auto: when root and tracefs works)",
    )
    p.add_argument("--trace-seconds", type=float, default=1.0, metavar="S", help="seconds of tracing within the sample (default 1)")
    common.add_roots(p)
    common.add_json(p)


def exit_code(findings) -> int:
    from irqlab.analysis.findings import Severity, worst
    from irqlab.cli.main import EXIT_CRITICAL, EXIT_OK, EXIT_WARNING

    return {Severity.CRITICAL: EXIT_CRITICAL, Severity.WARNING: EXIT_WARNING}.get(worst(findings), EXIT_OK)


def _two_snapshots(args: argparse.Namespace):
    from irqlab.errors import UsageError
    from irqlab.sources.fs import Roots
    from irqlab.sources.sampler import take_snapshot

    roots = common.roots_of(args)
    if args.sim:
        return _simulated(args)
    if args.then:
        if roots.is_live:
            raise UsageError("--then needs --procfs/--sysfs of the first capture")
        return take_snapshot(roots), take_snapshot(Roots.capture(args.then)), args.interval
    if not args.duration > 0 or args.duration > 3600:
        raise UsageError(f"--duration {args.duration:g}: must be more than 0 and at most 3600 seconds")
    if not roots.is_live:
        raise UsageError("a capture is one instant: give the later capture with --then DIR")
    import time

    first = take_snapshot(roots)
    if sys.stderr.isatty() and not args.json:
        print(f"sampling for {args.duration:g} s ...", file=sys.stderr, flush=True)
    # The trace (loading BPF programs takes a second or two) runs beside the sample, so that
    # --duration stays the sample's length; the second reading waits for both.
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        traced = pool.submit(_trace, args)
        time.sleep(max(0.0, args.duration - (time.monotonic() - started)))
        second = take_snapshot(roots)
        args.trace_result, args.trace_problem = traced.result()
    return first, second, None


def _simulated(args: argparse.Namespace):
    """First and last snapshots of a simulated run; its trace feeds the trace findings."""
    from dataclasses import replace

    from irqlab.analysis.trace import aggregate_trace
    from irqlab.cli.simload import load
    from irqlab.sim.emit import event_batch
    from irqlab.sim.machine import Machine

    machine = Machine(replace(load(args.sim, ()), trace=True), None).run()
    kpids = tuple(t.pid for t in machine.snapshots[-1].tasks if t.kind == "ksoftirqd")
    args.trace_result, args.trace_problem = aggregate_trace(event_batch(machine), ksoftirqd_pids=kpids), None
    return machine.snapshots[0], machine.snapshots[-1], None


def _trace(args: argparse.Namespace):
    """(TraceResult, None) from a short trace (BPF when permitted, else tracefs), or (None, why not)."""
    import os

    from irqlab.errors import IrqlabError

    if args.trace == "off":
        return None, None
    if args.trace == "auto" and os.geteuid() != 0:
        return None, "not root: handler durations need BPF or tracefs (run as root, or --trace off)"
    seconds = min(args.trace_seconds, args.duration)
    try:
        return _trace_bpf(seconds) or _trace_tracefs(seconds), None
    except IrqlabError as exc:
        if args.trace == "on":
            raise
        return None, str(exc)


def _ksoftirqd_pids() -> tuple[int, ...]:
    from irqlab.sources.fs import Roots
    from irqlab.sources.tasks import read_tasks

    tasks, _ = read_tasks(Roots())
    return tuple(t.pid for t in tasks if t.kind == "ksoftirqd")


def _trace_bpf(seconds: float):
    """One TraceResult aggregated in the kernel, or None when BPF is not permitted here."""
    from irqlab.bpf.backend import check_permitted, stream

    if check_permitted() is not None:
        return None
    return next(iter(stream(None, seconds, 1, ksoftirqd_pids=_ksoftirqd_pids())))


def _trace_tracefs(seconds: float):
    """One TraceResult from a private tracefs instance."""
    from irqlab.analysis.trace import aggregate_trace
    from irqlab.model.events import EventBatch
    from irqlab.tracing.decode import DEFAULT_EVENTS, OPTIONAL_EVENTS
    from irqlab.tracing.session import TraceSession

    with TraceSession(events=DEFAULT_EVENTS, optional=OPTIONAL_EVENTS, buffer_kb=8192) as session:
        session.start()
        batch = session.read(timeout_s=seconds)
        session.stop()
        batch = EventBatch.concat([batch, session.read()])
    return aggregate_trace(batch, ksoftirqd_pids=_ksoftirqd_pids())


def _trace_findings(args: argparse.Namespace) -> list:
    """Findings from the trace taken during the sample, or one line saying why there is none."""
    from irqlab.analysis.findings import Finding, Severity

    result = getattr(args, "trace_result", None)
    problem = getattr(args, "trace_problem", None)
    if result is None:
        if problem is None:
            return []
        return [Finding(Severity.INFO, "unreadable", "trace", "no handler durations (tracing unavailable)", (problem,),
                        "run as root (BPF, or tracefs mounted) for per-handler durations", {"source": "trace", "reason": "tracing"})]
    from irqlab.analysis.trace_findings import trace_findings, trace_summary

    return trace_findings(result) + [trace_summary(result)]


def run(args: argparse.Namespace) -> int:
    from irqlab.analysis.delta import compute_rates
    from irqlab.analysis.doctor import diagnose
    from irqlab.analysis.findings import Severity
    from irqlab.analysis.thresholds import Thresholds
    from irqlab.errors import UsageError

    if not 0 < args.storm_warn <= args.storm_crit:
        raise UsageError("--storm-warn must be positive and not above --storm-crit")
    a, b, interval = _two_snapshots(args)
    interval_ns = int(interval * 1e9) if interval else None
    rates = compute_rates(a, b, interval_ns)
    thresholds = Thresholds(
        storm_warn_rate=args.storm_warn, storm_crit_rate=args.storm_crit, ksoftirqd_warn_pct=args.ksoftirqd_warn
    )
    findings = diagnose(rates, thresholds, extra=_trace_findings(args))
    code = exit_code(findings)
    if args.quiet:
        findings = [f for f in findings if f.severity >= Severity.WARNING or f.severity == Severity.OK]
    if args.json:
        from irqlab.outputs.jsonout import doctor_json, dumps

        sys.stdout.write(dumps(doctor_json(findings, rates, code)))
    else:
        from irqlab.outputs.text import render_doctor

        sys.stdout.write(render_doctor(findings, rates))
    return code
