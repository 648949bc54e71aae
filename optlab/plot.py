"""Convergence plots from :class:`~optlab.trace.Trace` objects (matplotlib), shared by experiments and notebooks.

Every figure states what its axes are: the x axis is iterations or solver seconds (compile time
excluded, as in the traces), and a suboptimality axis says which reference value it subtracts.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .trace import Trace

__all__ = ["convergence", "grid", "save"]


def _pyplot():
    import matplotlib.pyplot as plt  # noqa: PLC0415  (headless machines fall back to Agg by themselves)

    return plt


def convergence(traces: Mapping[str, Trace] | Sequence[Trace], metric: str = "objective", *, x: str = "iter",
                reference: float | None = None, relative: bool = False, logy: bool = True, logx: bool = False,
                ax=None, title: str | None = None, ylabel: str | None = None, styles: Mapping[str, dict] | None = None,
                best_so_far: bool = False):
    """Plot ``metric`` against iterations (``x="iter"``) or solver time (``x="time"``) for several runs.

    Args:
        traces: ``label -> Trace`` (or a list; labels then come from ``trace.meta["label"|"solver"]``).
        metric: the trace column to plot.
        reference: subtract it (e.g. ``F*``) and plot the suboptimality; ``relative`` divides by ``|reference|``.
        best_so_far: plot the running minimum (the stochastic papers' convention); say so in the title.
        styles: ``label -> matplotlib kwargs``.
    Returns the matplotlib ``Axes``.
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.6))
    if not isinstance(traces, Mapping):
        traces = {t.meta.get("label", t.meta.get("solver", f"run {i}")): t for i, t in enumerate(traces)}
    if x not in ("iter", "time"):
        raise ValueError(f"x must be 'iter' or 'time', got {x!r}")
    for label, tr in traces.items():
        if metric not in tr.metrics:
            raise KeyError(f"trace {label!r} has no metric {metric!r}; it has {sorted(tr.metrics)}")
        y = np.asarray(tr.metrics[metric], float)
        if best_so_far:
            y = np.fmin.accumulate(y)
        if reference is not None:
            y = y - reference
            if relative:
                y = y / max(abs(reference), np.finfo(float).tiny)
        xs = np.asarray(tr.iters if x == "iter" else tr.times, float)
        keep = np.isfinite(y)
        if logy:
            keep &= y > 0
        if logx:
            keep &= xs > 0
        ax.plot(xs[keep], y[keep], label=label, **(styles or {}).get(label, {}))
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("iteration" if x == "iter" else "time [s] (compile time excluded)")
    if ylabel is None:
        ylabel = metric
        if reference is not None:
            ylabel = f"({metric} − ref)/|ref|" if relative else f"{metric} − ref"
        if best_so_far:
            ylabel = f"best-so-far {ylabel}"
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def grid(n_panels: int, ncols: int = 2, panel_size=(5.0, 3.6)):
    """A figure with ``n_panels`` axes in a grid; returns ``(fig, flat list of axes)``."""
    plt = _pyplot()
    nrows = -(-n_panels // ncols)
    ncols = min(ncols, n_panels)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def save(fig, path, dpi: int = 110) -> None:
    """Save ``fig`` (tight layout, small PNG) and close it."""
    plt = _pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
