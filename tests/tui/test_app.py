"""The live view driven by keys (Textual Pilot), on replayed captures."""

from __future__ import annotations

from conftest_top import SYNTH96, VM_FLOOD, drive, make_app, settle

from irqlab.tui.app import HelpScreen


def rows(app) -> list[tuple[str, str]]:
    """(IRQ, NAME) of every row of the hard-IRQ table as shown."""
    table = app.query_one("#irqs")
    return [(str(table.get_row_at(i)[0]), str(table.get_row_at(i)[1])) for i in range(table.row_count)]



def _plain(widget) -> str:
    from io import StringIO

    from rich.console import Console

    out = StringIO()
    Console(file=out, width=250, color_system=None).print(widget.content)
    return out.getvalue()


def test_first_replayed_frame_shows_header_tables_and_the_doctors_finding():
    async def script(pilot):
        app = pilot.app
        header = _plain(app.query_one("#header"))
        assert "synth96 x86_64" in header and "6.18.0-synthetic" in header and "96 CPUs" in header
        assert "interval 1.00 s" in header and "warning: interrupt storm" in header
        assert rows(app)[0] == ("24", "eth0-TxRx-0")
        soft = _plain(app.query_one("#softirqs"))
        assert "NET_RX" in soft and "ksoftirqd %" in soft
        cpus = _plain(app.query_one("#cpus"))
        assert "35.0" in cpus and "120" in cpus  # ksoftirqd/0 %CPU, drops/s on CPU0

    drive(make_app(SYNTH96), script)


def test_sort_keys_reorder_the_rows():
    async def script(pilot):
        app = pilot.app
        await pilot.press("n")
        names = [n for _, n in rows(app)]
        assert names == sorted(names, key=str.lower)
        await pilot.press("i")
        irqs = [i for i, _ in rows(app)]
        numbered = [int(i) for i in irqs if i.isdigit()]
        assert numbered == sorted(numbered) and irqs[0].isdigit() and not irqs[-1].isdigit()
        await pilot.press("a")
        assert app.frame.state.sort == "total"
        await pilot.press("r")
        assert rows(app)[0][1] == "eth0-TxRx-0"

    drive(make_app(SYNTH96), script)


def test_slash_filters_rows_by_regex_and_a_bad_regex_is_refused():
    async def script(pilot):
        app = pilot.app
        await pilot.press("slash", *"nvme0q[12]$", "enter")
        assert sorted(n for _, n in rows(app)) == ["nvme0q1", "nvme0q2"]
        await pilot.press("slash", "ctrl+u", "(", "enter")
        assert app.prompting == "filter"  # still asking; the old filter stays
        assert sorted(n for _, n in rows(app)) == ["nvme0q1", "nvme0q2"]
        await pilot.press("ctrl+u", "enter")
        assert len(rows(app)) > 10

    drive(make_app(SYNTH96), script)


def test_c_chooses_cpus():
    async def script(pilot):
        app = pilot.app
        await pilot.press("c", *"48-49", "enter")
        assert app.state.cpus == (48, 49)
        assert app.frame.cells.labels == ("48", "49")
        assert {r.cpu for r in app.frame.cpu_rows} <= {48, 49}
        assert "nvme0q0" in [n for _, n in rows(app)]

    drive(make_app(SYNTH96), script)


def test_g_groups_nic_queues_and_enter_expands_the_group():
    async def script(pilot):
        app = pilot.app
        await pilot.press("g")
        shown = rows(app)
        assert ("24-39", "▸ eth0 (16 queues)") in shown
        assert not any(n.startswith("eth0-TxRx") for _, n in shown)
        table = app.query_one("#irqs")
        table.move_cursor(row=[i for i, _ in shown].index("24-39"))
        await pilot.press("enter")
        shown = rows(app)
        assert ("24-39", "▾ eth0 (16 queues)") in shown
        assert sum(1 for _, n in shown if n.startswith("  └ eth0-TxRx")) == 16

    drive(make_app(SYNTH96), script)


def test_t_transposes_to_cpus_as_rows():
    async def script(pilot):
        app = pilot.app
        await pilot.press("t")
        table = app.query_one("#irqs")
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[0] == "CPU" and labels[1] == "IRQ 24"
        assert str(table.get_row_at(0)[0]) == app.frame.cells.labels[0]
        await pilot.press("t")
        assert [str(c.label) for c in table.columns.values()][0] == "IRQ"

    drive(make_app(SYNTH96), script)


