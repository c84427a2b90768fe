"""`irqlab top --replay FILE.db` reads a recording made by `irqlab record` like a capture sequence."""

from __future__ import annotations

import json

import pytest

from irqlab.cli.main import EXIT_ERROR, main
from irqlab.errors import CaptureError
from irqlab.sources.replay import Replayer, check_captures

CAPTURES = __import__("pathlib").Path(__file__).resolve().parent.parent / "fixtures" / "captures"


@pytest.fixture
def recording(tmp_path, capsys):
    """A real recording of the project's two flood captures (irqlab record --procfs ...)."""
    db = tmp_path / "flood.db"
    for name in ("a", "b"):
        root = CAPTURES / "vm-udpflood" / name
        assert main(["record", "-o", str(db), "--procfs", str(root / "proc"), "--sysfs", str(root / "sys"), "0.01", "1"]) == 0
    capsys.readouterr()
    return db


def test_a_recording_replays_as_snapshots_with_their_recorded_times(recording, capsys):
    code = main(["top", "--replay", str(recording), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and lines
    doc = json.loads(lines[0])
    rx = next(v for v in doc["softirqs"] if v["vector"] == "NET_RX")
    assert rx["total_rate"] > 1000  # the flood's NET_RX, from the recorded counters


def test_replayer_counts_the_recorded_samples(recording):
    rep = Replayer([str(recording)])
    assert rep.total >= 2
    first, second = rep(), rep()
    assert first is not None and second is not None and second.taken_ns >= first.taken_ns


def test_a_missing_capture_is_one_line_naming_it(capsys, tmp_path):
    code = main(["top", "--replay", str(tmp_path / "nope"), str(tmp_path / "nope2"), "--once"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and err.count("\n") == 1
    assert f"{tmp_path / 'nope'}: not a capture directory" in err


def test_capture_error_with_a_path_reads_as_one_line():
    assert str(CaptureError("/x", "bad")) == "/x: bad"
    assert str(CaptureError("just a message")) == "just a message"
    with pytest.raises(CaptureError, match="at least two"):
        check_captures(["/only-one"])
