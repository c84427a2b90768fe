"""`irqlab diff --json` and `top --json`: schema 2 by default (sparse), schema 1 on request."""

from __future__ import annotations

import bz2
import json
import re
from pathlib import Path

import pytest
from tests.cli.test_cli import run, utc  # noqa: F401 - utc: the same autouse fixture (UTC, cwd in the captures)

from irqlab.cli.main import EXIT_USAGE, main

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
FLOOD_A, FLOOD_B = Path("vm-udpflood/a"), Path("vm-udpflood/b")
MB = 1 << 20



def test_diff_json_is_schema_2_by_default_golden(capsys, golden):
    code, out, err = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["schema"] == 2
    loc = next(r for r in doc["irqs"] if r["irq"] == "LOC")
    assert set(loc["delta"]) == {"0", "1"} and loc["name"] == "Local timer interrupts"
    acpi = next(r for r in doc["irqs"] if r["irq"] == "24")
    assert acpi["delta"] == {} and acpi["total_delta"] == 0  # idle: no cells, still listed
    golden("diff-udpflood-schema2.json", out)


def test_json_schema_1_still_lists_every_cpu(capsys):
    _, out, _ = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "--json", "--json-schema", "1")
    doc = json.loads(out)
    assert doc["schema"] == 1
    assert all(set(r["delta"]) == {"0", "1"} for r in doc["irqs"] if r["per_cpu"])


def test_json_schema_other_than_1_or_2_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["diff", str(FLOOD_A), str(FLOOD_B), "--json", "--json-schema", "3"])
    err = capsys.readouterr().err
    assert exc.value.code == EXIT_USAGE and "--json-schema" in err


def test_top_json_on_a_capture_takes_the_schema_too(capsys):
    root = ["--procfs", f"{FLOOD_A}/proc", "--sysfs", f"{FLOOD_A}/sys"]
    _, out, _ = run(capsys, "top", *root, "--json")
    _, out1, _ = run(capsys, "top", *root, "--json", "--json-schema", "1")
    assert out.count("\n") == 1 and out1.count("\n") == 1  # one report, one line
    sparse, full = json.loads(out), json.loads(out1)
    assert (sparse["schema"], full["schema"]) == (2, 1)
    for s_row, f_row in zip(sparse["irqs"], full["irqs"]):
        assert s_row["delta"] == {k: v for k, v in f_row["delta"].items() if v != 0}


@pytest.mark.parametrize("command", ["diff", "top"])
def test_help_explains_json_schema(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--json-schema" in out
    assert re.search(r"zero deltas (left )?out", out)


# --- the 1152-CPU capture (../shared/fixtures, when present) -------------------------------


def _capture(base: Path, interrupts: str, t_ns: int) -> Path:
    (base / "proc").mkdir(parents=True)
    (base / "proc" / "interrupts").write_text(interrupts)
    meta = {"irqlab_version": "0.1.0", "format": 1, "monotonic_ns": t_ns, "wall_time": 0.0, "hostname": "pcp-qa-1152cpu"}
    (base / "irqlab-capture.json").write_text(json.dumps(meta))
    return base


def _bump_loc(text: str) -> str:
    """Every CPU's local timer one second (250 ticks) further, as the kernel prints it."""
    out = []
    for line in text.splitlines(keepends=True):
        label, colon, rest = line.partition(":")
        if label.strip() == "LOC":
            fields = rest.split()
            ncpu = sum(1 for f in fields if f.isdigit())
            rest = "".join(f" {int(v) + 250:10d}" for v in fields[:ncpu]) + "   " + " ".join(fields[ncpu:]) + "\n"
        out.append(label + colon + rest)
    return "".join(out)


@pytest.fixture
def big_pair(shared_fixtures, tmp_path) -> tuple[Path, Path]:
    source = shared_fixtures / "public" / "pcp-qa" / "interrupts-1152cpu-x86_64.bz2"
    if not source.is_file():
        pytest.skip(f"{source} not present")
    text = bz2.decompress(source.read_bytes()).decode()
    return _capture(tmp_path / "a", text, 1000 * 10**9), _capture(tmp_path / "b", _bump_loc(text), 1001 * 10**9)


def test_diff_json_of_the_1152_cpu_capture_stays_under_5_mb(capsys, big_pair):
    code, out, _ = run(capsys, "diff", str(big_pair[0]), str(big_pair[1]), "--json")
    assert code == 0
    assert len(out.encode()) <= 5 * MB, f"{len(out.encode()) / MB:.1f} MB"
    doc = json.loads(out)
    assert len(doc["cpus"]) == 1152 and len(doc["irqs"]) == 1056
    loc = next(r for r in doc["irqs"] if r["irq"] == "LOC")
    assert len(loc["delta"]) == 1152 and set(loc["delta"].values()) == {250}
    assert sum(len(r["delta"]) for r in doc["irqs"]) == 1152  # nothing else moved


@pytest.mark.parametrize("command", [("diff", str(CAPTURES / FLOOD_A), str(CAPTURES / FLOOD_B)),
                                     ("diff", str(CAPTURES / FLOOD_A), str(CAPTURES / FLOOD_B), "--json", "--json-schema", "1"),
                                     ("top", "--replay", str(CAPTURES / FLOOD_A), str(CAPTURES / FLOOD_B), "--json")])
def test_a_process_that_ends_without_tearing_down_still_writes_all_it_printed(capsys, command):
    """diff and one-shot top end with os._exit (cli/main.py): a pipe still gets every byte, as
    main() in this process prints it, and the exit code is the command's."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "irqlab", *command], capture_output=True, env=_env_utc(), timeout=60)
    code, out, err = run(capsys, *command)
    assert (proc.returncode, proc.stderr.decode()) == (code, err) == (0, "")
    assert proc.stdout.decode() == out and len(out) > 500  # the text form is less than a pipe buffer


def _env_utc() -> dict[str, str]:
    import os

    # Block-buffered stdout, as a user's pipe has (this shell may set PYTHONUNBUFFERED).
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "TZ": "UTC"}
