"""Read a placement plan (what `irqlab plan` wrote, perhaps edited) back as PlaceWrites.

Every key is stated in the schema layer (schema.py): types, ranges, "did you mean", one error
format `FILE: write[2].cpus: message`. Run as root, a plan another user could have written is
refused (sources/trust.py), since applying it rewrites kernel knobs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from irqlab.cpulist import format_cpulist
from irqlab.model.placement import KINDS, PlaceWrite
from irqlab.schema import Array, At, CpuList, Int, SchemaError, Str, Table, Values, decode_toml, load_toml, read
from irqlab.sources.trust import root_refusal


class PlanError(SchemaError):
    """A plan file that cannot be read or that its schema refuses."""


_WRITE = {
    "kind": Str(choices=KINDS, required=True),
    "irq": Int(None, lo=0, hi=(1 << 24)),
    "dev": Str(None, max_len=15, nonempty=True),
    "queue": Int(None, lo=0, hi=65535),
    "netns": Str(None, max_len=64, nonempty=True),
    "pid": Int(None, lo=1, hi=(1 << 22)),  # PID_MAX_LIMIT (include/linux/threads.h)
    "comm": Str(None, max_len=63, nonempty=True),
    "cpus": CpuList(required=True),
    "why": Str("edited by hand", max_len=1000),
}
_SCHEMA = {
    "plan": Table({"version": Int(1, choices=(1,)), "housekeeping": CpuList(()), "quiet": CpuList(())}),
    "write": Array(_WRITE, max_items=100_000),
}


@dataclass(frozen=True, slots=True)
class Plan:
    housekeeping: tuple[int, ...]
    quiet: tuple[int, ...]
    writes: tuple[PlaceWrite, ...]


# The keys that name each kind's knob (all required), and the optional ones it may add.
_NAMES = {"affinity": (("irq",), ()), "rps": (("dev", "queue"), ("netns",)), "xps": (("dev", "queue"), ("netns",)),
          "thread-affinity": (("pid", "comm"), ())}
_NAME_KEYS = ("irq", "dev", "queue", "netns", "pid", "comm")


def _write(v: Values) -> PlaceWrite:
    kind = v["kind"]
    need, may = _NAMES[kind]
    for key in need:
        if v[key] is None:
            raise v.fail(key, f"missing (every {kind} write names its {' and '.join(need)})")
    for key in _NAME_KEYS:
        if key in v.given and key not in need + may:
            raise v.fail(key, f"not a key of a {kind} write")
    if kind == "affinity" and not v["cpus"]:
        raise v.fail("cpus", "empty CPU list: an IRQ needs at least one CPU")
    if kind == "thread-affinity" and not v["cpus"]:
        raise v.fail("cpus", "empty CPU list: a thread needs at least one CPU")
    if v["comm"] is not None and not v["comm"].isprintable():
        raise v.fail("comm", f"{v['comm']!r} is not a thread name")
    if v["dev"] in (".", "..") or (v["dev"] and "/" in v["dev"]):
        raise v.fail("dev", f"{v['dev']!r} is not an interface name")
    return PlaceWrite(kind, v["cpus"], v["why"], irq=v["irq"], dev=v["dev"], queue=v["queue"], netns=v["netns"],
                      pid=v["pid"], comm=v["comm"])


def parse_plan(table: object, origin: str = "") -> Plan:
    """A decoded plan table checked against the schema; PlanError (one line) otherwise."""
    got = read(table, _SCHEMA, At(PlanError, origin))
    writes = tuple(_write(v) for v in got["write"])
    seen: dict[str, int] = {}
    for i, w in enumerate(writes):
        key = w.target
        if key in seen:
            raise At(PlanError, origin).child("write").item(i).fail(f"{key} is already set by write[{seen[key]}]")
        seen[key] = i
    quiet = set(got["plan"]["quiet"])
    for i, w in enumerate(writes):
        if set(w.cpus) & quiet:
            raise At(PlanError, origin).child("write").item(i).child("cpus").fail(
                f"CPU {format_cpulist(set(w.cpus) & quiet)} is in plan.quiet")
    return Plan(got["plan"]["housekeeping"], got["plan"]["quiet"], writes)


def parse_plan_text(text: str, origin: str = "<plan>") -> Plan:
    return parse_plan(decode_toml(text, origin, PlanError), origin)


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """The plan at path; as root, refused when another user could have written it."""
    return parse_plan(load_toml(path, PlanError, what="plan", check=root_refusal), str(path))
