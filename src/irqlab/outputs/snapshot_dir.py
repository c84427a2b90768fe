"""Write a RawCapture into a directory laid out like / (DIR/proc/..., DIR/sys/...)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from irqlab import __version__
from irqlab.errors import CaptureError
from irqlab.model.snapshot_dir import CAPTURE_META, RawCapture


def write_capture(capture: RawCapture, directory: str | Path, hostname: str = "") -> Path:
    """Write the files and irqlab-capture.json; refuse to mix into a non-empty directory."""
    out = Path(directory)
    if out.exists() and any(out.iterdir()):
        raise CaptureError(f"{out}: directory exists and is not empty; choose a new one")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for rel, data in capture.files.items():
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for rel, text in capture.links.items():
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(text, target)  # the text only: it may point nowhere in the capture
        meta = {
            "irqlab_version": __version__,
            "format": 1,
            "monotonic_ns": capture.monotonic_ns,
            "wall_time": capture.wall_time,
            "hostname": hostname,
            "files": len(capture.files),
            "skipped": list(capture.skipped),
            "stamps": capture.stamps,
        }
        (out / CAPTURE_META).write_text(json.dumps(meta, indent=2) + "\n")
    except OSError as exc:
        raise CaptureError(f"{out}: cannot write capture: {exc.strerror or exc}") from None
    return out


def is_capture(directory: str | Path) -> bool:
    """True when directory looks like a capture (has proc/interrupts)."""
    return os.path.isfile(os.path.join(directory, "proc", "interrupts"))
