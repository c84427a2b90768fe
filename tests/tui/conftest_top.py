"""Capture sequences for the `irqlab top` tests, and a helper that drives the app headless."""

from __future__ import annotations

import asyncio
from pathlib import Path

import capturegen
import pytest

from irqlab.sources.replay import Replayer
from irqlab.tui.app import TopApp

TOP = Path(__file__).resolve().parent.parent / "fixtures" / "top"
VM_FLOOD = [TOP / "vm-udpflood" / f"t{i}" for i in range(4)]  # this VM under load.sh -m udp
SYNTH96 = [TOP / "synthetic-96cpu" / f"t{i}" for i in range(3)]  # capturegen.synthetic()


_BUILT: dict[Path, list[Path]] = {}


@pytest.fixture
def big_capture(shared_fixtures, tmp_path_factory) -> list[Path]:
    """The pcp-qa 1152-CPU /proc/interrupts and /proc/softirqs as a 3-capture sequence."""
    pcp = shared_fixtures / "public" / "pcp-qa"
    irq, soft = pcp / "interrupts-1152cpu-x86_64.bz2", pcp / "softirqs-1152cpu-x86_64"
    if not (irq.is_file() and soft.is_file()):
        pytest.skip(f"{pcp} has no 1152-CPU files")
    if pcp not in _BUILT:  # 3 x 13 MB: build once per session
        _BUILT[pcp] = capturegen.from_kernel_files(irq, soft, tmp_path_factory.mktemp("big1152"))
    return _BUILT[pcp]


def make_app(dirs, **kw) -> TopApp:
    """A TopApp replaying dirs; its timer never fires in a test (1 h), steps come from keys."""
    return TopApp(Replayer(dirs), 3600.0, source="replay", replay=True, **kw)


async def settle(pilot) -> None:
    """Wait until the sampler worker is done and the screen has caught up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def drive(app: TopApp, script, size=(160, 48)):
    """Run app headless, wait for its first frame, then await script(pilot)."""

    async def main():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            return await script(pilot)

    return asyncio.run(main())


NAPI_PID = 812  # napi/veth1-8193 added to the vm-udpflood captures by with_napi_thread()


def with_napi_thread(dest: Path, cpu_pct: float = 41.0, policy: int = 1, rt_priority: int = 50) -> list[Path]:
    """VM_FLOOD's first two captures plus a threaded NAPI kthread, napi/veth1-8193, on CPU1.

    Its /proc/PID files are the kernel's formats (fs/proc/array.c do_task_stat(): processor is
    field 39, rt_priority 40, policy 41; schedstat's first field is run time in ns), copied
    from ksoftirqd/0 with the pid, comm, CPU and policy changed, and a run time that grows by
    cpu_pct of the interval.
    """
    import json
    import shutil

    out = []
    t0_ns = json.loads((VM_FLOOD[0] / "irqlab-capture.json").read_text())["monotonic_ns"]
    for k, src in enumerate(VM_FLOOD[:2]):
        dst = dest / src.name
        shutil.copytree(src, dst)
        t_ns = json.loads((src / "irqlab-capture.json").read_text())["monotonic_ns"]
        pid_dir = dst / "proc" / str(NAPI_PID)
        shutil.copytree(src / "proc" / "14", pid_dir)
        fields = (src / "proc" / "14" / "stat").read_text().split(") ", 1)[1].split()
        fields[39 - 3], fields[40 - 3], fields[41 - 3] = "1", str(rt_priority), str(policy)
        (pid_dir / "stat").write_text(f"{NAPI_PID} (napi/veth1-8193) " + " ".join(fields) + "\n")
        (pid_dir / "comm").write_text("napi/veth1-8193\n")
        status = (pid_dir / "status").read_text().replace("ksoftirqd/0", "napi/veth1-8193")
        status = status.replace("Cpus_allowed_list:\t0\n", "Cpus_allowed_list:\t0-1\n")  # not bound to a CPU
        (pid_dir / "status").write_text(status.replace("\nPid:\t14\n", f"\nPid:\t{NAPI_PID}\n"))
        run_ns = 5_000_000_000 + int((t_ns - t0_ns) * cpu_pct / 100)
        (pid_dir / "schedstat").write_text(f"{run_ns} 1000000 {100 + k}\n")
        out.append(dst)
    return out
