"""rps_cpus and xps_cpus as knobs: journaled like every other, validated as hex CPU masks."""

from __future__ import annotations

import pytest

from irqlab.errors import IrqlabError
from irqlab.mitigate.knobs import HostKnobs, KnobFiles, queue_knob
from irqlab.mitigate.queues import validate_queue
from irqlab.model.knob import Knob, KnobRefused, PlannedWrite
from irqlab.model.placement import PlaceWrite
from mitigate.test_journal import fake_root, read


def _roots(tmp_path, isolated=""):
    roots = fake_root(tmp_path, isolated)
    for q in ("rx-0", "tx-0"):
        (roots.sysfs / "class" / "net" / "eth0" / "queues" / q).mkdir(parents=True)
    roots.sys("class", "net", "eth0", "queues", "rx-0", "rps_cpus").write_text("0\n")
    roots.sys("class", "net", "eth0", "queues", "tx-0", "xps_cpus").write_text("f\n")
    return roots


RPS = PlaceWrite("rps", (1, 2), "test", dev="eth0", queue=0).planned()


def test_a_plan_rps_write_is_a_queue_knob_written_as_a_mask_and_restored(tmp_path):
    roots = _roots(tmp_path)
    assert RPS.value == "6" and RPS.kind == "queue"
    with HostKnobs.open(roots, str(tmp_path / "j")) as knobs:
        assert knobs.knob(RPS) == Knob("queue", "/sys/class/net/eth0/queues/rx-0/rps_cpus")
        assert knobs.apply(RPS) == "0"
        assert read(roots.sys("class", "net", "eth0", "queues", "rx-0", "rps_cpus")) == "6"
        assert [r.outcome for r in knobs.restore()] == ["restored"]
    assert read(roots.sys("class", "net", "eth0", "queues", "rx-0", "rps_cpus")) == "0"


def test_a_new_mask_may_not_name_an_isolated_or_offline_cpu_but_an_original_may(tmp_path):
    roots = _roots(tmp_path, isolated="2")
    with HostKnobs.open(roots, str(tmp_path / "j")) as knobs:
        with pytest.raises(IrqlabError, match="CPU 2 is isolated"):
            knobs.apply(RPS)
        with pytest.raises(IrqlabError, match="CPU 4 not online"):
            knobs.apply(PlaceWrite("xps", (4,), "t", dev="eth0", queue=0).planned())
    files = KnobFiles(roots)
    assert files.validate(queue_knob("eth0", "queues/tx-0/xps_cpus", None), "ff") == "ff"  # an original
    assert read(roots.sys("class", "net", "eth0", "queues", "rx-0", "rps_cpus")) == "0"


@pytest.mark.parametrize(("dev", "attr", "value", "message"), [
    ("eth0", "queues/rx-0/rps_flow_cnt", "1", "not a queue knob"),
    ("eth0", "queues/rx-0/xps_cpus", "1", "not a queue knob"),
    ("eth0", "queues/rx-0/rps_cpus", "0x3", "not a hex CPU mask"),
    ("../x", "queues/rx-0/rps_cpus", "1", "not a valid interface name"),
])
def test_queue_values_and_files_irqlab_refuses(dev, attr, value, message):
    with pytest.raises(IrqlabError, match=message):
        validate_queue(dev, attr, value)


def test_a_look_alike_path_is_not_a_knob(tmp_path):
    files = KnobFiles(_roots(tmp_path))
    with pytest.raises(IrqlabError, match="not a knob irqlab writes"):
        files.read(Knob("queue", "/sys/class/net/eth0/queues/rx-0/../../../../etc/x"))
    with pytest.raises(KnobRefused, match="no journal is open"):
        HostKnobs(files.roots).apply(PlannedWrite("queue", "q", "1", "t", dev="eth0", attr="queues/rx-0/rps_cpus"))
