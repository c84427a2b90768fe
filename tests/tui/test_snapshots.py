"""SVG snapshots of the main screen (pytest-textual-snapshot; `--snapshot-update` to accept)."""

from __future__ import annotations

from conftest_top import SYNTH96, VM_FLOOD, make_app, settle, with_napi_thread


async def first_frame(pilot) -> None:
    await settle(pilot)
    await pilot.pause(0.1)  # one more idle cycle: on a busy machine the 1152-CPU layout lags


def test_main_screen_on_this_vm_under_udp_flood(snap_compare):
    assert snap_compare(make_app(VM_FLOOD), terminal_size=(160, 40), run_before=first_frame)


def test_main_screen_on_96_cpus_with_a_storming_nic_queue(snap_compare):
    assert snap_compare(make_app(SYNTH96), terminal_size=(180, 50), run_before=first_frame)


def test_grouped_view_on_96_cpus(snap_compare):
    async def group(pilot):
        await settle(pilot)
        await pilot.press("g")
        await pilot.pause(0.1)

    assert snap_compare(make_app(SYNTH96), terminal_size=(180, 50), run_before=group)


def test_main_screen_on_1152_cpus(snap_compare, big_capture):
    assert snap_compare(make_app(big_capture), terminal_size=(200, 60), run_before=first_frame)


def test_main_screen_with_a_threaded_napi_thread(snap_compare, tmp_path):
    # napi/veth1-8193 (SCHED_FIFO 50) ran 41 % of CPU1: %napi beside %soft, and the thread under the CPUs.
    assert snap_compare(make_app(with_napi_thread(tmp_path)), terminal_size=(160, 40), run_before=first_frame)
