"""tracefs discovery and the private `instances/irqlab-<pid>` lifecycle.

irqlab never touches the global trace buffer: it makes its own instance (Documentation/trace/
ftrace.rst, "Instances", v6.18), configures it, and removes it on exit, Ctrl-C and SIGTERM.
A run killed with SIGKILL cannot clean up; the next start removes instances named after
PIDs that no longer exist.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from irqlab.cpulist import format_cpumask
from irqlab.errors import TracefsUnavailable

DEFAULT_MOUNTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
PREFIX = "irqlab-"
_NAME = re.compile(r"^irqlab-(\d+)(?:-(\d+))?$")
# A buffer per CPU above 2 GiB is a typo on any machine this tool targets (cli/trace.py agrees).
MAX_BUFFER_KB = 1 << 21


@dataclass(frozen=True, slots=True)
class Tracefs:
    """A tracefs root that is usable: mounted (or a test directory) and writable by us."""

    root: Path
    mounted_here: bool = False

    @property
    def instances(self) -> Path:
        return self.root / "instances"


def _mounted_tracefs(mounts: Path = Path("/proc/self/mounts")) -> list[Path]:
    try:
        text = mounts.read_text()
    except OSError:
        return []
    return [Path(line.split()[1]) for line in text.splitlines() if len(line.split()) > 2 and line.split()[2] == "tracefs"]


def _mount_marker() -> Path:
    """Where a mount irqlab made is recorded (pid and path), so that a run killed before it
    could unmount is undone by the next one: the same host-wide directory as the journal's
    knob registry (mitigate/journal.py), $IRQLAB_RUN_DIR or /run/irqlab."""
    return Path(os.environ.get("IRQLAB_RUN_DIR", "/run/irqlab")) / "tracefs-mount"


def _mount(target: Path) -> None:
    """mount -t tracefs nodev TARGET, without a shell (mount(2) through libc), and record it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"nodev", str(target).encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise TracefsUnavailable(f"{target}: cannot mount tracefs: {os.strerror(err)}")
    _write_marker(target)


def _write_marker(target: Path) -> None:
    marker = _mount_marker()
    try:
        marker.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = marker.with_name(f"{marker.name}.{os.getpid()}")
        tmp.write_text(f"{os.getpid()} {target}\n")
        os.replace(tmp, marker)
    except OSError:
        pass  # without the record only a SIGKILL leaves the mount behind, as before


