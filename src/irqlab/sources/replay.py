"""Replay captures (`irqlab snapshot -o DIR`, in order) or a recording (`irqlab record`) as snapshots.

A replay has no clock of its own: each capture is stamped from its irqlab-capture.json (or its
proc/uptime), so the rates between two replayed captures use the time that really passed
between them, however fast the replay runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from irqlab.errors import CaptureError
from irqlab.model.snapshot import Snapshot
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import SampleSpec, capture_time, take_snapshot


def check_captures(dirs: Sequence[str | Path]) -> tuple[Roots, ...]:
    """Roots of each capture directory; one clear error for the first that is not a capture."""
    if is_recording(dirs):
        from irqlab.sources.recording import recording_info

        if recording_info(dirs[0]).samples < 2:
            raise CaptureError(str(dirs[0]), "a replay needs at least two recorded samples (rates are differences)")
        return ()
    if len(dirs) < 2:
        raise CaptureError(str(dirs[0]) if dirs else "--replay", "a replay needs at least two captures (rates are differences)")
    out = []
    for d in dirs:
        roots = Roots.capture(d)
        if not roots.proc("interrupts").is_file():
            raise CaptureError(str(d), "not a capture directory (no proc/interrupts); make one with `irqlab snapshot -o DIR`")
        out.append(roots)
    return tuple(out)


def is_recording(paths: Sequence[str | Path]) -> bool:
    """True for one path that is a file (an `irqlab record` SQLite database), not a directory."""
    return len(paths) == 1 and Path(paths[0]).is_file()


def replay(dirs: Sequence[str | Path], spec: SampleSpec | None = None) -> Iterator[Snapshot]:
    """Snapshots of the captures in the order given (each later than the one before), or of a recording."""
    if is_recording(dirs):
        from irqlab.sources.recording import iter_recording

        yield from iter_recording(dirs[0])
        return
    prev_ns: int | None = None
    for roots in check_captures(dirs):
        stamp = capture_time(roots)
        if stamp is not None and prev_ns is not None and stamp[0] <= prev_ns:
            raise CaptureError(str(roots.procfs.parent), "taken before the capture listed ahead of it; list captures oldest first")
        snap = take_snapshot(roots, spec)
        prev_ns = snap.taken_ns
        yield snap


class Replayer:
    """A sampler callable over captures: each call returns the next Snapshot, None at the end."""

    def __init__(self, dirs: Sequence[str | Path], spec: SampleSpec | None = None) -> None:
        self._it = replay(dirs, spec)
        if is_recording(dirs):
            from irqlab.sources.recording import recording_info

            self.total = int(recording_info(dirs[0]).samples)
        else:
            self.total = len(dirs)
        self.position = 0

    def __call__(self) -> Snapshot | None:
        snap = next(self._it, None)
        if snap is not None:
            self.position += 1
        return snap
