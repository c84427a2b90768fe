"""TraceResult's JSON form is lossless: the doctor's saved evidence replays to the same findings."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.model.trace_result import TraceResult
from irqlab.outputs.trace_json import trace_json
from irqlab.tracing.textparse import parse_lines

FLOOD = Path(__file__).resolve().parent.parent / "fixtures" / "trace" / "udpflood-budget8-30ms.txt.gz"


def test_a_trace_result_survives_its_json_form():
    with gzip.open(FLOOD, "rt") as fh:
        result = aggregate_trace(parse_lines(fh))
    assert result.softirqs and any(h.latency for h in result.softirqs)
    back = TraceResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.to_dict() == result.to_dict()
    assert trace_json(back) == trace_json(result)
    assert back.layout == result.layout and back.cpus == result.cpus


def test_another_format_is_refused():
    with pytest.raises(ValueError, match="format"):
        TraceResult.from_dict({"format": 2})
