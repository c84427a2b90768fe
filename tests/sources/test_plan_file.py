"""A plan file: what `irqlab plan` writes reads back as the same writes; a hand edit is checked."""

from __future__ import annotations

import os

import pytest

from irqlab.analysis.placement import LeftAlone, Placement
from irqlab.model.placement import PlaceWrite
from irqlab.outputs.plan_toml import render_plan_toml
from irqlab.sources.plan_file import PlanError, load_plan, parse_plan_text

WRITES = (
    PlaceWrite("affinity", (8,), 'ens1f0 combined queue 0: "quoted" why', irq=100, current=(0, 1)),
    PlaceWrite("rps", (8,), "ens1f0 rx-0", dev="ens1f0", queue=0, current=()),
    PlaceWrite("xps", (9,), "veth1 tx-0", dev="veth1", queue=0, netns="lab", current=None),
)
PLAN = Placement((0, 1, 8, 9), (10, 11), WRITES, (LeftAlone("IRQ 200 (mlx5_comp0)", "managed"),), ("irqbalance runs",))


def test_a_rendered_plan_reads_back_as_the_same_writes():
    text = render_plan_toml(PLAN, "note: made on a test")
    plan = parse_plan_text(text)
    assert plan.housekeeping == (0, 1, 8, 9) and plan.quiet == (10, 11)
    strip = [(w.kind, w.cpus, w.why, w.irq, w.dev, w.queue, w.netns) for w in WRITES]
    assert [(w.kind, w.cpus, w.why, w.irq, w.dev, w.queue, w.netns) for w in plan.writes] == strip


def test_the_current_value_and_the_file_are_comments_a_person_reads():
    text = render_plan_toml(PLAN)
    assert "# /proc/irq/100/smp_affinity_list: now 0-1" in text
    assert "# /sys/class/net/ens1f0/queues/rx-0/rps_cpus: now none (off)" in text
    assert "#   IRQ 200 (mlx5_comp0): managed" in text and "# WARNING: irqbalance runs" in text


def _edited(old: str, new: str) -> str:
    text = render_plan_toml(PLAN)
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("old", "new", "message"), [
    ('irq = 100', 'irqq = 100', "<plan>: write[0].irqq: unknown key (did you mean 'irq'?)"),
    ('kind = "rps"', 'kind = "rfs"', "<plan>: write[1].kind: 'rfs' is not one of affinity, rps, xps"),
    ('cpus = "8"', 'cpus = "8-"', "<plan>: write[0].cpus: not a CPU list like 0-3,8"),
    ('cpus = "8"', 'cpus = "10"', "<plan>: write[0].cpus: CPU 10 is in plan.quiet"),
    ('cpus = "8"', 'cpus = ""', "<plan>: write[0].cpus: empty CPU list: an IRQ needs at least one CPU"),
    ('irq = 100', 'dev = "eth0"', "<plan>: write[0].irq: missing (every affinity write names its irq)"),
    ('queue = 0\ncpus = "8"', 'cpus = "8"', "<plan>: write[1].queue: missing"),
    ('dev = "ens1f0"', 'dev = "ens1f0"\nirq = 3', "<plan>: write[1].irq: not a key of a rps write"),
    ('version = 1', 'version = 2', "<plan>: plan.version: must be one of 1, not 2"),
    ('dev = "veth1"', 'dev = "ens1f0"\nkind = "rps"', "not valid TOML"),
])
def test_a_hand_edit_the_schema_refuses_is_one_line_naming_the_key(old, new, message):
    with pytest.raises(PlanError) as exc:
        parse_plan_text(_edited(old, new))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_the_same_knob_twice_is_refused():
    text = render_plan_toml(PLAN) + '\n[[write]]\nkind = "affinity"\nirq = 100\ncpus = "9"\n'
    with pytest.raises(PlanError, match=r"write\[3\]: IRQ 100 is already set by write\[0\]"):
        parse_plan_text(text)


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal applies to root only")
def test_root_refuses_a_plan_other_users_can_write(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(render_plan_toml(PLAN))
    os.chmod(path, 0o644)
    assert len(load_plan(path).writes) == 3
    os.chmod(path, 0o666)
    with pytest.raises(PlanError, match="writable by a user other than root"):
        load_plan(path)
