"""Lasso demo: ISTA and FISTA (fixed step, backtracking) through the harness, against scikit-learn's optimum.

Problem: ``min_x (1/(2n))‖Ax − b‖² + λ‖x‖₁`` (scikit-learn's ``Lasso`` objective, no intercept) on
(1) a synthetic sparse regression (seeded, 20 true nonzeros, Gaussian design with AR(1) feature correlation 0.9) and
(2) scikit-learn's bundled ``diabetes`` set (standardised columns, centred target), with
``λ = 0.02·λ_max``, ``λ_max = ‖Aᵀb‖∞/n``. float64 throughout.

Reference value: scikit-learn's coordinate descent run to ``tol=1e-12``; the plotted suboptimality uses
``F* = min(F_sklearn, best value any of our runs reached)`` so that it is never negative, and the CSV
records both. Times are solver seconds with compile time excluded (see :mod:`optlab.harness`).

Writes ``lasso-demo_traces.csv`` (long format), ``lasso-demo_summary.csv`` and ``lasso-demo.png``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from optlab.experiments import register
from optlab.experiments._progress import expect, step

SOLVERS = {
    "ISTA": ("ista", {}),
    "FISTA": ("fista", {}),
    "FISTA (backtracking)": ("fista", {"backtracking": True}),
}


def _problems(quick: bool, seed: int):
    from sklearn.preprocessing import StandardScaler

    import optlab as ol

    n, d = (200, 400) if quick else (1000, 2000)
    syn = ol.data.make_sparse_regression(n=n, d=d, k=20, noise=0.1, correlation=0.9, seed=seed)
    A = StandardScaler().fit_transform(np.asarray(syn.X))
    yield f"synthetic {n}x{d}", A, np.asarray(syn.y) - np.mean(syn.y)
    dia = ol.data.load("diabetes")
    A = StandardScaler().fit_transform(np.asarray(dia.X))
    yield "diabetes 442x10", A, np.asarray(dia.y, float) - np.mean(dia.y)


@register("lasso-demo", "ISTA vs FISTA (+backtracking) on Lasso; gap to scikit-learn's optimum vs iteration and time")
def run(out: Path, quick: bool = False, seed: int = 0) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import optlab as ol
    import optlab.references
    from optlab.trace import write_long_csv

    maxiter = 1500 if quick else 5000
    rows, summary, traces = [], [], {}
    expect(2 * len(SOLVERS))
    for dataset, A, b in _problems(quick, seed):
        n = A.shape[0]
        lam = 0.02 * np.max(np.abs(A.T @ b)) / n
        f_sklearn, _ = ol.references.lasso_optimum(A, b, lam)
        f = ol.losses.least_squares_objective(A, b)
        g = ol.prox.l1(lam)
        runs = {}
        for label, (fn_name, kw) in SOLVERS.items():
            fn = getattr(ol, fn_name)
            step(f"{dataset}: {label}")
            runs[label] = fn(f, g, np.zeros(A.shape[1]), maxiter=maxiter, tol=0.0, log_every=max(1, maxiter // 300),
                             progress=False, **kw)
        f_star = min(f_sklearn, *(np.nanmin(r.trace["objective"]) for r in runs.values()))
        traces[dataset] = {}
        for label, res in runs.items():
            tr = res.trace
            tr.meta.update({"label": label, "dataset": dataset, "lam": lam, "f_star": f_star,
                            "f_sklearn": f_sklearn})
            tr.metrics["rel_gap"] = (tr["objective"] - f_star) / abs(f_star)
            traces[dataset][label] = tr
            rows += tr.long(solver=label, dataset=dataset)
            hit = np.nonzero(tr["rel_gap"] <= 1e-8)[0]
            summary.append({
                "dataset": dataset, "solver": label, "iterations": res.n_iter,
                "iters_to_1e-8": int(tr.iters[hit[0]]) if hit.size else "",
                "time_to_1e-8_s": f"{tr.times[hit[0]]:.4g}" if hit.size else "",
                "final_rel_gap_vs_sklearn": f"{(tr['objective'][-1] - f_sklearn) / abs(f_sklearn):.3e}",
                "solver_time_s": f"{tr.times[-1]:.4g}", "compile_time_s": f"{tr.meta['compile_time']:.3g}",
            })

    out = Path(out)
    files = [out / "lasso-demo_traces.csv", out / "lasso-demo_summary.csv", out / "lasso-demo.png"]
    write_long_csv(rows, files[0])
    write_long_csv(summary, files[1])

    fig, axes = ol.plot.grid(2 * len(traces), ncols=2)
    for i, (dataset, runs) in enumerate(traces.items()):
        for j, x in enumerate(("iter", "time")):
            ol.plot.convergence(runs, "rel_gap", x=x, ax=axes[2 * i + j], title=dataset,
                                ylabel="(F(x_k) − F*)/|F*|")
    ol.plot.save(fig, files[2])

    table = ol.trace.format_table(summary)
    print(table)
    return {"files": [str(p) for p in files], "table": table, "traces": traces}