def test_z_shows_and_hides_idle_rows_and_cpus():
    async def script(pilot):
        app = pilot.app
        busy = len(rows(app))
        assert "idle 80-95 hidden" in app.query_one("#irqs").border_title
        await pilot.press("z")
        assert len(rows(app)) > busy and "hidden" not in app.query_one("#irqs").border_title
        await pilot.press("z")
        assert len(rows(app)) == busy

    drive(make_app(SYNTH96), script)


def test_p_pauses_sampling_and_space_steps_one_capture():
    async def script(pilot):
        app = pilot.app
        await pilot.press("p")
        assert app.state.paused and "paused" in _plain(app.query_one("#header"))
        before = app.sample
        app.tick()  # the timer firing while paused reads nothing
        await settle(pilot)
        assert app.sample is before
        await pilot.press("space")
        await settle(pilot)
        assert app.sample is not before and "capture 3 of 4" in _plain(app.query_one("#header"))

    drive(make_app(VM_FLOOD), script)


def test_replay_end_is_shown_and_the_last_frame_stays():
    async def script(pilot):
        app = pilot.app
        for _ in range(3):
            app.tick()
            await settle(pilot)
        assert app.ended and "replay finished" in _plain(app.query_one("#header"))
        assert app.sample.rates.after.origin.endswith("t3")  # the last pair stays on screen
        assert "TIMER" in _plain(app.query_one("#softirqs"))

    drive(make_app(VM_FLOOD), script)


def test_question_mark_opens_help_and_q_quits():
    async def script(pilot):
        app = pilot.app
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running

    drive(make_app(VM_FLOOD), script)


def test_vm_udp_flood_capture_shows_net_rx_on_both_cpus():
    async def script(pilot):
        app = pilot.app
        m = app.frame.softirqs.matrix
        net_rx = m.values[m.row_labels.index("NET_RX")]
        assert all(v > 1_000 for v in net_rx)

    drive(make_app(VM_FLOOD), script)


def test_1152_cpu_capture_stays_readable(big_capture):
    async def script(pilot):
        app = pilot.app
        f = app.frame
        assert len(f.cells.labels) <= 64 and f.cells.per_cell == 18
        assert "1152 CPUs" in _plain(app.query_one("#header"))
        shown = rows(app)
        assert shown[0][0] == "LOC" and ("63", "smartpqi") in shown
        assert len(shown) <= 40
        assert "no /proc/stat, softnet_stat or ksoftirqd" in _plain(app.query_one("#cpus"))
        await pilot.press("g")
        assert any(n == "▸ lpfc (32 queues)" for _, n in rows(app))

    drive(make_app(big_capture), script, size=(200, 60))


def test_a_tick_during_a_slow_read_does_not_start_a_second_read():
    import threading

    from irqlab.sources.replay import Replayer
    from irqlab.tui.app import TopApp

    inner = Replayer(SYNTH96)
    release = threading.Event()
    calls = []

    def slow():
        calls.append(1)
        if len(calls) == 3:  # the first read after the opening pair blocks until released
            release.wait(30)
        return inner()

    async def script(pilot):
        app = pilot.app
        app.tick()
        app.tick()  # the read is still running: nothing new starts
        app.tick()
        release.set()
        await settle(pilot)
        assert len(calls) == 3 and "capture 3 of 3" in _plain(app.query_one("#header"))

    slow.total = 3
    drive(TopApp(slow, 3600.0, source="replay", replay=True), script)


def test_m_shows_the_placement_view_and_back():
    async def script(pilot):
        app = pilot.app
        await pilot.press("m")
        table = app.query_one("#irqs")
        heads = [str(c.label) for c in table.columns.values()]
        assert heads[:3] == ["IRQ", "NAME", "QUEUE"] and "LANDED ON (CPU rate)" in heads
        first = [str(c) for c in table.get_row_at(0)]
        assert first[0] == "24" and first[2] == "combined 0"  # the storming queue, its role from the action name
        assert first[6].startswith("0 ")  # it landed on CPU0, the busiest CPU first
        assert "placement" in str(table.border_title)
        await pilot.press("m")
        assert [str(c.label) for c in table.columns.values()][2] == "DEVICE"

    drive(make_app(SYNTH96), script)
