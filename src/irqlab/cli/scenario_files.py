"""Loading a scenario for `irqlab sim` and `irqlab doctor --sim`: replays of irqlab's records.

A device's `arrival = { process = "replay", recording = ..., irq = "41" }` names an `irqlab
record` database or a list of `irqlab snapshot -o` captures (paths relative to the scenario
file); the rates of that IRQ between consecutive samples become the piecewise-constant
`times_s`/`rates` of the replay. sim/ may not read files of the host, so the wiring is here:
sources/ reads the records, analysis/rate_series.py turns them into the series.
"""

from __future__ import annotations

from pathlib import Path

from irqlab.errors import IrqlabError
from irqlab.sim.scenario import RECORDING_KEYS, Scenario, ScenarioError, load_scenario


def resolve_recording(arrival: dict, where: str, base: Path) -> dict:
    """The arrival table with `recording`/`irq`/`scale` replaced by `times_s`/`rates`."""
    from irqlab.analysis.rate_series import irq_rate_series
    from irqlab.sources.replay import replay

    if arrival.get("process", "replay") != "replay":
        raise ScenarioError(f"{where}.recording: only with process = \"replay\"")
    for key in ("times_s", "rates"):
        if key in arrival:
            raise ScenarioError(f"{where}.{key}: give either times_s/rates or recording, not both")
    rec = arrival["recording"]
    paths = [rec] if isinstance(rec, str) else rec
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ScenarioError(f"{where}.recording: an `irqlab record` database or a list of capture directories")
    irq = arrival.get("irq")
    if not isinstance(irq, str) or not irq:
        raise ScenarioError(f"{where}.irq: missing: the IRQ number or /proc/interrupts name to replay, as a string")
    scale = arrival.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 1e6:
        raise ScenarioError(f"{where}.scale: a number from 0 to 1e6")
    full = [str(base / p) for p in paths]
    try:
        times, rates = irq_rate_series(replay(full), irq)
    except IrqlabError as exc:
        raise ScenarioError(f"{where}.recording: {exc}") from None
    out = {k: v for k, v in arrival.items() if k not in RECORDING_KEYS}
    out.update(process="replay", times_s=times, rates=[r * scale for r in rates])
    return out


def load(path: str, overrides: tuple[str, ...] = ()) -> Scenario:
    """sim.scenario.load_scenario() with recordings resolved."""
    return load_scenario(path, overrides, resolve=resolve_recording)
