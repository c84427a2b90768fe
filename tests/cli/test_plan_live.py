"""plan -> apply -> SIGKILL -> apply --undo on this machine: a veth in a network namespace the
test makes, and one eth0 queue IRQ; every touched file is compared byte for byte with before.

The kill is placed, not raced: the apply runs in a child whose KnobFiles.write SIGKILLs the
process right after its second knob write, so the journal holds what a real kill leaves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager

import pytest

pytestmark = [pytest.mark.live, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and knob writes need root")]

KILL_AFTER_SECOND_WRITE = """
import os, signal, sys
from irqlab.mitigate import knobs
real, n = knobs.KnobFiles.write, [0]
def write(self, knob, value):
    real(self, knob, value)
    n[0] += 1
    if n[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
knobs.KnobFiles.write = write
from irqlab.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _irqlab(env, *args, code: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "irqlab", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@contextmanager
def _veth_namespace(prefix: str, a: str, b: str):
    """A namespace of the test's own with a veth pair a-b, both up (never touching eth0's
    addresses); removed afterwards, whatever the test did."""
    ns = f"{prefix}{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b], check=True)
        for dev in (a, b):
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.fixture
def lab(tmp_path):
    """A namespace with a veth pair vpa-vpb, and a run directory of the test's own."""
    with _veth_namespace("irqlabplan", "vpa", "vpb") as ns:
        yield ns, dict(os.environ, IRQLAB_RUN_DIR=str(tmp_path / "run"))


def _eth0_irq(env) -> int | None:
    """A movable eth0 queue IRQ, per `irqlab map` (its original is restored by --undo)."""
    doc = json.loads(_irqlab(env, "map", "--json").stdout)
    return next((int(r["irq"]) for r in doc["irqs"] if r["netdev"] == "eth0" and r["role"] and r["movable"]), None)


def _snapshot(ns: str, irq: int | None) -> dict[str, bytes]:
    files = {}
    for path in ("/sys/class/net/vpa/queues/rx-0/rps_cpus", "/sys/class/net/vpa/queues/tx-0/xps_cpus"):
        got = subprocess.run(["ip", "netns", "exec", ns, "cat", path], capture_output=True)
        if got.returncode == 0 or path.endswith("rps_cpus"):  # xps_cpus: absent on a single-queue device
            assert got.returncode == 0, got.stderr
            files[f"{ns}:{path}"] = got.stdout
    if irq is not None:
        with open(f"/proc/irq/{irq}/smp_affinity_list", "rb") as f:
            files[f"/proc/irq/{irq}/smp_affinity_list"] = f.read()
    return files


def _plan(tmp_path, ns, env, irq):
    out = _irqlab(env, "plan", "--dev", "vpa", "-o", str(tmp_path / "p.toml"))
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "p.toml").read_text()
    assert f'kind = "rps"\ndev = "vpa"\nqueue = 0\nnetns = "{ns}"' in text
    if irq is not None:
        with open(f"/proc/irq/{irq}/smp_affinity_list") as f:
            now = f.read().strip()
        text += f'\n[[write]]\nkind = "affinity"\nirq = {irq}\ncpus = "{"1" if now == "0" else "0"}"\n'
    # the veth's rps_cpus must change for the test to mean anything: ask for CPU 1 explicitly
    text = text.replace(f'netns = "{ns}"\ncpus = "0"', f'netns = "{ns}"\ncpus = "1"')
    (tmp_path / "p.toml").write_text(text)
    os.chmod(tmp_path / "p.toml", 0o644)
    return str(tmp_path / "p.toml")


def test_apply_then_undo_leaves_every_file_as_it_was(tmp_path, lab):
    ns, env = lab
    irq = _eth0_irq(env)
    before = _snapshot(ns, irq)
    plan = _plan(tmp_path, ns, env, irq)
    journal = str(tmp_path / "j")
    dry = _irqlab(env, "apply", plan)
    assert dry.returncode == 0 and "dry run:" in dry.stdout and f"vpa rx-0 rps_cpus (netns {ns})" in dry.stdout
    assert _snapshot(ns, irq) == before
    done = _irqlab(env, "apply", plan, "--yes", "--journal", journal)
    assert done.returncode == 0, done.stderr
    assert _snapshot(ns, irq) != before  # the apply exited: its values stay until --undo
    undo = _irqlab(env, "apply", "--undo", "--journal", journal)
    assert undo.returncode == 0 and "failed" not in undo.stdout, undo.stdout + undo.stderr
    assert _snapshot(ns, irq) == before


def test_an_apply_killed_mid_way_is_undone_byte_for_byte(tmp_path, lab):
    ns, env = lab
    irq = _eth0_irq(env)
    assert irq is not None, "this VM's eth0 has movable queue IRQs (irqlab map)"
    before = _snapshot(ns, irq)
    plan = _plan(tmp_path, ns, env, irq)
    journal = str(tmp_path / "j")
    killed = _irqlab(env, "apply", plan, "--yes", "--journal", journal, code=KILL_AFTER_SECOND_WRITE)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    saves = [json.loads(line) for line in open(journal) if '"save"' in line]
    assert len(saves) == 2 and _snapshot(ns, irq) != before
    # a second apply refuses to stack on top; --undo puts it back
    again = _irqlab(env, "apply", plan, "--yes", "--journal", journal)
    assert again.returncode == 3 and "apply --undo" in again.stderr
    undo = _irqlab(env, "apply", "--undo", "--journal", journal)
    assert undo.returncode == 0 and undo.stdout.count("restored") == 2, undo.stdout + undo.stderr
    assert _snapshot(ns, irq) == before


@pytest.fixture
def napi_lab(tmp_path):
    """A veth pair in a namespace the test makes, GRO on and threaded NAPI on: napi/vta-ID runs."""
    with _veth_namespace("irqlabnapi", "vta", "vtb") as ns:
        subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", "vta", "gro", "on"], check=True, capture_output=True)
        subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /sys/class/net/vta/threaded"], check=True)
        yield ns, dict(os.environ, IRQLAB_RUN_DIR=str(tmp_path / "run"))


def _napi_pid(dev: str) -> int:
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _comm(int(p)).startswith(f"napi/{dev}-")]
    assert len(pids) == 1, pids
    return pids[0]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _allowed(pid: int) -> bytes:
    with open(f"/proc/{pid}/status", "rb") as f:
        return next(line for line in f if line.startswith(b"Cpus_allowed_list:"))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="moving a thread off a quiet CPU needs two CPUs")