def _umount(target: Path) -> None:
    """Undo our own mount; EBUSY means another tracer uses it now, so it stays."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(str(target).encode(), 0) == 0:
        try:
            _mount_marker().unlink()
        except OSError:
            pass


def _release(t: Tracefs) -> None:
    """At the end of this run's last use: undo our mount, or one whose maker has died meanwhile.

    Two runs overlap: the first mounts, the second finds the mount and uses it, the first
    ends while the second still holds its instance (EBUSY: the mount stays, with the first
    run's record). Without this the second, ending last, left tracefs mounted until the next
    run. It adopts the record of the dead run and unmounts; if yet another run holds it now,
    the mount stays with this run's record, for whoever ends after it.
    """
    if t.mounted_here or (os.geteuid() == 0 and _left_by_a_dead_run(t.root)):
        _umount(t.root)


def _left_by_a_dead_run(target: Path) -> bool:
    """True when the record says a run that no longer exists mounted `target` (killed with
    SIGKILL before it could unmount): this run adopts the mount and undoes it when done."""
    marker = _mount_marker()
    try:
        st = os.lstat(marker)
        pid_text, _, path = marker.read_text().strip().partition(" ")
    except (OSError, ValueError):
        return False
    if st.st_uid != os.geteuid() or st.st_mode & 0o022 or not pid_text.isdigit():
        return False  # not a record this user wrote: never act on it
    if Path(path) != target or _pid_alive(int(pid_text)):
        return False
    _write_marker(target)
    return True


def find_tracefs(root: Path | None = None, mount: bool = True) -> Tracefs:
    """The tracefs to use: the given root, a mounted one, or one we mount (as root)."""
    if root is not None:
        return _check(Path(root), False)
    mounted = _mounted_tracefs()
    for cand in DEFAULT_MOUNTS:
        if cand in mounted:
            return _check(cand, os.geteuid() == 0 and _left_by_a_dead_run(cand))
    if mounted:
        return _check(mounted[0], False)
    target = DEFAULT_MOUNTS[0]
    if not mount or os.geteuid() != 0 or not target.is_dir():
        raise TracefsUnavailable(
            f"tracefs is not mounted at {target} (as root: mount -t tracefs nodev {target})")
    _mount(target)
    return _check(target, True)


@contextmanager
def tracefs_for_setup(root: Path | None = None) -> Iterator[Tracefs]:
    """find_tracefs() for a caller that needs tracefs only while it sets up (the BPF backend
    reads event ids and formats, then runs on its own): a mount made here is undone on exit,
    unless an instance made meanwhile still lives on it."""
    t = find_tracefs(root)
    try:
        yield t
    finally:
        with _LOCK:
            busy = bool(_LIVE)
        if not busy:
            _release(t)


def _check(root: Path, mounted_here: bool) -> Tracefs:
    """One clear error for: not a tracefs, no permission."""
    try:
        names = set(os.listdir(root))
    except PermissionError:
        raise TracefsUnavailable(f"{root}: permission denied (tracing needs root)") from None
    except OSError as exc:
        raise TracefsUnavailable(f"{root}: {exc.strerror} (is tracefs mounted?)") from None
    if not {"instances", "events"} <= names:
        raise TracefsUnavailable(f"{root}: not a tracefs (no events/ or instances/; is tracefs mounted?)")
    if not os.access(root / "instances", os.W_OK):
        raise TracefsUnavailable(f"{root / 'instances'}: permission denied (tracing needs root)")
    return Tracefs(root, mounted_here)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(tracefs: Tracefs) -> list[str]:
    """Remove irqlab instances whose PID is dead (left by a run killed with SIGKILL)."""
    removed = []
    try:
        names = os.listdir(tracefs.instances)
    except OSError:
        return removed
    for name in sorted(names):
        m = _NAME.match(name)
        if m is None or _pid_alive(int(m[1])):
            continue
        try:
            os.rmdir(tracefs.instances / name)
            removed.append(name)
        except OSError:
            pass  # raced with another irqlab doing the same cleanup, or busy: leave it
    return removed


# Instances this process made and has not yet removed; atexit and signals sweep them.
_LIVE: dict[Path, Instance] = {}
_LOCK = threading.Lock()


@dataclass(eq=False)
class Instance:
    """A private trace instance: make, configure, remove. Use as a context manager."""

    tracefs: Tracefs
    path: Path = field(init=False)
    _closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        remove_stale(self.tracefs)
        self.path = self._make()
        with _LOCK:
            _LIVE[self.path] = self
        _install_handlers()
        self.write("tracing_on", "0")  # a new instance starts with tracing on

    def _make(self) -> Path:
        base = f"{PREFIX}{os.getpid()}"
        for n in range(1000):
            path = self.tracefs.instances / (base if n == 0 else f"{base}-{n}")
            try:
                os.mkdir(path)
                return path
            except FileExistsError:
                continue  # a second session in this process
            except PermissionError:
                raise TracefsUnavailable(f"{self.tracefs.instances}: permission denied (tracing needs root)") from None
            except OSError as exc:
                raise TracefsUnavailable(f"{path}: cannot create instance: {exc.strerror}") from None
        raise TracefsUnavailable(f"{self.tracefs.instances}: too many irqlab instances of PID {os.getpid()}")

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def read(self, *parts: str) -> str:
        path = self.file(*parts)
        try:
            return path.read_text()
        except OSError as exc:
            raise TracefsUnavailable(f"{path}: {exc.strerror}") from None

    def write(self, name: str, value: str) -> None:
        """Write one control file of the instance (values are validated by the callers)."""
        path = self.file(*name.split("/"))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        except FileNotFoundError:
            raise TracefsUnavailable(f"{path}: not present on this kernel") from None
        except OSError as exc:
            raise TracefsUnavailable(f"{path}: {exc.strerror}") from None
        try:
            os.write(fd, value.encode())
        except OSError as exc:
            raise TracefsUnavailable(f"{path}: writing {value!r}: {exc.strerror}") from None
        finally:
            os.close(fd)

    def set_buffer_kb(self, kb: int) -> None:
        if not isinstance(kb, int) or not 1 <= kb <= MAX_BUFFER_KB:
            raise TracefsUnavailable(f"buffer size {kb!r} KB per CPU is outside 1..{MAX_BUFFER_KB}")
        self.write("buffer_size_kb", str(kb))

    def set_clock(self, clock: str) -> None:
        offered = self.read("trace_clock").replace("[", "").replace("]", "").split()
        if clock not in offered:
            raise TracefsUnavailable(f"trace clock {clock!r} not offered by this kernel (offers: {' '.join(offered)})")
        self.write("trace_clock", clock)

    def set_cpus(self, cpus: tuple[int, ...]) -> None:
        self.write("tracing_cpumask", format_cpumask(cpus))

    def enable(self, qualified: str) -> None:
        """Enable system:event in this instance; TracefsUnavailable if the kernel lacks it."""
        self.enable_check(qualified)
        system, _, name = qualified.partition(":")
        self.write(f"events/{system}/{name}/enable", "1")

    def set_filter(self, qualified: str, expr: str) -> None:
        """Filter an event in the kernel, e.g. "vec == 3" (Documentation/trace/events.rst, 5.1)."""
        if not re.fullmatch(r"[\w\s=!<>&|().~*\"-]{1,256}", expr):
            raise TracefsUnavailable(f"filter {expr!r} for {qualified}: unexpected characters")
        system, _, name = qualified.partition(":")
        self.enable_check(qualified)
        self.write(f"events/{system}/{name}/filter", expr)

    def enable_check(self, qualified: str) -> None:
        system, sep, name = qualified.partition(":")
        if not sep or not re.fullmatch(r"\w+", system) or not re.fullmatch(r"\w+", name):
            raise TracefsUnavailable(f"{qualified!r} is not an event name like irq:softirq_entry")
        if not self.file("events", system, name).is_dir():
            raise TracefsUnavailable(f"event {qualified} is not available on this kernel (no events/{system}/{name})")

    def has_event(self, qualified: str) -> bool:
        system, _, name = qualified.partition(":")
        return self.file("events", system, name, "format").exists()

    def remove(self) -> None:
        """Stop tracing and remove the instance; safe to call twice and from a signal handler."""
        if self._closed:
            return
        self._closed = True
        with _LOCK:
            _LIVE.pop(self.path, None)
        try:
            self.write("tracing_on", "0")
        except TracefsUnavailable:
            pass
        # EBUSY while a reader still holds trace_pipe_raw open; on a loaded machine the reader
        # thread may need a while to notice and close, so wait up to 5 s.
        for _ in range(250):
            try:
                os.rmdir(self.path)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    break
                threading.Event().wait(0.02)
        if not _LIVE:
            _release(self.tracefs)


def _sweep() -> None:
    with _LOCK:
        live = list(_LIVE.values())
    for inst in live:
        inst.remove()


_installed = False


def _on_signal(signum: int, frame: object) -> None:
    # Unwind through the with-blocks (their __exit__ close readers and remove instances), as
    # Ctrl-C does; exit status 128 + signal like a shell.
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    """atexit sweep always; SIGTERM/SIGHUP -> SystemExit when nobody else handles them."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_sweep)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_signal)
