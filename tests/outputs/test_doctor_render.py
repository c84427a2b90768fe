"""The doctor's text and JSON show each cause's chain, its actions (command, undo) and the symptoms it folds."""

from __future__ import annotations

import json

from builders import interrupts, snapshot
from irqlab.analysis.actions import Action, ActionNamespace
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.findings import Finding, Severity
from irqlab.outputs import jsonout
from irqlab.outputs.doctor_json import doctor_json
from irqlab.outputs.doctor_text import render_doctor, render_finding

ACTION = Action("rps", "/sys/class/net/veth1/queues/rx-0/rps_cpus", "1", "2", "rps_cpus=1 steers every packet to CPU0",
                "its NET_RX runs on CPU1", ActionNamespace("netns x", "x", 900))
SYMPTOM = Finding(Severity.WARNING, "irq-time", "CPU0", "CPU0 spends 81 % of its time in interrupt context", metrics={"cpu": 0, "pct": 81.0})
CAUSE = Finding(
    Severity.CRITICAL, "cause-rps", "NET_RX on CPU0", "NET_RX takes 81 % of CPU0, from RPS on veth1 rx-0 (netns x)",
    ("NET_RX 720.0k runs/s on CPU0: 81 % of the CPU (estimated)", "<- RPS: rps_cpus=1 on veth1 rx-0 (netns x)",
     "-> stress-ng-cpu (pid 950, OTHER) waited 79 % of the sample, ran 19 %"),
    "apply the actions below (each with its undo)", {"cpu": 0, "harm": 160.0}, (ACTION,), (SYMPTOM,),
)


def _rates():
    a = snapshot(0, interrupts=interrupts([0, 1], [("41", "eth0", [0, 0])]))
    b = snapshot(1, interrupts=interrupts([0, 1], [("41", "eth0", [1, 1])]))
    return compute_rates(a, b)


def test_text_shows_the_chain_each_actions_command_and_undo_and_what_it_folds():
    out = render_doctor([CAUSE], _rates())
    assert "         <- RPS: rps_cpus=1 on veth1 rx-0 (netns x)\n" in out
    assert "         -> stress-ng-cpu (pid 950, OTHER) waited 79 % of the sample, ran 19 %\n" in out
    assert "         $ ip netns exec x sh -c 'echo 2 > /sys/class/net/veth1/queues/rx-0/rps_cpus'\n" in out
    assert "           /sys/class/net/veth1/queues/rx-0/rps_cpus (in netns x): 1 -> 2; rps_cpus=1 steers every packet to CPU0\n" in out
    assert "           expect: its NET_RX runs on CPU1\n" in out
    assert "           undo: ip netns exec x sh -c 'echo 1 > /sys/class/net/veth1/queues/rx-0/rps_cpus'\n" in out
    assert "         explains warning [irq-time: CPU0] CPU0 spends 81 % of its time in interrupt context\n" in out


def test_a_finding_without_actions_renders_as_it_always_did():
    assert render_finding(SYMPTOM) == [
        "WARNING  CPU0 spends 81 % of its time in interrupt context  [irq-time: CPU0]",
    ]


def test_json_carries_actions_and_folded_symptoms():
    out = json.loads(jsonout.dumps(doctor_json([CAUSE], _rates(), 2)))
    f = out["findings"][0]
    assert f["actions"] == [{
        "kind": "rps", "path": "/sys/class/net/veth1/queues/rx-0/rps_cpus",
        "namespace": {"label": "netns x", "name": "x", "pid": 900, "enter": "ip netns exec x"},
        "old": "1", "new": "2", "why": "rps_cpus=1 steers every packet to CPU0", "effect": "its NET_RX runs on CPU1",
        "command": "ip netns exec x sh -c 'echo 2 > /sys/class/net/veth1/queues/rx-0/rps_cpus'",
        "undo": "ip netns exec x sh -c 'echo 1 > /sys/class/net/veth1/queues/rx-0/rps_cpus'",
    }]
    assert f["folded"] == [{"severity": "warning", "code": "irq-time", "subject": "CPU0", "title": SYMPTOM.title}]


def test_a_symptom_in_json_has_empty_actions_and_folded():
    f = doctor_json([SYMPTOM], _rates(), 1)["findings"][0]
    assert (f["actions"], f["folded"]) == ([], [])
