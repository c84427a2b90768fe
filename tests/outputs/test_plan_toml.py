"""The plan file of the 2-socket machine (4-queue NIC on node 1, managed queues, CPUs 10-15
quiet, irqbalance running), as a person reads it: golden."""

from __future__ import annotations

from analysis.test_placement import QUIET, _map
from irqlab.analysis.placement import plan_placement
from irqlab.outputs.plan_toml import render_plan_toml
from irqlab.sources.plan_file import parse_plan_text


def test_the_2_socket_plan_file_matches_golden_and_reads_back(golden):
    p = plan_placement(_map(), QUIET, irqbalance_pid=812)
    text = render_plan_toml(p, "made from a hand-written 2-socket map")
    golden("plan-2socket.toml", text)
    assert [w.target for w in parse_plan_text(text).writes] == [w.target for w in p.writes]
