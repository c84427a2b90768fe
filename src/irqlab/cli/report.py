"""`irqlab report`: one self-contained HTML file with plots and findings from a recording."""

from __future__ import annotations

import argparse
import sys

from irqlab.analysis.thresholds import STORM_CRIT_RATE, STORM_WARN_RATE

PARSER_KW = dict(
    description="Read a recording made by `irqlab record` and write one HTML file (plots "
    "embedded as PNG, no external files): IRQ x CPU heat maps, top IRQs and softirq vectors "
    "over time, ksoftirqd %CPU, softnet drops, storm intervals shaded, latency histograms if "
    "recorded, and the doctor's findings over the whole recording.",
    epilog="""\
examples:
  irqlab report host.db -o report.html
  irqlab report host.db -o last-hour.html --since 1h
  irqlab report host.db -o - > report.html
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="FILE.db", help="a recording made by `irqlab record`")
    p.add_argument("-o", "--output", required=True, metavar="FILE.html", help="where to write the report (- for stdout)")
    p.add_argument("--since", metavar="AGE", help="only the last AGE of the recording (e.g. 1h, 2d)")
    p.add_argument("--title", default=None, help="page title (default: irqlab report: HOST)")
    p.add_argument("--storm-warn", type=float, default=STORM_WARN_RATE, metavar="RATE", help=f"interrupts/s of one IRQ shaded as a storm (default {STORM_WARN_RATE:.0f})")
    p.add_argument("--storm-crit", type=float, default=STORM_CRIT_RATE, metavar="RATE", help=f"interrupts/s of one IRQ that is critical (default {STORM_CRIT_RATE:.0f})")


def run(args: argparse.Namespace) -> int:
    from irqlab.analysis.thresholds import Thresholds
    from irqlab.cli.record import parse_age
    from irqlab.errors import IrqlabError, UsageError
    from irqlab.outputs.report import render_report
    from irqlab.sources.recording import iter_recording, read_histograms, recording_info

    if not 0 < args.storm_warn <= args.storm_crit:
        raise UsageError("--storm-warn must be positive and not above --storm-crit")
    info = recording_info(args.recording)
    since = info.last_wall - parse_age(args.since) if args.since and info.last_wall is not None else None
    snaps = list(iter_recording(args.recording, since_wall=since))
    if not snaps:
        raise IrqlabError(f"{args.recording}: no samples" + (f" in the last {args.since}" if args.since else ""))
    hists = [h for h in read_histograms(args.recording) if since is None or h[0] >= since]
    title = args.title or f"irqlab report: {snaps[-1].host.hostname or args.recording}"
    page = render_report(snaps, hists, Thresholds(storm_warn_rate=args.storm_warn, storm_crit_rate=args.storm_crit), title)
    if args.output == "-":
        sys.stdout.write(page)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(page)
        except OSError as exc:
            raise IrqlabError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
        print(f"wrote {args.output} ({len(page) / 1024:,.0f} kB, {len(snaps)} samples)", file=sys.stderr)
    return 0