def test_apply_moves_a_napi_thread_off_the_quiet_cpu_and_undo_puts_its_cpus_back_exactly(tmp_path, napi_lab):
    ns, env = napi_lab
    pid = _napi_pid("vta")
    before = _allowed(pid)
    assert b"1" in before, before  # allowed on CPU 1, which the plan keeps quiet
    out = _irqlab(env, "plan", "--dev", "vta", "--cpus-housekeeping", "0", "-o", str(tmp_path / "p.toml"))
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "p.toml").read_text()
    assert f'kind = "thread-affinity"\npid = {pid}\ncomm = "{_comm(pid)}"\ncpus = "0"\n' in text
    journal = str(tmp_path / "j")
    done = _irqlab(env, "apply", str(tmp_path / "p.toml"), "--yes", "--journal", journal)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.sched_getaffinity(pid) == {0} and _allowed(pid) == b"Cpus_allowed_list:\t0\n"
    undo = _irqlab(env, "apply", "--undo", "--journal", journal)
    assert undo.returncode == 0 and f"sched_setaffinity:{pid}:{_comm(pid)}: 0 -> " in undo.stdout, undo.stdout + undo.stderr
    assert _allowed(pid) == before


def test_a_napi_thread_the_kernel_recreated_is_gone_at_undo_and_the_new_one_untouched(tmp_path, napi_lab):
    ns, env = napi_lab
    pid = _napi_pid("vta")
    out = _irqlab(env, "plan", "--dev", "vta", "--cpus-housekeeping", "0", "-o", str(tmp_path / "p.toml"))
    assert out.returncode == 0, out.stderr
    journal = str(tmp_path / "j")
    assert _irqlab(env, "apply", str(tmp_path / "p.toml"), "--yes", "--journal", journal).returncode == 0
    # threaded off and on: the kernel stops the thread and makes a new one (net/core/dev.c napi_stop_kthread())
    for v in ("0", "1"):
        subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", f"echo {v} > /sys/class/net/vta/threaded"], check=True)
    new = _napi_pid("vta")
    assert new != pid and os.sched_getaffinity(new) != {0}  # the placement did not survive
    fresh = _allowed(new)
    undo = _irqlab(env, "apply", "--undo", "--journal", journal)
    assert undo.returncode == 0 and f"sched_setaffinity:{pid}:napi/vta-" in undo.stdout and " gone" in undo.stdout, undo.stdout
    assert _allowed(new) == fresh
