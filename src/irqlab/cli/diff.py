"""`irqlab diff A B`: deltas and rates between two captures."""

from __future__ import annotations

import argparse
import gc
import os
import sys

from irqlab.cli import common

# numpy loads OpenBLAS, which starts a thread per CPU at load time; diff does no linear
# algebra, and on a small machine that start-up costs more CPU than the diff (the user's own
# setting wins). Set here, before the first numpy import of the process.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PARSER_KW = dict(
    description="Difference two captures made by `irqlab snapshot` (directories laid out "
    "like /). Counters are 32-bit and wrap; a wrap is differenced, a reset or an IRQ number "
    "re-allocated to another device is reported as a warning and left out.",
    epilog="""\
examples:
  irqlab diff /tmp/before /tmp/after
  irqlab diff /tmp/before /tmp/after --interval 10 --json
  irqlab diff /tmp/before /tmp/after --json --json-schema 1   every CPU of every row

--json prints schema 2 (docs/json.md): per-CPU deltas and rates keyed by CPU id, zero deltas
left out, one row per line; --json-schema 1 gives the full form, zeros included.
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="the earlier capture directory")
    p.add_argument("b", metavar="B", help="the later capture directory")
    p.add_argument("--interval", type=float, metavar="SECONDS", help="time between A and B (default: from the captures)")
    p.add_argument("--top", type=int, default=20, metavar="N", help="hard-IRQ rows in the text table (default 20)")
    p.add_argument("--all", action="store_true", help="show idle rows and CPUs too")
    common.add_cpus(p)
    common.add_json(p)
    common.add_json_schema(p)


def _load(directory: str):
    from irqlab.errors import CaptureError
    from irqlab.outputs.snapshot_dir import is_capture
    from irqlab.sources.fs import Roots
    from irqlab.sources.sampler import take_snapshot

    if not is_capture(directory):
        raise CaptureError(f"{directory}: not a capture (no proc/interrupts inside; make one with `irqlab snapshot -o DIR`)")
    return take_snapshot(Roots.capture(directory))


def fast_exit(args: argparse.Namespace) -> bool:
    """Read-only, one shot: nothing to restore, so the process may end without tearing down."""
    return True


def run(args: argparse.Namespace) -> int:
    # A one-shot command that makes almost no reference cycles: the cyclic collector would only
    # walk what the imports and the parse allocate (about 60 collections, 10-20 ms at 1152 CPUs,
    # finding nothing). Off for this process; made here, by the command, as mallopt is.
    gc.disable()
    from irqlab.analysis.delta import compute_rates
    from irqlab.errors import UsageError

    common.keep_freed_memory()

    if args.interval is not None and not args.interval > 0:
        raise UsageError(f"--interval {args.interval:g}: must be more than 0")
    if args.top < 1:
        raise UsageError(f"--top {args.top}: must be at least 1")
    only = common.cpus_of(args)
    a, b = _load(args.a), _load(args.b)
    interval_ns = int(args.interval * 1e9) if args.interval else None
    if interval_ns is None and (a.taken_ns == 0 or b.taken_ns == 0):
        raise UsageError("the captures carry no time (no irqlab-capture.json or proc/uptime): pass --interval SECONDS")
    rates = compute_rates(a, b, interval_ns)
    common.check_cpus_present("diff", only, rates.cpu_ids(), "the captures'")
    if args.json:
        from irqlab.outputs.jsonout import render_rates

        sys.stdout.write(render_rates(rates, only, schema=args.json_schema))
    else:
        from irqlab.outputs.text import TableOptions, render_top

        opts = TableOptions(only_cpus=only, top=args.top, hide_idle=not args.all)
        sys.stdout.write(render_top(rates, opts).replace("irqlab top", "irqlab diff", 1))
    return 0
