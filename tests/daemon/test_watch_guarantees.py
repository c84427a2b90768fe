"""`irqlab watch --apply` and `--restore` when things go wrong: full disk, a second daemon,
a broken config, a corrupt journal, SIGTERM in a long interval, a journal left by a kill."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_watch import events, feed, series, watch

from irqlab.analysis.plan import PlanConfig
from irqlab.daemon.config import WatchConfig
from irqlab.daemon.watch import EventSink, Watch, restore_only
from irqlab.mitigate import journal as journal_mod
from irqlab.mitigate.knobs import affinity_knob, napi_knob
from mitigate.test_journal import fake_root, read
from mitigate.test_journal_guarantees import disk_full_after, os_with_write, save_record

REPO = Path(__file__).resolve().parents[2]
UDPFLOOD = REPO / "tests" / "fixtures" / "captures" / "vm-udpflood"


def test_shutdown_restores_every_knob_when_the_journal_disk_is_full(tmp_path, monkeypatch):
    w, out, roots = watch(tmp_path, apply=True)
    roots.proc("irq", "43").mkdir()
    roots.proc("irq", "43", "smp_affinity_list").write_text("0-3\n")
    for k, v in [(affinity_knob(roots, 41), "1"), (affinity_knob(roots, 42), "1"), (affinity_knob(roots, 43), "1"),
                 (napi_knob("eth0", "napi_defer_hard_irqs", None), "2"), (napi_knob("eth0", "gro_flush_timeout", None), "200000")]:
        w.knobs.mitigator.apply(k, v, "storm")
    monkeypatch.setattr(journal_mod, "os", os_with_write(disk_full_after(0)))
    w.close()  # what SIGTERM runs
    assert [read(roots.proc("irq", n, "smp_affinity_list")) for n in ("41", "42", "43")] == ["0-3"] * 3
    assert [read(roots.sys("class", "net", "eth0", a)) for a in ("napi_defer_hard_irqs", "gro_flush_timeout")] == ["0", "0"]
    ev = events(out)
    assert [e["event"] for e in ev].count("restore") == 5
    errors = [e["message"] for e in ev if e["event"] == "error"]
    assert len(errors) == 5 and all("could not record it" in m and "No space left" in m for m in errors)
    assert w.restore_failed  # exit 3


def test_a_second_watch_on_another_journal_does_not_take_the_first_ones_knob(tmp_path):
    w1, out1, roots = watch(tmp_path, apply=True)
    # The second one would move IRQ 41 elsewhere (CPU 2): without an owner per knob it would
    # save the first one's "3" as the original and put it back at its own exit.
    cfg2 = WatchConfig(interval_s=1.0, hold_down_s=2.0, journal=str(tmp_path / "journal2"), detect=w1.cfg.detect,
                       plan=PlanConfig(sacrificial_cpus=(2,)), alert=w1.cfg.alert)
    out2 = io.StringIO()
    w2 = Watch(cfg2, EventSink(out2, as_json=True), roots, apply=True)
    w2.open_journal()
    storm = series([2e6] * 3)
    feed(w1, storm)
    feed(w2, storm)
    aff = roots.proc("irq", "41", "smp_affinity_list")
    assert read(aff) == "3"
    refused = [e for e in events(out2) if e["event"] == "error"]
    assert len(refused) == 1 and "owned by journal" in refused[0]["message"] and str(tmp_path / "journal") in refused[0]["message"]
    w1.close()
    w2.close()
    assert read(aff) == "0-3"
    assert not w1.restore_failed and not w2.restore_failed


def test_restore_needs_only_the_journal(tmp_path):
    roots = fake_root(tmp_path)
    j = tmp_path / "j"
    j.write_text(save_record(1, "/sys/class/net/eth0/gro_flush_timeout", "0", "200000"))
    os.chmod(j, 0o600)
    roots.sys("class", "net", "eth0", "gro_flush_timeout").write_text("200000\n")
    out = io.StringIO()
    assert restore_only(str(j), EventSink(out, as_json=True), roots) == 0
    assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"
    assert json.loads(out.getvalue())["outcome"] == "restored"


def test_restore_of_a_corrupt_journal_restores_the_rest_names_the_bad_line_and_exits_3(tmp_path):
    roots = fake_root(tmp_path)
    j = tmp_path / "j"
    j.write_text(save_record(1, "/sys/class/net/eth0/gro_flush_timeout", "0", "200000") + "{not json\n"
                 + save_record(3, "/sys/class/net/eth0/napi_defer_hard_irqs", "0", "2"))
    os.chmod(j, 0o600)
    roots.sys("class", "net", "eth0", "gro_flush_timeout").write_text("200000\n")
    roots.sys("class", "net", "eth0", "napi_defer_hard_irqs").write_text("2\n")
    out = io.StringIO()
    assert restore_only(str(j), EventSink(out, as_json=True), roots) == 3
    assert [read(roots.sys("class", "net", "eth0", a)) for a in ("napi_defer_hard_irqs", "gro_flush_timeout")] == ["0", "0"]
    ev = [json.loads(line) for line in out.getvalue().splitlines()]
    assert ev[0]["event"] == "error" and "line 2: not a JSON record" in ev[0]["message"] and ".corrupt-" in ev[0]["message"]
    assert [e["outcome"] for e in ev[1:]] == ["restored", "restored"]


def _broken_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "w.toml"
    cfg.write_text("interval = -1\n")
    os.chmod(cfg, 0o666)  # broken twice: a bad value, and writable by anyone
    return cfg


@pytest.mark.root
def test_restore_with_a_broken_config_still_restores_the_given_journal(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("--restore needs root")
    j = tmp_path / "j"
    # A device this machine does not have: the restore finds it gone, and touches nothing.
    j.write_text(save_record(1, "/sys/class/net/irqlabnodev0/gro_flush_timeout", "0", "200000"))
    os.chmod(j, 0o600)
    r = subprocess.run([sys.executable, "-m", "irqlab", "watch", "--restore", "-c", str(_broken_config(tmp_path)), "--journal", str(j)],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(gone, irqlab watch --restore)" in r.stdout
    assert j.read_text() == ""  # nothing pending any more


@pytest.mark.root
def test_restore_with_a_broken_config_warns_and_restores_the_default_journal(tmp_path, monkeypatch, capsys):
    if os.geteuid() != 0:
        pytest.skip("--restore needs root")
    from irqlab.cli import watch as cli_watch
    from irqlab.cli.main import build_parser

    j = tmp_path / "default.journal"
    j.write_text(save_record(1, "/sys/class/net/irqlabnodev0/gro_flush_timeout", "0", "200000"))
    os.chmod(j, 0o600)
    monkeypatch.setattr("irqlab.daemon.config.DEFAULT_JOURNAL", str(j))
    args = build_parser("watch").parse_args(["watch", "--restore", "-c", str(_broken_config(tmp_path))])
    assert cli_watch.run(args) == 0
    out = capsys.readouterr().out
    assert f"config not used, restoring {j}" in out and "(gone, irqlab watch --restore)" in out
    assert j.read_text() == ""


def test_a_pending_journal_is_restored_before_the_first_interval(tmp_path, monkeypatch):
    roots = fake_root(tmp_path)
    aff = roots.proc("irq", "41", "smp_affinity_list")
    (tmp_path / "journal").write_text(save_record(1, str(aff), "0-3", "3", kind="affinity"))
    os.chmod(tmp_path / "journal", 0o600)
    aff.write_text("3\n")  # left changed by a killed run
    seen = []

    def first_interval(roots_, interval_s, count, spec, wait=None):
        seen.append(read(aff))
        yield from series([0] * count)

    monkeypatch.setattr("irqlab.daemon.watch.sample", first_interval)
    cfg = WatchConfig(interval_s=1.0, journal=str(tmp_path / "journal"))
    out = io.StringIO()
    assert Watch(cfg, EventSink(out, as_json=True), roots, apply=True).run(count=1) == 0
    assert seen == ["0-3"]
    replay = json.loads(out.getvalue().splitlines()[0])
    assert replay["event"] == "restore" and replay["why"].startswith("journal replay at start")


CHILD = textwrap.dedent(
    """
    import sys
    from irqlab.daemon.config import WatchConfig
    from irqlab.daemon.watch import EventSink, Watch, main_loop
    from irqlab.mitigate.knobs import affinity_knob
    from irqlab.sources.fs import Roots

    roots = Roots.of(sys.argv[1], sys.argv[2])
    opened = Watch.open_journal

    def open_and_mitigate(self):
        opened(self)
        self.knobs.mitigator.apply(affinity_knob(roots, 24), "1", "test")
        print("ready", flush=True)

    Watch.open_journal = open_and_mitigate
    cfg = WatchConfig(interval_s=60.0, journal=sys.argv[3])
    sys.exit(main_loop(cfg, EventSink(sys.stdout, True), True, None, None, roots))
    """
)


def test_sigterm_during_a_long_interval_stops_and_restores_at_once(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(UDPFLOOD / "a", root)
    aff = root / "proc" / "irq" / "24" / "smp_affinity_list"
    assert read(aff) == "0-1"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root / "proc"), str(root / "sys"), str(tmp_path / "j")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert json.loads(proc.stdout.readline())["event"] == "start"
        assert proc.stdout.readline().strip() == "ready"
        assert read(aff) == "1"
        time.sleep(2.0)  # the first snapshot is taken; it now waits out its 60 s interval
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0 and took < 5, f"exit {code} after {took:.1f} s"
    assert read(aff) == "0-1"
    assert json.loads(proc.stdout.read().splitlines()[-1])["message"] == "stopped; every change restored"


def test_the_wait_between_samples_ends_when_the_watch_is_stopped(tmp_path):
    w, _, _ = watch(tmp_path)
    assert w.wait(0.01) is False
    w.stop()
    t0 = time.monotonic()
    assert w.wait(60) is True and time.monotonic() - t0 < 1
    w.close()


def test_a_failed_journal_write_refuses_the_mitigation_and_says_so(tmp_path, monkeypatch):
    w, out, roots = watch(tmp_path, apply=True)
    monkeypatch.setattr(journal_mod, "os", os_with_write(lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
                                                         if os.readlink(f"/proc/self/fd/{fd}").endswith("/journal") else os.write(fd, data)))
    feed(w, series([2e6] * 3))
    assert read(roots.proc("irq", "41", "smp_affinity_list")) == "0-3"
    err = [e for e in events(out) if e["event"] == "error"]
    assert len(err) == 1 and "not written, the journal cannot record it" in err[0]["message"]
    monkeypatch.undo()
    w.close()


def test_a_dry_run_reports_a_corrupt_journal_and_leaves_it_as_it_is(tmp_path):
    j = tmp_path / "journal"
    text = save_record(1, "/sys/class/net/eth0/gro_flush_timeout", "0", "200000") + "{not json\n" + '{"op": "sa'
    j.write_text(text)
    os.chmod(j, 0o600)
    w, out, _ = watch(tmp_path)
    w._warn_pending_journal()
    w.close()
    msgs = [e["message"] for e in events(out)]
    assert any("line 2: not a JSON record" in m for m in msgs) and any("1 setting(s)" in m for m in msgs)
    assert j.read_text() == text and list(tmp_path.glob("journal.corrupt-*")) == []


def test_restore_of_a_journal_that_does_not_exist_creates_nothing_and_says_so(tmp_path):
    """`irqlab watch --restore --journal PATH` where nothing was ever journaled: exit 0, one
    readable line, and neither the journal nor its directory is created."""
    import io

    from irqlab.daemon.watch import EventSink, restore_only

    journal = tmp_path / "never" / "made" / "watch.journal"
    out = io.StringIO()
    assert restore_only(str(journal), EventSink(out, as_json=False)) == 0
    assert not (tmp_path / "never").exists()
    line = out.getvalue()
    assert "nothing to restore" in line and "None" not in line, line
