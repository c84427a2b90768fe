"""A plan with a threaded-NAPI kthread's write: the TOML names it by pid and comm, reads back
the same, and the schema refuses a thread-affinity write that is missing a name or mixes kinds."""

from __future__ import annotations

import pytest

from analysis.test_placement import ONLINE, QUIET, _map, _napi_task
from irqlab.analysis.placement import plan_placement
from irqlab.outputs.plan_toml import render_plan_toml
from irqlab.sources.plan_file import PlanError, parse_plan_text


def _text() -> str:
    p = plan_placement(_map(), QUIET, tasks=[_napi_task(900, "napi/ens1f0-8193", ONLINE)])
    return render_plan_toml(p)


def test_a_thread_affinity_write_round_trips_through_the_plan_file():
    text = _text()
    assert ('[[write]]\n# sched_setaffinity(pid 900): now 0-15\nkind = "thread-affinity"\npid = 900\n'
            'comm = "napi/ens1f0-8193"\ncpus = "0-9"\n') in text
    assert "new pid, default CPUs" in text  # the header says a placement dies with the thread
    p = plan_placement(_map(), QUIET, tasks=[_napi_task(900, "napi/ens1f0-8193", ONLINE)])
    back = parse_plan_text(text).writes
    assert [(w.kind, w.pid, w.comm, w.cpus, w.target) for w in back] == [(w.kind, w.pid, w.comm, w.cpus, w.target) for w in p.writes]


def test_a_plan_without_threads_says_nothing_of_them():
    assert "thread" not in render_plan_toml(plan_placement(_map(), QUIET))


@pytest.mark.parametrize(("old", "new", "message"), [
    ('comm = "napi/ens1f0-8193"\n', "", "write[17].comm: missing (every thread-affinity write names its pid and comm)"),
    ("pid = 900\n", "pid = 900\nirq = 3\n", "write[17].irq: not a key of a thread-affinity write"),
    ("pid = 900\n", "pid = 0\n", "write[17].pid: "),
    ('cpus = "0-9"', 'cpus = ""', "write[17].cpus: empty CPU list: a thread needs at least one CPU"),
    ('cpus = "0-9"', 'cpus = "0-10"', "write[17].cpus: CPU 10 is in plan.quiet"),
    ('kind = "rps"\ndev = "ens1f0"\nqueue = 0\n', 'kind = "rps"\ndev = "ens1f0"\nqueue = 0\npid = 4\n',
     "write[4].pid: not a key of a rps write"),
])
def test_the_schema_refuses_a_bad_thread_write_in_one_line(old, new, message):
    text = _text()
    assert old in text
    with pytest.raises(PlanError) as exc:
        parse_plan_text(text.replace(old, new, 1))
    assert message in str(exc.value) and "\n" not in str(exc.value)
