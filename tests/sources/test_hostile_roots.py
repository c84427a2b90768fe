"""Captures and --procfs/--sysfs roots come from other machines: a hostile entry is refused.

A symlink must not lead out of a capture (its target's text must never be shown), a device,
a FIFO or a huge file must not be read (no hang, no MemoryError), and each refusal is one line
on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from irqlab.errors import ParseError, SourceError, UnsafeSource
from irqlab.sources import fs
from irqlab.sources.fs import Roots
from irqlab.sources.interrupts import read_interrupts
from irqlab.sources.irqinfo import read_irqinfo
from irqlab.sources.softirqs import read_softirqs

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
SECRET = "root:$6$SECRETSALT$SECRETHASHSECRETHASH:19000:0:99999:7:::\n"
IRQLAB = [sys.executable, "-m", "irqlab"]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of two captures of one machine, and a secret file beside them (outside both)."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(CAPTURES / "vm-udpflood" / "a", a)
    shutil.copytree(CAPTURES / "vm-udpflood" / "b", b)
    (tmp_path / "secret").write_text(SECRET)
    return a, b


def _plant(path: Path, kind: str) -> None:
    """Replace the capture file at path by a hostile entry of one kind."""
    path.unlink()
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        with open(path, "wb") as f:
            f.truncate(5 << 30)  # sparse: costs no disk; more than the children may allocate
    else:
        raise AssertionError(kind)


def _secret_link(path: Path, secret: Path) -> None:
    path.unlink()
    path.symlink_to(secret)


# --- fs: one place for the rules -------------------------------------------------------------


def test_symlink_out_of_a_capture_is_refused_without_reading_it(pair):
    a, _ = pair
    _secret_link(a / "proc" / "softirqs", a.parent / "secret")
    with pytest.raises(UnsafeSource) as err:
        read_softirqs(Roots.capture(a))
    assert "SECRET" not in str(err.value) and "symbolic link" in str(err.value)


def test_directory_symlink_out_of_a_capture_is_refused(pair):
    a, _ = pair
    outside = a.parent / "elsewhere"
    outside.mkdir()
    (outside / "softnet_stat").write_text("SECRET\n")
    shutil.rmtree(a / "proc" / "net")
    (a / "proc" / "net").symlink_to(outside)
    with pytest.raises(UnsafeSource):
        fs.read_text(Roots.capture(a).proc("net", "softnet_stat"))


def test_symlink_that_stays_inside_the_capture_is_followed(pair):
    a, _ = pair
    text = (a / "proc" / "softirqs").read_text()
    (a / "proc" / "softirqs").rename(a / "proc" / "softirqs.orig")
    (a / "proc" / "softirqs").symlink_to("softirqs.orig")
    assert fs.read_text(Roots.capture(a).proc("softirqs")) == text


def test_capture_reached_through_a_symlinked_directory_is_fine(pair, tmp_path):
    a, _ = pair
    (tmp_path / "latest").symlink_to(a)
    roots = Roots.capture(tmp_path / "latest")
    assert read_interrupts(roots).cpus == read_interrupts(Roots.capture(a)).cpus


def test_listing_through_a_symlink_out_of_the_capture_is_refused(pair, tmp_path):
    a, _ = pair
    shutil.rmtree(a / "proc" / "irq")
    (a / "proc" / "irq").symlink_to(CAPTURES / "vm-idle" / "a" / "proc" / "irq")
    with pytest.raises(UnsafeSource):
        fs.list_dir(Roots.capture(a).proc("irq"))


def test_per_irq_file_linked_out_is_reported_not_read(pair):
    a, _ = pair
    node = a / "proc" / "irq" / "36" / "node"
    _secret_link(node, a.parent / "secret")
    info, unreadable = read_irqinfo(Roots.capture(a))
    assert info[36].node is None
    assert [u.path for u in unreadable] == [str(node)]
    assert all("SECRET" not in u.message and "symbolic link" in u.message for u in unreadable)


@pytest.mark.live
def test_live_sysfs_keeps_following_its_own_symlinks():
    # /sys/class/net/lo -> ../../devices/virtual/net/lo: the kernel's own layout.
    assert fs.read_text("/sys/class/net/lo/address").strip() == "00:00:00:00:00:00"


def test_a_device_is_not_read_even_outside_any_capture():
    # /dev/null rather than /dev/zero: an unguarded reader must not take this machine's memory.
    with pytest.raises(UnsafeSource, match="not a regular file"):
        fs.read_bytes("/dev/null")


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "interrupts"
    os.mkfifo(fifo)
    # Without O_NONBLOCK the open blocks for ever; the alarm turns that into a failure.
    old = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("blocked on a FIFO"))
    signal.alarm(5)
    try:
        with pytest.raises(UnsafeSource, match="not a regular file"):
            fs.read_bytes(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_file_over_64_mib_is_refused_before_reading(tmp_path):
    big = tmp_path / "interrupts"
    with open(big, "wb") as f:
        f.truncate((64 << 20) + 1)
    with pytest.raises(UnsafeSource, match="file larger than 64 MiB"):
        fs.read_bytes(big)


def test_a_file_of_exactly_64_mib_is_read(tmp_path):
    big = tmp_path / "interrupts"
    with open(big, "wb") as f:
        f.truncate(64 << 20)
    assert len(fs.read_bytes(big)) == 64 << 20


def test_missing_and_permission_errors_keep_their_kinds(tmp_path):
    from irqlab.errors import MissingSource

    with pytest.raises(MissingSource):
        fs.read_bytes(tmp_path / "absent")
    with pytest.raises(SourceError, match="Is a directory"):
        fs.read_bytes(tmp_path)


# --- ParseError: a short, escaped excerpt only ------------------------------------------------


def test_parse_error_shows_a_short_escaped_excerpt():
    token = "\x1b[2J" + "root:$6$" + "x" * 100
    err = ParseError("proc/softirqs", 3, token, "not a softirq vector name")
    text = str(err)
    assert "\x1b" not in text and "\\x1b[2J" in text
    excerpt = text.split("(at ", 1)[1]
    assert excerpt.endswith("...')") and len(excerpt) <= 40 + 4
    assert "x" * 40 not in text


def test_parse_error_message_is_escaped_too():
    assert "\x07" not in str(ParseError("p", 1, "t", "bell \x07 in a message"))


# --- end to end through the command line -----------------------------------------------------

KINDS = ("symlink-out", "dev-zero", "fifo", "huge")
FILES = ("proc/interrupts", "proc/softirqs")


def _commands(a: Path, b: Path) -> dict[str, list[str]]:
    roots = ["--procfs", str(a / "proc"), "--sysfs", str(a / "sys")]
    return {
        "diff": ["diff", str(a), str(b)],
        "top": ["top", "--once", *roots],
        "doctor": ["doctor", *roots, "--then", str(b)],
    }


def _limit_memory() -> None:
    # A reader without a size cap would take the whole machine on /dev/zero: fail early.
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _run(argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    return subprocess.run(IRQLAB + argv, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL, preexec_fn=_limit_memory)


@pytest.mark.parametrize("rel", FILES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ("diff", "top", "doctor"))
def test_hostile_entry_is_one_line_and_an_error(pair, command, kind, rel):
    a, b = pair
    if kind == "symlink-out":
        _secret_link(a / rel, a.parent / "secret")
    else:
        _plant(a / rel, kind)
    proc = _run(_commands(a, b)[command])
    assert proc.returncode != 0, proc.stdout
    assert "SECRET" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert rel.split("/")[-1] in lines[0]


def test_watch_on_a_fifo_does_not_hang_and_stops_on_sigterm(pair):
    a, _ = pair
    _plant(a / "proc" / "softirqs", "fifo")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    argv = IRQLAB + ["watch", "0.2", "--procfs", str(a / "proc"), "--sysfs", str(a / "sys")]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          stdin=subprocess.DEVNULL, preexec_fn=_limit_memory) as proc:
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("watch ignored SIGTERM")
    assert "Traceback" not in err
    assert "SECRET" not in out + err
