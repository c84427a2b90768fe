"""ksoftirqd/N and irq/N-name threads from /proc/PID, one story per quirk."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from irqlab.errors import ParseError
from irqlab.model.snapshot import TaskInfo
from irqlab.sources.fs import Roots
from irqlab.sources.host import read_host
from irqlab.sources.tasks import (
    PF_KTHREAD,
    classify,
    parse_pid_stat,
    parse_schedstat,
    parse_status_allowed,
    policy_name,
    read_tasks,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tasks"

KSOFTIRQD_STAT = (
    "14 (ksoftirqd/0) S 2 0 0 0 -1 69238848 0 0 0 0 2 0 0 0 20 0 1 0 14 0 0 "
    "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
)


def capture(name: str) -> Roots:
    return Roots.capture(FIXTURES / name)


def by_comm(tasks: tuple[TaskInfo, ...]) -> dict[str, TaskInfo]:
    return {t.comm: t for t in tasks}


# --- pure parsers -----------------------------------------------------------------------------


def test_stat_fields_by_proc5_number() -> None:
    stat = parse_pid_stat(KSOFTIRQD_STAT)
    assert stat["pid"] == 14 and stat["comm"] == "ksoftirqd/0" and stat["state"] == "S"
    assert (stat["ppid"], stat["utime"], stat["stime"], stat["nice"]) == (2, 2, 0, 0)
    assert (stat["processor"], stat["rt_priority"], stat["policy"]) == (0, 0, 0)
    assert int(stat["flags"]) & PF_KTHREAD


def test_stat_comm_ends_at_the_last_parenthesis() -> None:
    text = KSOFTIRQD_STAT.replace("(ksoftirqd/0)", "(a) b (c)) 1 2 (x)")
    stat = parse_pid_stat(text)
    assert stat["comm"] == "a) b (c)) 1 2 (x"
    assert stat["ppid"] == 2 and stat["policy"] == 0


def test_stat_of_a_fifo_thread_has_negative_priority() -> None:
    text = (FIXTURES / "vm-6.18-2cpu" / "proc" / "50" / "stat").read_text()
    stat = parse_pid_stat(text)
    assert (stat["priority"], stat["rt_priority"], stat["policy"]) == (-51, 50, 1)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("14 ksoftirqd/0 S 2", "14 ksoftirqd/0 S 2"),
        ("14 (ksoftirqd/0) S 2 0 0", "14 (ksoftirqd/0) S 2 0 0"),  # too few fields
        (KSOFTIRQD_STAT.replace(" 2 0 0 0 20 ", " 2 x 0 0 20 "), "x"),  # stime, field 15
        ("x4 (a) " + KSOFTIRQD_STAT.split(") ", 1)[1], "x4"),
    ],
)
def test_stat_errors_name_the_token(text: str, token: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_pid_stat(text, "/proc/14/stat")
    assert info.value.path == "/proc/14/stat" and info.value.token == token[:40]


def test_schedstat_run_time_is_the_first_number() -> None:
    assert parse_schedstat("27580066 29961697 600\n") == 27580066
    for bad in ("", "-5 0 0", "x 0 0"):
        with pytest.raises(ParseError):
            parse_schedstat(bad)


def test_status_prefers_the_list_and_falls_back_to_the_mask() -> None:
    assert parse_status_allowed("Name:\tx\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n") == (0, 1)
    assert parse_status_allowed("Cpus_allowed:\t00000000,00000002\n") == (1,)
    assert parse_status_allowed("Name:\tx\n") is None
    with pytest.raises(ParseError) as info:
        parse_status_allowed("Name:\tx\nCpus_allowed_list:\t0-z\n", "/proc/9/status")
    assert info.value.line == 2


def test_classify_knows_ksoftirqd_and_irq_threads_only() -> None:
    assert classify("ksoftirqd/17") == ("ksoftirqd", 17, None)
    assert classify("irq/45-eth0-TxR") == ("irq", None, 45)
    assert classify("irq/45-s-eth0-T") == ("irq", None, 45)  # forced-threading secondary
    for other in ("ksoftirqd/", "ksoftirqd/1x", "irq_work/3", "irq/12345678901", "kworker/0:1", "irqbalance"):
        assert classify(other) is None, other


def test_policy_numbers_the_table_lacks_stay_visible() -> None:
    assert policy_name(1) == "fifo" and policy_name(0) == "other"
    assert policy_name(7) == "ext"  # SCHED_EXT (Linux >= 6.12)
    assert policy_name(42) == "policy42"  # a number no kernel has yet


stat_like = st.text(alphabet="0123456789 ()-SRabc/\n", max_size=200)


@given(st.one_of(st.text(max_size=200), stat_like))
def test_task_parsers_raise_only_parse_errors(text: str) -> None:
    for parse in (parse_pid_stat, parse_schedstat, parse_status_allowed):
        try:
            parse(text, "fuzz")
        except ParseError:
            pass


@given(st.text(alphabet="0123456789-", min_size=1, max_size=6).filter(lambda s: s.strip("-")))
def test_status_fuzz_inside_the_list_line(value: str) -> None:
    try:
        parse_status_allowed(f"Name:\tx\nCpus_allowed_list:\t{value}\n", "fuzz")
    except ParseError:
        pass


# --- machines ---------------------------------------------------------------------------------


def test_threadirqs_machine_has_a_fifo_thread_per_action() -> None:
    tasks, problems = read_tasks(capture("threadirqs-4cpu"))
    assert problems == []
    assert [t.comm for t in tasks] == [
        "ksoftirqd/0",
        "ksoftirqd/1",
        "ksoftirqd/2",
        "ksoftirqd/3",
        "irq/9-acpi",
        "irq/16-ehci_hcd",
        "irq/16-i801_smb",
        "irq/45-eth0-TxR",
        "irq/45-s-eth0-T",
        "irq/121-nvme0q1",
    ]
    irq_threads = [t for t in tasks if t.kind == "irq"]
    assert {(t.policy, t.rt_priority) for t in irq_threads} == {("fifo", 50)}
    assert [t.irq for t in irq_threads] == [9, 16, 16, 45, 45, 121]
    k2 = by_comm(tasks)["ksoftirqd/2"]
    assert (k2.cpu, k2.irq, k2.allowed_cpus, k2.last_cpu, k2.stime_ticks) == (2, None, (2,), 2, 312)
    assert k2.run_ns == 3100000002 and k2.policy == "other" and k2.cpu_ticks == 312


def test_truncated_names_are_kept_as_the_kernel_shows_them() -> None:
    tasks, _ = read_tasks(capture("threadirqs-4cpu"))
    eth = by_comm(tasks)["irq/45-eth0-TxR"]  # irq/45-eth0-TxRx-0 cut at 15 characters
    assert eth.irq == 45 and len(eth.comm) == 15


def test_newer_kernels_show_full_kernel_thread_names() -> None:
    tasks, problems = read_tasks(capture("long-comm-6.8"))
    assert problems == []
    assert [(t.comm, t.irq) for t in tasks if t.kind == "irq"] == [
        ("irq/45-eth0-TxRx-0", 45),
        ("irq/156-ELAN0001:00", 156),
        ("irq/201-mlx5_comp0@pci:0000:41:00.0", 201),
    ]


def test_names_with_parentheses_and_impostors() -> None:
    tasks, problems = read_tasks(capture("comm-quirks"))
    assert problems == []
    # 4242 calls itself ksoftirqd/9 but lacks PF_KTHREAD; 150 exited after its comm read,
    # 151 after its stat read.
    assert [(t.pid, t.comm, t.irq) for t in tasks] == [(133, "irq/33-pwr (b))", 33)]
    assert tasks[0].allowed_cpus == (1,) and tasks[0].stime_ticks == 9


def test_kernel_2_6_32_without_schedstat_or_cpu_list() -> None:
    tasks, problems = read_tasks(capture("old-2.6.32-nosched"))
    assert problems == []
    assert [(t.comm, t.run_ns, t.allowed_cpus) for t in tasks] == [
        ("ksoftirqd/0", None, (0,)),
        ("ksoftirqd/1", None, (1,)),
        ("irq/19-ata_piix", None, (1,)),
    ]
    assert (tasks[2].policy, tasks[2].rt_priority) == ("rr", 49)  # retuned with chrt -r


def test_the_real_threads_of_this_vm() -> None:
    tasks, problems = read_tasks(capture("vm-6.18-2cpu"))
    assert problems == []
    assert [(t.pid, t.comm, t.kind, t.cpu, t.irq) for t in tasks] == [
        (14, "ksoftirqd/0", "ksoftirqd", 0, None),
        (22, "ksoftirqd/1", "ksoftirqd", 1, None),
        (50, "irq/24-ACPI:Ged", "irq", None, 24),
        (51, "irq/25-ACPI:Ged", "irq", None, 25),
    ]
    assert [t.policy for t in tasks] == ["other", "other", "fifo", "fifo"]
    assert all(t.run_ns and t.run_ns > 0 for t in tasks)


# --- pruning by kthreadd's children ---------------------------------------------------------


def test_pruning_reads_only_kthreadds_children(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "threadirqs-4cpu", tmp_path / "c")
    roots = Roots.capture(tmp_path / "c")
    full, _ = read_tasks(roots, prune=False)
    assert read_tasks(roots, prune=True)[0] == full  # the children file lists them all
    (roots.procfs / "2" / "task" / "2" / "children").write_text("14 22 29 36 ")
    pruned, _ = read_tasks(roots, prune=True)
    assert [t.kind for t in pruned] == ["ksoftirqd"] * 4  # the list was used, not a scan


def test_pruning_without_a_children_file_scans_everything() -> None:
    roots = capture("comm-quirks")  # no /proc/2/task/2/children
    assert read_tasks(roots, prune=True) == read_tasks(roots, prune=False)


def test_captures_are_scanned_not_pruned(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "threadirqs-4cpu", tmp_path / "c")
    roots = Roots.capture(tmp_path / "c")
    (roots.procfs / "2" / "task" / "2" / "children").write_text("")  # stale, empty
    assert len(read_tasks(roots)[0]) == 10


def test_no_proc_at_all_is_one_missing_entry(tmp_path: Path) -> None:
    tasks, problems = read_tasks(Roots(tmp_path / "nope", tmp_path))
    assert tasks == () and [p.reason for p in problems] == ["missing"]


def test_garbled_stat_is_reported_once_per_kind(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "threadirqs-4cpu", tmp_path / "c")
    roots = Roots.capture(tmp_path / "c")
    for pid in (101, 102):
        (roots.procfs / str(pid) / "stat").write_text(f"{pid} (irq/x) S 2\n")
    tasks, problems = read_tasks(roots)
    assert len(tasks) == 8 and 101 not in {t.pid for t in tasks}
    assert [(p.source, p.reason) for p in problems] == [("tasks", "parse")]
    assert problems[0].path.endswith("/101/stat")


# --- this machine ------------------------------------------------------------------------------


@pytest.mark.live
def test_live_ksoftirqd_per_online_cpu_with_policy_other() -> None:
    t0 = time.perf_counter()
    tasks, problems = read_tasks(Roots())
    elapsed = time.perf_counter() - t0
    assert problems == []
    ksoftirqd = {t.cpu: t for t in tasks if t.kind == "ksoftirqd"}
    online = read_host(Roots()).online_cpus
    assert online, "no /sys/devices/system/cpu/online"
    assert {0, 1} <= set(ksoftirqd) or len(online) < 2
    for cpu in online:
        task = ksoftirqd[cpu]
        assert task.comm == f"ksoftirqd/{cpu}" and task.policy == "other" and task.rt_priority == 0
        assert task.allowed_cpus == (cpu,)  # a per-CPU thread, bound to its CPU
        assert Path(f"/proc/{task.pid}/comm").read_text().strip() == task.comm
    # Pruned (live default) and full scans find the same threads.
    assert [t.pid for t in read_tasks(Roots(), prune=False)[0]] == [t.pid for t in tasks]
    print(f"\nlive task scan: {elapsed * 1e3:.1f} ms, {len(tasks)} threads")


# --- the ksoftirqd pids a trace counts as ksoftirqd's ----------------------------------------


def test_ksoftirqd_pids_come_from_the_given_root_not_the_live_proc() -> None:
    from irqlab.sources.tasks import ksoftirqd_pids

    assert ksoftirqd_pids(capture("vm-6.18-2cpu")) == (14, 22)
    assert ksoftirqd_pids(capture("threadirqs-4cpu")) == tuple(t.pid for t in read_tasks(capture("threadirqs-4cpu"))[0] if t.kind == "ksoftirqd")
    assert len(ksoftirqd_pids(capture("threadirqs-4cpu"))) == 4


def test_ksoftirqd_pids_of_an_unlistable_root_are_none(tmp_path: Path) -> None:
    from irqlab.sources.tasks import ksoftirqd_pids

    assert ksoftirqd_pids(Roots(tmp_path / "proc", tmp_path / "sys")) == ()
