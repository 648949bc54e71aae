"""Shared helpers of the SPDHG and SPDPEG experiments (not an experiment itself: modules starting with ``_`` are
not registered)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from optlab._optional import require
from optlab.experiments import _tuning
from optlab.trace import write_table  # noqa: F401  (re-exported for the SPDHG/SPDPEG experiments)


def test_accuracy(state, pb):
    """Accuracy of sign(a^T x) on the test set at the averaged iterate (a harness metric)."""
    import jax.numpy as jnp

    from optlab.solvers.spdhg import margins_on_test_set

    z = margins_on_test_set(state, pb)
    return jnp.mean(jnp.where(z >= 0, 1.0, -1.0) == pb.test.y)


def graph_F(X):
    """The papers' signed graph at the papers' weight (0.005; never raised), cached per data set; prints its size."""
    import optlab as ol

    g = ol.operators.graph(X)
    if g.alpha is None:
        print(f"   graph: d = {X.shape[1]} >= 5000, the papers' F = 3 I")
    else:
        print(f"   graph: {g.n_edges} edges at graphical-lasso weight {g.alpha} (duality gap {g.gap:.1e}"
              f"{', from cache' if g.cached else ''})")
    return g.F, g


MAX_CVXPY_SIZE = 6e6   # n·d above which the exponential-cone solve is skipped (w8a's 39,799 x 300 failed)


def reference(X, y, F, mu, gamma, l1=0.0):
    """The CVXPY optimum, or NaN when CLARABEL fails (seen on w8a): the callers then measure gaps against the best
    value any run reached and say so in their tables (column ``reference``)."""
    cvxpy = require("cvxpy", extra="repro", purpose="the SPDHG/SPDPEG experiments' reference optimum")

    import optlab as ol

    if X.shape[0] * X.shape[1] > MAX_CVXPY_SIZE:
        print(f"   CVXPY reference skipped (n·d = {X.shape[0] * X.shape[1]:.3g} > {MAX_CVXPY_SIZE:.3g}: CLARABEL failed "
              "after ~7 min on w8a here); gaps are relative to the best run")
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # CVXPY "solution may be inaccurate"
        try:
            return ol.references.structured_optimum(X, y, F, mu, gamma, l1=l1)[0]
        except (cvxpy.error.SolverError, RuntimeError) as err:
            print(f"   CVXPY reference failed ({type(err).__name__}); gaps are relative to the best run")
            return float("nan")


CSV_METRICS = ("objective", "gap", "test_loss", "test_acc")


def long_rows(trace, every: int = 1, metrics=CSV_METRICS, **extra) -> list[dict]:
    """Long-format CSV rows of ``trace`` (iteration = harness steps, i.e. epoch segments), keeping every
    ``every``-th log point (and the last) and only ``metrics``, so the committed CSVs stay small."""
    from optlab.trace import Trace

    keep = np.unique(np.r_[np.arange(0, len(trace), every), len(trace) - 1])
    sub = Trace(trace.iters[keep], trace.times[keep], {k: v[keep] for k, v in trace.metrics.items() if k in metrics},
                dict(trace.meta))
    return sub.long(segments_per_epoch=trace.meta.get("segments", 1), **extra)


def fmt(v, spec=".3e"):
    return "" if v is None or not np.isfinite(v) else format(float(v), spec)


def scale_grid(fn, kw, quick: bool) -> "_tuning.Grid":
    """The tuning grid of a stochastic/batch method (SPDHG, SPDPEG, EGADM, LPDHG, the stochastic ADMM family): its
    step-size ``scale`` (``kw``'s, else ``fn``'s signature default, so it follows the solvers' defaults) × the
    protocol's factors (:mod:`optlab.experiments._tuning`)."""
    import inspect

    default = kw.get("scale", inspect.signature(fn).parameters["scale"].default)
    return _tuning.Grid.scaled("scale", default, quick)


def tune_scale(run, fn, kw, *, quick: bool, length: int, unit: str = "epoch"):
    """The tuning protocol on ``scale``: ``run(kw, n, final)`` runs ``fn`` with keywords ``kw`` for ``n`` units
    (epochs or passes; ``final`` = with the test metrics of the table). Each grid value runs the tuning budget
    (``_tuning.budget(length)``) and is scored by its training objective at the averaged iterate there; the chosen
    value then runs ``length`` units (the tuning run itself when the budget is the whole run), checked by the
    protocol's full-run check (``_tuning.confirm``). Returns ``(result, tuned)``."""
    grid = scale_grid(fn, kw, quick)
    n = _tuning.budget(length)
    whole = n == length
    objective = lambda r: r.trace.last("objective")  # noqa: E731
    tuned = _tuning.tune(lambda s: run({**kw, "scale": s}, n, whole), grid, objective,
                         budget=f"{n} {unit if n == 1 else unit + ('es' if unit.endswith('s') else 's')}")
    return _tuning.confirm(tuned, lambda s: run({**kw, "scale": s}, length, True), objective, whole=whole)
