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
