"""`irqlab record`: append snapshots to an SQLite recording, with retention by age or size."""

from __future__ import annotations

import argparse
import re
import sys

from irqlab.analysis.thresholds import STORM_CRIT_RATE, STORM_WARN_RATE
from irqlab.cli import common

PARSER_KW = dict(
    description="Append a snapshot of every interrupt counter to FILE.db every INTERVAL seconds "
    "(SQLite, WAL mode, one transaction per sample: a crash loses at most the sample being "
    "written). Storm events (IRQs above --storm-warn between two samples) are recorded with "
    "them. Old samples are deleted by --retention-age and --retention-size (which bounds the file with its -wal and -shm). A full disk drops samples, says so once, and the recording resumes when space is back. Read it back with "
    "`irqlab report FILE.db` or replay it with `irqlab top --replay FILE.db`.",
    epilog="""\
examples:
  irqlab record -o host.db                    a sample every 10 s, forever
  irqlab record -o host.db 1 600              600 samples, 1 s apart
  irqlab record -o host.db 5 --retention-age 7d --retention-size 500M
  irqlab record -o cap.db --procfs A/proc --sysfs A/sys
                                              append one capture (a capture is one instant)
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)

AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="FILE.db", help="recording to create or append to")
    common.add_interval(p, 10.0, None)
    p.add_argument("--retention-age", metavar="AGE", help="delete samples older than AGE (e.g. 7d, 12h, 90m)")
    p.add_argument("--retention-size", metavar="SIZE", help="keep the file with its -wal and -shm under SIZE (e.g. 500M, 2G; at least 128k)")
    p.add_argument("--storm-warn", type=float, default=STORM_WARN_RATE, metavar="RATE", help=f"interrupts/s of one IRQ recorded as a storm (default {STORM_WARN_RATE:.0f})")
    p.add_argument("--storm-crit", type=float, default=STORM_CRIT_RATE, metavar="RATE", help=f"interrupts/s of one IRQ recorded as critical (default {STORM_CRIT_RATE:.0f})")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing per sample")
    common.add_roots(p)


def parse_age(text: str) -> float:
    """'7d' -> seconds."""
    from irqlab.errors import UsageError

    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", text.strip().lower())
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--retention-age {text!r}: expected a positive age like 7d, 12h, 90m or 3600s")
    return float(m.group(1)) * AGE_UNITS[m.group(2) or "s"]


def parse_size(text: str) -> int:
    """'500M' -> bytes (powers of 1024)."""
    from irqlab.errors import UsageError

    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)i?b?", text.strip().lower())
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--retention-size {text!r}: expected a positive size like 500M or 2G")
    size = int(float(m.group(1)) * SIZE_UNITS[m.group(2)])
    from irqlab.outputs.recorder import MIN_RETENTION_BYTES

    if size < MIN_RETENTION_BYTES:
        raise UsageError(
            f"--retention-size {text!r}: must be at least {MIN_RETENTION_BYTES >> 10}k "
            "(an empty recording and its WAL index take about 80 kB)"
        )
    return size


def run(args: argparse.Namespace) -> int:
    import signal
    import time

    from irqlab import __version__
    from irqlab.analysis.storm_levels import StormTracker
    from irqlab.analysis.thresholds import Thresholds
    from irqlab.errors import UsageError
    from irqlab.outputs.recorder import DroppingWriter, Recorder, Retention
    from irqlab.sources.sampler import SampleSpec, sample

    retention = Retention(
        max_age_s=parse_age(args.retention_age) if args.retention_age else None,
        max_bytes=parse_size(args.retention_size) if args.retention_size else None,
    )
    if not 0 < args.storm_warn <= args.storm_crit:
        raise UsageError("--storm-warn must be positive and not above --storm-crit")
    roots = common.roots_of(args)
    count = args.count
    if not roots.is_live:
        count = 0  # a capture is one instant: sample() yields count + 1 snapshots
    else:
        common.check_interval(args.interval, count)
    tracker = StormTracker(Thresholds(storm_warn_rate=args.storm_warn, storm_crit_rate=args.storm_crit))

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # systemd stops us with SIGTERM: close cleanly
    with Recorder(args.output, retention, __version__) as rec:
        if rec.migrated_from and not args.quiet:
            print(f"{args.output}: migrated from schema v{rec.migrated_from}", file=sys.stderr)
        # A full disk drops samples (one line when it starts, one when space is back) and
        # the recording goes on: the journal of a daemon must not stop on a full /var.
        writer = DroppingWriter(rec, lambda line: print(line, file=sys.stderr, flush=True))
        try:
            for snap in sample(roots, args.interval, count, SampleSpec(irqinfo=True, tasks=True, strict=False)):
                storms = tracker.update(snap)
                sid = writer.append(snap, storms)
                if sid is not None and not args.quiet:
                    shown = ", ".join(f"{e.irq} {e.rate_per_s:,.0f}/s" for e in storms[:3]) or "-"
                    stamp = time.strftime("%H:%M:%S", time.localtime(snap.wall_time)) if snap.wall_time else "-"
                    print(f"{stamp}  sample {sid}  committed  storms: {shown}", flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            writer.close()
    return 0
