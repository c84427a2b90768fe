"""Layouts of ring-buffer pages, record headers and event payloads, read from tracefs text.

Nothing here hard-codes an offset: events/header_page, events/header_event and each event's
`format` file say where every field is (kernel/trace/trace_events.c, trace_export_format;
kernel/trace/ring_buffer.c ring_buffer_print_page_header / ring_buffer_print_entry_header, v6.18).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from irqlab.errors import ParseError
from irqlab.sources.fs import read_text

# "\tfield:unsigned int vec;\toffset:8;\tsize:4;\tsigned:0;" (header_page has "field: u64 x;")
_FIELD = re.compile(r"^\s*field:\s*(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);"
                    r"(?:\s*signed:(?P<signed>\d+);)?")
_DECL = re.compile(r"^(?P<type>.*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*(?:\[(?P<len>[^\]]*)\])?$")


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a record: where it is, how wide, signed or not, array or __data_loc."""

    name: str
    ctype: str
    offset: int
    size: int
    signed: bool
    array_len: int | None = None  # char comm[16] -> 16; None when not an array
    data_loc: bool = False  # __data_loc: u32 with offset (low 16 bits) and length (high 16)

    @property
    def is_string(self) -> bool:
        return self.data_loc or (self.array_len is not None and "char" in self.ctype)


@dataclass(frozen=True, slots=True)
class EventFormat:
    """An event's id and payload layout, from events/<system>/<name>/format."""

    system: str
    name: str
    id: int
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.system}:{self.name} has no field {name!r}")

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    @property
    def qualified(self) -> str:
        return f"{self.system}:{self.name}"


def parse_field(line: str, path: str, lineno: int) -> Field | None:
    """Parse one `field:` line; None for lines that are not fields."""
    m = _FIELD.match(line)
    if m is None:
        return None
    decl = m["decl"].strip()
    data_loc = decl.startswith("__data_loc ")
    if data_loc:
        decl = decl.removeprefix("__data_loc ").strip()
    d = _DECL.match(decl)
    if d is None:
        raise ParseError(path, lineno, decl, "field declaration without a name")
    array_len = None
    if d["len"] is not None and not data_loc:
        try:
            array_len = int(d["len"], 0)
        except ValueError:
            raise ParseError(path, lineno, d["len"], "array length is not a number") from None
    size = int(m["size"])
    signed = m["signed"] == "1" if m["signed"] is not None else False
    return Field(d["name"], d["type"].strip(), int(m["off"]), size, signed, array_len, data_loc)


def parse_format(text: str, path: str = "<format>", system: str = "") -> EventFormat:
    """Parse an event's `format` file into its id and fields."""
    name, ident, fields = "", None, []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("ID:"):
            token = line.split(":", 1)[1].strip()
            if not token.isdigit():
                raise ParseError(path, lineno, token, "event ID is not a number")
            ident = int(token)
        else:
            f = parse_field(line, path, lineno)
            if f is not None:
                fields.append(f)
    if ident is None or not name:
        raise ParseError(path, 1, text[:40], "no 'name:' and 'ID:' lines: not an event format file")
    return EventFormat(system, name, ident, tuple(fields))


@dataclass(frozen=True, slots=True)
class PageHeader:
    """events/header_page: the page timestamp, the commit word (size + missed flags), the data."""

    timestamp: Field
    commit: Field
    data: Field

    @property
    def page_size(self) -> int:
        return self.data.offset + self.data.size


def parse_header_page(text: str, path: str = "header_page") -> PageHeader:
    fields = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        f = parse_field(line, path, lineno)
        if f is not None:
            fields[f.name] = f
    for need in ("timestamp", "commit", "data"):
        if need not in fields:
            raise ParseError(path, 1, text[:40], f"no {need!r} field in header_page")
    return PageHeader(fields["timestamp"], fields["commit"], fields["data"])


@dataclass(frozen=True, slots=True)
class EventHeader:
    """events/header_event: bit widths of the record header word and the special type_len codes."""

    type_len_bits: int
    time_delta_bits: int
    padding: int
    time_extend: int
    time_stamp: int
    data_max: int


_BITS = re.compile(r"^\s*(\w+)\s*:\s*(\d+)\s*bits")
_TYPE = re.compile(r"^\s*(padding|time_extend|time_stamp)\s*:\s*type\s*==\s*(\d+)")
_MAX = re.compile(r"^\s*data max type_len\s*==\s*(\d+)")


def parse_header_event(text: str, path: str = "header_event") -> EventHeader:
    vals: dict[str, int] = {}
    for line in text.splitlines():
        for rx in (_BITS, _TYPE):
            m = rx.match(line)
            if m:
                vals[m[1]] = int(m[2])
        m = _MAX.match(line)
        if m:
            vals["data_max"] = int(m[1])
    need = ("type_len", "time_delta", "padding", "time_extend", "time_stamp", "data_max")
    missing = [k for k in need if k not in vals]
    if missing:
        raise ParseError(path, 1, text[:40], f"header_event lacks {', '.join(missing)}")
    if vals["type_len"] + vals["time_delta"] != 32:
        raise ParseError(path, 1, str(vals["type_len"]), "record header is not one 32-bit word")
    return EventHeader(vals["type_len"], vals["time_delta"], vals["padding"], vals["time_extend"],
                       vals["time_stamp"], vals["data_max"])


def load_format(events_dir: Path, qualified: str) -> EventFormat:
    """Read events/<system>/<name>/format under an events directory (a tracefs or a fixture)."""
    system, _, name = qualified.partition(":")
    path = events_dir / system / name / "format"
    return parse_format(read_text(path), str(path), system)
