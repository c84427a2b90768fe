"""A kernel thread's CPUs as a knob (sched_setaffinity:PID:COMM): the pid must still be that
kernel thread, by comm and PF_KTHREAD, before anything is read or written; values are CPU lists
of online, not isolated CPUs; a thread that is gone at undo is 'gone', never written."""

from __future__ import annotations

import pytest

from irqlab.errors import IrqlabError
from irqlab.mitigate import threads
from irqlab.mitigate.knobs import HostKnobs, KnobFiles, thread_knob
from irqlab.model.knob import Knob
from irqlab.model.placement import PlaceWrite
from mitigate.test_journal import fake_root

PF_KTHREAD_FLAGS = 2129984  # kthreadd's flags on this VM: PF_KTHREAD (0x00200000) among them
USER_FLAGS = 4194560  # a user process's flags: no PF_KTHREAD


def _thread(roots, pid: int, comm: str, flags: int = PF_KTHREAD_FLAGS, allowed: str = "0-3") -> None:
    d = roots.procfs / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    (d / "comm").write_text(comm + "\n")
    (d / "stat").write_text(f"{pid} ({comm}) S 2 0 0 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 25 0 0 "
                            "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
    (d / "status").write_text(f"Name:\t{comm}\nCpus_allowed:\tf\nCpus_allowed_list:\t{allowed}\n")


WRITE = PlaceWrite("thread-affinity", (0, 1), "test", pid=4242, comm="napi/vpa-8193").planned()


def test_the_knob_reads_the_threads_allowed_cpus_once_pid_and_comm_match(tmp_path):
    roots = fake_root(tmp_path)
    _thread(roots, 4242, "napi/vpa-8193")
    assert HostKnobs(roots).knob(WRITE) == thread_knob(4242, "napi/vpa-8193")
    assert HostKnobs(roots).knob(WRITE).target == "sched_setaffinity:4242:napi/vpa-8193"
    assert HostKnobs(roots).read(WRITE) == "0-3"


@pytest.mark.parametrize(("setup", "message"), [
    (lambda r: None, "pid 4242 (napi/vpa-8193) no longer exists"),
    (lambda r: _thread(r, 4242, "napi/vpb-8194"), "pid 4242 is now 'napi/vpb-8194', not 'napi/vpa-8193': the thread no longer exists"),
    (lambda r: _thread(r, 4242, "napi/vpa-8193", flags=USER_FLAGS), "pid 4242 (napi/vpa-8193) is not a kernel thread"),
])
def test_a_pid_that_is_no_longer_the_planned_kthread_is_refused(tmp_path, setup, message):
    roots = fake_root(tmp_path)
    setup(roots)
    with pytest.raises(threads.ThreadGone, match=message.replace("(", r"\(").replace(")", r"\)")):
        HostKnobs(roots).read(WRITE)
    with pytest.raises(threads.ThreadGone):
        threads.identify(roots, 4242, "napi/vpa-8193")


@pytest.mark.parametrize(("value", "message"), [
    ("", "empty CPU list"), ("0-", "not a CPU list"), ("4", "CPU 4 not online"), ("2", "CPU 2 is isolated"),
])
def test_a_new_value_must_be_online_and_not_isolated_cpus(tmp_path, value, message):
    files = KnobFiles(fake_root(tmp_path, isolated="2"))
    with pytest.raises(IrqlabError, match=message):
        files.strict(thread_knob(4242, "napi/vpa-8193"), value)
    assert files.strict(thread_knob(4242, "napi/vpa-8193"), "0,1") == "0-1"


def test_a_target_irqlab_never_writes_is_refused(tmp_path):
    files = KnobFiles(fake_root(tmp_path))
    for target in ("sched_setaffinity:0:x", "sched_setaffinity:12:", "sched_setaffinity:x:napi/a-1", "/proc/12/status"):
        with pytest.raises(IrqlabError, match="not a knob irqlab writes"):
            files.validate(Knob("thread", target), "0")


def test_a_capture_is_never_written_with_sched_setaffinity(tmp_path):
    roots = fake_root(tmp_path)
    _thread(roots, 4242, "napi/vpa-8193")
    with HostKnobs.open(roots, str(tmp_path / "j")) as knobs, pytest.raises(IrqlabError, match="on the live host only"):
        knobs.apply(WRITE)
    assert (roots.procfs / "4242" / "status").read_text().endswith("Cpus_allowed_list:\t0-3\n")


def test_undo_of_a_thread_whose_pid_was_reused_is_gone_and_writes_nothing(tmp_path, monkeypatch):
    roots = fake_root(tmp_path)
    _thread(roots, 4242, "napi/vpa-8193")
    written = []

    def write(roots_, pid, comm, value):  # sched_setaffinity on the fake root: checked exactly as live
        threads.identify(roots_, pid, comm)
        written.append(value)
        _thread(roots_, pid, comm, allowed=value)

    monkeypatch.setattr(threads, "write_thread_affinity", write)
    with HostKnobs.open(roots, str(tmp_path / "j")) as knobs:
        assert knobs.apply(WRITE) == "0-3" and written == ["0-1"]
    _thread(roots, 4242, "kworker/0:1")  # the napi thread was recreated elsewhere; its pid reused
    with HostKnobs.open(roots, str(tmp_path / "j")) as knobs:
        (r,) = knobs.restore()
    assert r.outcome == "gone" and written == ["0-1"]
