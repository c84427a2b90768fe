"""The BPF backend's reads of /sys and tracefs go through sources/ and tracing/: absence is
handled by name, every other failure is one clear error (no OSError swallowed)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from irqlab.bpf.backend import BpfTracer, highest_irq, irq_name, load_formats
from irqlab.errors import IrqlabError, PermissionDenied
from irqlab.sources.fs import Roots
from privilege import as_nobody

EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "bpf" / "events"


def irq_roots(base: Path, sys_irqs: tuple[int, ...] | None, proc_irqs: tuple[int, ...]) -> Roots:
    for n in proc_irqs:
        (base / "proc/irq" / str(n)).mkdir(parents=True)
    (base / "proc/irq/default_smp_affinity").write_text("3\n")
    (base / "sys").mkdir(exist_ok=True)
    for n in sys_irqs or ():
        (base / "sys/kernel/irq" / str(n)).mkdir(parents=True)
        (base / "sys/kernel/irq" / str(n) / "actions").write_text(f"dev{n}-rx,dev{n}-tx\n")
    return Roots(base / "proc", base / "sys")


def test_the_highest_irq_is_the_highest_allocated_descriptor(tmp_path):
    # /sys/kernel/irq has every descriptor, /proc/irq only those registered there.
    assert highest_irq(irq_roots(tmp_path, (0, 1, 9, 41, 57), (0, 1, 9, 41))) == 57


def test_without_sys_kernel_irq_the_highest_irq_comes_from_proc_irq(tmp_path):
    assert highest_irq(irq_roots(tmp_path, None, (0, 9, 40))) == 40  # kernel < 4.9 or !SPARSE_IRQ


def test_an_unlistable_sys_kernel_irq_is_an_error_not_zero_irqs():
    base = Path(tempfile.mkdtemp(prefix="irqlab-bpf-", dir="/tmp"))
    try:
        roots = irq_roots(base, (0, 41), (0, 41))
        for d in [base, *base.rglob("*")]:
            d.chmod(0o755 if d.is_dir() else 0o644)
        (base / "sys/kernel/irq").chmod(0o311)  # searchable, not listable

        def attempt() -> str:
            try:
                return f"highest {highest_irq(roots)}"
            except IrqlabError as exc:
                return f"{type(exc).__name__}: {exc}"

        got = as_nobody(attempt)
    finally:
        shutil.rmtree(base)
    assert got.startswith(PermissionDenied.__name__) and "sys/kernel/irq" in got and "\n" not in got


def test_an_irqs_name_is_its_actions_as_irq_handler_entry_shows_them(tmp_path):
    roots = irq_roots(tmp_path, (41,), (41,))
    assert irq_name(41, roots) == "dev41-rx,dev41-tx"
    assert irq_name(42, roots) == ""  # freed since the window


def test_events_this_kernel_lacks_are_left_out_by_name(tmp_path):
    events = tmp_path / "events"
    shutil.copytree(EVENTS, events)
    shutil.rmtree(events / "irq_vectors")  # not x86
    formats = load_formats(events)
    assert "irq:softirq_entry" in formats and not any(q.startswith("irq_vectors:") for q in formats)
    assert set(formats) < set(load_formats(EVENTS))


def test_an_unreadable_format_file_is_an_error_not_a_missing_event(tmp_path):
    events = tmp_path / "events"
    shutil.copytree(EVENTS, events)
    fmt = events / "irq" / "tasklet_entry" / "format"
    fmt.unlink()
    fmt.mkdir()  # there, but not a file
    with pytest.raises(IrqlabError, match="tasklet_entry/format"):
        load_formats(events)


def test_closing_closes_every_descriptor_and_reports_one_that_would_not_close():
    r, w = os.pipe()
    stale = os.dup(r)
    os.close(stale)  # a descriptor closed twice: a bug close() must not hide
    tracer = BpfTracer(perf_fds=[stale, r], prog_fds=[w])
    with pytest.raises(IrqlabError, match=f"closing failed \\(fd {stale}: Bad file descriptor\\)"):
        tracer.close()
    for fd in (r, w):
        with pytest.raises(OSError):
            os.fstat(fd)  # closed all the same
    assert tracer.perf_fds == tracer.prog_fds == []


def test_a_close_failure_while_an_error_is_raised_is_noted_on_that_error():
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    error = RuntimeError("window failed")
    BpfTracer(perf_fds=[r]).__exit__(RuntimeError, error, None)  # as a `with` body raising it would
    assert any("closing failed" in note for note in error.__notes__)
