"""Threaded NAPI in `irqlab top`: napi/DEV-ID kthreads, their %CPU, CPU, policy and priority."""

from __future__ import annotations

import pytest
from conftest_top import NAPI_PID, VM_FLOOD, drive, make_app, with_napi_thread

from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.sources.replay import replay
from irqlab.tui import model


def frame_of(dirs, **state) -> model.Frame:
    a, b = list(replay(dirs))
    rates = compute_rates(a, b)
    return model.build_frame(rates, diagnose(rates), model.ViewState(**state))


def test_a_busy_napi_thread_is_listed_with_its_device_cpu_policy_and_priority(tmp_path):
    f = frame_of(with_napi_thread(tmp_path))
    (row,) = f.napi_rows
    assert (row.pid, row.comm, row.device, row.napi_id) == (NAPI_PID, "napi/veth1-8193", "veth1", 8193)
    assert row.cpu_pct == pytest.approx(41.0, abs=0.01)
    assert (row.cpu, row.allowed, row.policy, row.priority) == (1, "0-1", "fifo", "50")
    assert f.napi_threads and f.napi_matched == 1


def test_its_run_time_is_napi_time_of_the_cpu_it_ran_on_not_softirq_time(tmp_path):
    with_napi = {r.cpu: r for r in frame_of(with_napi_thread(tmp_path)).cpu_rows}
    without = {r.cpu: r for r in frame_of(VM_FLOOD[:2]).cpu_rows}
    assert with_napi[1].napi_pct == pytest.approx(41.0, abs=0.01)
    assert with_napi[0].napi_pct == 0.0
    assert with_napi[1].softirq_pct == without[1].softirq_pct  # thread time is not added to %soft
    assert all(r.napi_pct is None for r in without.values())  # no threaded NAPI: no %napi at all


def test_an_idle_napi_thread_hides_with_idle_rows_and_a_cpu_choice_keeps_its_cpu(tmp_path):
    dirs = with_napi_thread(tmp_path, cpu_pct=0.0, policy=0, rt_priority=0)
    f = frame_of(dirs)
    assert f.napi_rows == () and f.napi_threads
    (row,) = frame_of(dirs, hide_idle=False).napi_rows
    assert (row.policy, row.priority) == ("other", "nice 0")
    busy = with_napi_thread(tmp_path / "busy")
    assert frame_of(busy, cpus=(0,)).napi_rows == ()
    assert len(frame_of(busy, cpus=(1,)).napi_rows) == 1


def test_the_cpu_panel_shows_the_napi_column_and_threads_only_where_threaded_napi_exists(tmp_path):
    async def cpu_panel(pilot):
        from io import StringIO

        from rich.console import Console

        out = StringIO()
        Console(file=out, width=160, color_system=None).print(pilot.app.query_one("#cpus").content)
        return out.getvalue()

    text = drive(make_app(with_napi_thread(tmp_path)), cpu_panel, size=(160, 40))
    assert "%napi" in text and "napi/veth1-8193" in text and "veth1" in text and "fifo" in text
    plain = drive(make_app(VM_FLOOD[:2]), cpu_panel, size=(160, 40))
    assert "%napi" not in plain and "napi" not in plain


def test_the_plain_text_and_json_top_show_the_napi_thread_and_its_cpu(tmp_path):
    from irqlab.outputs.jsonout import rates_json
    from irqlab.outputs.text import TableOptions, render_top

    a, b = list(replay(with_napi_thread(tmp_path)))
    rates = compute_rates(a, b)
    text = render_top(rates, TableOptions())
    head = next(line for line in text.splitlines() if line.startswith("CPU ") and "%ksoftirqd" in line)
    assert "%napi" in head
    assert "threaded NAPI kthreads (their receive work is thread time, not %soft)" in text
    row = next(line for line in text.splitlines() if line.startswith("napi/veth1-8193"))
    assert row.split() == ["napi/veth1-8193", str(NAPI_PID), "41.0", "1", "fifo", "50"]
    (t,) = [t for t in rates_json(rates)["threads"] if t["kind"] == "napi"]
    assert t["last_cpu"] == 1 and t["pid"] == NAPI_PID
    plain = render_top(compute_rates(*list(replay(VM_FLOOD[:2]))), TableOptions())
    assert "%napi" not in plain and "threaded NAPI" not in plain
