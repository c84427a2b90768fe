"""`irqlab sim SCENARIO`: run a scenario on the simulated kernel; same outputs as a live host."""

from __future__ import annotations

import argparse
import sys

from irqlab.cli import common

PARSER_KW = dict(
    description="Run a TOML scenario (CPUs, HZ, kernel era, devices, tasks, knobs) on a "
    "discrete-event model of the kernel's interrupt path and print a summary: softirq "
    "raise->entry latency per vector, ksoftirqd CPU share, restarts, hand-offs and deferrals, "
    "task latency percentiles, throughput and drops. Simulated time; seeded and repeatable.",
    epilog="""\
examples:
  irqlab sim examples/scenarios/nic-napi.toml
  irqlab sim examples/scenarios/nic-napi.toml --set net.netdev_budget=600 --json
  irqlab sim examples/scenarios/nic-napi.toml --set task.app=remove
  irqlab sim examples/scenarios/dumazet-udp.toml --sweep machine.kernel=pre-4.9,4.9,6.5
  irqlab sim examples/scenarios/nic-napi.toml --sweep device.eth0.arrival.rate=1e5,4e5,1.6e6 --plot sweep.png
  irqlab sim examples/scenarios/nic-napi.toml -o /tmp/simcap && irqlab diff /tmp/simcap/t0 /tmp/simcap/t1
  irqlab sim examples/scenarios/nic-napi.toml --doctor
  irqlab sim examples/scenarios/watch-storm.toml    irqlab watch's detector and mitigations on a storm
  irqlab sim --validate               the validation experiments of docs/VALIDATION.md (exit 1 if one FAILs)

exit codes: 0 ok (with --doctor: 0 healthy, 1 warning, 2 critical), 3 bad scenario, 64 usage
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)

SWEEP_METRICS = ("delivered_per_s", "ksoftirqd_pct", "softirq_pct", "handoffs", "restarts", "time_squeeze", "net_rx_runs",
                 "packets_per_net_rx", "task_p99_us", "received_per_s")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", metavar="SCENARIO", help="a scenario TOML file (docs/sim.md)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a scenario key, e.g. net.netdev_budget=600, or drop a device or task: device.NAME=remove (repeatable)")
    p.add_argument("--sweep", metavar="KEY=A,B,C", help="run once per value of KEY and tabulate")
    p.add_argument("--metric", choices=SWEEP_METRICS, default="delivered_per_s", help="what --sweep tabulates and plots (default delivered_per_s)")
    p.add_argument("--plot", metavar="PNG", help="with --sweep: write a plot of the metric")
    p.add_argument("-o", "--output", metavar="DIR", help="write each snapshot as a capture DIR/t0, DIR/t1, ... (read by irqlab diff/doctor)")
    p.add_argument("--doctor", action="store_true", help="run the doctor's rules on the first and last simulated snapshots")
    p.add_argument("--trace", metavar="NPZ", help="record trace events (EventBatch columns) into an .npz file")
    p.add_argument("--validate", action="store_true", help="run the validation experiments (published results; this machine's "
                   "measurements, calibrated on one load and predicting held-out ones) and print PASS/FAIL and the time of each")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    common.add_json(p)


def _progress(args: argparse.Namespace, label: str):
    if args.quiet or not sys.stderr.isatty():
        return None

    def show(frac: float) -> None:
        end = "\n" if frac >= 1 else ""
        print(f"\r{label}: {frac * 100:5.1f} % simulated", end=end, file=sys.stderr, flush=True)

    return show


def _run(args, overrides: tuple[str, ...], label: str):
    from irqlab.cli.scenario_files import load
    from irqlab.sim.machine import Machine

    sc = load(args.scenario, overrides)
    if args.trace:
        from dataclasses import replace

        sc = replace(sc, trace=True)
    controller = None
    if sc.watch is not None:  # [watch]: irqlab watch's detector and mitigations on the model
        from irqlab.daemon.simwatch import from_spec
        from irqlab.sim.scenario import ScenarioError

        try:
            controller = from_spec(sc.watch)
        except ScenarioError as exc:
            raise ScenarioError(f"{args.scenario}: {exc}") from None
    return Machine(sc, _progress(args, label), controller).run()


def run(args: argparse.Namespace) -> int:
    from irqlab.errors import UsageError

    if args.validate:
        from irqlab.sim.validate import main as validate_main

        return validate_main(quick=True, out=sys.stdout)
    if not args.scenario:
        raise UsageError("give a SCENARIO file (or --validate)")
    if args.plot and not args.sweep:
        raise UsageError("--plot needs --sweep KEY=A,B,C")
    if args.sweep:
        if args.output or args.doctor or args.trace:
            raise UsageError("--sweep runs many scenarios: -o, --doctor and --trace take one run")
        return _sweep(args)
    m = _run(args, tuple(args.set), args.scenario)
    if args.output:
        _write_captures(m, args.output)
    if args.trace:
        _write_trace(m, args.trace)
    if args.doctor:
        return _doctor(m, args)
    from irqlab.sim.summary import render_summary, summarize, summary_json

    s = summarize(m)
    if args.json:
        from irqlab.outputs.jsonout import dumps

        sys.stdout.write(dumps(summary_json(s)))
    else:
        sys.stdout.write(render_summary(s))
    return 0


def _write_captures(m, directory: str) -> None:
    from pathlib import Path

    from irqlab.errors import CaptureError
    from irqlab.outputs.proctext import capture
    from irqlab.outputs.snapshot_dir import write_capture

    out = Path(directory)
    if out.exists() and any(out.iterdir()):
        raise CaptureError(f"{out}: directory exists and is not empty; choose a new one")
    for i, snap in enumerate(m.snapshots):
        write_capture(capture(snap), out / f"t{i}", snap.host.hostname)


def _write_trace(m, path: str) -> None:
    import numpy as np

    from irqlab.errors import CaptureError
    from irqlab.model.events import COLUMNS
    from irqlab.sim.readout import event_batch

    batch = event_batch(m)
    try:
        np.savez_compressed(path, **{c: getattr(batch, c) for c in COLUMNS})
    except OSError as exc:
        raise CaptureError(f"{path}: cannot write trace: {exc.strerror or exc}") from None


def _doctor(m, args) -> int:
    from irqlab.analysis.delta import compute_rates
    from irqlab.analysis.doctor import diagnose
    from irqlab.cli.doctor import exit_code

    rates = compute_rates(m.snapshots[0], m.snapshots[-1])
    findings = diagnose(rates)
    if args.json:
        from irqlab.outputs.doctor_json import doctor_json
        from irqlab.outputs.jsonout import dumps

        sys.stdout.write(dumps(doctor_json(findings, rates, exit_code(findings))))
    else:
        from irqlab.outputs.doctor_text import render_doctor

        sys.stdout.write(render_doctor(findings, rates))
    return exit_code(findings)


def metric_of(s, metric: str) -> float:
    """One number of a run's summary, for sweeps."""
    if metric in ("delivered_per_s",):
        return s.delivered_per_s
    if metric in ("ksoftirqd_pct", "softirq_pct"):
        return max(getattr(c, metric) for c in s.cpus)
    if metric in ("handoffs", "restarts", "time_squeeze", "net_rx_runs"):
        return float(sum(getattr(c, metric) for c in s.cpus))
    if metric == "packets_per_net_rx":  # over every CPU's NET_RX runs
        runs = sum(c.net_rx_runs for c in s.cpus)
        return sum(c.packets_per_net_rx * c.net_rx_runs for c in s.cpus) / runs if runs else 0.0
    if metric == "received_per_s":
        return float(sum(t.received_per_s or 0 for t in s.tasks))
    lat = [t.latency.percentile(99) for t in s.tasks if t.latency is not None and t.latency.count]
    return max(lat) / 1000 if lat else float("nan")


def _sweep(args) -> int:
    from irqlab.errors import UsageError
    from irqlab.sim.summary import summarize, summary_json

    key, sep, values = args.sweep.partition("=")
    choices = [v for v in values.split(",") if v]
    if not sep or not key or not choices:
        raise UsageError(f"--sweep {args.sweep!r}: give KEY=A,B,C")
    rows = []
    for v in choices:
        s = summarize(_run(args, tuple(args.set) + (f"{key}={v}",), f"{key}={v}"))
        rows.append((v, metric_of(s, args.metric), s))
    if args.json:
        from irqlab.outputs.jsonout import dumps

        sys.stdout.write(dumps({"key": key, "metric": args.metric,
                                "runs": [{"value": v, args.metric: y, "summary": summary_json(s)} for v, y, s in rows]}))
    else:
        sys.stdout.write(f"irqlab sim sweep - {key} (simulated)\n{key:>24}  {args.metric:>16}\n")
        for v, y, _ in rows:
            sys.stdout.write(f"{v:>24}  {y:>16.1f}\n")
    if args.plot:
        from irqlab.sim.plot import sweep_plot

        sweep_plot([v for v, _, _ in rows], [y for _, y, _ in rows], key, args.metric, args.plot)
    return 0
