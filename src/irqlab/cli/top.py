"""`irqlab top`: IRQ x CPU and softirq x CPU rates, ksoftirqd and softnet per CPU."""

from __future__ import annotations

import argparse
import sys

from irqlab.cli import common

PARSER_KW = dict(
    description="Print the busiest hard IRQs and softirqs with per-CPU rates, and per CPU "
    "%irq, %softirq, ksoftirqd %CPU and softnet packets/drops/squeezes, every INTERVAL "
    "seconds. Idle rows and CPUs are collapsed and many CPUs are grouped into ranges so "
    "that large machines stay readable.",
    epilog="""\
examples:
  irqlab top --once            one 1-second report
  irqlab top 2 5               five reports, 2 s apart
  irqlab top -C 0-3 --top 10   CPUs 0-3 only, ten busiest IRQs
  irqlab top 1 3 --json        one JSON object per report, one per line
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
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from irqlab.analysis.delta import compute_rates
    from irqlab.errors import UsageError
    from irqlab.sources.sampler import SampleSpec, sample

    count = 1 if args.once or (args.count is None and not sys.stdout.isatty()) else args.count
    common.check_interval(args.interval, count)
    if args.top < 1 or args.columns < 1:
        raise UsageError("--top and --columns must be at least 1")
    only = common.cpus_of(args)
    roots = common.roots_of(args)
    if not roots.is_live:
        raise UsageError("a capture is one instant: compare two captures with `irqlab diff A B`")
    from irqlab.outputs.text import TableOptions, render_top

    opts = TableOptions(only_cpus=only, top=args.top, max_columns=args.columns, hide_idle=not args.all)
    prev = None
    for snap in sample(roots, args.interval, count, SampleSpec(irqinfo=True, tasks=True)):
        if prev is not None:
            rates = compute_rates(prev, snap)
            if args.json:
                from irqlab.outputs.jsonout import dumps, rates_json

                sys.stdout.write(dumps(rates_json(rates, only, include_idle=args.all), pretty=False))
            else:
                sys.stdout.write(render_top(rates, opts) + "\n")
            sys.stdout.flush()
        prev = snap
    return 0
