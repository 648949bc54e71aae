"""PIG (proximal inertial gradient, Sun, Qiao & Li 2019): the numerical evidence the paper does not publish.

All runs are float64, start at x0 = 0, log every iteration (fully compiled runs, ``jit=True``), seed 0.
Default PIG: β = 0.5 constant, step γ = (1 − β)/L. F* is written F* below; "subopt" is F(x_k) − F*.

Figures (``--out``; full runs in ``paper_figs/``):

* ``pig_rates.png`` — F(x_k) − F* vs k, log-log, with the reference line c/k, c = max_k k·(F_PIG(x_k) − F*)
  (the smallest c for which c/k bounds PIG over the whole run: the non-ergodic O(1/k) claim says it is finite).
  Panels: (a) Lasso, synthetic n < d (correlated Gaussian design; coercive, not strongly convex);
  (b) Lasso on LIBSVM ``splice`` (standardised; n > d); (c) ℓ1-logistic regression on LIBSVM ``heart_scale``;
  (d) a non-coercive problem: least squares with n < d and g = 0 (flat directions), PIG with diminishing
  β_k = 0.5/(k+1) vs constant β = 0.5 (both γ = 0.5/L) (= heavy ball since g = 0) and gradient descent. Each panel also shows ISTA,
  FISTA and the ergodic average of PIG, (1/(k+1))Σ_{j≤k} x_j.
* ``pig_linear.png`` — a restricted-strongly-convex problem (Lasso, synthetic n > d, full column rank), semilog-y:
  linear convergence of PIG at the default step and at the larger step γ = 0.95·2(1 − β)/L, with ISTA and FISTA.
* ``pig_beta.png`` — β sweep on the synthetic Lasso of (a): β ∈ {0, 0.2, 0.4, 0.6, 0.8}, at γ = (1 − β)/L (left)
  and at γ = 0.95·2(1 − β)/L (right).
* ``pig_blocks.png`` — ``pig_blocks`` on the synthetic Lasso of (a) split into 6 column blocks: cyclic vs random order
  (3 seeds), per-block steps (1 − β)/L_i from the column blocks' spectral norms, vs single-block PIG.

References F*: Lasso — scikit-learn ``Lasso`` (coordinate descent, tol 1e-12); ℓ1-logistic — scikit-learn
``LogisticRegression(penalty="l1", solver="liblinear", tol=1e-12)``; non-coercive least squares — NumPy ``lstsq``
(closed form). In every panel F* = min(reference, best value any plotted run reached), so that the
suboptimality is never negative; ``pig_summary.csv`` records the reference and that minimum.
Without the LIBSVM files, quick runs use generated stand-ins of the same shape (:mod:`optlab.data.standin`; the
panel titles, the ``data`` column of the CSVs and a figure title say "stand-in"); full runs, which do not use
stand-ins unless asked, fall back to scikit-learn's bundled ``diabetes`` (Lasso) and ``breast_cancer`` (logistic)
sets and say so in the titles.

Files: ``pig_traces.csv`` (long format), ``pig_summary.csv``, ``pig_rates.png``, ``pig_linear.png``,
``pig_beta.png``, ``pig_blocks.png``. Quick mode: smaller synthetic problems and fewer iterations.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from optlab.experiments import register
from optlab.experiments._datasets import DataSets
from optlab.experiments._progress import expect, step


def _standardise(X):
    X = np.asarray(X, float)
    sd = X.std(0)
    return (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)


def _real(sets: DataSets, name, fallback):
    """``(label, data set)``: ``name`` (or its stand-in, under the run's policy), else the bundled ``fallback``."""
    import optlab as ol

    try:
        ds = sets.load(name, dense=True)
        return sets.label(name), ds
    except ol.data.DataNotFoundError:  # not available and no stand-in wanted: fall back to a bundled set
        return f"{fallback} (fallback: {name} unavailable)", ol.data.load(fallback)


def _trace(out, label, **meta):
    """A Trace from a harness.JitRun logged every iteration (times are not measured in this mode)."""
    from optlab.trace import Trace

    keep = np.asarray(out.iters) >= 0
    metrics = {k: np.asarray(v)[keep] for k, v in out.history.items()}
    iters = np.asarray(out.iters)[keep]
    return Trace(iters, np.full(iters.shape, np.nan), metrics, {"label": label, **meta})


def _avg_trace(tr, label):
    from optlab.trace import Trace

    return Trace(tr.iters, tr.times, {"objective": tr["objective_avg"]}, {**tr.meta, "label": label})


def _run(panel, label, solver, *args, **kwargs):
    """``solver(*args, **kwargs)`` as a Trace labelled ``label``, announced on the experiment's progress bar."""
    step(f"{panel}: {label}")
    return _trace(solver(*args, **kwargs), label)


def _lasso_runs(panel, A, b, lam, maxiter):
    import optlab as ol

    f, g, x0 = ol.losses.least_squares_objective(A, b), ol.prox.l1(lam), np.zeros(A.shape[1])
    kw = dict(maxiter=maxiter, log_every=1, tol=0.0, jit=True)
    pig = _run(panel, "PIG β=0.5", ol.pig, f, g, x0, beta=0.5, ergodic=True, **kw)
    return {"PIG β=0.5": pig, "PIG ergodic average": _avg_trace(pig, "PIG ergodic average"),
            "ISTA": _run(panel, "ISTA", ol.ista, f, g, x0, **kw),
            "FISTA": _run(panel, "FISTA", ol.fista, f, g, x0, **kw)}


def _finish(runs, f_ref):
    f_star = min(f_ref, *(np.nanmin(t["objective"]) for t in runs.values()))
    for tr in runs.values():
        tr.metrics["subopt"] = tr["objective"] - f_star
    return f_star


def _c_over_k(ax, tr, kmax):
    k = tr.iters[1:].astype(float)
    c = np.nanmax(k * tr["subopt"][1:])
    ks = np.geomspace(1, kmax, 50)
    ax.plot(ks, c / ks, "k--", lw=1, label=f"c/k, c = max k·gap = {c:.3g}")
    ax.legend(fontsize="x-small")
    return c


@register("pig", "proximal inertial gradient: non-ergodic O(1/k), diminishing β, linear rate, β sweep, blocks")
def run(out: Path, quick: bool = False, seed: int = 0) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import optlab as ol
    from optlab.references import l1_logistic_optimum, lasso_optimum
    from optlab.trace import write_long_csv

    out = Path(out)
    maxiter = 2000 if quick else 20000
    n, d = (100, 300) if quick else (500, 2000)
    panels, summary, kinds = {}, [], {}
    sets = DataSets(quick)
    # (a), (b), (c): 3 runs each, (d) 4, linear rate 5, β sweep 2 x 5, blocks 1 + 3 + 1
    expect(3 * 3 + 4 + 5 + 10 + 5)

    def record(panel, runs, f_ref, f_star, reference, c=None):
        panels[panel] = runs
        for label, tr in runs.items():
            sub = tr["subopt"]
            hit = np.nonzero(sub <= 1e-6 * abs(f_star))[0]
            summary.append({"panel": panel, "data": kinds.get(panel, "generated"), "run": label,
                            "iterations": int(tr.iters[-1]),
                            "final_subopt": f"{sub[-1]:.3e}", "iters_to_1e-6_rel": int(tr.iters[hit[0]]) if hit.size
                            else "", "F_reference": f"{f_ref:.15g}", "F_star_used": f"{f_star:.15g}",
                            "reference": reference, "c_of_c_over_k": f"{c:.4g}" if c is not None and
                            label.startswith("PIG β") else ""})

    # (a) synthetic Lasso, n < d
    syn = ol.data.make_sparse_regression(n=n, d=d, k=20, noise=0.1, correlation=0.5, seed=seed)
    A_syn, b_syn = _standardise(syn.X), np.asarray(syn.y) - np.mean(syn.y)
    lam_syn = 0.05 * np.max(np.abs(A_syn.T @ b_syn)) / n
    f_ref, _ = lasso_optimum(A_syn, b_syn, lam_syn)
    runs = _lasso_runs("(a) Lasso synthetic", A_syn, b_syn, lam_syn, maxiter)
    f_star = _finish(runs, f_ref)
    rates = {"(a) Lasso synthetic": (runs, f_ref, f_star, "sklearn Lasso")}

    # (b) Lasso on a LIBSVM set
    sp_name, ds = _real(sets, "splice", "diabetes")
    A_sp, b_sp = _standardise(ds.X), np.asarray(ds.y, float) - np.mean(ds.y)
    lam_sp = 0.05 * np.max(np.abs(A_sp.T @ b_sp)) / A_sp.shape[0]
    f_ref_sp, _ = lasso_optimum(A_sp, b_sp, lam_sp)
    panel_b = f"(b) Lasso {sp_name}"
    kinds[panel_b] = sets.kind("splice") if "fallback" not in sp_name else "real"
    runs = _lasso_runs(panel_b, A_sp, b_sp, lam_sp, maxiter)
    rates[panel_b] = (runs, f_ref_sp, _finish(runs, f_ref_sp), "sklearn Lasso")

    # (c) ℓ1-logistic regression
    name, ds = _real(sets, "heart_scale", "breast_cancer")
    panel_c = f"(c) ℓ1-logistic {name}"
    kinds[panel_c] = sets.kind("heart_scale") if "fallback" not in name else "real"
    A_lg = _standardise(ds.X)
    b_lg = np.where(np.asarray(ds.y, float) > np.min(ds.y), 1.0, -1.0)
    lam_lg = 0.02 * np.max(np.abs(A_lg.T @ b_lg)) / (2 * A_lg.shape[0])
    f_ref_lg, _ = l1_logistic_optimum(A_lg, b_lg, lam_lg)
    f, g, x0 = ol.losses.logistic_objective(A_lg, b_lg), ol.prox.l1(lam_lg), np.zeros(A_lg.shape[1])
    kw = dict(maxiter=maxiter, log_every=1, tol=0.0, jit=True)
    pig = _run(panel_c, "PIG β=0.5", ol.pig, f, g, x0, beta=0.5, ergodic=True, **kw)
    runs = {"PIG β=0.5": pig, "PIG ergodic average": _avg_trace(pig, "PIG ergodic average"),
            "ISTA": _run(panel_c, "ISTA", ol.ista, f, g, x0, **kw),
            "FISTA": _run(panel_c, "FISTA", ol.fista, f, g, x0, **kw)}
    rates[panel_c] = (runs, f_ref_lg, _finish(runs, f_ref_lg), "sklearn liblinear l1-logistic")

    # (d) non-coercive: least squares with a rank-deficient A (rank d/4 < d/2 = columns < n rows), g = 0
    rng = np.random.default_rng(seed)
    A_nc = rng.normal(size=(n, d // 8)) @ rng.normal(size=(d // 8, d // 4)) / np.sqrt(d // 8)
    b_nc = rng.normal(size=n)
    x_ls = np.linalg.lstsq(A_nc, b_nc, rcond=None)[0]
    f_ref_nc = 0.5 * np.mean((A_nc @ x_ls - b_nc) ** 2)
    f, g, x0 = ol.losses.least_squares_objective(A_nc, b_nc), ol.prox.zero(), np.zeros(A_nc.shape[1])
    p = "(d) non-coercive"
    pig = _run(p, "PIG β_k=0.5/(k+1)", ol.pig, f, g, x0, beta=0.5, beta_schedule="diminishing", ergodic=True, **kw)
    runs = {"PIG β_k=0.5/(k+1)": pig, "PIG dim. ergodic average": _avg_trace(pig, "PIG dim. ergodic average"),
            "heavy ball β=0.5": _run(p, "heavy ball β=0.5", ol.pig, f, g, x0, beta=0.5, **kw),
            "gradient descent (ISTA)": _run(p, "gradient descent (ISTA)", ol.ista, f, g, x0, **kw),
            "FISTA": _run(p, "FISTA", ol.fista, f, g, x0, **kw)}
    rates["(d) non-coercive least squares, diminishing β"] = (runs, f_ref_nc, _finish(runs, f_ref_nc), "numpy lstsq")

    fig, axes = ol.plot.grid(len(rates), ncols=2)
    for ax, (panel, (runs, fr, fs, ref)) in zip(axes, rates.items()):
        ol.plot.convergence(runs, "subopt", ax=ax, logx=True, title=panel, ylabel="F(x_k) − F*")
        first = next(iter(runs))
        c = _c_over_k(ax, runs[first], maxiter)
        record(panel, runs, fr, fs, ref, c)
    sets.mark(fig)
    ol.plot.save(fig, out / "pig_rates.png")

    # restricted strong convexity: Lasso, n > d
    A_sc = _standardise(rng.normal(size=(2 * n, n // 2)) + 0.5 * rng.normal(size=(2 * n, 1)))
    b_sc = A_sc[:, :5] @ rng.normal(size=5) + 0.1 * rng.normal(size=2 * n)
    lam_sc = 0.05 * np.max(np.abs(A_sc.T @ b_sc)) / (2 * n)
    f_ref_sc, _ = lasso_optimum(A_sc, b_sc, lam_sc)
    f, g, x0 = ol.losses.least_squares_objective(A_sc, b_sc), ol.prox.l1(lam_sc), np.zeros(A_sc.shape[1])
    L = float(f.lipschitz())
    lin_iter = 500 if quick else 2000
    kw_l = dict(maxiter=lin_iter, log_every=1, tol=0.0, jit=True)
    p = "linear rate"
    runs = {"PIG β=0.5, γ=(1−β)/L": _run(p, "PIG default step", ol.pig, f, g, x0, beta=0.5, **kw_l),
            "PIG β=0.5, γ=0.95·2(1−β)/L": _run(p, "PIG β=0.5 large step", ol.pig, f, g, x0, beta=0.5,
                                               step=0.95 * 2 * 0.5 / L, **kw_l),
            "PIG β=0.3, γ=0.95·2(1−β)/L": _run(p, "PIG β=0.3 large step", ol.pig, f, g, x0, beta=0.3,
                                               step=0.95 * 2 * 0.7 / L, **kw_l),
            "ISTA": _run(p, "ISTA", ol.ista, f, g, x0, **kw_l), "FISTA": _run(p, "FISTA", ol.fista, f, g, x0, **kw_l)}
    f_star = _finish(runs, f_ref_sc)
    record("linear rate (RSC Lasso)", runs, f_ref_sc, f_star, "sklearn Lasso")
    fig, axes = ol.plot.grid(1, ncols=1, panel_size=(6.5, 4.2))
    ol.plot.convergence(runs, "subopt", ax=axes[0], title=f"restricted strongly convex Lasso {2 * n}×{n // 2}: "
                        "linear rate", ylabel="F(x_k) − F* (log) vs k (linear)")
    ol.plot.save(fig, out / "pig_linear.png")

    # β sweep on (a): at the default step and at the largest admissible step (95% of the bound)
    f, g, x0 = ol.losses.least_squares_objective(A_syn, b_syn), ol.prox.l1(lam_syn), np.zeros(d)
    L = float(f.lipschitz())
    fig, axes = ol.plot.grid(2, ncols=2)
    for ax, (tag, factor) in zip(axes, [("γ = (1 − β)/L", 1.0), ("γ = 0.95·2(1 − β)/L", 1.9)]):
        runs = {f"β={beta}": _run(f"β sweep, {tag}", f"β={beta}", ol.pig, f, g, x0, beta=beta,
                                  step=factor * (1 - beta) / L, **kw)
                for beta in (0.0, 0.2, 0.4, 0.6, 0.8)}
        f_star = _finish(runs, f_ref)
        record(f"beta sweep, {tag} (Lasso synthetic)", runs, f_ref, f_star, "sklearn Lasso")
        ol.plot.convergence(runs, "subopt", ax=ax, logx=True, title=f"β sweep, {tag}, Lasso {n}×{d}",
                            ylabel="F(x_k) − F*")
    ol.plot.save(fig, out / "pig_beta.png")

    # blocks: the synthetic Lasso of (a) in 6 column blocks
    f = ol.losses.least_squares_objective(A_syn, b_syn)
    parts = np.array_split(np.zeros(d), 6)
    gs = [ol.prox.l1(lam_syn)] * 6
    blk_iter = 1000 if quick else 3000
    kw_b = dict(maxiter=blk_iter, log_every=1, tol=0.0, jit=True)
    p = "blocks"
    runs = {"cyclic": _run(p, "cyclic", ol.pig_blocks, f, gs, parts, order="cyclic", **kw_b)}
    for s in range(3):
        runs[f"random seed {s}"] = _run(p, f"random {s}", ol.pig_blocks, f, gs, parts, order="random", seed=s, **kw_b)
    runs["single-block PIG"] = _run(p, "single-block PIG", ol.pig, f, gs[0], np.zeros(d), **kw_b)
    f_star = _finish(runs, f_ref)
    record("blocks (Lasso synthetic, 6 blocks)", runs, f_ref, f_star, "sklearn Lasso")
    fig, axes = ol.plot.grid(1, ncols=1, panel_size=(6.5, 4.2))
    ol.plot.convergence(runs, "subopt", ax=axes[0], logx=True, title=f"pig_blocks on Lasso synthetic {n}×{d}, "
                        "6 column blocks, β=0.5", ylabel="F(x_k) − F*  (one iteration = one sweep)")
    ol.plot.save(fig, out / "pig_blocks.png")

    rows = []
    for panel, runs in panels.items():
        for label, tr in runs.items():
            rows += tr.thinned(150).long(solver=label, dataset=panel,   # log-spaced rows keep the CSV small
                                         data=kinds.get(panel, "generated"))
    files = [out / f"pig_{x}" for x in ("traces.csv", "summary.csv", "rates.png", "linear.png", "beta.png",
                                        "blocks.png")]
    write_long_csv(rows, files[0])
    write_long_csv(summary, files[1])
    keys = ["panel", "data", "run", "iterations", "final_subopt", "iters_to_1e-6_rel", "c_of_c_over_k"]
    table = ol.trace.format_table([{k: r[k] for k in keys} for r in summary])
    print(table)
    return {"files": [str(p) for p in files], "table": table, "panels": panels}
