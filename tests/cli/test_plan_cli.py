"""`irqlab plan` and `irqlab apply` on a copy of a capture of this VM: the plan file, the dry
run's lines, preflight refusals, --yes through the journal and --undo, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from irqlab.cli.main import main

VM = Path(__file__).resolve().parent.parent / "fixtures" / "map" / "vm-6.18-2cpu"


@pytest.fixture
def vm(tmp_path, monkeypatch):
    """A writable copy of the capture, and a private knob registry (IRQLAB_RUN_DIR)."""
    monkeypatch.setenv("IRQLAB_RUN_DIR", str(tmp_path / "run"))
    root = tmp_path / "vm"
    shutil.copytree(VM, root, symlinks=True)
    return root


def _args(root: Path) -> list[str]:
    return ["--procfs", str(root / "proc"), "--sysfs", str(root / "sys")]


def _plan(vm: Path, capsys, *extra: str) -> Path:
    out = vm.parent / "p.toml"
    assert main(["plan", *_args(vm), "-o", str(out), *extra]) == 0
    capsys.readouterr()
    out.chmod(0o644)
    return out


def test_plan_of_the_capture_leaves_its_queue_irqs_alone_and_plans_rps(vm, capsys):
    text = _plan(vm, capsys).read_text()
    assert "#   IRQ 38 (virtio2-input.0): unknown: a capture does not record" in text
    # eth0's queue IRQs stay: its RPS follows the rx IRQ's effective CPU (1); a device without IRQs spreads from CPU 0
    assert 'kind = "rps"\ndev = "eth0"\nqueue = 0\ncpus = "1"' in text
    assert 'kind = "rps"\ndev = "ifb0"\nqueue = 0\ncpus = "0"' in text
    assert "lo" not in [line.split('"')[1] for line in text.splitlines() if line.startswith("dev = ")]


def test_dry_run_prints_every_write_with_its_current_value_and_writes_nothing(vm, capsys):
    plan = _plan(vm, capsys, "--dev", "eth0")
    rps = vm / "sys" / "class" / "net" / "eth0" / "queues" / "rx-0" / "rps_cpus"
    before = rps.read_bytes()
    assert main(["apply", *_args(vm), str(plan)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "eth0 rx-0 rps_cpus  /sys/class/net/eth0/queues/rx-0/rps_cpus  0 -> 2 (CPUs 1)  # eth0 rx-0: steer to its queue's CPU",
        "dry run: 1 write(s) would change a value; nothing was written (--yes writes them)",
    ]
    assert rps.read_bytes() == before and not (vm.parent / "j").exists()


def test_a_write_preflight_refuses_stops_the_whole_plan(vm, capsys):
    plan = _plan(vm, capsys, "--dev", "eth0")
    plan.write_text(plan.read_text() + '\n[[write]]\nkind = "affinity"\nirq = 999\ncpus = "1"\n'
                    '\n[[write]]\nkind = "affinity"\nirq = 38\ncpus = "5"\n')
    assert main(["apply", *_args(vm), str(plan), "--yes", "--journal", str(vm.parent / "j")]) == 3
    cap = capsys.readouterr()
    assert "IRQ 999  /proc/irq/999/smp_affinity_list" not in cap.out  # the live path is not the capture's
    assert "REFUSED: IRQ 999 does not exist" in cap.out and "REFUSED: no online CPU in the list" in cap.out
    assert "2 write(s) refused by preflight; nothing was written" in cap.err
    assert not (vm.parent / "j").exists()


def test_yes_writes_through_the_journal_and_undo_puts_every_byte_back(vm, capsys):
    plan = _plan(vm, capsys)
    plan.write_text(plan.read_text() + '\n[[write]]\nkind = "affinity"\nirq = 38\ncpus = "1"\n')
    files = [vm / "proc" / "irq" / "38" / "smp_affinity_list"] + sorted((vm / "sys" / "class" / "net").glob("*/queues/rx-0/rps_cpus"))
    before = {f: f.read_bytes() for f in files}
    journal = str(vm.parent / "j")
    assert main(["apply", *_args(vm), str(plan), "--yes", "--journal", journal]) == 0
    out = capsys.readouterr().out
    assert "IRQ 38" in out and "0-1 -> 1  written" in out and "applied: 4 write(s) journaled" in out
    assert files[0].read_text() == "1\n"
    # a second plan while the first is in place is refused: --undo first
    assert main(["apply", *_args(vm), str(plan), "--yes", "--journal", journal]) == 3
    assert "still in place; run `irqlab apply --undo" in capsys.readouterr().err
    assert main(["apply", *_args(vm), "--undo", "--journal", journal]) == 0
    assert capsys.readouterr().out.count("restored") == 4
    assert {f: f.read_bytes() for f in files} == before
    assert main(["apply", *_args(vm), "--undo", "--journal", journal]) == 0
    assert "has nothing pending" in capsys.readouterr().out


def test_a_bad_plan_is_one_line_and_exit_3(vm, capsys):
    bad = vm.parent / "bad.toml"
    bad.write_text('[[write]]\nkind = "affinity"\nirq = 38\ncpu = "1"\n')
    bad.chmod(0o644)
    assert main(["apply", *_args(vm), str(bad)]) == 3
    err = capsys.readouterr().err
    assert f"{bad}: write[0].cpu: unknown key (did you mean 'cpus'?)" in err and err.count("\n") == 1


def test_usage_errors(vm, capsys):
    assert main(["apply", *_args(vm)]) == 64
    assert main(["apply", *_args(vm), "x.toml", "--undo"]) == 64
    assert main(["plan", *_args(vm), "--cpus-housekeeping", "7"]) == 64
    assert main(["plan", *_args(vm), "--dev", "nope0"]) == 64
    assert "no such network device" in capsys.readouterr().err


def test_a_knob_a_plan_holds_is_refused_to_another_journal_such_as_watchs(vm, capsys):
    from irqlab.mitigate.knobs import HostKnobs
    from irqlab.model.knob import KnobRefused
    from irqlab.model.placement import PlaceWrite
    from irqlab.sources.fs import Roots

    plan = _plan(vm, capsys, "--dev", "eth0")
    journal = str(vm.parent / "j")
    assert main(["apply", *_args(vm), str(plan), "--yes", "--journal", journal]) == 0
    capsys.readouterr()
    rps = PlaceWrite("rps", (0,), "watch", dev="eth0", queue=0).planned()
    with HostKnobs.open(Roots(vm / "proc", vm / "sys"), str(vm.parent / "watch.journal")) as watch:
        with pytest.raises(KnobRefused, match=f"journal {journal} of a stopped irqlab still holds its original"):
            watch.apply(rps)
    assert main(["apply", *_args(vm), "--undo", "--journal", journal]) == 0


def test_apply_preflights_vector_space_with_the_plans_own_moves_counted(vm, capsys, monkeypatch):
    """A move onto a CPU with no free vector is refused before anything is written (ENOSPC predicted);
    a write that keeps the IRQ on its current CPU needs no new vector and passes."""
    from irqlab.analysis import irqvectors

    plan = _plan(vm, capsys, "--dev", "eth0")
    plan.write_text(plan.read_text() + '\n[[write]]\nkind = "affinity"\nirq = 38\ncpus = "0"\n')
    monkeypatch.setattr(irqvectors, "ESTIMATED_CAPACITY", 0)  # every CPU's vectors taken
    assert main(["apply", *_args(vm), str(plan), "--yes", "--journal", str(vm.parent / "j")]) == 3
    cap = capsys.readouterr()
    assert "REFUSED: no free interrupt vector on CPU 0 (estimated: " in cap.out and "ENOSPC" in cap.out
    assert not (vm.parent / "j").exists()
    plan.write_text(plan.read_text().replace('irq = 38\ncpus = "0"', 'irq = 38\ncpus = "1"'))
    assert main(["apply", *_args(vm), str(plan)]) == 0  # IRQ 38 is on CPU1 already: it keeps its vector


def _napi_thread(vm: Path, pid: int, comm: str, flags: int = 2129984, allowed: str = "0-1") -> None:
    """A threaded-NAPI kthread in the capture's /proc (flags 2129984 hold PF_KTHREAD)."""
    d = vm / "proc" / str(pid)
    d.mkdir(exist_ok=True)
    (d / "comm").write_text(comm + "\n")
    (d / "stat").write_text(f"{pid} ({comm}) S 2 0 0 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 25 0 0 "
                            "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
    (d / "status").write_text(f"Name:\t{comm}\nCpus_allowed:\t3\nCpus_allowed_list:\t{allowed}\n")


def test_plan_moves_a_napi_thread_off_the_quiet_cpu_and_the_dry_run_shows_it(vm, capsys):
    _napi_thread(vm, 4242, "napi/eth0-8193")
    plan = _plan(vm, capsys, "--cpus-housekeeping", "0", "--dev", "eth0")
    text = plan.read_text()
    assert 'kind = "thread-affinity"\npid = 4242\ncomm = "napi/eth0-8193"\ncpus = "0"\n' in text
    assert main(["apply", *_args(vm), str(plan)]) == 0
    out = capsys.readouterr().out
    assert ("thread napi/eth0-8193 (pid 4242)  sched_setaffinity:4242:napi/eth0-8193  0-1 -> 0  "
            "# eth0's threaded NAPI may run on quiet CPU 1: onto the housekeeping CPUs") in out
    assert "dry run: 2 write(s) would change a value" in out


@pytest.mark.parametrize(("then", "refusal"), [
    (lambda vm: shutil.rmtree(vm / "proc" / "4242"), "pid 4242 (napi/eth0-8193) no longer exists"),
    (lambda vm: _napi_thread(vm, 4242, "kworker/1:2"), "pid 4242 is now 'kworker/1:2', not 'napi/eth0-8193'"),
    (lambda vm: _napi_thread(vm, 4242, "napi/eth0-8193", flags=4194560), "pid 4242 (napi/eth0-8193) is not a kernel thread"),
])
def test_apply_refuses_a_thread_write_whose_pid_is_no_longer_that_kthread(vm, capsys, then, refusal):
    _napi_thread(vm, 4242, "napi/eth0-8193")
    plan = _plan(vm, capsys, "--cpus-housekeeping", "0", "--dev", "eth0")
    then(vm)
    assert main(["apply", *_args(vm), str(plan), "--yes", "--journal", str(vm.parent / "j")]) == 3
    cap = capsys.readouterr()
    assert f"thread napi/eth0-8193 (pid 4242)  sched_setaffinity:4242:napi/eth0-8193  REFUSED: {refusal}" in cap.out
    assert "1 write(s) refused by preflight; nothing was written" in cap.err and not (vm.parent / "j").exists()
