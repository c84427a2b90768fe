"""CPU cost of `irqlab top` refreshing at 1 Hz, next to the tools people use instead.

Each tool runs for DURATION seconds on a pseudo-terminal (so the TUI really draws and
`watch` really repaints); its user+sys CPU time comes from os.wait4() of the child, which
includes the children it reaped (watch's `sh -c cat`, the shell loop's lsirq).

Two inputs:
- live: this machine's /proc;
- 1152: the pcp-qa 1152-CPU /proc/interrupts and /proc/softirqs bind-mounted over /proc in a
  private mount namespace (`unshare -m`; the host's /proc is not touched), so that every tool
  reads the same 13 MB file each second. The counts do not move there, so irqlab runs with
  --all to lay out every row and CPU as it would under load.

util-linux's irqtop (the goal's anchor) is not packaged for Debian 12 (util-linux-extra has
only lsirq); `watch -n1 cat /proc/interrupts` and a 1 Hz `lsirq` loop stand in for it.

usage: sudo .venv/bin/python bench/bench_top.py [DURATION] > table.md
       (BENCH_ROUNDS=N repeats and takes medians; BENCH_ONLY=irqlab measures only irqlab)
"""

from __future__ import annotations

import bz2
import os
import pty
import select
import shlex
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PCP = Path(os.environ.get("IRQLAB_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures")) / "public" / "pcp-qa"
IRQLAB = f"{sys.executable} -m irqlab"

TOOLS = {
    # `exec`: the measured child must be the tool itself, not a shell that is killed before
    # it reaps the tool (whose CPU time would then be lost).
    "irqlab top (TUI)": "exec {irqlab} top 1 {extra}",
    # The same sampling and analysis without drawing: what the TUI's rendering costs on top.
    "irqlab top (plain tables)": "exec {irqlab} top 1 1000000 {extra} >/dev/null",
    "watch -n1 cat /proc/interrupts": "exec watch -n1 cat /proc/interrupts",
    "lsirq every 1 s": "while :; do lsirq >/dev/null; sleep 1; done",
}


def run_on_pty(command: str, duration_s: float, cols: int = 200, rows: int = 50) -> tuple[float, float]:
    """Run command under sh on a pty for duration_s; (user+sys CPU seconds, wall seconds)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)
        os.environ["TERM"] = "xterm-256color"
        os.execvp("sh", ["sh", "-c", command])
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    start = time.monotonic()
    while time.monotonic() - start < duration_s:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                os.read(fd, 1 << 20)  # the "terminal": read and drop what the tool draws
            except OSError:
                break
    os.killpg(os.getpgid(pid), signal.SIGTERM) if _alive(pid) else None
    # Keep draining until the child is gone, so it never blocks on a full pty.
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        try:
            if select.select([fd], [], [], 0.1)[0]:
                os.read(fd, 1 << 20)
        except OSError:
            pass
    wall = time.monotonic() - start
    os.close(fd)
    return usage.ru_utime + usage.ru_stime, wall


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def in_1152_namespace(command: str, files: dict[str, Path]) -> str:
    """command inside a private mount namespace with files bind-mounted over /proc."""
    mounts = " && ".join(f"mount --bind {shlex.quote(str(src))} /proc/{name}" for name, src in files.items())
    inner = f"mount --make-rprivate / && {mounts} && exec sh -c {shlex.quote(command)}"
    return f"exec unshare -m sh -c {shlex.quote(inner)}"


def main() -> int:
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    rounds = int(os.environ.get("BENCH_ROUNDS", "1"))
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "interrupts"
        with bz2.open(PCP / "interrupts-1152cpu-x86_64.bz2", "rb") as f:
            big.write_bytes(f.read())
        files = {"interrupts": big, "softirqs": PCP / "softirqs-1152cpu-x86_64"}
        for _ in range(rounds):
            only = os.environ.get("BENCH_ONLY")  # e.g. "irqlab" to re-measure irqlab alone
            for name, template in TOOLS.items():  # alternate the tools within each round
                if only and only not in name:
                    continue
                for where in ("live", "1152"):
                    cmd = template.format(irqlab=IRQLAB, extra="--all" if where == "1152" else "")
                    if where == "1152":
                        cmd = in_1152_namespace(cmd, files)
                    cpu, wall = run_on_pty(cmd, duration)
                    results.setdefault((name, where), []).append(cpu / wall)
                    print(f"# {name} on {where}: {cpu:.2f} s CPU over {wall:.1f} s", file=sys.stderr)
    print(f"| tool | input | CPU per 1-s refresh (ms, median of {rounds}) | % of one CPU |")
    print("|---|---|---|---|")
    for (name, where), shares in results.items():
        share = statistics.median(shares)
        print(f"| {name} | {where} | {1000 * share:.1f} | {100 * share:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
