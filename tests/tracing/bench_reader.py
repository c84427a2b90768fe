"""Benchmark the raw reader under the UDP flood of load.sh (root; not collected by pytest).

    .venv/bin/python tests/tracing/bench_reader.py [--seconds 6] [--events default|softirq]

Prints, per 1 s interval: events traced, pages, lost (stats + page flags), and the reader's
own costs: drain (syscalls) and decode (walk + columns) time, as events per CPU-second.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from irqlab.tracing import stats as statsmod  # noqa: E402
from irqlab.tracing.decode import DEFAULT_EVENTS, OPTIONAL_EVENTS, decode  # noqa: E402
from irqlab.tracing.ringbuf import walk_pages  # noqa: E402
from irqlab.tracing.session import TraceSession  # noqa: E402

LOAD_SH = REPO.parent / "shared" / "tools" / "load.sh"
SETS = {"default": (DEFAULT_EVENTS, OPTIONAL_EVENTS),
        "softirq": (("irq:softirq_raise", "irq:softirq_entry", "irq:softirq_exit"), ())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--events", choices=SETS, default="default")
    ap.add_argument("--buffer-kb", type=int, default=32768)
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--session", action="store_true", help="TraceSession.stream as the CLI uses it")
    args = ap.parse_args()
    load = None
    if not args.no_load:
        load = subprocess.Popen(["bash", str(LOAD_SH), "-q", "-m", "udp", "-l", "16", "-n", "2",
                                 "-d", str(args.seconds + 4)], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
    events, optional = SETS[args.events]
    rows = []
    if args.session:
        try:
            session_mode(args, events, optional)
        finally:
            if load is not None:
                load.wait()
                print("".join(line for line in load.stdout if "receiver" in line), end="")
        return
    try:
        with TraceSession(events=events, optional=optional, buffer_kb=args.buffer_kb) as s:
            s.start()
            prev = s.read_stats()
            for _ in range(args.seconds):
                t_end = time.monotonic() + 1.0
                drain_s, pages = 0.0, []
                while time.monotonic() < t_end:
                    t = time.process_time()
                    s.drain()
                    drain_s += time.process_time() - t
                    pages += s.take_pages()
                    time.sleep(max(0.0, min(s.poll_s, t_end - time.monotonic())))
                now = s.read_stats()
                lost = sum(statsmod.lost_between(prev, now).values())
                prev = now
                t = time.process_time()
                buf = b"".join(p for _, p in pages)
                recs = walk_pages(buf, s.layout)
                batch = decode(buf, recs, np.array([c for c, _ in pages], np.int32), s.catalog)
                decode_s = time.process_time() - t
                rows.append((len(batch), len(pages), lost, drain_s, decode_s, int((recs.missed != 0).sum())))
                print(f"events {len(batch):>9,}  pages {len(pages):>6}  lost {lost:>8,}  "
                      f"drain {drain_s * 1e3:6.1f} ms  decode {decode_s * 1e3:6.1f} ms  "
                      f"({len(batch) / max(decode_s, 1e-9) / 1e6:.2f} M events/CPU-s)", flush=True)
            s.stop()
    finally:
        if load is not None:
            load.wait()
            print("".join(line for line in load.stdout if "receiver" in line), end="")
    ev = [r[0] for r in rows]
    rate = [r[0] / max(r[4], 1e-9) for r in rows]
    cpu = [(r[3] + r[4]) for r in rows]
    print(f"median events/s traced {statistics.median(ev):,.0f}; median decode {statistics.median(rate) / 1e6:.2f} "
          f"M events/CPU-s; reader CPU {statistics.median(cpu) * 100:.0f} % of one CPU; lost total {sum(r[2] for r in rows):,}; "
          f"pages with missed flag {sum(r[5] for r in rows)}")


def session_mode(args, events, optional) -> None:
    """stream(1 s) with the drain thread: events, lost and the whole process's CPU per window."""
    with TraceSession(events=events, optional=optional, buffer_kb=args.buffer_kb) as s:
        cpu0 = time.process_time()
        for batch in s.stream(1.0, args.seconds):
            cpu1 = time.process_time()
            print(f"events {len(batch):>9,}  lost {sum(batch.lost.values()):>8,}  "
                  f"window {batch.window_ns / 1e9:.3f} s  reader CPU {(cpu1 - cpu0) * 100:4.0f} %", flush=True)
            cpu0 = cpu1


if __name__ == "__main__":
    main()
