"""`irqlab snapshot -o DIR`: capture the interrupt files into a directory laid out like /."""

from __future__ import annotations

import argparse
import sys

from irqlab.cli import common

PARSER_KW = dict(
    description="Copy /proc/interrupts, /proc/softirqs, /proc/stat, /proc/net/softnet_stat, "
    "/proc/irq/N/*, /sys/kernel/irq/N/*, the ksoftirqd and irq/ thread files and the "
    "net.core knobs into DIR, byte for byte, laid out like / (DIR/proc, DIR/sys), with the "
    "capture time in DIR/irqlab-capture.json.",
    epilog="""\
examples:
  irqlab snapshot -o /tmp/before; sleep 10; irqlab snapshot -o /tmp/after
  irqlab diff /tmp/before /tmp/after
  irqlab top --once --procfs /tmp/before/proc --sysfs /tmp/before/sys
  irqlab snapshot --net -o /tmp/a; sleep 3; irqlab snapshot --net -o /tmp/b
  irqlab doctor --procfs /tmp/a/proc --sysfs /tmp/a/sys --then /tmp/b
                                       explain two captures, network causes included
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="new or empty directory to write")
    p.add_argument(
        "--net",
        action="store_true",
        help="also every network namespace's devices, /proc/net MIB counters and UDP sockets "
        "(DIR/netns/INODE/ for the others; entering them needs root), every thread's schedstat, "
        "and the fd links of sockets that dropped: what the doctor's causal chain reads",
    )
    common.add_roots(p)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from irqlab.outputs.snapshot_dir import write_capture
    from irqlab.sources.host import read_host
    from irqlab.sources.snapshot_dir import collect

    roots = common.roots_of(args)
    capture = collect(roots, net=args.net)
    host = read_host(roots)
    out = write_capture(capture, args.output, host.hostname)
    if args.json:
        import json

        print(json.dumps({"directory": str(out), "files": len(capture.files), "skipped": list(capture.skipped)}))
    else:
        print(f"captured {len(capture.files)} files into {out}")
        if capture.skipped:
            print(f"could not read {len(capture.skipped)} files (e.g. {capture.skipped[0]}); run as root to include them", file=sys.stderr)
    return 0
