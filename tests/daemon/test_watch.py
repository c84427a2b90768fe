"""The watch loop on built snapshot sequences and a fake /proc,/sys: plan, apply, hold-down, reload."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import builders as b
from irqlab.analysis.storm import Baseline, DetectorConfig, Rule
from irqlab.daemon.alerts import AlertConfig, log_line, post_json, run_hook
from irqlab.daemon.config import WatchConfig
from irqlab.daemon.watch import EventSink, Watch
from irqlab.model.snapshot import IrqInfo
from mitigate.test_journal import fake_root


def series(rates, irq="41"):
    count, snaps = 0, []
    for t, r in enumerate([0, *rates]):
        count += int(r)
        snaps.append(
            b.snapshot(
                t,
                interrupts=b.interrupts([0, 1, 2, 3], [(irq, "eth0-rx-0", [count, 0, 0, 0])]),
                irqinfo={int(irq): IrqInfo(int(irq), affinity=(0, 1, 2, 3), actions=("eth0-rx-0",))},
            )
        )
    return snaps


def watch(tmp_path, apply=False, hold_down=2.0, alert=AlertConfig(syslog=False), cpu=Rule("*", None, None)):
    roots = fake_root(tmp_path)
    cfg = WatchConfig(interval_s=1.0, hold_down_s=hold_down, journal=str(tmp_path / "journal"),
                      detect=DetectorConfig(cpu=cpu, baseline=Baseline(enabled=False)), alert=alert)
    out = io.StringIO()
    w = Watch(cfg, EventSink(out, as_json=True), roots, apply=apply)
    if apply:
        w.open_journal()
    return w, out, roots


def feed(w, snaps):
    for a, c in zip(snaps, snaps[1:]):
        w.tick(a, c)


def events(out):
    """The stream without `skip` lines (the plan's explanations of what it leaves alone)."""
    return [e for e in map(json.loads, out.getvalue().splitlines()) if e["event"] != "skip"]


def test_dry_run_prints_the_planned_write_and_writes_nothing(tmp_path):
    w, out, roots = watch(tmp_path)
    feed(w, series([2e6] * 3))
    w.close()
    ev = events(out)
    assert [e["event"] for e in ev] == ["storm_start", "action"]
    action = ev[1]
    assert (action["applied"], action["kind"], action["value"]) == (False, "affinity", "3")
    assert action["target"].endswith("/irq/41/smp_affinity_list")
    assert roots.proc("irq", "41", "smp_affinity_list").read_text().strip() == "0-3"
    assert not (tmp_path / "journal").exists()


def test_apply_writes_then_restores_after_the_storm_ends_plus_hold_down(tmp_path):
    w, out, roots = watch(tmp_path, apply=True, hold_down=2.0)
    aff = roots.proc("irq", "41", "smp_affinity_list")
    # 3 storm intervals, then quiet: ends after 3 quiet intervals (t=6), restored 2 s later (t=8)
    snaps = series([2e6] * 3 + [0] * 6)
    for i, (a, c) in enumerate(zip(snaps, snaps[1:]), 1):
        w.tick(a, c)
        if i == 3:
            assert aff.read_text().strip() == "3"
        if i == 7:
            assert aff.read_text().strip() == "3", "restored before the hold-down ran out"
    assert aff.read_text().strip() == "0-3"
    names = [e["event"] for e in events(out)]
    assert names == ["storm_start", "action", "storm_end", "restore"]
    w.close()


def test_a_storm_returning_within_the_hold_down_keeps_the_mitigation(tmp_path):
    w, out, roots = watch(tmp_path, apply=True, hold_down=10.0)
    feed(w, series([2e6] * 3 + [0] * 3 + [2e6] * 3))
    assert roots.proc("irq", "41", "smp_affinity_list").read_text().strip() == "3"
    assert [e["event"] for e in events(out)].count("restore") == 0
    w.close()  # SIGTERM path: restores everything
    assert roots.proc("irq", "41", "smp_affinity_list").read_text().strip() == "0-3"
    assert events(out)[-1]["why"] == "shutdown"


def test_a_knob_shared_by_two_storms_is_restored_only_after_both_ended(tmp_path):
    # IRQ 41 storms on CPU0, over LOC's steady 2 M/s there: storms irq:41 and cpu:0 both
    # plan to move IRQ 41. When irq:41 ends, cpu:0 still runs: IRQ 41 must stay moved.
    w, out, roots = watch(tmp_path, apply=True, hold_down=0.0, cpu=Rule("*", 1e6, 1.5e6))
    w.detector.config = DetectorConfig(irq=(Rule("LOC", None, None), Rule("*", 1e5, 1e6)), cpu=Rule("*", 1e6, 1.5e6), baseline=Baseline(enabled=False))
    aff = roots.proc("irq", "41", "smp_affinity_list")
    count, snaps = 0, []
    for t, r in enumerate([0] + [2e6] * 4 + [0] * 5):
        count += int(r)
        rows = [("41", "eth0-rx-0", [count, 0, 0, 0]), ("LOC", "Local timer interrupts", [int(2e6) * t, 0, 0, 0])]
        snaps.append(b.snapshot(t, interrupts=b.interrupts([0, 1, 2, 3], rows), irqinfo={41: IrqInfo(41, affinity=(0, 1, 2, 3), actions=("eth0-rx-0",))}))
    feed(w, snaps)
    ev = events(out)
    assert ("storm_end", "irq:41") in [(e["event"], e["storm"]["key"]) for e in ev if "storm" in e and isinstance(e["storm"], dict)]
    assert "cpu:0" in w.detector.active
    assert aff.read_text().strip() != "0-3", "restored while another storm still needed it"
    assert len([e for e in ev if e["event"] == "action"]) == 1, "the second storm must not overwrite the saved original"
    w.close()
    assert aff.read_text().strip() == "0-3"


def test_one_alert_per_start_and_end_not_per_interval(tmp_path):
    sent = []
    w, out, _ = watch(tmp_path)
    w.alerter.alert = lambda body: sent.append(body["event"])
    feed(w, series([2e6] * 10 + [0] * 4))
    w.close()
    assert sent == ["storm_start", "storm_end"]


def test_reload_replaces_thresholds_and_keeps_the_running_storm(tmp_path):
    cfg_path = tmp_path / "w.toml"
    cfg_path.write_text(f"journal = '{tmp_path / 'journal'}'\n[[detect.irq]]\nmatch = '*'\nwarn = 1500000\nact = 9000000\n")
    os.chmod(cfg_path, 0o644)
    w, out, _ = watch(tmp_path)
    w.config_path = str(cfg_path)
    snaps = series([2e6] * 6)
    feed(w, snaps[:4])
    w.reload()
    feed(w, snaps[3:])
    w.close()
    names = [(e["event"], e.get("storm", {}).get("key") if isinstance(e.get("storm"), dict) else None) for e in events(out)]
    assert names.count(("storm_start", "irq:41")) == 1 and ("reload", None) in names
    assert ("storm_end", "irq:41") not in names and not any(n[0] == "error" for n in names)
    assert w.detector.config.irq == (Rule("*", 1_500_000.0, 9_000_000.0),)


def test_a_bad_config_on_reload_is_logged_and_the_old_one_kept(tmp_path):
    cfg_path = tmp_path / "w.toml"
    cfg_path.write_text("interval = -1\n")
    os.chmod(cfg_path, 0o644)
    w, out, _ = watch(tmp_path)
    w.config_path = str(cfg_path)
    old = w.cfg
    w.reload()
    w.close()
    assert w.cfg is old
    err = events(out)[-1]
    assert err["event"] == "error" and ": interval: must be a duration" in err["message"]


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
        else:
            _Hook.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def serve():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_webhook_posts_the_event_json_and_retries_a_failure():
    server = serve()
    _Hook.received, _Hook.fail_first = [], 1
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        assert post_json(url, {"event": "storm_start"}, 2.0, 2, sleep=lambda s: None) is None
        assert _Hook.received == [{"event": "storm_start"}]
    finally:
        server.shutdown()


def test_an_unreachable_webhook_is_one_error_after_the_retries():
    server = serve()
    port = server.server_port
    server.shutdown()
    server.server_close()
    err = post_json(f"http://127.0.0.1:{port}/", {}, 0.5, 2, sleep=lambda s: None)
    assert err is not None and "after 3 attempts" in err


def test_the_watch_alerts_the_webhook_once_per_storm_start_and_end(tmp_path):
    server = serve()
    _Hook.received, _Hook.fail_first = [], 0
    try:
        alert = AlertConfig(syslog=False, webhook=f"http://127.0.0.1:{server.server_port}/", webhook_timeout_s=2.0, webhook_retries=1)
        w, _, _ = watch(tmp_path, alert=alert)
        feed(w, series([2e6] * 6 + [0] * 4))
        w.close()
    finally:
        server.shutdown()
    assert [e["event"] for e in _Hook.received] == ["storm_start", "storm_end"]
    assert _Hook.received[0]["storm"]["key"] == "irq:41" and _Hook.received[0]["storm"]["value"] == 2e6


def test_the_exec_hook_runs_without_a_shell_and_reads_the_event_on_stdin(tmp_path):
    out = tmp_path / "got"
    script = tmp_path / "hook.py"
    script.write_text(f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read() + '|' + ' '.join(sys.argv[1:]))\n")
    # A shell would expand $HOME and split on ';' here; without one they are plain arguments.
    assert run_hook((sys.executable, str(script), "$HOME;", "x"), {"event": "storm_end"}) is None
    body, args = out.read_text().split("|")
    assert json.loads(body) == {"event": "storm_end"} and args == "$HOME; x"


def test_a_failing_exec_hook_is_reported_not_raised(tmp_path):
    assert "exit 1" in run_hook((sys.executable, "-c", "raise SystemExit(1)"), {})
    assert "exec hook" in run_hook((str(tmp_path / "missing"),), {})


def test_the_log_line_is_structured_key_values():
    line = log_line({"event": "storm_start", "storm": {"key": "irq:41", "name": "eth0 rx", "value": 2e6, "unit": "interrupts/s"}})
    assert line == 'event=storm_start key=irq:41 name="eth0 rx" value=2000000 unit=interrupts/s'


def test_a_read_error_mid_run_is_logged_and_sampling_goes_on(tmp_path, monkeypatch):
    from irqlab.errors import SourceError

    snaps = iter(series([0] * 6))
    calls = []

    def flaky(roots, interval_s, count, spec, wait=None):
        calls.append(count)
        yield next(snaps)
        if len(calls) == 1:
            raise SourceError("/proc/interrupts", "read failed")
        for _, s in zip(range(count), snaps):  # count intervals = count + 1 snapshots, as sample()
            yield s

    monkeypatch.setattr("irqlab.daemon.watch.sample", flaky)
    monkeypatch.setattr(Watch, "wait", lambda self, s: self._stop)
    w, out, _ = watch(tmp_path)
    assert w.run(count=3) == 0
    ev = [json.loads(line) for line in out.getvalue().splitlines()]
    assert ev[0]["event"] == "error" and "read failed" in ev[0]["message"]
    assert w.intervals == 3 and calls == [3, 3]


def test_alert_lines_go_to_the_syslog_socket_when_there_is_one(tmp_path):
    import socket

    from irqlab.daemon.alerts import SyslogOrStderr

    path = str(tmp_path / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    try:
        log = SyslogOrStderr(path, stderr=io.StringIO())
        assert log.target == path
        log.send("storm_start", "event=storm_start key=irq:41")
        msg = server.recv(4096).decode()
    finally:
        server.close()
    assert msg.startswith("<28>irqlab-watch[") and msg.endswith("]: event=storm_start key=irq:41")


def test_without_a_syslog_socket_alert_lines_go_to_stderr(tmp_path):
    from irqlab.daemon.alerts import SyslogOrStderr

    err = io.StringIO()
    log = SyslogOrStderr(str(tmp_path / "none"), stderr=err)
    log.send("storm_end", "event=storm_end")
    assert log.target == "stderr" and err.getvalue() == "irqlab-watch: event=storm_end\n"


def test_a_value_that_cannot_be_put_back_is_an_error_and_stays_in_the_journal(tmp_path, monkeypatch):
    from irqlab.mitigate.journal import Journal
    from irqlab.mitigate.knobs import KnobFiles

    w, out, roots = watch(tmp_path, apply=True)
    feed(w, series([2e6] * 3))

    def refuse(self, knob, value):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(KnobFiles, "write", refuse)
    w.close()
    assert w.restore_failed
    assert [e["event"] for e in events(out)][-1] == "error"
    with Journal(tmp_path / "journal") as j:
        assert [s.original for s in j.pending()] == ["0-3"]  # retried at the next start


def test_the_text_event_stream_escapes_control_characters_of_machine_names():
    """An IRQ action name can hold ESC (it comes from /proc/interrupts of any machine): the
    readable event line shows it as \\x1b, never the raw byte (a terminal would obey it)."""
    import io

    from irqlab.daemon.watch import EventSink

    out = io.StringIO()
    EventSink(out, as_json=False).emit("skip", message="eth0-\x1b[2Jrx-0: nothing to do")
    line = out.getvalue()
    assert "\x1b" not in line and "\\x1b[2J" in line
