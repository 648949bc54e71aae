"""SPEC §1 experiment: nonconvex-penalised linear SVM by ADMM (Guan et al., ICDMW 2018) and its baselines.

Data sets and splits (``optlab.data.load(name)``, split "paper"): heart_scale (first 243 rows train, last 27
test) and mushrooms (first 6,499 train, rest test); LIBSVM files as distributed (heart_scale is already scaled to
[-1, 1], mushrooms is binary), float64.

Methods, all on the training split, each with its own objective:

* ``ADMM-<penalty>`` (ours, :func:`optlab.svm_admm`): hinge loss + P(w) for P in ℓ1, SCAD (a = 3.7),
  MCP (γ = 3), LSP (θ = 0.5), capped-ℓ1 (θ = 0.5), with λ = 2⁻⁶ (heart_scale, SPEC's SCAD setting) and
  λ = 0.01 (mushrooms); default (problem-scaled) ρ's, tol = 1e-5 on the relative residuals,
  maxiter 5,000 (quick: 1,000);
* ``GIST-SCAD`` (:func:`optlab.gist`, Gong et al. 2013): squared hinge + SCAD, λ = 2⁻¹⁰, a = 3.7, M = 5,
  no intercept (an all-ones column is appended instead, penalised like the others), tol = 1e-6 on the relative change;
* ``LIBLINEAR-l1`` (scikit-learn ``LinearSVC(penalty="l1", loss="squared_hinge", dual=False)``, external, not
  through the harness): C = 1/(n λ) with the data set's λ, intercept fitted (liblinear penalises it);
* ``HiGHS-LP-l1``: the exact optimum of the ADMM-ℓ1 problem as a linear program (``scipy.optimize.linprog``).

Table columns: run time (solver seconds, compile time excluded for the JAX solvers; wall time of ``fit`` /
``linprog`` for the external ones), iterations, NZF % (nonzero weights, intercept excluded), test accuracy, final
objective of the method's own problem, and for ADMM-ℓ1 the relative gap to the LP optimum.

Writes ``svm-admm_<dataset>.csv`` (table), ``svm-admm_traces.csv`` (long format) and ``svm_admm_<dataset>.png``
(objective vs iteration and vs time for the ADMM runs; ℓ1 gap to the LP optimum).
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from experiments import register

DATASETS = {"heart_scale": 2.0 ** -6, "mushrooms": 0.01}
PENALTIES = {
    "l1": {},
    "scad": {"a": 3.7},
    "mcp": {"gamma": 3.0},
    "lsp": {"theta": 0.5},
    "capped_l1": {"theta": 0.5},
}


def _accuracy(scores, y):
    return float(np.mean(np.where(np.asarray(scores).ravel() > 0, 1.0, -1.0) == y))


def run_dataset(name, lam, *, quick, out=None):
    import jax
    import scipy.sparse as sp
    from sklearn.svm import LinearSVC

    jax.config.update("jax_enable_x64", True)
    import optlab as ol

    ds = ol.data.load(name)
    X, y, Xt, yt = ds.X, np.asarray(ds.y, float), ds.X_test, np.asarray(ds.y_test, float)
    n, d = X.shape
    maxiter = 1000 if quick else 5000
    rows, traces = [], {}

    t0 = time.perf_counter()
    f_lp, w_lp, c_lp = ol.references.svm_l1_hinge_lp(X, y, lam)
    t_lp = time.perf_counter() - t0
    for pen_name, extra in PENALTIES.items():
        pen = ol.prox.get(pen_name, lam=lam, **extra)
        res = ol.svm_admm(X, y, pen, maxiter=maxiter, tol=1e-5, log_every=max(1, maxiter // 200), progress=False)
        tr = res.trace
        w, c = np.asarray(res.params["w"]), float(res.params["b"])
        label = f"ADMM-{pen_name}"
        tr.meta.update({"label": label, "dataset": name, "lam": lam})
        traces[label] = tr
        rows.append({"dataset": name, "method": label, "problem": f"hinge + {pen_name}", "lam": lam,
                     "time_s": tr.times[-1], "iterations": res.n_iter, "status": res.status,
                     "nzf_pct": 100 * np.mean(w != 0), "test_acc": _accuracy(Xt @ w + c, yt),
                     "objective": tr.last("objective"),
                     "gap_to_lp": (tr.last("objective") - f_lp) / f_lp if pen_name == "l1" else ""})

    # GIST: squared hinge + SCAD, intercept as a (penalised) constant column
    Xg = sp.hstack([X, np.ones((n, 1))], format="csr") if sp.issparse(X) else np.hstack([X, np.ones((n, 1))])
    f = ol.losses.squared_hinge_objective(Xg, y)
    res = ol.gist(f, ol.prox.scad(2.0 ** -10, 3.7), np.zeros(d + 1), maxiter=maxiter, tol=1e-6,
                  log_every=max(1, maxiter // 200), progress=False)
    wg = np.asarray(res.params)
    traces["GIST-scad"] = res.trace
    rows.append({"dataset": name, "method": "GIST-scad", "problem": "sq. hinge + scad", "lam": 2.0 ** -10,
                 "time_s": res.trace.times[-1], "iterations": res.n_iter, "status": res.status,
                 "nzf_pct": 100 * np.mean(wg[:d] != 0), "test_acc": _accuracy(Xt @ wg[:d] + wg[d], yt),
                 "objective": res.trace.last("objective"), "gap_to_lp": ""})

    t0 = time.perf_counter()
    svc = LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=1.0 / (n * lam), tol=1e-4,
                    max_iter=10000).fit(X, y)
    t_svc = time.perf_counter() - t0
    wl, cl = svc.coef_.ravel(), float(svc.intercept_[0])
    m = y * (np.asarray(X @ wl).ravel() + cl)
    rows.append({"dataset": name, "method": "LIBLINEAR-l1", "problem": "sq. hinge + l1", "lam": lam,
                 "time_s": t_svc, "iterations": int(np.max(svc.n_iter_)), "status": "",
                 "nzf_pct": 100 * np.mean(wl != 0), "test_acc": _accuracy(Xt @ wl + cl, yt),
                 "objective": float(np.mean(np.maximum(1 - m, 0) ** 2) + lam * np.abs(wl).sum()), "gap_to_lp": ""})
    rows.append({"dataset": name, "method": "HiGHS-LP-l1", "problem": "hinge + l1", "lam": lam, "time_s": t_lp,
                 "iterations": "", "status": "optimal", "nzf_pct": 100 * np.mean(np.abs(w_lp) > 1e-9),
                 "test_acc": _accuracy(Xt @ w_lp + c_lp, yt), "objective": f_lp, "gap_to_lp": 0.0})
    return rows, traces, f_lp


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(rows):
    keys = ["method", "problem", "time_s", "iterations", "status", "nzf_pct", "test_acc", "objective", "gap_to_lp"]
    cells = [[_fmt(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


@register("svm-admm", "SPEC §1: nonconvex-penalised SVM by ADMM vs GIST, LIBLINEAR and the HiGHS LP (heart_scale, mushrooms)")
def run(out: Path, quick: bool = False, seed: int = 0) -> dict:
    import optlab as ol
    from optlab.trace import write_long_csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, tables, all_traces, long_rows = [], {}, {}, []
    for name, lam in DATASETS.items():
        rows, traces, f_lp = run_dataset(name, lam, quick=quick)
        all_traces[name] = traces
        for label, tr in traces.items():
            long_rows += tr.long(solver=label, dataset=name)
        path = out / f"svm-admm_{name}.csv"
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        files.append(path)
        tables[name] = _table(rows)
        print(f"\n== {name} (λ = {lam:g}; n = {ol.data.load(name).X.shape[0]} train) ==")
        print(tables[name])

        admm = {k: v for k, v in traces.items() if k.startswith("ADMM")}
        fig, axes = ol.plot.grid(3, ncols=3)
        ol.plot.convergence(admm, "objective", x="iter", ax=axes[0], title=f"{name}: ADMM objective (own penalty)")
        ol.plot.convergence(admm, "objective", x="time", ax=axes[1], title=f"{name}: ADMM objective (own penalty)")
        ol.plot.convergence({"ADMM-l1": traces["ADMM-l1"]}, "objective", x="iter", reference=f_lp, relative=True,
                            ax=axes[2], title=f"{name}: ℓ1 gap to the HiGHS LP optimum",
                            ylabel="(F − F_LP)/F_LP")
        png = out / f"svm_admm_{name}.png"
        ol.plot.save(fig, png)
        files.append(png)
    write_long_csv(long_rows, out / "svm-admm_traces.csv")
    files.append(out / "svm-admm_traces.csv")
    return {"files": [str(p) for p in files], "tables": tables, "traces": all_traces}
