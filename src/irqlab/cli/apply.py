"""`irqlab apply PLAN [--yes]` and `irqlab apply --undo`: a placement plan through the journal."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from irqlab.model.knob import PlannedWrite
    from irqlab.model.placement import PlaceWrite

DEFAULT_APPLY_JOURNAL = "/var/lib/irqlab/apply.journal"

PARSER_KW = dict(
    description="Check every write of a plan made by `irqlab plan` (preflight: would the kernel "
    "accept it; the same validation as every irqlab write) and print what it would change. With "
    "--yes, write it: each original is saved in the journal (fsync'ed) before its knob is written, "
    "and a knob that `irqlab watch` or another journal owns is refused. --undo writes every "
    "original back.",
    epilog=f"""\
examples:
  irqlab apply irq.plan              dry run: every write, its current value, and why
  irqlab apply irq.plan --yes        write it (all or nothing: a refusal undoes this run)
  irqlab apply --undo                put every value the journal holds back

The journal is {DEFAULT_APPLY_JOURNAL} unless --journal says otherwise. Changes stay after
apply exits; while they are in the journal, apply refuses a new plan: --undo first.
exit codes: 0 done (or nothing to do), 3 a write refused or failed, 64 usage
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from irqlab.cli import common

    common.add_roots(p)
    p.add_argument("plan", nargs="?", metavar="PLAN", help="the plan file (TOML, from `irqlab plan`)")
    p.add_argument("--yes", action="store_true", help="write it (default: only show what would be written)")
    p.add_argument("--undo", action="store_true", help="write back every original the journal holds, then exit")
    p.add_argument("--journal", metavar="FILE", default=DEFAULT_APPLY_JOURNAL, help=f"the journal (default {DEFAULT_APPLY_JOURNAL})")


@dataclass(frozen=True, slots=True)
class Checked:
    write: PlaceWrite
    where: str
    current: str | None  # None: could not be read
    value: str
    refusal: str | None


def _check(plan, roots) -> list[Checked]:
    """Every write preflighted (map's preflight) and validated as mitigate validates a new value."""
    from irqlab.analysis.irqmap import preflight
    from irqlab.analysis.irqvectors import VectorBudget, estimate_matrix
    from irqlab.cli.map import gather
    from irqlab.errors import IrqlabError
    from irqlab.mitigate.knobs import HostKnobs, KnobFiles
    from irqlab.mitigate.threads import ThreadGone
    from irqlab.sources.vectors import read_vector_matrix

    m, _ = gather(roots, walk=False)
    rows = {r.irq: r for r in m.rows if r.numbered}
    # x86 vector space, with the plan's own moves counted in order (as `irqlab plan` predicts it).
    matrix = (read_vector_matrix()[0] if roots.is_live else None) or estimate_matrix(m)
    budget = VectorBudget(matrix) if matrix is not None else None
    files = KnobFiles(roots)
    knobs = HostKnobs(roots)
    out = []
    for w in plan.writes:
        pw = w.planned()
        knob = knobs.knob(pw)
        refusal = None
        if w.kind == "affinity":
            row = rows.get(str(w.irq))
            refusal = f"IRQ {w.irq} does not exist" if row is None else preflight(row, w.cpus, m.online)
            if refusal is None and row is not None and budget is not None:
                refusal = budget.take(row, w.cpus)
        current = None
        try:
            current = knobs.read(pw)
        except ThreadGone as exc:  # the pid is no longer that kthread: never write it
            refusal = refusal or str(exc)
        except (OSError, IrqlabError) as exc:
            refusal = refusal or f"cannot read it: {exc}"
        if refusal is None:
            try:
                files.strict(knob, pw.value)
            except IrqlabError as exc:
                refusal = str(exc)
        out.append(Checked(w, knob.where, current, pw.value, refusal))
    return out


def _print_checked(checked: list[Checked], yes: bool) -> None:
    from irqlab.cpulist import format_cpulist

    for c in checked:
        w = c.write
        if c.refusal:
            state = f"REFUSED: {c.refusal}"
        elif c.current == c.value:
            state = "already so"
        else:
            state = f"{c.current} -> {c.value}"
        if not c.refusal and w.kind in ("rps", "xps"):
            state += f" (CPUs {format_cpulist(w.cpus)})"
        sys.stdout.write(f"{w.target}  {c.where}  {state}  # {w.why}\n")
    todo = sum(1 for c in checked if not c.refusal and c.current != c.value)
    if not yes:
        sys.stdout.write(f"dry run: {todo} write(s) would change a value; nothing was written (--yes writes them)\n")


def _undo(journal: str, roots) -> int:
    from irqlab.mitigate.knobs import HostKnobs

    if not os.path.lexists(journal):
        sys.stdout.write(f"nothing to undo: {journal} does not exist\n")
        return 0
    failed = False
    with HostKnobs.open(roots, journal) as knobs:
        for p in knobs.problems:
            sys.stderr.write(f"irqlab apply: {journal}: {p}\n")
            failed = True
        results = knobs.restore()
        for r in results:
            line = f"{r.knob.where}: {r.changed_to} -> {r.original} {r.outcome}"
            if r.outcome == "failed":
                line += f": {r.message}"
                failed = True
            if r.unrecorded:
                line += f" (not recorded: {r.unrecorded})"
                failed = True
            sys.stdout.write(line + "\n")
        if not results:
            sys.stdout.write(f"nothing to undo: {journal} has nothing pending\n")
    return 3 if failed else 0


def _apply(checked: list[Checked], journal: str, roots) -> int:
    from irqlab.errors import IrqlabError
    from irqlab.mitigate.journal import JournalError, peek
    from irqlab.mitigate.knobs import HostKnobs

    if os.path.lexists(journal):
        pending, bad = peek(journal)
        if pending or bad:
            raise JournalError(f"{journal}: {pending} setting(s) of an earlier apply are still in place"
                               f"{' (and it is corrupt)' if bad else ''}; run `irqlab apply --undo --journal {journal}` first")
    with HostKnobs.open(roots, journal) as knobs:
        done: list[PlannedWrite] = []
        for c in checked:
            pw = c.write.planned()
            try:
                replaced = knobs.apply(pw)
            except (OSError, IrqlabError) as exc:
                sys.stderr.write(f"irqlab apply: {c.where}: {exc}; undoing this run's {len(done)} write(s)\n")
                for r in knobs.restore():
                    sys.stdout.write(f"{r.knob.where}: {r.changed_to} -> {r.original} {r.outcome}\n")
                return 3
            if replaced is not None:
                done.append(pw)
                sys.stdout.write(f"{pw.target}  {c.where}  {replaced} -> {pw.value}  written\n")
        sys.stdout.write(f"applied: {len(done)} write(s) journaled in {journal}; `irqlab apply --undo` puts them back\n")
    return 0


def run(args: argparse.Namespace) -> int:
    from irqlab.cli import common
    from irqlab.errors import UsageError
    from irqlab.sources.plan_file import load_plan

    roots = common.roots_of(args)
    if args.undo:
        if args.plan or args.yes:
            raise UsageError("--undo takes no PLAN and no --yes")
        return _undo(args.journal, roots)
    if not args.plan:
        raise UsageError("give a PLAN file (from `irqlab plan`), or --undo")
    plan = load_plan(args.plan)
    checked = _check(plan, roots)
    _print_checked(checked, args.yes)
    refused = [c for c in checked if c.refusal]
    if refused:
        sys.stderr.write(f"irqlab apply: {len(refused)} write(s) refused by preflight; nothing was written\n")
        return 3
    if not args.yes:
        return 0
    return _apply(checked, args.journal, roots)
