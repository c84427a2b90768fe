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


# --- nothing the suite changed on this machine stays changed ------------------------------
# As root the live tests write affinities, RPS masks, NAPI knobs and sysctls, mount tracefs
# and make tracefs instances, each promising to undo it. The whole session is held to that
# promise: the same files are read at the start and at the end, and any difference fails the
# run (a test that restores nothing would otherwise pass on its own).

def _machine_state() -> dict[str, str]:
    import glob

    state: dict[str, str] = {}
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    state["tracefs mounts"] = " ".join(sorted(m.split()[1] for m in mounts if m.split()[2] == "tracefs"))
    for inst in ("/sys/kernel/tracing/instances", "/sys/kernel/debug/tracing/instances"):
        if os.path.isdir(inst):
            state[f"{inst} irqlab-*"] = " ".join(sorted(n for n in os.listdir(inst) if n.startswith("irqlab-")))
    patterns = ("/proc/irq/*/smp_affinity_list", "/sys/class/net/*/queues/rx-*/rps_cpus",
                "/sys/class/net/*/queues/tx-*/xps_cpus", "/sys/class/net/*/gro_flush_timeout",
                "/sys/class/net/*/napi_defer_hard_irqs", "/sys/class/net/*/threaded",
                "/proc/sys/net/core/netdev_budget", "/proc/sys/net/core/netdev_budget_usecs",
                "/proc/sys/net/core/netdev_max_backlog", "/proc/sys/net/core/rps_sock_flow_entries")
    for pattern in patterns:
        for path in glob.glob(pattern):
            try:
                state[path] = Path(path).read_text().strip()
            except OSError:
                continue  # unreadable here (e.g. xps_cpus of a single-queue device)
    state.update(_napi_state())
    return state


def _napi_state() -> dict[str, str]:
    """The host namespace's per-NAPI settings (netdev netlink, 6.13+): watch's napi rung writes them."""
    from irqlab.errors import IrqlabError
    from irqlab.sources.napi import read_napis

    try:
        napis = read_napis()
    except (IrqlabError, OSError):
        return {}  # no netdev family here: nothing per NAPI to change
    return {f"napi {n.id} (ifindex {n.ifindex})": f"defer-hard-irqs={n.defer_hard_irqs} gro-flush-timeout={n.gro_flush_timeout_ns} "
            f"irq-suspend-timeout={n.irq_suspend_timeout_ns} threaded={n.threaded}" for n in napis}


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() == 0 and Path("/proc/irq").is_dir():
        session.config._irqlab_machine_state = _machine_state()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = getattr(session.config, "_irqlab_machine_state", None)
    if before is None:
        return
    after = _machine_state()
    # A device that came or went (a test's veth) is not a change to the machine's own knobs.
    changed = {k: (v, after[k]) for k, v in before.items() if k in after and after[k] != v}
    changed.update({k: (before.get(k, "(absent)"), v) for k, v in after.items()
                    if k not in before and ("tracefs" in k or "irqlab-" in k) and v})
    if changed:
        lines = "\n".join(f"  {k}: {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
        session.config.get_terminal_writer().line(f"\nFAILED: the test session left this machine changed:\n{lines}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _sigpipe_as_python_sets_it():
    """Tests that call irqlab's main() in this process let it set SIGPIPE to its default (as a
    command that prints does): put Python's SIG_IGN back, or a later test that writes to a
    closed socket would kill the whole session instead of getting BrokenPipeError."""
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    yield
    signal.signal(signal.SIGPIPE, before)
