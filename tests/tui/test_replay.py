"""`--replay DIR...`: captures read in order as snapshots, for the TUI and the plain tables."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest_top import SYNTH96, VM_FLOOD

from irqlab.cli.main import EXIT_ERROR, EXIT_USAGE, main
from irqlab.errors import CaptureError
from irqlab.sources.replay import Replayer, replay


def test_replay_yields_one_snapshot_per_capture_in_order():
    snaps = list(replay(SYNTH96))
    assert [s.taken_ns for s in snaps] == sorted(s.taken_ns for s in snaps)
    assert [s.origin for s in snaps] == [str(d) for d in SYNTH96]


def test_replayer_returns_none_at_the_end():
    r = Replayer(SYNTH96[:2])
    assert r() is not None and r() is not None and r() is None
    assert r.position == 2 and r.total == 2


def test_captures_out_of_order_are_refused():
    with pytest.raises(CaptureError, match="oldest first"):
        list(replay([SYNTH96[1], SYNTH96[0]]))


def test_a_directory_that_is_not_a_capture_is_named(tmp_path):
    with pytest.raises(CaptureError, match="not a capture directory"):
        list(replay([SYNTH96[0], tmp_path]))
    with pytest.raises(CaptureError, match="at least two"):
        list(replay([SYNTH96[0]]))


def test_plain_replay_prints_one_report_per_interval(capsys):
    code = main(["top", "--replay", *map(str, VM_FLOOD)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("hard IRQs (interrupts/s") == 3
    assert "NET_RX" in out


def test_plain_replay_honours_count_and_json(capsys):
    code = main(["top", "1", "2", "--json", "--replay", *map(str, SYNTH96)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert json.loads(lines[0])["interval_s"] == pytest.approx(1.0)


def test_bad_replay_input_gives_one_line_and_an_error_exit(capsys, tmp_path):
    code = main(["top", "--replay", str(SYNTH96[0]), str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and err.count("\n") == 1 and str(tmp_path) in err
    code = main(["top", "--replay", str(SYNTH96[0]), str(SYNTH96[1]), "--procfs", "/proc"])
    assert code == EXIT_USAGE


def test_broken_interrupts_file_in_a_replay_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "t1"
    shutil.copytree(SYNTH96[1], bad)
    lines = (bad / "proc" / "interrupts").read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split()[1], "12x4", 1)
    (bad / "proc" / "interrupts").write_text("\n".join(lines) + "\n")
    code = main(["top", "--replay", str(SYNTH96[0]), str(bad)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "line 3" in err and "12x4" in err


def test_the_sampler_rereads_irq_directories_only_when_their_refresh_period_passed():
    from irqlab.sources.fs import Roots
    from irqlab.sources.sampler import Sampler, SampleSpec

    now = [0]
    sampler = Sampler(Roots.capture(SYNTH96[0]), SampleSpec(refresh={"irqinfo": 10.0}), clock=lambda: now[0])
    first = sampler.take()
    now[0] = 4_000_000_000
    second = sampler.take()
    assert first.irqinfo and second.irqinfo is first.irqinfo
    assert [s.reused for s in second.statuses if s.source == "irqinfo"] == [True]
    now[0] = 10_000_000_000
    third = sampler.take()
    assert third.irqinfo is not first.irqinfo and third.irqinfo.keys() == first.irqinfo.keys()
    assert [s.reused for s in third.statuses if s.source == "irqinfo"] == [False]
