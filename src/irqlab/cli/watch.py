"""`irqlab watch`: detect interrupt storms, alert, and (with --apply) mitigate with rollback."""

from __future__ import annotations

import argparse
import sys

from irqlab.cli import common

PARSER_KW = dict(
    description="Watch the interrupt counters for storms (per IRQ, per CPU, per softirq vector, "
    "%irq+%softirq time, softnet drops/squeezes, unhandled IRQs). Alerts once per storm start, "
    "escalation and end. Dry run by default: prints exactly what it would write. With --apply it "
    "moves IRQ affinity, switches network devices to NAPI polling and coalesces interrupts, "
    "journals every original value, and restores them after the storm (plus hold-down), on "
    "SIGTERM/SIGINT, and at the next start after a crash.",
    epilog="""\
examples:
  irqlab watch                               dry run with the default thresholds (100k/s warn, 1M/s act)
  irqlab watch --config /etc/irqlab/watch.toml --json
                                             JSON event stream, one object per line
  irqlab watch --config watch.toml --apply   mitigate for real (root)
  irqlab watch --config watch.toml 0.5 20    20 intervals of 0.5 s, then exit
  irqlab watch --restore                     undo everything a killed watch left in the journal
                                             (needs only the journal: --journal, else the default)
  kill -HUP $(pidof irqlab)                  reload the config, keeping storm state

exit codes: 0 ok, 3 error (bad config, journal locked, restore failed), 64 usage
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("interval", nargs="?", type=float, default=None, help="seconds between samples (default: config, else 1)")
    p.add_argument("count", nargs="?", type=int, default=None, help="number of intervals (default: forever)")
    p.add_argument("-c", "--config", metavar="FILE", help="TOML config (docs/watch.md); default: built-in thresholds")
    p.add_argument("--apply", action="store_true", help="write the mitigations (root); default is a dry run")
    p.add_argument("--restore", action="store_true", help="restore every setting left in the journal, then exit (no config needed)")
    p.add_argument("--journal", metavar="FILE", help="journal path (overrides the config's journal)")
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    common.add_roots(p)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from irqlab.daemon.config import WatchConfig, load_config
    from irqlab.daemon.watch import EventSink, main_loop
    from irqlab.errors import UsageError

    if args.restore:
        return _restore(args)
    cfg = load_config(args.config) if args.config else WatchConfig()
    if args.journal:
        cfg = dataclasses.replace(cfg, journal=args.journal)
    if args.interval is not None:
        common.check_interval(args.interval, args.count)
        cfg = dataclasses.replace(cfg, interval_s=args.interval)
    elif args.count is not None:
        raise UsageError("count needs an interval before it")
    if args.check:
        print(f"{cfg.source}: ok")
        return 0
    sink = EventSink(sys.stdout, args.json)
    roots = common.roots_of(args)
    if args.apply:
        _check_can_write(roots)
    return main_loop(cfg, sink, args.apply, args.config, args.count, roots)


def _check_can_write(roots) -> None:
    import os

    from irqlab.errors import UsageError

    if not roots.is_live:
        raise UsageError("--apply/--restore act on this machine: not with --procfs/--sysfs")
    if os.geteuid() != 0:
        raise UsageError("--apply and --restore write /proc and /sys: run as root")


def _restore(args: argparse.Namespace) -> int:
    """--restore needs the journal only: --journal, else the config's, else the default.

    A config that cannot be used (broken, or writable by others) does not stop a restore:
    it is named in a warning and the default journal (or --journal) is restored.
    """
    from irqlab.daemon.config import DEFAULT_JOURNAL, ConfigError, load_config
    from irqlab.daemon.watch import EventSink, restore_only

    roots = common.roots_of(args)
    _check_can_write(roots)
    sink = EventSink(sys.stdout, args.json)
    journal = args.journal
    if not journal and args.config:
        try:
            journal = load_config(args.config).journal
        except ConfigError as exc:
            sink.emit("error", message=f"config not used, restoring {DEFAULT_JOURNAL}: {exc}")
    return restore_only(journal or DEFAULT_JOURNAL, sink, roots)
