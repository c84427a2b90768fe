"""The `golden` fixture: a missing golden file fails the test; only --update-golden writes one."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent  # not `from conftest`: tests/sim has a conftest too

pytest_plugins = ["pytester"]

TEST = """
def test_renders(golden):
    golden("out.txt", "the rendered text\\n")
"""


@pytest.fixture
def tree(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """A small repository: the project's own tests/conftest.py beside one test that uses `golden`."""
    monkeypatch.delenv("CI", raising=False)
    tests = pytester.mkdir("tests")
    (tests / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tests / "test_out.py").write_text(TEST)
    return tests


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests", *args)


@pytest.mark.parametrize("ci", [None, "true"], ids=["developer", "ci"])
def test_a_missing_golden_file_fails_and_is_not_written(pytester, tree, monkeypatch, ci):
    if ci:
        monkeypatch.setenv("CI", ci)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*golden file*out.txt is missing*--update-golden*"])
    assert not (tree / "golden" / "out.txt").exists()


def test_update_golden_writes_the_file_and_the_next_run_compares_with_it(pytester, tree):
    run(pytester, "--update-golden").assert_outcomes(passed=1)
    assert (tree / "golden" / "out.txt").read_text() == "the rendered text\n"
    run(pytester).assert_outcomes(passed=1)


def test_output_that_differs_from_the_golden_file_fails_and_leaves_it(pytester, tree):
    (tree / "golden").mkdir()
    (tree / "golden" / "out.txt").write_text("older text\n")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output differs from*out.txt*"])
    assert (tree / "golden" / "out.txt").read_text() == "older text\n"
