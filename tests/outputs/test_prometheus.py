"""The Prometheus collector: exposition text, cardinality controls, wraps, failing sources."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from itertools import count
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import builders as b
from irqlab.cli.export import build_registry, parse_listen, scrape_source
from irqlab.errors import UsageError
from irqlab.model.histogram import Histogram
from irqlab.outputs.prometheus import (
    ExportOptions,
    IrqlabCollector,
    NamedHistogram,
    ScrapeResult,
    SourceStatus,
    Wrap32,
    device_of,
)
from irqlab.sources.fs import Roots
from servers import missing_tool

UDP = Path(__file__).resolve().parents[1] / "fixtures" / "captures" / "vm-udpflood"


def args_of(**kw) -> argparse.Namespace:
    base = dict(per_cpu=False, top_k=20, include=None, exclude=None, rollup_devices=False, storm_warn=100_000.0,
                storm_crit=1_000_000.0, no_tasks=False, procfs=None, sysfs=None)
    base.update(kw)
    return argparse.Namespace(**base)


def fixed_clock():
    """A clock that advances 1 ms per call, so scrape durations are stable in golden files."""
    ticks = count()
    return lambda: next(ticks) * 1_000_000


def sequence_scrape(*roots: Roots):
    """scrape() that reads each capture in turn (then stays on the last), with a fixed clock.

    The Sampler stamps a capture with its own time, so the interval between the two captures
    is the real one, and durations come from the fixed clock.
    """
    readers = [scrape_source(r, clock=fixed_clock()) for r in roots]
    calls = count()

    def scrape():
        return readers[min(next(calls), len(readers) - 1)]()

    return scrape


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_exposition_of_a_udp_flood_capture_pair_matches_golden(golden):
    registry = build_registry(args_of(), scrape=sequence_scrape(Roots.capture(UDP / "a"), Roots.capture(UDP / "b")))
    generate_latest(registry)  # first scrape: counters only, no interval yet
    golden("export-udpflood.prom", generate_latest(registry).decode())


def test_exposition_passes_promtool_check_metrics():
    if shutil.which("promtool") is None:
        missing_tool("promtool")
    registry = build_registry(args_of(per_cpu=True), scrape=sequence_scrape(Roots.capture(UDP / "a"), Roots.capture(UDP / "b")))
    generate_latest(registry)
    text = generate_latest(registry)
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()


def test_a_capture_missing_softnet_still_scrapes_and_reports_that_source_failed(tmp_path, capsys):
    root = tmp_path / "cap"
    shutil.copytree(UDP / "a", root)
    (root / "proc" / "net" / "softnet_stat").unlink()
    registry = build_registry(args_of(), scrape=scrape_source(Roots.capture(root)))
    text = generate_latest(registry).decode()
    got = samples(text)
    assert got[("irqlab_scrape_success", (("source", "softnet"),))] == 0.0
    assert got[("irqlab_scrape_success", (("source", "interrupts"),))] == 1.0
    assert "irqlab_softnet_processed_total" not in text
    assert "irqlab_interrupts_total" in text
    generate_latest(registry)
    assert capsys.readouterr().err.count("softnet_stat") == 1  # logged once, not per scrape
    shutil.copy(UDP / "a" / "proc" / "net" / "softnet_stat", root / "proc" / "net" / "softnet_stat")
    assert "irqlab_softnet_processed_total" in generate_latest(registry).decode()
    assert "softnet is readable again" in capsys.readouterr().err


def test_a_capture_missing_interrupts_still_serves_the_other_sources(tmp_path):
    root = tmp_path / "cap"
    shutil.copytree(UDP / "a", root)
    (root / "proc" / "interrupts").unlink()
    got = samples(generate_latest(build_registry(args_of(), scrape=scrape_source(Roots.capture(root)))).decode())
    assert got[("irqlab_scrape_success", (("source", "interrupts"),))] == 0.0
    assert ("irqlab_softirqs_total", (("vector", "NET_RX"),)) in got


def _collector(snaps, **opt):
    it = iter(snaps)
    return IrqlabCollector(lambda: ScrapeResult(next(it), (SourceStatus("interrupts", 0.0, True),)), ExportOptions(**opt))


def _values(collector, name):
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return {s[0]: s[1] for s in _by_label(generate_latest(reg).decode(), name)}


def _by_label(text, name):
    for (n, labels), v in samples(text).items():
        if n == name:
            yield dict(labels).get("irq", dict(labels).get("vector")), v


def test_top_k_keeps_the_busiest_and_other_never_goes_backwards_when_membership_changes():
    def rows(a, c):
        return [("40", "eth0-TxRx-0", [a, 0]), ("41", "eth0-TxRx-1", [0, c]), ("LOC", "Local timer interrupts", [5, 5])]
    snaps = [
        b.snapshot(0, interrupts=b.interrupts([0, 1], rows(1000, 10))),
        b.snapshot(1, interrupts=b.interrupts([0, 1], rows(1001, 5000))),  # 41 overtakes 40
        b.snapshot(2, interrupts=b.interrupts([0, 1], rows(9001, 5001))),  # 40 back on top
    ]
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_collector(snaps, top_k=1))
    seen = [dict(_by_label(generate_latest(reg).decode(), "irqlab_interrupts_total")) for _ in snaps]
    assert [sorted(k for k in s if k != "other") for s in seen] == [["40"], ["41"], ["40"]]
    others = [s["other"] for s in seen]
    assert others == sorted(others), f"other went backwards: {others}"
    # other = LOC 10 + 41's 10 at first; then 40 (now outside the cut) grew 1; then 41 grew 1.
    assert others == [20.0, 21.0, 22.0]


def test_wrapped_32bit_per_cpu_counts_stay_monotonic():
    w = Wrap32()
    first = w.update(("a",), (0, 1), np.array([[2**32 - 10, 7]]))
    after = w.update(("a",), (0, 1), np.array([[5, 8]]))  # CPU0 wrapped: +15
    assert (after - first).tolist() == [[15, 1]]


def test_a_counter_far_backwards_is_a_reset_counted_from_its_new_value():
    w = Wrap32()
    w.update(("a",), (0,), np.array([[1_000_000]]))
    after = w.update(("a",), (0,), np.array([[3]]))
    assert after.tolist() == [[1_000_003]]


def test_include_exclude_and_rollup_collapse_queue_irqs_into_their_device():
    irq = b.interrupts([0, 1], [("40", "eth0-TxRx-0", [10, 0]), ("41", "eth0-TxRx-1", [0, 20]), ("42", "nvme0q1", [3, 3]), ("LOC", "Local timer interrupts", [1, 1])])
    got = _values(_collector([b.snapshot(0, interrupts=irq)], rollup_devices=True, include=re.compile("eth|nvme")), "irqlab_interrupts_total")
    assert got == {"40-41": 30.0, "42": 6.0, "other": 0.0}
    got = _values(_collector([b.snapshot(0, interrupts=irq)], exclude=re.compile("^eth")), "irqlab_interrupts_total")
    assert set(got) == {"42", "LOC", "other"}


@pytest.mark.parametrize(
    "name,device",
    [("eth0-TxRx-3", "eth0"), ("virtio2-input.0", "virtio2"), ("virtio3-rx", "virtio3"), ("nvme0q12", "nvme0"),
     ("mlx5_comp7@pci:0000:3b:00.0", "mlx5"), ("ttyS0", "ttyS0"), ("i915", "i915")],
)
def test_device_of_strips_queue_suffixes(name, device):
    irq = b.interrupts([0], [("40", name, [1])])
    assert device_of(irq.lines[0]) == device


def test_storm_level_is_set_for_an_irq_above_the_storm_threshold():
    def rows(n):
        return [("40", "eth0-TxRx-0", [n, 0]), ("41", "ttyS0", [1, 1])]
    snaps = [b.snapshot(0, interrupts=b.interrupts([0, 1], rows(0))), b.snapshot(1, interrupts=b.interrupts([0, 1], rows(250_000)))]
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_collector(snaps))
    generate_latest(reg)
    got = samples(generate_latest(reg).decode())
    level = {dict(k[1])["irq"]: v for k, v in got.items() if k[0] == "irqlab_storm_level"}
    assert level == {"40": 1.0, "41": 0.0}
    assert got[("irqlab_storms_active", ())] == 1.0


def test_a_histogram_provider_becomes_a_prometheus_histogram_in_seconds():
    h = Histogram(1_000, 1_000_000)
    h.add_many(np.array([500, 1500, 3000, 3000, 2_000_000]))

    def provider():
        return [NamedHistogram("handler_duration", "Hard-IRQ handler run time.", {"irq": "41", "cpu": "0"}, h)]

    snap = b.snapshot(0, interrupts=b.interrupts([0], [("41", "x", [1])]))
    reg = CollectorRegistry(auto_describe=False)
    reg.register(IrqlabCollector(lambda: ScrapeResult(snap, ()), ExportOptions(), [provider]))
    fam = {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}["irqlab_handler_duration_seconds"]
    assert fam.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in fam.samples if s.name.endswith("_bucket")}
    assert buckets["+Inf"] == 5
    # 500 ns < 2^9 ns; 1500 < 2^11; 3000 < 2^12; 2 ms < 2^21 ns.
    assert buckets[repr(2**9 / 1e9)] == 1 and buckets[repr(2**11 / 1e9)] == 2 and buckets[repr(2**12 / 1e9)] == 4
    total = [s.value for s in fam.samples if s.name.endswith("_sum")][0]
    assert total == pytest.approx(2_008_000 / 1e9)


@pytest.mark.parametrize("text", ["9717", ":9717", "127.0.0.1:0", "127.0.0.1:99999", "host:port"])
def test_bad_listen_addresses_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_listen(text)


def test_ipv6_listen_address_is_unbracketed():
    assert parse_listen("[::1]:9717") == ("::1", 9717)


def test_bad_regex_is_a_usage_error():
    with pytest.raises(UsageError, match="--include"):
        build_registry(args_of(include="("), scrape=lambda: None)


def test_a_listen_address_in_use_is_one_line_and_exit_3(capsys):
    import socket

    from irqlab.cli.main import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["export", "--listen", f"127.0.0.1:{port}", "--procfs", str(UDP / "a" / "proc"), "--sysfs", str(UDP / "a" / "sys")]) == 3
    assert "cannot listen" in capsys.readouterr().err


def test_no_tasks_at_all_is_a_failed_tasks_source_not_an_empty_success(tmp_path):
    got = samples(generate_latest(build_registry(args_of(), scrape=scrape_source(Roots.capture(tmp_path / "nothing")))).decode())
    assert {dict(k[1])["source"]: v for k, v in got.items() if k[0] == "irqlab_scrape_success"} == {
        "interrupts": 0.0, "softirqs": 0.0, "stat": 0.0, "softnet": 0.0, "tasks": 0.0}


def test_control_characters_of_machine_names_become_escapes_in_label_values():
    """/proc/interrupts action names and /proc/softirqs vector names come from the machine;
    prometheus_client escapes only backslash, quote and newline, so an ESC sequence in a name
    reached whoever reads the scrape (curl in a terminal). The exposition format allows any
    UTF-8 in a label value; irqlab shows C0/C1 controls and DEL as \\xNN text instead."""
    from irqlab.model.snapshot import Softirqs

    evil = "eth0\x1b]0;owned\x07-TxRx-0\x9b2J\x7f"
    irq = b.interrupts([0, 1], [("40", evil, [10, 0]), ("41", "eth1\ttab", [1, 0]), ("LOC", "Local timer interrupts", [1, 1])])
    soft = Softirqs((0,), ("NET_RX\x1b[5m",), np.array([[7]], dtype=np.int64))
    h = Histogram(1_000, 1_000_000)
    h.add_many(np.array([1500]))

    def provider():
        return [NamedHistogram("handler_duration", "x", {"irq": "40", "name": evil}, h)]

    for rollup in (False, True):
        coll = IrqlabCollector(lambda: ScrapeResult(b.snapshot(0, interrupts=irq, softirqs=soft), ()),
                               ExportOptions(rollup_devices=rollup, per_cpu=rollup), [provider])
        reg = CollectorRegistry(auto_describe=False)
        reg.register(coll)
        text = generate_latest(reg).decode()
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", text), repr([ln for ln in text.splitlines() if "eth0" in ln])
        names = {dict(k[1]).get("name") for k in samples(text)} | {dict(k[1]).get("vector") for k in samples(text)}
        assert "eth1\\x09tab" in names and "NET_RX\\x1b[5m" in names
        assert r"eth0\x1b]0;owned\x07-TxRx-0\x9b2J\x7f" in names
