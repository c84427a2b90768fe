"""A placement plan as TOML a person reads and edits: one [[write]] table per knob.

The loader is sources/plan_file.py; the two are held to each other by a round-trip test.
Each table names its knob (kind and irq; dev, queue and netns; or pid and comm), the CPUs it gets, and why;
the file it writes and the value it has now are comments, so an edit changes only the plan.
"""

from __future__ import annotations

import json

from irqlab.analysis.placement import Placement
from irqlab.cpulist import format_cpulist
from irqlab.model.placement import PlaceWrite

PLAN_VERSION = 1


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for everything json.dumps emits)."""
    return json.dumps(text, ensure_ascii=False)


def _table(w: PlaceWrite) -> list[str]:
    now = "unknown" if w.current is None else (format_cpulist(w.current) or "none (off)")
    out = ["[[write]]", f"# {w.path}: now {now}", f"kind = {_q(w.kind)}"]
    if w.kind == "affinity":
        out.append(f"irq = {w.irq}")
    elif w.kind == "thread-affinity":
        out += [f"pid = {w.pid}", f"comm = {_q(w.comm or '')}"]
    else:
        out += [f"dev = {_q(w.dev or '')}", f"queue = {w.queue}"]
        if w.netns is not None:
            out.append(f"netns = {_q(w.netns)}")
    out += [f"cpus = {_q(format_cpulist(w.cpus))}", f"why = {_q(w.why)}", ""]
    return out


def render_plan_toml(p: Placement, header: str = "") -> str:
    """The plan file: a commented header, [plan], then every write; left-alone IRQs as comments."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [
        "# irqlab placement plan. Edit the cpus of any [[write]] or delete a table; then",
        "#   irqlab apply FILE          shows what would be written (a dry run)",
        "#   irqlab apply FILE --yes    writes it through the journal",
        "#   irqlab apply --undo        puts every value back",
        "# cpus are CPU lists (\"0-3,8\"); rps and xps write them as the kernel's hex masks.",
    ]
    if any(w.kind == "thread-affinity" for w in p.writes):
        lines.append("# a thread-affinity write holds only while the thread lives: the kernel makes a new napi thread "
                     "(new pid, default CPUs) when threaded NAPI is turned off and on or the device goes down and up")
    if p.vector_source:
        lines.append(f"# interrupt vectors per CPU (x86; a write onto a full CPU is left alone, ENOSPC): {p.vector_source}")
    lines += [f"# WARNING: {warning}" for warning in p.warnings]
    if p.left_alone:
        lines.append("# left alone:")
        lines += [f"#   {a.what}: {a.why}" for a in p.left_alone]
    lines += ["", "[plan]", f"version = {PLAN_VERSION}",
              f"housekeeping = {_q(format_cpulist(p.housekeeping))}",
              f"quiet = {_q(format_cpulist(p.quiet))}", ""]
    for w in p.writes:
        lines += _table(w)
    return "\n".join(lines).rstrip("\n") + "\n"
