"""Convergence plots from :class:`~optlab.trace.Trace` objects (matplotlib), shared by experiments and notebooks.

Every figure states what its axes are: the x axis is iterations or solver seconds (compile time
excluded, as in the traces), and a suboptimality axis says which reference value it subtracts.

One style map for every figure (:func:`style`): a run keeps its colour and marker in every panel and every
figure — the known methods of the library and its baselines have fixed styles, other names ("ADMM-scad",
"SPDHG-GC") take the next free colour in the order first drawn, and annotated variants of a name ("SPDHG-GC
(paper)") keep its colour and differ in line style. Legends with more than four entries sit outside the axes;
``logx`` defaults to log-x when the runs' lengths differ by more than 10×; suboptimality curves stop where they
reach the floating-point floor; :func:`save` writes a 150-dpi PNG and a PDF.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .trace import Trace

__all__ = ["convergence", "grid", "legend", "save", "style"]

# Methods with a fixed colour and marker. Colours are tab10's, assigned so that the methods one experiment compares
# never share one: the stochastic primal-dual family, the proximal-gradient/SVM family, the network trainers and the
# sparse-GLM peers each use distinct colours (a colour recurs only across families).
_BLUE, _ORANGE, _GREEN, _RED, _PURPLE = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"
_BROWN, _PINK, _GRAY, _OLIVE, _CYAN, _BLACK = "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000"
_METHOD_STYLES = {
    # stochastic primal-dual methods and their baselines (SPDHG / SPDPEG experiments)
    "SPDHG": (_BLUE, "o"), "SPDPEG": (_RED, "s"), "STOC-ADMM": (_GREEN, "^"), "OPG-ADMM": (_PURPLE, "v"),
    "RDA-ADMM": (_ORANGE, "D"), "SAG-ADMM": (_BROWN, "P"), "Ada-SADMM": (_PINK, "X"), "SGADM": (_GRAY, "*"),
    "EGADM": (_OLIVE, "h"), "LPDHG": (_CYAN, "<"),
    # proximal gradient and the SVM comparisons
    "PIG": (_BLUE, "o"), "FISTA": (_RED, "s"), "ISTA": (_ORANGE, "^"), "GIST": (_GREEN, "v"),
    "ADMM": (_PURPLE, "D"), "LQA": (_BROWN, "P"), "LIBLINEAR": (_GRAY, "X"), "HiGHS": (_BLACK, "*"),
    # network trainers
    "ADMMiRNN": (_BLUE, "o"), "iPDLAM": (_BLUE, "o"), "DLAM": (_CYAN, "s"), "BCD": (_OLIVE, "^"),
    "Adam": (_RED, "v"), "RMSProp": (_GREEN, "D"), "SGD": (_ORANGE, "P"),
    # sparse GLM peers
    "ol.glm": (_BLUE, "o"), "skglm": (_RED, "s"), "scikit-learn": (_ORANGE, "^"), "celer": (_GREEN, "v"),
}
_METHODS = tuple(_METHOD_STYLES)
_ALIASES = {"admm_irnn": "ADMMiRNN", "svm_admm": "ADMM", "proxgrad": "ISTA", "spdhg": "SPDHG", "spdpeg": "SPDPEG",
            "ipdlam": "iPDLAM", "pig": "PIG", "fista": "FISTA", "ista": "ISTA", "gist": "GIST"}
# colours for names of no known method ("ADMM-scad", "SPDHG-GC", sweeps such as "β=0.4"): ColorBrewer's Dark2, then
# darker tones, none of them tab10's, so they do not meet a known method's colour in one panel
_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#393b79",
            "#843c39", "#637939", "#7b4173", "#8c6d31")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p")
_LINESTYLES = ("-", "--", "-.", ":")
_seen_variants: dict[str, list[str]] = {}   # name -> its labels in the order first drawn
_seen_other: list[str] = []                  # names of no known method, in the order first drawn


def _method_of(label: str) -> str | None:
    low = label.lower()
    for name in sorted(_METHODS, key=len, reverse=True):
        n = name.lower()
        if low.startswith(n) and (len(low) == len(n) or not low[len(n)].isalnum()):
            return name
    head = low.split()[0] if low.split() else low
    return _ALIASES.get(head)


def _identity(label: str) -> str:
    """A run's name without its annotations: the label up to ``" ("`` or ``", "`` (``"SPDHG-GC (paper)"`` ->
    ``"SPDHG-GC"``); runs with one identity differ only in line style."""
    cuts = [i for i in (label.find(" ("), label.find(", ")) if i > 0]
    return label[: min(cuts)].strip() if cuts else label.strip()


def style(label: str) -> dict:
    """Matplotlib keyword arguments (``color``, ``marker``, ``linestyle``) of the run called ``label``.

    The same label always gets the same style in one process. A label whose name (before any ``" (..."`` or
    ``", ..."`` annotation) is a known method (``SPDHG``, ``FISTA``, ``Adam``, ``svm_admm``, …) has that method's fixed
    colour and marker in every process; other names (``"SPDHG-GC"``, ``"ADMM-scad"``, ``"β=0.4"``) get a colour of
    their own in the order first drawn (keeping a known method's marker: ``"ADMM-scad"`` has ADMM's). Annotated
    variants of one name keep its colour and change line style.
    """
    ident = _identity(label)
    method = _method_of(ident)
    if method is not None and (ident.lower() == method.lower() or ident.lower() in _ALIASES):
        colour, marker = _METHOD_STYLES[method]
    else:
        if ident not in _seen_other:
            _seen_other.append(ident)
        j = _seen_other.index(ident)
        colour = _COLOURS[j % len(_COLOURS)]
        marker = _METHOD_STYLES[method][1] if method is not None else _MARKERS[j % len(_MARKERS)]
    variants = _seen_variants.setdefault(ident, [])
    if label not in variants:
        variants.append(label)
    v = variants.index(label)
    if v:
        marker = _MARKERS[(_MARKERS.index(marker) + v) % len(_MARKERS)]
    return {"color": colour, "marker": marker, "linestyle": _LINESTYLES[v % len(_LINESTYLES)]}


def legend(ax, fontsize="small", **kwargs):
    """The axes' legend: inside when it has at most four entries, outside to the right of the axes otherwise."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if len(handles) > 4 and "loc" not in kwargs:
        kwargs.update(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return ax.legend(fontsize=fontsize, **kwargs)


def _pyplot():
    import matplotlib.pyplot as plt  # noqa: PLC0415  (headless machines fall back to Agg by themselves)

    return plt


def _floor(reference: float | None, relative: bool, dtype_eps: float = np.finfo(np.float64).eps) -> float:
    """The suboptimality below which a curve is rounding noise: 64 ulps of the reference."""
    if reference is None:
        return 0.0
    return 64 * dtype_eps * (1.0 if relative else max(abs(reference), np.finfo(float).tiny))


def convergence(traces: Mapping[str, Trace] | Sequence[Trace], metric: str = "objective", *, x: str = "iter",
                reference: float | None = None, relative: bool = False, logy: bool = True,
                logx: bool | None = None, ax=None, title: str | None = None, ylabel: str | None = None,
                styles: Mapping[str, dict] | None = None, best_so_far: bool = False,
                floor: float | None = None):
    """Plot ``metric`` against iterations (``x="iter"``) or solver time (``x="time"``) for several runs.

    Args:
        traces: ``label -> Trace`` (or a list; labels then come from ``trace.meta["label"|"solver"]``).
        metric: the trace column to plot.
        reference: subtract it (e.g. ``F*``) and plot the suboptimality; ``relative`` divides by ``|reference|``.
        floor: a suboptimality curve stops at its first point at or below ``floor`` (the rest is rounding noise).
            Default: 64 ulps of ``reference`` when one is given, 64 ulps of 1 for a ``rel_gap`` column, none else.
        logx: log-scaled x axis; ``None`` (default) chooses it when the runs' lengths differ by more than 10×.
        best_so_far: plot the running minimum (the stochastic papers' convention); say so in the title.
        styles: ``label -> matplotlib kwargs``, overriding the shared style map (:func:`style`).
    Returns the matplotlib ``Axes``.
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.6))
    if not isinstance(traces, Mapping):
        traces = {t.meta.get("label", t.meta.get("solver", f"run {i}")): t for i, t in enumerate(traces)}
    if x not in ("iter", "time"):
        raise ValueError(f"x must be 'iter' or 'time', got {x!r}")
    if floor is None and reference is not None:
        floor = _floor(reference, relative)
    elif floor is None and metric == "rel_gap":
        floor = _floor(1.0, True)
    curves = {}
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
        if floor is not None and logy:
            at_floor = np.flatnonzero(y <= floor)
            if at_floor.size:   # the rest of the run is rounding noise: stop the curve at the floor
                stop = at_floor[0]
                xs, y = xs[: stop + 1], np.concatenate([y[:stop], [max(y[stop], floor)]])
        curves[label] = (xs, y)
    if logx is None:
        ends = [xs[-1] for xs, _ in curves.values() if xs.size and xs[-1] > 0]
        logx = bool(ends) and max(ends) > 10 * min(ends)
    for label, (xs, y) in curves.items():
        keep = np.isfinite(y)
        if logy:
            keep &= y > 0
        if logx:
            keep &= xs > 0
        kw = dict(style(label), markevery=max(1, int(keep.sum()) // 8), markersize=4)
        kw.update((styles or {}).get(label, {}))
        ax.plot(xs[keep], y[keep], label=label, **kw)
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
    legend(ax)
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


def save(fig, path, dpi: int = 150, pdf: bool = True) -> None:
    """Save ``fig`` as a PNG at ``dpi`` (150 by default) and, with ``pdf=True``, the same figure as a PDF beside it
    (``x.png`` -> ``x.pdf``); legends outside the axes are kept inside the saved area. Closes the figure."""
    plt = _pyplot()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    if pdf and path.suffix.lower() != ".pdf":
        fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
