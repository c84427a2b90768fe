"""doctor, trace, latency --explain and export --bpf-histograms open their tracer one way
(tracer/lifecycle.py), with the ksoftirqd pids of the roots the command was given."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from irqlab.cli.main import build_parser
from irqlab.tracer import lifecycle

TASKS = Path(__file__).resolve().parents[1] / "fixtures" / "tasks"
SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


class FakeTracer:
    def __init__(self, backend: str, **kw) -> None:
        self.backend, self.kw, self.closed = backend, kw, False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.closed = True

    def windows(self, seconds, count):
        yield from [f"window of {seconds:g} s"] * count

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def opened(monkeypatch) -> list[FakeTracer]:
    """Every tracer a command opens, instead of opening one."""
    out: list[FakeTracer] = []

    def fake_open(backend: str = "auto", **kw) -> FakeTracer:
        out.append(FakeTracer(backend, **kw))
        return out[-1]

    monkeypatch.setattr(lifecycle, "open_tracer", fake_open)
    return out


def parse(*argv: str) -> argparse.Namespace:
    return build_parser(argv[0]).parse_args(list(argv))


def test_export_bpf_histograms_take_ksoftirqd_pids_from_procfs(opened):
    from irqlab.bpf.export_histograms import HistogramProvider
    from irqlab.cli import export

    root = TASKS / "vm-6.18-2cpu"
    args = parse("export", "--once", "--bpf-histograms", "--procfs", f"{root}/proc", "--sysfs", f"{root}/sys")
    tracer, providers = export._bpf_providers(args)
    assert tracer is opened[0] and opened[0].backend == "bpf"
    assert opened[0].kw["ksoftirqd_pids"] == (14, 22)  # the capture's, not this machine's
    assert isinstance(providers[0], HistogramProvider) and providers[0].tracer is tracer


def test_doctor_traces_one_window_with_the_given_roots_pids(opened):
    from irqlab.cli import doctor
    from irqlab.sources.fs import Roots

    root = TASKS / "threadirqs-4cpu"
    args = parse("doctor", "--trace", "on", "--trace-seconds", "0.5")
    traced = doctor._trace(args, Roots.capture(root))
    assert traced == doctor.Traced("window of 0.5 s", None)
    assert opened[0].backend == "auto" and len(opened[0].kw["ksoftirqd_pids"]) == 4 and opened[0].closed
    assert "on_note" not in opened[0].kw  # doctor falls back to tracefs silently, as before


def test_doctor_keeps_trace_results_off_the_namespace(capsys):
    from irqlab.cli import doctor

    args = parse("doctor", "--sim", str(SCENARIOS / "dumazet-udp.toml"), "--json")
    before = dict(vars(args))
    assert doctor.run(args) == 2  # critical: the scenario's ring drops packets
    assert vars(args) == before
    assert '"trace-summary"' in capsys.readouterr().out


def test_latency_explain_opens_a_raw_event_tracer(opened):
    from irqlab.cli import latency

    args = parse("latency", "--explain", "--buffer-kb", "256")
    latency._tracer(args, (1,))
    assert opened[0].backend == "tracefs"
    assert opened[0].kw == {"events": lifecycle.LATENCY_EVENTS, "buffer_kb": 256, "cpus": (1,), "poll_s": 0.5}
