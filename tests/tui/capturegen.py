"""Write capture sequences (laid out like `irqlab snapshot -o DIR`) for the `top` tests.

Two kinds:
- synthetic(): a made-up 96-CPU machine with a 16-queue NIC (eth0-TxRx-N), an NVMe with 8
  queues, arch rows, /proc/stat, softnet_stat, affinities and ksoftirqd threads. Written once
  into tests/fixtures/top/synthetic-96cpu by `python tests/tui/capturegen.py`.
- from_kernel_files(): a real /proc/interrupts and /proc/softirqs (the 1152-CPU pcp-qa
  files) as t0, and the same text with some counters raised as t1, t2 — built at test time.

Counts are printed as the kernel does: " %10u" per CPU (kernel/irq/proc.c show_interrupts()
and fs/proc/softirqs.c, v6.18), so the fixed-width fast path of the parser is exercised.
"""

from __future__ import annotations

import bz2
import json
import sys
from pathlib import Path

import numpy as np

NS = 1_000_000_000


def _counts(values) -> str:
    return "".join(f" {int(v):10d}" for v in values)


def _meta(base: Path, t_ns: int, host: str) -> None:
    meta = {"irqlab_version": "0.1.0", "format": 1, "monotonic_ns": t_ns, "wall_time": 0.0, "hostname": host, "files": 0, "skipped": []}
    (base / "irqlab-capture.json").write_text(json.dumps(meta, indent=2) + "\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --- the synthetic 96-CPU machine ---------------------------------------------------------

NCPU = 96
# (irq, chip, hwirq, name, per-CPU rate function of (cpu) -> events/s)
def _rows():
    rows = [("0", "IO-APIC", "2-edge", "timer", lambda c: 0.0), ("9", "IO-APIC", "9-fasteoi", "acpi", lambda c: 0.5 if c == 0 else 0.0)]
    for q in range(16):
        # RSS spreads queue q to CPU 2q; queue 0 is storming (150k/s, above the doctor's 100k/s).
        rate = 150_000.0 if q == 0 else 20_000.0 - 1_000.0 * q
        rows.append((str(24 + q), "PCI-MSIX-0000:3b:00.0", f"{q}-edge", f"eth0-TxRx-{q}", lambda c, q=q, r=rate: r if c == 2 * q else 0.0))
    for q in range(8):
        rows.append((str(40 + q), "PCI-MSIX-0000:5e:00.0", f"{q}-edge", f"nvme0q{q}", lambda c, q=q: 2_000.0 if c == 48 + q else 0.0))
    rows.append(("48", "PCI-MSI-0000:00:17.0", "0-edge", "ahci[0000:00:17.0]", lambda c: 3.0 if c == 60 else 0.0))
    return rows


ARCH = [
    # CPUs 80-95 are isolated and idle (nohz_full): no tick, nothing at all.
    ("NMI", "Non-maskable interrupts", lambda c: 1.0 if c < 80 else 0.0),
    ("LOC", "Local timer interrupts", lambda c: 250.0 if c < 64 else (4.0 if c < 80 else 0.0)),
    ("RES", "Rescheduling interrupts", lambda c: 40.0 if c % 2 == 0 and c < 32 else 0.0),
    ("CAL", "Function call interrupts", lambda c: 12.0 if c < 32 else 0.0),
    ("TLB", "TLB shootdowns", lambda c: 0.0),
]
SOFTIRQS = ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU")


def _soft_rate(vector: str, c: int) -> float:
    rows = {r[3]: r[4] for r in _rows()}
    if vector == "NET_RX":
        return sum(rows[f"eth0-TxRx-{q}"](c) for q in range(16)) * 0.9
    if vector == "NET_TX":
        return rows["eth0-TxRx-1"](c) * 0.1 + (50.0 if c < 32 else 0.0)
    if vector == "BLOCK":
        return sum(rows[f"nvme0q{q}"](c) for q in range(8))
    if vector == "TIMER":
        return 250.0 if c < 64 else (2.0 if c < 80 else 0.0)
    if vector == "RCU":
        return 30.0 if c < 64 else 0.0
    if vector == "SCHED":
        return 20.0 if c < 32 else 0.0
    return 0.0


def _interrupts(t_s: float) -> str:
    out = ["     " + "".join(f"CPU{c:<7d}" for c in range(NCPU)).rstrip()]
    for irq, chip, hw, name, fn in _rows():
        counts = [round(1000 + fn(c) * t_s) for c in range(NCPU)]
        out.append(f"{irq:>4}:{_counts(counts)}  {chip:<8} {hw:<10}  {name}")
    for irq, desc, fn in ARCH:
        counts = [round(5000 + fn(c) * t_s) for c in range(NCPU)]
        out.append(f"{irq}:{_counts(counts)}   {desc}")
    out += ["ERR:          0", "MIS:          0"]
    return "\n".join(out) + "\n"


def _softirqs(t_s: float) -> str:
    out = ["                    " + "".join(f"CPU{c:<7d}" for c in range(NCPU)).rstrip()]
    for v in SOFTIRQS:
        counts = [round(100 + _soft_rate(v, c) * t_s) for c in range(NCPU)]
        out.append(f"{v:>12}:{_counts(counts)}")
    return "\n".join(out) + "\n"


def _stat(t_s: float) -> str:
    ticks = 100 * t_s  # USER_HZ
    lines = []
    for c in range(NCPU):
        soft = 0.6 if c == 0 else (0.12 if c < 32 and c % 2 == 0 else 0.0)
        user = 0.2 if c < 64 else 0.01
        idle = 1.0 - soft - user
        lines.append([round(1000 + ticks * user), 0, round(500 + ticks * 0.05), round(10_000 + ticks * idle), 0, 0, round(10 + ticks * soft), 0, 0, 0])
    total = np.sum(np.array(lines), axis=0)
    out = ["cpu  " + " ".join(map(str, total))]
    out += [f"cpu{c} " + " ".join(map(str, row)) for c, row in enumerate(lines)]
    out += ["intr 0", "ctxt 1000", "btime 1796000000", "processes 100", "procs_running 1", "procs_blocked 0", "softirq 0"]
    return "\n".join(out) + "\n"


def _softnet(t_s: float) -> str:
    rows = []
    for c in range(NCPU):
        processed = round(1000 + _soft_rate("NET_RX", c) * 1.1 * t_s)
        dropped = round(120 * t_s) if c == 0 else 0
        squeeze = round(35 * t_s) if c == 0 else 0
        cols = [processed, dropped, squeeze, 0, 0, 0, 0, 0, 0, 0, 0, 0, c]
        rows.append(" ".join(f"{v:08x}" for v in cols))
    return "\n".join(rows) + "\n"


def _task(base: Path, pid: int, cpu: int, pct: float, t_s: float) -> None:
    run_ns = round(1e9 + pct / 100 * t_s * NS)
    ticks = run_ns // 10_000_000
    d = base / "proc" / str(pid)
    _write(d / "comm", f"ksoftirqd/{cpu}\n")
    stat = f"{pid} (ksoftirqd/{cpu}) S 2 0 0 0 -1 69238848 0 0 0 0 0 {ticks} 0 0 20 0 1 0 14 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 {cpu} 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    _write(d / "stat", stat)
    _write(d / "schedstat", f"{run_ns} 0 10\n")
    _write(d / "status", f"Name:\tksoftirqd/{cpu}\nCpus_allowed_list:\t{cpu}\n")


def synthetic(out: Path, steps: int = 3, interval_s: float = 1.0) -> list[Path]:
    """Write t0..t{steps-1} of the synthetic 96-CPU machine under out."""
    dirs = []
    for i in range(steps):
        t_s = 1000.0 + i * interval_s
        base = out / f"t{i}"
        _write(base / "proc" / "interrupts", _interrupts(t_s))
        _write(base / "proc" / "softirqs", _softirqs(t_s))
        _write(base / "proc" / "stat", _stat(t_s))
        _write(base / "proc" / "net" / "softnet_stat", _softnet(t_s))
        _write(base / "proc" / "sys" / "kernel" / "hostname", "synth96\n")
        _write(base / "proc" / "sys" / "kernel" / "osrelease", "6.18.0-synthetic\n")
        _write(base / "proc" / "sys" / "kernel" / "arch", "x86_64\n")
        for irq, _, _, _name, fn in _rows():
            cpus = [c for c in range(NCPU) if fn(c) > 0] or [0]
            _write(base / "proc" / "irq" / irq / "smp_affinity_list", f"0-{NCPU - 1}\n")
            _write(base / "proc" / "irq" / irq / "effective_affinity_list", f"{cpus[0]}\n")
        for cpu, pct in ((0, 35.0), (2, 4.0), (4, 2.0)):
            _task(base, 10 + 8 * cpu, cpu, pct, t_s)
        _meta(base, int(t_s * NS), "synth96")
        dirs.append(base)
    return dirs


# --- real kernel files with raised counters -----------------------------------------------


def _raise(text: str, bump) -> str:
    """Add bump(label, ncpu) (an int array, or None for no change) to each row's counts."""
    lines = text.splitlines()
    ncpu = len(lines[0].split())
    out = [lines[0]]
    for line in lines[1:]:
        label, colon, rest = line.partition(":")
        delta = bump(label.strip(), ncpu) if colon else None
        width = 11 * ncpu
        if delta is None or len(rest) < width:
            out.append(line)
            continue
        counts = np.array(rest[:width].split(), dtype=np.int64)
        if len(counts) != ncpu:
            out.append(line)
            continue
        out.append(label + colon + _counts(counts + delta) + rest[width:])
    return "\n".join(out) + "\n"


def _bump_interrupts(step: int):
    def bump(label: str, ncpu: int):
        d = np.zeros(ncpu, dtype=np.int64)
        if label == "LOC":
            d[:] = 250
        elif label in {str(n) for n in range(107, 139)}:  # lpfc:0..31 queues on CPUs of node 0
            q = int(label) - 107
            d[q * 2] = 5_000 + 100 * q
        elif label == "63":  # one smartpqi vector storming on CPU 100
            d[100] = 140_000 * (1 + step % 2)
        else:
            return None
        return d

    return bump


def _bump_softirqs(label: str, ncpu: int):
    d = np.zeros(ncpu, dtype=np.int64)
    if label == "TIMER":
        d[:] = 250
    elif label == "BLOCK":
        d[0:64:2] = 5_000
        d[100] = 140_000
    elif label == "RCU":
        d[:72] = 40
    else:
        return None
    return d


def from_kernel_files(interrupts: Path, softirqs: Path, out: Path, steps: int = 3) -> list[Path]:
    """t0 = the files as they are; each later step raises some counters by one second's worth."""
    opener = bz2.open if interrupts.suffix == ".bz2" else open
    with opener(interrupts, "rt") as f:
        irq_text = f.read()
    soft_text = softirqs.read_text()
    dirs = []
    for i in range(steps):
        base = out / f"t{i}"
        _write(base / "proc" / "interrupts", irq_text)
        _write(base / "proc" / "softirqs", soft_text)
        _write(base / "proc" / "sys" / "kernel" / "hostname", "pcp-qa-1152cpu\n")
        _meta(base, (1000 + i) * NS, "pcp-qa-1152cpu")
        dirs.append(base)
        irq_text = _raise(irq_text, _bump_interrupts(i))
        soft_text = _raise(soft_text, _bump_softirqs)
    return dirs


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "fixtures" / "top" / "synthetic-96cpu"
    for d in synthetic(target):
        print(d)
