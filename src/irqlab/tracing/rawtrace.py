"""Raw trace captures on disk: the pages read from trace_pipe_raw with the layout files.

A capture directory holds everything needed to decode it on another machine, like a /proc
capture: events/header_page, events/header_event, events/<system>/<event>/format for each
enabled event, cpuN.raw (whole pages in read order) and capture.json (events, clock, loss).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irqlab.errors import CaptureError, SourceError
from irqlab.model.events import EventBatch
from irqlab.sources.fs import read_bytes, read_text
from irqlab.tracing.decode import Catalog, decode
from irqlab.tracing.formats import parse_header_event, parse_header_page
from irqlab.tracing.ringbuf import PageLayout, Records, walk_pages

META = "capture.json"


@dataclass(frozen=True, slots=True)
class RawCapture:
    """Pages and the layouts to read them, as captured."""

    layout: PageLayout
    catalog: Catalog
    pages: tuple[tuple[int, bytes], ...]  # (cpu, page) in read order
    meta: dict

    def buffer(self) -> tuple[bytes, np.ndarray]:
        """All pages joined, and the CPU of each page."""
        return b"".join(p for _, p in self.pages), np.array([c for c, _ in self.pages], np.int32)

    def records(self) -> Records:
        return walk_pages(self.buffer()[0], self.layout)

    def decode(self) -> EventBatch:
        buf, cpus = self.buffer()
        return decode(buf, walk_pages(buf, self.layout), cpus, self.catalog, source="tracefs",
                      lost={int(k): v for k, v in self.meta.get("lost", {}).items()})


def write_capture(directory: Path, instance_dir: Path, enabled: tuple[str, ...],
                  pages: list[tuple[int, bytes]], **meta) -> None:
    """Write pages and the instance's layout files under directory (replacing it)."""
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "events").mkdir(parents=True)
    for name in ("header_page", "header_event"):
        (directory / "events" / name).write_text(read_text(instance_dir / "events" / name))
    for q in enabled:
        system, _, name = q.partition(":")
        out = directory / "events" / system / name
        out.mkdir(parents=True)
        (out / "format").write_text(read_text(instance_dir / "events" / system / name / "format"))
    for cpu in sorted({c for c, _ in pages}):
        (directory / f"cpu{cpu}.raw").write_bytes(b"".join(p for c, p in pages if c == cpu))
    order = [c for c, _ in pages]
    (directory / META).write_text(json.dumps({"events": list(enabled), "page_order": order, **meta}, indent=1) + "\n")


def read_capture(directory: Path) -> RawCapture:
    """Load a capture directory written by write_capture."""
    directory = Path(directory)
    try:
        meta = json.loads(read_text(directory / META))
        events = directory / "events"
        layout = PageLayout.of(parse_header_page(read_text(events / "header_page"), str(events / "header_page")),
                               parse_header_event(read_text(events / "header_event"), str(events / "header_event")))
        catalog = Catalog.load(events, meta["events"])
        raw = {int(p.stem[3:]): read_bytes(p) for p in directory.glob("cpu*.raw")}
    except SourceError:
        raise
    except (ValueError, KeyError) as exc:
        raise CaptureError(f"{directory}: not a raw trace capture ({exc})") from None
    size = layout.page_size
    cursor = {cpu: 0 for cpu in raw}
    pages = []
    for cpu in meta["page_order"]:  # restore the read order across CPUs
        at = cursor[cpu]
        pages.append((cpu, raw[cpu][at:at + size]))
        cursor[cpu] = at + size
    return RawCapture(layout, catalog, tuple(pages), meta)
