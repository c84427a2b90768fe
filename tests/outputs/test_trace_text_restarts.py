"""The restart estimate is shown only when it is consistent (no more restarts than passes)."""

from __future__ import annotations

from types import SimpleNamespace

from irqlab.outputs.trace_text import passes_lines


def _result(passes: dict, restarts: dict):
    return SimpleNamespace(cpus=tuple(sorted(passes)), passes=passes, restarts=restarts)


def test_a_consistent_estimate_is_printed():
    text = "\n".join(passes_lines(_result({0: 200, 1: 100}, {0: 20, 1: 0})))
    assert "CPU0" in text and " 20 " in text and "10.0" in text and "?" not in text


def test_more_restarts_than_passes_is_shown_as_unknown_with_the_reason():
    lines = passes_lines(_result({0: 755, 1: 100}, {0: 254_000, 1: 3}))
    text = "\n".join(lines)
    assert "254000" not in text
    row0 = next(ln for ln in lines if ln.startswith("CPU0"))
    assert row0.split()[1:] == ["755", "?", "?"]
    assert lines[-1].startswith("? on CPU0:") and "CPU1" not in lines[-1]
