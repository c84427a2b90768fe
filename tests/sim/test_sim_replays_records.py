"""`process = "replay"` from irqlab's own records: captures or an `irqlab record` database."""

from __future__ import annotations

import pytest

from irqlab.analysis.rate_series import RateSeriesError, irq_rate_series
from irqlab.cli.main import main
from irqlab.cli.scenario_files import load
from irqlab.outputs.recorder import Recorder
from irqlab.sim.machine import Machine
from irqlab.sim.scenario import ScenarioError, load_scenario

SOURCE = """
[machine]
cpus = 1
duration_s = 0.4
samples = 5
seed = 3
[[device]]
name = "eth0"
irq = 41
kind = "plain"
hardirq_ns = 200
arrival = { process = "ramp", rate = 20000, rate_to = 200000, start_s = 0.0, end_s = 0.4 }
"""

REPLAY = """
[machine]
cpus = 1
duration_s = 0.4
samples = 5
seed = 4
[[device]]
name = "nic"
irq = 50
kind = "napi"
arrival = {{ process = "replay", recording = {recording}, irq = "{irq}"{extra} }}
"""


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    (d / "source.toml").write_text(SOURCE)
    assert main(["sim", str(d / "source.toml"), "-q", "-o", str(d / "cap")]) == 0
    return d


def _replay(d, recording: str, irq: str = "41", extra: str = "") -> Machine:
    (d / "replay.toml").write_text(REPLAY.format(recording=recording, irq=irq, extra=extra))
    return Machine(load(str(d / "replay.toml"))).run()


def _caps(n: int = 5) -> str:
    return "[" + ", ".join(f'"cap/t{i}"' for i in range(n)) + "]"


def test_the_replay_follows_the_recorded_ramp(captures):
    m = _replay(captures, _caps())
    sc = m.sc.devices[0].arrival
    assert sc.process == "replay" and len(sc.times_s) == 4 and sc.times_s[0] == 0.0
    assert sc.rates[0] < sc.rates[1] < sc.rates[2] < sc.rates[3]  # the ramp, interval by interval
    # a plain device takes about one interrupt per arrival: the ramp's averages per 0.1 s
    for got, want in zip(sc.rates, (42_500, 87_500, 132_500, 177_500)):
        assert abs(got - want) < 0.08 * want
    # and the replaying device sees as many arrivals as the recorded one took interrupts
    recorded = sum(sc.rates) * 0.1
    assert abs(m.lines[0].arrived - recorded) < 0.03 * recorded


def test_a_name_and_a_scale_work(captures):
    base = _replay(captures, _caps(), irq="41").sc.devices[0].arrival.rates
    named = _replay(captures, _caps(), irq="eth0", extra=", scale = 2.0").sc.devices[0].arrival.rates
    assert named == pytest.approx([2 * r for r in base])


def test_an_irqlab_record_database_replays_like_the_captures(captures):
    from irqlab.sources.replay import replay

    snaps = list(replay([str(captures / "cap" / f"t{i}") for i in range(5)]))
    with Recorder(captures / "rec.db") as rec:
        for s in snaps:
            rec.append(s)
    from_db = _replay(captures, '"rec.db"').sc.devices[0].arrival
    from_caps = _replay(captures, _caps()).sc.devices[0].arrival
    assert from_db.rates == pytest.approx(from_caps.rates)
    assert from_db.times_s == pytest.approx(from_caps.times_s)


@pytest.mark.parametrize("recording,irq,extra,key", [
    ('"nope.db"', "41", "", "device[0].arrival.recording"),
    (_caps(1), "41", "", "device[0].arrival.recording"),
    (_caps(), "999", "", "device[0].arrival.recording"),
    (_caps(), "", "", "device[0].arrival.irq"),
    (_caps(), "41", ", scale = -1", "device[0].arrival.scale"),
    (_caps(), "41", ", times_s = [0.0], rates = [1.0]", "device[0].arrival.times_s"),
    ("42", "41", "", "device[0].arrival.recording"),
])
def test_bad_recordings_name_the_key(captures, capsys, recording, irq, extra, key):
    (captures / "bad.toml").write_text(REPLAY.format(recording=recording, irq=irq, extra=extra))
    with pytest.raises(ScenarioError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load(str(captures / "bad.toml"))
    assert main(["sim", str(captures / "bad.toml"), "-q"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0]


def test_without_the_loader_a_recording_is_refused_by_name(captures):
    (captures / "plain.toml").write_text(REPLAY.format(recording=_caps(), irq="41", extra=""))
    with pytest.raises(ScenarioError, match=r"device\[0\]\.arrival\.recording: only `irqlab sim`"):
        load_scenario(captures / "plain.toml")


def test_the_rate_series_needs_two_snapshots():
    with pytest.raises(RateSeriesError):
        irq_rate_series([], "41")


def test_doctor_sim_reads_a_replayed_recording(captures, capsys):
    (captures / "replay.toml").write_text(REPLAY.format(recording=_caps(), irq="41", extra=""))
    assert main(["doctor", "--sim", str(captures / "replay.toml"), "--json"]) in (0, 1, 2)
    assert "nic" in capsys.readouterr().out
