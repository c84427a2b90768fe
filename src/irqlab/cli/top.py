"""`irqlab top`: IRQ x CPU and softirq x CPU rates, ksoftirqd and softnet per CPU."""

from __future__ import annotations

import argparse
import gc
import os
import sys

from irqlab.cli import common

# As in cli/diff.py: top does no linear algebra, and OpenBLAS would start a thread per CPU when
# numpy loads (the user's own setting wins). Set before the first numpy import of the process.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PARSER_KW = dict(
    description="Print the busiest hard IRQs and softirqs with per-CPU rates, and per CPU "
    "%irq, %softirq, ksoftirqd %CPU and softnet packets/drops/squeezes, every INTERVAL "
    "seconds. Idle rows and CPUs are collapsed and many CPUs are grouped into ranges so "
    "that large machines stay readable. On a terminal it is a full-screen live view (keys: "
    "r/a/n/i sort, / filter, c CPUs, g group, t transpose, z idle, p pause, ? help, q quit); "
    "with --once, --json or a pipe it prints plain tables.",
    epilog="""\
examples:
  irqlab top --once            one 1-second report
  irqlab top 2 5               five reports, 2 s apart
  irqlab top -C 0-3 --top 10   CPUs 0-3 only, ten busiest IRQs
  irqlab top 1 3 --json        one JSON object per report, one per line (schema 2: zero
                               deltas left out; --json-schema 1 lists every CPU)
  irqlab top --replay /tmp/t0 /tmp/t1 /tmp/t2
                               review captures (irqlab snapshot -o DIR) in order
  irqlab top --replay history.db       replay a recording made by `irqlab record`
  irqlab top --realtime 1      under a flood on every CPU: draw and refresh at SCHED_FIFO 1
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    common.add_interval(p, 1.0, None)
    p.add_argument("--once", action="store_true", help="print one report and exit (same as count 1)")
    p.add_argument("--top", type=int, default=20, metavar="N", help="hard-IRQ rows to show (default 20)")
    p.add_argument("--columns", type=int, default=12, metavar="N", help="CPU columns before CPUs are grouped into ranges (default 12)")
    p.add_argument("--all", action="store_true", help="show idle rows and CPUs too")
    common.add_cpus(p)
    common.add_roots(p)
    p.add_argument("--replay", nargs="+", metavar="PATH", help="replay capture directories (in order) or one `irqlab record` database instead of sampling")
    common.add_json(p)
    common.add_json_schema(p)
    common.add_realtime(p)


def _since_boot(args: argparse.Namespace, roots, only) -> int:
    """One capture: averages since boot (a second capture, or --replay, gives real rates)."""
    from irqlab.analysis.delta import since_boot
    from irqlab.outputs.text import TableOptions, render_top
    from irqlab.sources.sampler import take_snapshot

    rates = since_boot(take_snapshot(roots))
    common.check_cpus_present("top", only, rates.cpu_ids(), "the capture's")
    if args.json:
        from irqlab.outputs.jsonout import render_rates

        sys.stdout.write(render_rates(rates, only, include_idle=args.all, schema=args.json_schema, pretty=False))
    else:
        opts = TableOptions(only_cpus=only, top=args.top, max_columns=args.columns, hide_idle=not args.all)
        text = render_top(rates, opts)
        note = "averages since boot (one capture; 32-bit counters may have wrapped on a long uptime)"
        sys.stdout.write(text.replace("\n", f"\n{note}\n", 1))
    return 0


def _live_view(args: argparse.Namespace) -> bool:
    """The Textual screen: on a terminal, without --once or --json (else plain tables)."""
    return sys.stdout.isatty() and not args.once and not args.json


def fast_exit(args: argparse.Namespace) -> bool:
    """Plain tables or JSON: read-only, so the process may end without tearing down
    (cli/main.py). Never the live view, which restores the terminal."""
    return not _live_view(args)


def run(args: argparse.Namespace) -> int:
    from irqlab.errors import UsageError

    common.enter_realtime(args, "top")  # first: the imports below (numpy, Textual) starve under a flood too
    tui = _live_view(args)
    count = 1 if args.once or (args.count is None and not sys.stdout.isatty() and not args.replay) else args.count
    common.check_interval(args.interval, count)
    if args.top < 1 or args.columns < 1:
        raise UsageError("--top and --columns must be at least 1")
    only = common.cpus_of(args)
    roots = common.roots_of(args)
    if args.replay and (args.procfs or args.sysfs):
        raise UsageError("--replay reads its captures' own proc/ and sys/: drop --procfs/--sysfs")
    if not roots.is_live and not args.replay:
        return _since_boot(args, roots, only)
    if only is not None and not args.replay:  # at once: before the screen switches, or the first interval
        from irqlab.sources.host import read_host

        common.check_cpus_present("top", only, read_host(roots).online_cpus or (), "this machine's")
    if tui:
        return _run_tui(args, roots, only, count)
    from irqlab.analysis.delta import compute_rates
    from irqlab.sources.sampler import SampleSpec, sample

    spec = SampleSpec(irqinfo=True, tasks=True)
    if args.replay or count == 1:
        # A finite one-shot run makes almost no reference cycles (see cli/diff.py): no collector,
        # and freed memory is kept for reuse.
        gc.disable()
        common.keep_freed_memory()
    if not args.json:
        from irqlab.outputs.text import TableOptions, render_top

        opts = TableOptions(only_cpus=only, top=args.top, max_columns=args.columns, hide_idle=not args.all)
    if args.replay:
        from irqlab.sources.replay import replay

        snaps = replay(args.replay, spec)
    else:
        snaps = sample(roots, args.interval, count, spec)
    prev, n = None, 0
    for snap in snaps:
        if prev is not None:
            rates = compute_rates(prev, snap)
            if n == 0 and args.replay:
                common.check_cpus_present("top", only, rates.cpu_ids(), "the captures'")
            if args.json:
                from irqlab.outputs.jsonout import render_rates

                sys.stdout.write(render_rates(rates, only, include_idle=args.all, schema=args.json_schema, pretty=False))
            else:
                sys.stdout.write(render_top(rates, opts) + "\n")
            sys.stdout.flush()
            n += 1
            if count is not None and n >= count:
                break
        prev = snap
    return 0


IRQINFO_EVERY_S = 10.0


def _run_tui(args: argparse.Namespace, roots, only: tuple[int, ...] | None, count: int | None) -> int:
    """Wire a sampler (live host or a Replayer) into the Textual app and run it."""
    from irqlab.sources.sampler import SampleSpec
    from irqlab.tui.app import TopApp
    from irqlab.tui.model import ViewState

    # /proc/irq/N (affinity, chip, spurious) changes rarely and costs about 10 opens per IRQ:
    # the live view re-reads it every IRQINFO_EVERY_S, the counters every refresh.
    spec = SampleSpec(irqinfo=True, tasks=True, refresh={"irqinfo": IRQINFO_EVERY_S, "host": float("inf")})
    state = ViewState(cpus=only, hide_idle=not args.all, max_rows=max(args.top, 40))
    if args.replay:
        from irqlab.sources.replay import Replayer, check_captures

        check_captures(args.replay)  # one clear line before the screen switches
        app = TopApp(Replayer(args.replay, spec), args.interval, count, source="replay", replay=True, state=state)
    else:
        from irqlab.sources.sampler import Sampler

        app = TopApp(Sampler(roots, spec).take, args.interval, count, source="live", state=state)
    app.run()
    return 0
