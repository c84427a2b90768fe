"""PNG plots of sweeps and validation curves (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from irqlab.errors import IrqlabError


def sweep_plot(xs: list, ys: list[float], xlabel: str, ylabel: str, path: str, title: str = "") -> None:
    """One curve of a metric against a swept key."""
    series = {ylabel: ys}
    curves_plot(xs, series, xlabel, ylabel, path, title)


def curves_plot(xs: list, series: dict[str, list[float]], xlabel: str, ylabel: str, path: str, title: str = "", logx: bool = False) -> None:
    """Several named curves over the same x values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = all(_isnum(x) for x in xs)
    xv = [float(x) for x in xs] if numeric else list(range(len(xs)))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in series.items():
        ax.plot(xv, ys, marker="o", label=name)
    if not numeric:
        ax.set_xticks(xv, [str(x) for x in xs])
    elif logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=90)
    except OSError as exc:
        raise IrqlabError(f"{path}: cannot write plot: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def _isnum(x) -> bool:
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False
