"""Names from another machine's files reach a terminal escaped: ESC, C0/C1 and DEL shown, not sent.

An action name in /proc/interrupts (or /sys/kernel/irq/N/actions) is whatever a driver passed
to request_irq(); a hostname is whatever was set. "\\x1b[2J" clears the screen of whoever runs
`irqlab top` on a capture; "\\x1b]0;...\\x07" retitles the terminal. JSON escapes by itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from builders import interrupts, snapshot, softirqs
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.findings import Finding, Severity
from irqlab.outputs.doctor_text import render_doctor
from irqlab.outputs.text import TableOptions, render_top
from irqlab.tui.model import IrqRow
from irqlab.tui.widgets import IrqTable

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
CLEAR = "\x1b[2J"
TITLE = "\x1b]0;owned\x07"


def _no_raw_control(text: str) -> None:
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    assert not bad, f"raw control characters in output: {bad!r}"


def _rates(name: str):
    cpus = [0, 1]
    a = snapshot(0, interrupts=interrupts(cpus, [("42", name, [0, 0])]), softirqs=softirqs(cpus, {"NET_RX": [0, 0]}))
    b = snapshot(1, interrupts=interrupts(cpus, [("42", name, [10, 20])]), softirqs=softirqs(cpus, {"NET_RX": [5, 5]}))
    return compute_rates(a, b)


def test_top_table_shows_an_escape_sequence_in_a_name_as_text():
    out = render_top(_rates(f"virtio3-tx{CLEAR}\x9b\x7f"), TableOptions())
    _no_raw_control(out)
    assert "virtio3-tx\\x1b[2J\\x9b\\x7f" in out


def test_a_newline_in_an_actions_name_cannot_forge_a_line():
    out = render_top(_rates("eth0\nCRITICAL all is lost"), TableOptions())
    assert not any(line.startswith("CRITICAL") for line in out.splitlines())
    assert "eth0\\x0aCRITICAL all is lost" in out


def test_doctor_findings_escape_names_in_titles_and_evidence():
    finding = Finding(
        code="storm", severity=Severity.WARNING, title=f"storm on IRQ 42 (virtio3-tx{CLEAR})", subject="IRQ 42",
        evidence=(f"IRQ 42 ({TITLE}): 1.2M/s",), recommendation="",
    )
    out = render_doctor([finding], _rates("x"))
    _no_raw_control(out)
    assert "virtio3-tx\\x1b[2J" in out and "\\x1b]0;owned\\x07" in out


def test_tui_cells_escape_control_characters_and_markup():
    row = IrqRow(key="42", irq="42", name=f"virtio3-tx{CLEAR}", device="[nvme]", chip="PCI\x1b[31m", rate_per_s=1.0,
                 count=1, cells=(1.0,), levels=(1,), affinity="0-1", effective="1", storm="")
    from rich.text import Text

    # str cells of a DataTable are Rich markup: what shows is Text.from_markup(cell).plain.
    shown = [Text.from_markup(c).plain if isinstance(c, str) else c.plain for c in IrqTable._cells(row, numeric=True)]
    assert shown[1] == "virtio3-tx\\x1b[2J"
    assert shown[2] == "[nvme]"  # a bracketed name is shown, not taken as a style
    assert shown[3] == "PCI\\x1b[31m"
    for cell in shown:
        _no_raw_control(cell)


def test_trace_handler_table_escapes_names():
    from types import SimpleNamespace

    from irqlab.model.trace_result import Handler
    from irqlab.outputs.trace_text import TextOptions, handler_lines

    h = Handler(kind="irq", key=42, name=f"virtio3-tx{CLEAR}", gross={}, net={})
    out = "\n".join(handler_lines("hardirq handler duration", "IRQ", (h,), SimpleNamespace(cpus=(0,)), TextOptions()))
    _no_raw_control(out)
    assert "virtio3-tx\\x1b[2J" in out


def test_latency_thread_table_escapes_comm():
    from irqlab.analysis.latency import ThreadNote
    from irqlab.model.snapshot import TaskInfo
    from irqlab.outputs.latency_text import thread_lines

    task = TaskInfo(pid=50, comm=f"irq/42-virtio3-tx{CLEAR}", kind="irq", cpu=None, irq=42, utime_ticks=0,
                    stime_ticks=0, run_ns=None, policy="fifo", rt_priority=50, nice=0, allowed_cpus=(0,))
    out = "\n".join(thread_lines([ThreadNote(task, (0,), "above")], "fifo", 95))
    _no_raw_control(out)
    assert "irq/42-virtio3-tx\\x1b[2J" in out


# --- end to end: a capture whose action name and hostname carry escape sequences ---------


def _hostile_pair(tmp_path: Path) -> tuple[Path, Path]:
    pair = []
    for side in ("a", "b"):
        d = tmp_path / side
        shutil.copytree(CAPTURES / "vm-udpflood" / side, d)
        irq = d / "proc" / "interrupts"
        irq.write_bytes(irq.read_bytes().replace(b"virtio1-req.0\n", f"virtio1-req.0{CLEAR}\n".encode()))
        actions = d / "sys" / "kernel" / "irq" / "36" / "actions"
        actions.write_bytes(actions.read_bytes().replace(b"virtio1-req.0", f"virtio1-req.0{CLEAR}".encode()))
        (d / "proc" / "sys" / "kernel" / "hostname").write_text(f"vm{TITLE}\n")
        pair.append(d)
    return pair[0], pair[1]


def _irqlab(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"), TZ="UTC")
    return subprocess.run([sys.executable, "-m", "irqlab", *argv], capture_output=True, text=True, timeout=60, env=env)


def test_top_once_on_a_capture_escapes_names(tmp_path):
    a, _ = _hostile_pair(tmp_path)
    assert CLEAR.encode() in (a / "proc" / "interrupts").read_bytes()
    proc = _irqlab("top", "--once", "--procfs", str(a / "proc"), "--sysfs", str(a / "sys"))
    assert proc.returncode == 0, proc.stderr
    _no_raw_control(proc.stdout)
    assert "virtio1-req.0\\x1b[2J" in proc.stdout
    assert "vm\\x1b]0;owned\\x07" in proc.stdout


def test_diff_of_captures_escapes_names(tmp_path):
    a, b = _hostile_pair(tmp_path)
    proc = _irqlab("diff", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    _no_raw_control(proc.stdout)
    assert "virtio1-req.0\\x1b[2J" in proc.stdout


def test_json_keeps_the_name_and_escapes_it_itself(tmp_path):
    import json

    a, b = _hostile_pair(tmp_path)
    proc = _irqlab("diff", str(a), str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    _no_raw_control(proc.stdout)
    names = {r["irq"]: r["name"] for r in json.loads(proc.stdout)["irqs"]}
    assert names["36"] == f"virtio1-req.0{CLEAR}"
