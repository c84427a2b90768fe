"""The code passes ruff and mypy as pyproject.toml configures them.

Both run from the venv that runs the tests (the test extras install them at the versions in
constraints.txt), on the whole tree, so a finding fails CI like any other test. The failure
message is the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    proc = _run("ruff", "check", "--no-cache", "--output-format", "concise", "src", "tests")
    assert proc.returncode == 0, f"ruff check src tests (fix with `ruff check --fix src tests`):\n{proc.stdout}{proc.stderr}"


def test_mypy_finds_nothing():
    # No arguments: the files, the strict packages and the backlog come from [tool.mypy].
    proc = _run("mypy")
    assert proc.returncode == 0, f"mypy:\n{proc.stdout}{proc.stderr}"
