"""The --json event stream schema of docs/watch.md, checked on a stream recorded on this VM.

tests/fixtures/watch/udpflood-apply.jsonl is the output of `irqlab watch --apply --json`
during a real load.sh UDP flood (see docs/watch.md); the unit tests' streams are checked too.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from irqlab.daemon.watch import EventSink

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "watch" / "udpflood-apply.jsonl"

STORM_KEYS = {"key", "class", "subject", "name", "level", "reason", "value", "threshold", "peak", "unit", "cpu", "per_cpu"}
REQUIRED = {
    "start": {"message"},
    "stop": {"message"},
    "reload": {"message"},
    "storm_start": {"interval", "storm"},
    "escalation": {"interval", "storm"},
    "storm_end": {"interval", "storm", "duration_s", "restore_in_s"},
    "action": {"applied", "original", "storm", "kind", "target", "netns", "value", "reason"},
    "skip": {"message"},
    "restore": {"kind", "target", "netns", "value", "changed_to", "outcome", "why"},
    "error": {"message"},
}


def check(event: dict) -> None:
    assert isinstance(event["time"], float)
    assert REQUIRED[event["event"]] <= set(event), event
    if isinstance(event.get("storm"), dict):
        assert set(event["storm"]) == STORM_KEYS
        assert event["storm"]["level"] in ("warn", "act")
    if event["event"] == "action":
        assert event["kind"] in ("affinity", "napi", "coalesce") and isinstance(event["value"], str)
    if event["event"] == "restore" and event["kind"] is not None:
        assert event["outcome"] in ("restored", "gone")


def test_the_recorded_real_stream_follows_the_documented_schema():
    events = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    for e in events:
        check(e)
    applied = [e for e in events if e["event"] == "action" and e["applied"]]
    restored = [e for e in events if e["event"] == "restore"]
    # every knob written in that run was put back (or its device left with its namespace)
    assert sorted((e["target"], e["netns"], e["original"]) for e in applied) == sorted((e["target"], e["netns"], e["value"]) for e in restored)


def test_the_text_form_has_one_line_per_event():
    for line in FIXTURE.read_text().splitlines():
        text = EventSink.text(json.loads(line))
        assert "\n" not in text and text.split()[1] in ("START", "STOP", "STORM_START", "STORM_END", "ESCALATION", "ACTION", "SKIP", "RESTORE", "ERROR", "RELOAD")


def test_the_sink_writes_one_json_object_per_line():
    out = io.StringIO()
    sink = EventSink(out, as_json=True)
    sink.emit("error", message="a\nb")
    sink.emit("skip", message="x")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["message"] == "a\nb"
