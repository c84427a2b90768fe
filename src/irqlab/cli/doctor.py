"""`irqlab doctor`: sample for a few seconds, then explain the interrupt load."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from irqlab.analysis.thresholds import STORM_CRIT_RATE, STORM_WARN_RATE
from irqlab.cli import common

if TYPE_CHECKING:
    from irqlab.model.snapshot import Snapshot
    from irqlab.model.trace_result import TraceResult

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
  irqlab doctor --save /tmp/case      keep the captures and trace it explained
  irqlab doctor --evidence /tmp/case  explain them again, anywhere, without root
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
    p.add_argument("--save", metavar="DIR", help="also keep what was explained in a new directory: DIR/before and DIR/after "
                   "(`irqlab snapshot --net` captures), DIR/trace.json; replay it with --evidence DIR")
    p.add_argument("--evidence", metavar="DIR", help="explain what an earlier `irqlab doctor --save DIR` kept, trace included")
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
    common.add_realtime(p)
    common.add_roots(p)
    common.add_json(p)


def exit_code(findings) -> int:
    from irqlab.analysis.findings import Severity, worst
    from irqlab.cli.main import EXIT_CRITICAL, EXIT_OK, EXIT_WARNING

    return {Severity.CRITICAL: EXIT_CRITICAL, Severity.WARNING: EXIT_WARNING}.get(worst(findings), EXIT_OK)


class Traced(NamedTuple):
    """The trace taken during the sample: its result, or why there is none (both None: not asked)."""

    result: TraceResult | None = None
    problem: str | None = None


class Sample(NamedTuple):
    """What the doctor explains: two snapshots, an interval override, the trace beside them."""

    first: Snapshot
    second: Snapshot
    interval: float | None
    traced: Traced = Traced()


# What the doctor reads: every counter, /proc/irq/N, the interrupt threads, and for the causal
# chain every network namespace (entered when root) and every thread's wait time.
SPEC_FIELDS = dict(irqinfo=True, tasks=True, net=True, netns=True, threads=True)


def _two_snapshots(args: argparse.Namespace) -> Sample:
    from irqlab.errors import UsageError
    from irqlab.sources.fs import Roots
    from irqlab.sources.sampler import Sampler, SampleSpec

    roots = common.roots_of(args)
    spec = SampleSpec(**SPEC_FIELDS)  # type: ignore[arg-type]
    if args.sim:
        return _simulated(args)
    if args.evidence:
        return _evidence(args.evidence, spec)
    if args.then:
        if roots.is_live:
            raise UsageError("--then needs --procfs/--sysfs of the first capture")
        return Sample(Sampler(roots, spec).take(), Sampler(Roots.capture(args.then), spec).take(), args.interval)
    if not args.duration > 0 or args.duration > 3600:
        raise UsageError(f"--duration {args.duration:g}: must be more than 0 and at most 3600 seconds")
    if not roots.is_live:
        raise UsageError("a capture is one instant: give the later capture with --then DIR")
    import time

    if args.save:
        _check_save_dir(args.save)
    sampler = Sampler(roots, spec)
    take = (lambda name: _saved_take(roots, spec, Path(args.save) / name)) if args.save else (lambda name: sampler.take())
    first = take("before")
    if sys.stderr.isatty() and not args.json:
        print(f"sampling for {args.duration:g} s ...", file=sys.stderr, flush=True)
    # The trace (loading BPF programs takes a second or two) runs beside the sample, so that
    # --duration stays the sample's length; the second reading waits for both.
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        traced = pool.submit(_trace, args, roots)
        time.sleep(max(0.0, args.duration - (time.monotonic() - started)))
        second = take("after")
        sample = Sample(first, second, None, traced.result())
    if args.save:
        _save_trace(Path(args.save), sample.traced, args)
    return sample


EVIDENCE_META = "doctor.json"


def _check_save_dir(directory: str) -> None:
    from irqlab.errors import UsageError

    out = Path(directory)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--save {directory}: exists and is not an empty directory; choose a new one")


def _saved_take(roots, spec, directory: Path):
    """Capture the machine into directory (`irqlab snapshot --net`), then read the capture: the
    doctor explains exactly the files it saved."""
    from irqlab.outputs.snapshot_dir import write_capture
    from irqlab.sources.fs import Roots
    from irqlab.sources.sampler import Sampler
    from irqlab.sources.snapshot_dir import collect

    write_capture(collect(roots, net=spec.net), directory)
    return Sampler(Roots.capture(directory), spec).take()


def _save_trace(directory: Path, traced: Traced, args: argparse.Namespace) -> None:
    import json

    from irqlab import __version__

    meta = {"irqlab_version": __version__, "duration_s": args.duration, "trace_problem": traced.problem,
            "trace": "trace.json" if traced.result is not None else None}
    if traced.result is not None:
        (directory / "trace.json").write_text(json.dumps(traced.result.to_dict(), sort_keys=True) + "\n")
    (directory / EVIDENCE_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _evidence(directory: str, spec) -> Sample:
    """What `doctor --save DIR` kept: DIR/before, DIR/after, DIR/trace.json, DIR/doctor.json."""
    import json

    from irqlab.errors import CaptureError, ParseError
    from irqlab.model.trace_result import TraceResult
    from irqlab.sources.fs import Roots, read_text
    from irqlab.sources.sampler import Sampler

    top = Path(directory)
    meta_path = top / EVIDENCE_META
    try:
        meta = json.loads(read_text(meta_path))
        traced = Traced(problem=meta.get("trace_problem"))
        if meta.get("trace"):
            traced = Traced(TraceResult.from_dict(json.loads(read_text(top / "trace.json"))))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ParseError(str(meta_path), 1, "", f"not the doctor's saved evidence: {exc}") from None
    for name in ("before", "after"):
        if not (top / name / "proc" / "interrupts").is_file():
            raise CaptureError(f"{top / name}: no capture here (expected `irqlab doctor --save {directory}`'s before/ and after/)")
    return Sample(Sampler(Roots.capture(top / "before"), spec).take(), Sampler(Roots.capture(top / "after"), spec).take(), None, traced)


def _simulated(args: argparse.Namespace) -> Sample:
    """First and last snapshots of a simulated run; its trace feeds the trace findings."""
    from dataclasses import replace

    from irqlab.analysis.trace_aggregate import aggregate_trace
    from irqlab.cli.scenario_files import load
    from irqlab.sim.machine import Machine
    from irqlab.sim.readout import event_batch
    from irqlab.sources.tasks import ksoftirqd_of

    machine = Machine(replace(load(args.sim, ()), trace=True), None).run()
    kpids = ksoftirqd_of(machine.snapshots[-1].tasks)
    traced = Traced(aggregate_trace(event_batch(machine), ksoftirqd_pids=kpids))
    return Sample(machine.snapshots[0], machine.snapshots[-1], None, traced)


def _trace(args: argparse.Namespace, roots) -> Traced:
    """A short trace (BPF when permitted, else tracefs, without a note) or why there is none."""
    import os

    from irqlab.errors import IrqlabError
    from irqlab.sources.tasks import ksoftirqd_pids
    from irqlab.tracer.lifecycle import open_tracer

    if args.trace == "off":
        return Traced()
    if args.trace == "auto" and os.geteuid() != 0:
        return Traced(problem="not root: handler durations need BPF or tracefs (run as root, or --trace off)")
    seconds = min(args.trace_seconds, args.duration)
    try:
        with open_tracer("auto", ksoftirqd_pids=ksoftirqd_pids(roots)) as tracer:
            return Traced(next(iter(tracer.windows(seconds, 1))))
    except IrqlabError as exc:
        if args.trace == "on":
            raise
        return Traced(problem=str(exc))


def _trace_findings(traced: Traced, rates) -> list:
    """Findings from the trace taken during the sample (told how busy each CPU was), or why there are none."""
    from irqlab.analysis.findings import Finding, Severity

    result, problem = traced
    if result is None:
        if problem is None:
            return []
        return [Finding(Severity.INFO, "unreadable", "trace", "no handler durations (tracing unavailable)", (problem,),
                        "run as root (BPF, or tracefs mounted) for per-handler durations", {"source": "trace", "reason": "tracing"})]
    from irqlab.analysis.doctor import cpu_busy_pct
    from irqlab.analysis.trace_findings import trace_findings, trace_summary

    return trace_findings(result, cpu_busy_pct=cpu_busy_pct(rates)) + [trace_summary(result)]


def run(args: argparse.Namespace) -> int:
    common.enter_realtime(args, "doctor")  # first: the imports below (numpy) starve under a flood too
    import time

    started, cpu0 = time.monotonic(), time.process_time()
    from irqlab.analysis.delta import compute_rates
    from irqlab.analysis.doctor import diagnose
    from irqlab.analysis.findings import Severity
    from irqlab.analysis.thresholds import Thresholds
    from irqlab.errors import UsageError

    if not 0 < args.storm_warn <= args.storm_crit:
        raise UsageError("--storm-warn must be positive and not above --storm-crit")
    sample = _two_snapshots(args)
    interval_ns = int(sample.interval * 1e9) if sample.interval else None
    rates = compute_rates(sample.first, sample.second, interval_ns)
    thresholds = Thresholds(
        storm_warn_rate=args.storm_warn, storm_crit_rate=args.storm_crit, ksoftirqd_warn_pct=args.ksoftirqd_warn
    )
    findings = diagnose(rates, thresholds, extra=_trace_findings(sample.traced, rates), trace=sample.traced.result)
    code = exit_code(findings)
    if args.quiet:
        findings = [f for f in findings if f.severity >= Severity.WARNING or f.severity == Severity.OK]
    if args.json:
        from irqlab.outputs.doctor_json import doctor_json
        from irqlab.outputs.jsonout import dumps

        sys.stdout.write(dumps(doctor_json(findings, rates, code)))
    else:
        from irqlab.outputs.doctor_text import render_doctor

        sys.stdout.write(render_doctor(findings, rates))
    if not args.evidence:
        common.note_starved("doctor", "sampling", time.monotonic() - started, time.process_time() - cpu0, args.duration, args)
    return code
