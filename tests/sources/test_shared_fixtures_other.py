"""Every softirqs, stat and softnet_stat capture in ../shared/fixtures, checked two ways.

Each file is parsed and compared with a deliberately naive reading written here (split the
text, int() the tokens), and files taken from one machine at one time are checked against
each other: /proc/softirqs against the softirq line of /proc/stat, softnet rows against the
online CPUs of /proc/stat, and the t0 -> t1 deltas against the capture's own README.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from irqlab.errors import ParseError
from irqlab.model.vectors import SOFTIRQ_NAMES
from irqlab.sources.softirqs import parse_softirqs
from irqlab.sources.softnet import parse_softnet
from irqlab.sources.stat import parse_stat

pytestmark = pytest.mark.fixtures

FIRECRACKER = "vm-firecracker-2cpu"
# Only this file is malformed on purpose (4 columns; prometheus/procfs's own error case).
BROKEN = {"public/prometheus-procfs/softnet_stat.broken": 1}


def captures(root: Path, prefix: str) -> list[Path]:
    """Files named prefix* anywhere under root (softirqs-8cpu-x86_64, stat.t0, ...)."""
    found = sorted(p for p in root.rglob(prefix + "*") if p.is_file())
    assert found, f"no {prefix}* files under {root}"
    return found


def rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# --- naive readings -----------------------------------------------------------------------


def naive_softirqs(text: str) -> tuple[list[int], dict[str, int]]:
    lines = [line for line in text.splitlines() if line.strip()]
    cpus = [int(label[3:]) for label in lines[0].split()]
    sums = {}
    for line in lines[1:]:
        name, counts = line.split(":")
        sums[name.strip()] = sum(int(c) for c in counts.split()[: len(cpus)])
    return cpus, sums


def naive_stat(text: str) -> dict[str, list[int]]:
    return {line.split()[0]: [int(t) for t in line.split()[1:]] for line in text.splitlines() if line.strip() and line.split()[0] != "disk_io:"}


def naive_softnet(text: str) -> list[list[int]]:
    return [[int(t, 16) for t in line.split()] for line in text.splitlines() if line.strip()]


# --- every file against its naive reading -------------------------------------------------


def test_every_softirqs_file_matches_a_naive_reading(shared_fixtures: Path) -> None:
    files = captures(shared_fixtures, "softirqs")
    assert len(files) >= 10
    for path in files:
        text = path.read_text()
        s = parse_softirqs(text, str(path))
        cpus, sums = naive_softirqs(text)
        assert list(s.cpus) == cpus, rel(shared_fixtures, path)
        assert len(s.vectors) == len(sums), rel(shared_fixtures, path)
        assert s.counts.sum(axis=1).tolist() == list(sums.values()), rel(shared_fixtures, path)
        # every capture here is from a kernel with the ten vectors, under either name of #5
        assert s.vectors == SOFTIRQ_NAMES, rel(shared_fixtures, path)


def test_every_stat_file_matches_a_naive_reading(shared_fixtures: Path) -> None:
    files = captures(shared_fixtures, "stat")
    assert len(files) >= 10
    for path in files:
        text = path.read_text()
        s, naive = parse_stat(text, str(path)), naive_stat(text)
        where = rel(shared_fixtures, path)
        cpu_keys = [k for k in naive if k.startswith("cpu") and k != "cpu"]
        assert [f"cpu{c}" for c in s.cpus] == cpu_keys, where
        assert s.times[:, 0].sum() == sum(naive[k][0] for k in cpu_keys), where
        assert s.total_times[: s.nfields].tolist() == naive["cpu"], where
        assert s.intr is not None and [s.intr_total, *s.intr.tolist()] == naive["intr"], where
        assert s.ctxt == naive["ctxt"][0] and s.processes == naive["processes"][0], where
        if "softirq" in naive:
            assert s.softirq is not None and [s.softirq_total, *s.softirq] == naive["softirq"], where
            # the kernel prints the total as the sum of the per-vector sums
            assert s.softirq_total == sum(s.softirq), where
        else:
            assert s.softirq is None, where


def test_every_softnet_file_matches_a_naive_reading_or_is_the_broken_one(shared_fixtures: Path) -> None:
    files = captures(shared_fixtures, "softnet_stat")
    assert len(files) >= 10
    seen_broken = {}
    for path in files:
        text, where = path.read_text(), rel(shared_fixtures, path)
        if where in BROKEN:
            with pytest.raises(ParseError) as err:
                parse_softnet(text, str(path))
            seen_broken[where] = err.value.line
            assert err.value.path == str(path)
            continue
        s, rows = parse_softnet(text, str(path)), naive_softnet(text)
        assert len(s.rows) == len(rows), where
        assert [r.processed for r in s.rows] == [row[0] for row in rows], where
        assert [r.dropped for r in s.rows] == [row[1] for row in rows], where
        assert [r.time_squeeze for r in s.rows] == [row[2] for row in rows], where
        assert [r.cpu for r in s.rows] == [row[12] if len(row) >= 13 else i for i, row in enumerate(rows)], where
    assert seen_broken == BROKEN


# --- files of one machine against each other ----------------------------------------------

# Folders whose softirqs, stat and softnet_stat come from one machine at one time (the
# PROVENANCE files say which). Not sysstat root6: its stat has cpu8/cpu9 added by hand
# while its softirqs stops at CPU7.
SAME_MACHINE = [
    "public/coreos-sosreport-hyperv",
    "public/mt6589-android-tablet",
    "public/zte-orange-armv7",
    "public/sysstat-tests/root3",
    "public/sysstat-tests/root4",
    "public/pcp-qa/hpbl920gen8-480cpu",
    "public/sep4020-arm720t",
    FIRECRACKER,
    f"{FIRECRACKER}/udpflood",
]


def _pairs(base: Path, stem: str) -> list[tuple[Path, str]]:
    """(file, suffix) for stem, stem.t0, stem.t1 in one folder."""
    return [(p, p.name[len(stem):]) for p in sorted(base.glob(stem + "*"))]


def test_online_cpus_in_stat_are_a_subset_of_possible_cpus_in_softirqs(shared_fixtures: Path) -> None:
    checked = 0
    for folder in SAME_MACHINE:
        for path, suffix in _pairs(shared_fixtures / folder, "softirqs"):
            stat_path = path.with_name("stat" + suffix)
            softirqs, stat = parse_softirqs(path.read_text()), parse_stat(stat_path.read_text())
            assert set(stat.cpus) <= set(softirqs.cpus), folder
            checked += 1
    assert checked >= 6


def test_softnet_has_one_row_per_online_cpu_and_its_cpu_column_names_them(shared_fixtures: Path) -> None:
    checked = 0
    for folder in SAME_MACHINE:
        for path, suffix in _pairs(shared_fixtures / folder, "softnet_stat"):
            softnet = parse_softnet(path.read_text())
            stat = parse_stat(path.with_name("stat" + suffix).read_text())
            assert len(softnet.rows) == len(stat.cpus), folder
            if all(r.cpu_from_column for r in softnet.rows):
                assert tuple(r.cpu for r in softnet.rows) == stat.cpus, folder
            checked += 1
    assert checked >= 6


def _close(a: int, b: int, rel: float, floor: int) -> bool:
    return abs(a - b) <= max(floor, rel * max(a, b))


@pytest.mark.parametrize("folder", [FIRECRACKER, f"{FIRECRACKER}/udpflood"])
@pytest.mark.parametrize("t", ["t0", "t1"])
def test_softirqs_sums_match_the_softirq_line_of_stat_taken_with_it(shared_fixtures: Path, folder: str, t: str) -> None:
    # Read one after the other, not atomically: close, not equal (NET_RX runs at ~1M/s).
    softirqs = parse_softirqs((shared_fixtures / folder / f"softirqs.{t}").read_text())
    stat = parse_stat((shared_fixtures / folder / f"stat.{t}").read_text())
    assert stat.softirq is not None and stat.softirq_total is not None
    assert _close(int(softirqs.counts.sum()), stat.softirq_total, 1e-4, 100)
    for nr, total in enumerate(softirqs.counts.sum(axis=1).tolist()):
        assert _close(total, stat.softirq[nr], 1e-3, 100), SOFTIRQ_NAMES[nr]


@pytest.mark.parametrize("folder", [FIRECRACKER, f"{FIRECRACKER}/udpflood"])
def test_softirqs_deltas_match_stat_deltas_over_the_same_second(shared_fixtures: Path, folder: str) -> None:
    base = shared_fixtures / folder
    s0, s1 = (parse_softirqs((base / f"softirqs.{t}").read_text()) for t in ("t0", "t1"))
    t0, t1 = (parse_stat((base / f"stat.{t}").read_text()) for t in ("t0", "t1"))
    assert t0.softirq is not None and t1.softirq is not None
    per_vector = (s1.counts - s0.counts).sum(axis=1).tolist()
    for nr, delta in enumerate(per_vector):
        assert _close(delta, t1.softirq[nr] - t0.softirq[nr], 0.02, 100), SOFTIRQ_NAMES[nr]


def test_tcprpshog_softirqs_softnet_and_stat_deltas_are_the_ones_its_readme_reports(shared_fixtures: Path) -> None:
    # vm-firecracker-2cpu/README.md, table "Deltas between t0 and t1 (1.05 s)".
    base = shared_fixtures / FIRECRACKER
    s0, s1 = (parse_softirqs((base / f"softirqs.{t}").read_text()) for t in ("t0", "t1"))
    delta = dict(zip(s0.vectors, (s1.counts - s0.counts).tolist()))
    assert delta["NET_RX"] == [15772, 19403]
    assert delta["HRTIMER"] == [3, 17030]
    n0, n1 = (parse_softnet((base / f"softnet_stat.{t}").read_text()) for t in ("t0", "t1"))
    assert [b.processed - a.processed for a, b in zip(n0.rows, n1.rows)] == [23044, 6935]
    assert [b.received_rps - a.received_rps for a, b in zip(n0.rows, n1.rows)] == [15883, 0]  # type: ignore[operator]
    st0, st1 = (parse_stat((base / f"stat.{t}").read_text()) for t in ("t0", "t1"))
    ticks = st1.times - st0.times
    cols = [st0.column(name) for name in ("user", "system", "softirq", "idle")]
    assert ticks[:, cols].tolist() == [[68, 1, 36, 0], [2, 56, 47, 0]]


def test_udpflood_net_rx_and_softnet_deltas_are_the_ones_its_readme_reports(shared_fixtures: Path) -> None:
    base = shared_fixtures / FIRECRACKER / "udpflood"
    s0, s1 = (parse_softirqs((base / f"softirqs.{t}").read_text()) for t in ("t0", "t1"))
    assert (s1.counts - s0.counts)[s0.vectors.index("NET_RX")].tolist() == [474994, 465814]
    n0, n1 = (parse_softnet((base / f"softnet_stat.{t}").read_text()) for t in ("t0", "t1"))
    assert [b.processed - a.processed for a, b in zip(n0.rows, n1.rows)] == [470195, 463050]
    assert all(b.dropped == a.dropped and b.time_squeeze == a.time_squeeze for a, b in zip(n0.rows, n1.rows))
