"""Shared test fixtures: repository paths, ../shared/fixtures, golden files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = REPO / "tests" / "golden"
# Real /proc captures from many machines live beside the repository (CI has them); the
# project never copies them, it only reads them when they are there.
SHARED_FIXTURES = Path(os.environ.get("IRQLAB_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from current output")


@pytest.fixture
def fixtures() -> Path:
    """The project's own fixtures (tests/fixtures)."""
    return FIXTURES


@pytest.fixture
def shared_fixtures() -> Path:
    """../shared/fixtures, or skip when this checkout has none."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"{SHARED_FIXTURES} not present")
    return SHARED_FIXTURES


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Compare text with tests/golden/NAME; only --update-golden writes it.

    A missing golden file fails everywhere: written on the spot, it would pass whatever the
    output is, and a lost or misnamed file would go unnoticed.
    """
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        if not path.exists():
            pytest.fail(f"golden file {path} is missing (run pytest --update-golden)")
        expected = path.read_text()
        assert text == expected, f"output differs from {path}; rerun with --update-golden if intended"

    return check
