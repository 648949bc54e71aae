"""The SVM paper's experiment: nonconvex-penalised linear SVM by ADMM (Guan et al., ICDMW 2018) and its baselines.

Data sets and splits (``optlab.data.load(name)``, split "paper"): heart_scale (first 243 rows train, last 27
test) and mushrooms (first 6,499 train, rest test); LIBSVM files as distributed (heart_scale is already scaled to
[-1, 1], mushrooms is binary), float64. real-sim, news20.binary and rcv1.binary are not in ../shared/data and are
skipped.

**Table 1 (one per data set), all at the data set's λ** (2⁻⁶ on heart_scale, the paper's SCAD setting; 0.01 on
mushrooms), each method on the training split with its own objective:

* ``ADMM-<penalty>`` (ours, :func:`optlab.svm_admm`, defaults but the ρ's tuned (below): problem-scaled ρ's,
  increasing penalty for nonconvex P, tol = 1e-5 on the relative residuals, maxiter 10,000; quick: 1,000): hinge
  loss + P(w) for P in ℓ1, SCAD (a = 3.7), MCP (γ = 3), LSP (θ = 0.5), capped-ℓ1 (θ = 0.5), started from zeros (as
  in the paper);
* ``ADMM-<scad|mcp> (l1 start)``: the same, warm-started from the ADMM-ℓ1 state at the same λ (the initial
  estimator of the one-step/LLA literature: Zou & Li 2008; Fan, Xue & Zou 2014);
* ``LQA-scad`` (:func:`optlab.solvers.baselines.scad_lqa.scad_lqa`, Zhang, Ahn, Lin & Park 2006): the same
  hinge + SCAD problem as ADMM-scad (so the objectives compare), started from a linear ℓ2-SVM as in the paper;
* ``GIST-scad`` (:func:`optlab.gist`, Gong et al. 2013): squared hinge + SCAD, λ = 2⁻¹⁰, a = 3.7, M = 5,
  no intercept (an all-ones column is appended instead, penalised like the others), tol = 1e-6 on the relative
  change;
* ``LIBLINEAR-l1`` (scikit-learn ``LinearSVC(penalty="l1", loss="squared_hinge", dual=False)``, external, not
  through the harness): C = 1/(n λ) with the data set's λ, intercept fitted (liblinear penalises it);
* ``HiGHS-LP-l1``: the exact optimum of the ADMM-ℓ1 problem as a linear program (``scipy.optimize.linprog``).

Tuning (:mod:`optlab.experiments._tuning`, :func:`grids`): ADMM's ρ scale (both problem-scaled ρ's), LQA's ε and
GIST's step growth η over default × {1/4, 1/2, 1, 2, 4} (quick × {1/2, 1, 2}; for η the factor scales η − 1) for
1/5 of the iteration limit, chosen on the method's own training objective there; the "(l1 start)" rows and the λ
paths use their penalty's chosen value. LIBLINEAR and the LP are external solvers (untuned). Column ``tuned`` of
every table holds the chosen value, ``svm_admm_tuning.csv`` every grid score.

Columns: run time (solver seconds, compile time excluded for the JAX solvers; wall time of ``fit`` / ``linprog``
for the external ones), iterations, status, final relative primal/dual residuals (ADMM), NZF % (nonzero weights,
intercept excluded), test accuracy %, final objective of the method's own problem, and for ADMM-ℓ1 the relative
gap to the LP optimum.

**Table 2 (sparsity at matched test accuracy)**: at equal λ the penalties are not comparable (SCAD/MCP cap a
feature's cost at (a+1)λ²/2 resp. γλ²/2, far below ℓ1's λ|w_j|), so every method is also run along a λ path
(geometric grid, 12 values; quick: 3): ADMM-ℓ1; ADMM-scad/mcp from zeros, from the ℓ1 solution at the same λ,
and "(path)" = from the same penalty's solution at the previous (larger) λ (the pathwise continuation of ncvreg,
Breheny & Huang 2011); LQA-scad. The table reports, per method, the *sparsest* model whose test accuracy is
within 0.5 points of the reference (ADMM-ℓ1 at the data set's λ) — ties broken by higher accuracy —, and the
same at the best test accuracy any run reached.

Writes ``svm_admm_<dataset>.csv`` (table 1), ``svm_admm_path_<dataset>.csv`` (every path run),
``svm_admm_matched_<dataset>.csv`` (table 2), ``svm_admm_traces.csv`` (long format, thinned) and the figures
``svm_admm_<dataset>.png`` (objective vs iteration and time, ℓ1 gap to the LP, max relative residual) and
``svm_admm_path_<dataset>.png`` (NZF vs λ, test accuracy vs NZF). Without a data set's file (quick runs) a generated
stand-in of the same shape is used (:mod:`optlab.data.standin`): the ``dataset`` column and the figure titles read
"<name> (stand-in)", the ``data`` column of every CSV says "stand-in".
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from optlab.experiments import _tuning, register
from optlab.experiments._datasets import DataSets
from optlab.experiments._progress import expect, step

DATASETS = {"heart_scale": 2.0 ** -6, "mushrooms": 0.01}
PENALTIES = {
    "l1": {},
    "scad": {"a": 3.7},
    "mcp": {"gamma": 3.0},
    "lsp": {"theta": 0.5},
    "capped_l1": {"theta": 0.5},
}
PATHS = {"heart_scale": (2.0 ** -9, 2.0 ** -1), "mushrooms": (1e-5, 0.5)}   # mushrooms: ℓ1 reaches 100 % test accuracy only below λ ≈ 5e-4
MATCH_POINTS = 0.5      # "similar test accuracy": within this many percentage points of the reference


def _accuracy(scores, y):
    return 100.0 * float(np.mean(np.where(np.asarray(scores).ravel() > 0, 1.0, -1.0) == y))


def _f(v, digits=4):
    return f"{v:.{digits}g}" if isinstance(v, (float, np.floating)) else v


def _admm_row(name, label, problem, lam, res, Xt, yt, f_lp=None):
    tr = res.trace
    w, c = np.asarray(res.params["w"]), float(res.params["b"])
    return {"dataset": name, "method": label, "problem": problem, "lam": lam, "time_s": tr.times[-1],
            "iterations": res.n_iter, "status": res.status, "primal_res": tr.last("primal_res"),
            "dual_res": tr.last("dual_res"), "nzf_pct": 100 * np.mean(w != 0), "n_features": int(np.sum(w != 0)),
            "test_acc": _accuracy(Xt @ w + c, yt), "objective": tr.last("objective"),
            "gap_to_lp": (tr.last("objective") - f_lp) / f_lp if f_lp is not None else ""}


LQA_ITERS = 500


def grids(quick: bool) -> dict:
    """The tuning grid of every compared method of table 1 (:mod:`optlab.experiments._tuning`): each ADMM penalty
    scales both problem-scaled default penalties ρ1, ρ2 together ("rho_scale", :func:`_rhos`), LQA its
    perturbation ε ("eps", default 1e-6), GIST its step growth ("eta" = 1 + (η0 − 1)·f, η0 = 2: the factor
    applies to the excess over 1, η must stay > 1). LIBLINEAR and the HiGHS LP are external
    solvers run to their tolerance (untuned rows)."""
    out = {f"ADMM-{p}": _tuning.Grid.scaled("rho_scale", 1.0, quick) for p in PENALTIES}
    out["LQA-scad"] = _tuning.Grid.scaled("eps", 1e-6, quick)
    out["GIST-scad"] = _tuning.Grid.scaled("eta", 2.0, quick, base=1.0)
    return out


def _default_rhos(X):
    """svm_admm's problem-scaled default (ρ1, ρ2) on the training matrix ``X``."""
    import scipy.sparse as sp

    from optlab.solvers.svm_linsolve import default_rhos

    sq = float(X.multiply(X).sum()) if sp.issparse(X) else float(np.sum(np.asarray(X, np.float64) ** 2))
    return default_rhos(sq, X.shape[0], X.shape[1])


def _rhos(base, v) -> dict:
    """``svm_admm`` keywords at ρ scale ``v``: the defaults ``base`` = :func:`_default_rhos` times ``v``."""
    return {"rho1": v * base[0], "rho2": v * base[1]}


def _n_path(quick: bool) -> int:
    return 3 if quick else 12


#: Runs of :func:`run_dataset` (the LP, 5 penalties, 2 warm starts, LQA, GIST, LIBLINEAR) and per λ of
#: :func:`run_path` (ADMM-l1, scad and mcp from three starts each, LQA).
RUNS_TABLE1, RUNS_PER_LAMBDA = 11, 8


def run_dataset(name, lam, *, quick, sets: DataSets | None = None):
    import jax
    import scipy.sparse as sp
    from sklearn.svm import LinearSVC

    jax.config.update("jax_enable_x64", True)
    import optlab as ol
    from optlab.solvers.baselines.scad_lqa import scad_lqa

    sets = sets or DataSets(quick)
    ds = sets.load(name)
    label_ds, kind = sets.label(name), sets.kind(name)
    X, y, Xt, yt = ds.X, np.asarray(ds.y, float), ds.X_test, np.asarray(ds.y_test, float)
    n, d = X.shape
    maxiter = 1000 if quick else 10000
    log_every = max(1, maxiter // 400)
    rows, traces = [], {}

    step(f"{label_ds}: HiGHS LP")
    t0 = time.perf_counter()
    f_lp, w_lp, c_lp = ol.references.svm_l1_hinge_lp(X, y, lam)
    t_lp = time.perf_counter() - t0
    l1_res = None
    grid, base = grids(quick), _default_rhos(X)
    tuning = {}

    def tuned(label, run, length):
        """The protocol on ``run(v, n)`` (value ``v`` for ``n`` iterations); returns the run at the chosen value for
        ``length`` iterations."""
        n = _tuning.budget(length)
        objective = lambda r: r.trace.last("objective")  # noqa: E731
        tuning[label] = _tuning.tune(lambda v: run(v, n), grid[label], objective,
                                     budget=f"{n} of {length} iterations")
        res, tuning[label] = _tuning.confirm(tuning[label], lambda v: run(v, length), objective, whole=n == length)
        return res

    for pen_name, extra in PENALTIES.items():
        pen = ol.prox.get(pen_name, lam=lam, **extra)
        label = f"ADMM-{pen_name}"
        step(f"{label_ds}: {label}")
        res = tuned(label, lambda v, it, pen=pen: ol.svm_admm(X, y, pen, maxiter=it, log_every=min(log_every, it),
                                                              progress=False, **_rhos(base, v)), maxiter)
        res.trace.meta.update({"label": label, "dataset": label_ds, "data": kind, "lam": lam})
        traces[label] = res.trace
        rows.append({**_admm_row(label_ds, label, f"hinge + {pen_name}", lam, res, Xt, yt,
                                 f_lp if pen_name == "l1" else None), **tuning[label].fields()})
        if pen_name == "l1":
            l1_res = res
    for pen_name in ("scad", "mcp"):
        pen = ol.prox.get(pen_name, lam=lam, **PENALTIES[pen_name])
        label = f"ADMM-{pen_name} (l1 start)"
        step(f"{label_ds}: {label}")
        own = tuning[f"ADMM-{pen_name}"]    # the same method from another start: its penalty's chosen ρ
        res = ol.svm_admm(X, y, pen, maxiter=maxiter, log_every=log_every, progress=False, warm_start=l1_res,
                          **_rhos(base, own.chosen))
        traces[label] = res.trace
        rows.append({**_admm_row(label_ds, label, f"hinge + {pen_name}", lam, res, Xt, yt),
                     **own.fields(borrowed=f"tuned for ADMM-{pen_name} from a zero start")})

    # SCAD-SVM by LQA (Zhang et al. 2006): the same objective as ADMM-scad
    step(f"{label_ds}: LQA-scad")
    res = tuned("LQA-scad", lambda v, it: scad_lqa(X, y, lam, 3.7, eps=v, maxiter=it, tol=1e-6, log_every=1,
                                                   progress=False), LQA_ITERS)
    wq, cq = np.asarray(res.params["w"]), float(res.params["b"])
    traces["LQA-scad"] = res.trace
    rows.append({"dataset": label_ds, "method": "LQA-scad", "problem": "hinge + scad", "lam": lam,
                 "time_s": res.trace.times[-1], "iterations": res.n_iter, "status": res.status,
                 "nzf_pct": 100 * np.mean(wq != 0), "n_features": int(np.sum(wq != 0)),
                 "test_acc": _accuracy(Xt @ wq + cq, yt), "objective": res.trace.last("objective"),
                 **tuning["LQA-scad"].fields()})

    # GIST: squared hinge + SCAD, intercept as a (penalised) constant column
    Xg = sp.hstack([X, np.ones((n, 1))], format="csr") if sp.issparse(X) else np.hstack([X, np.ones((n, 1))])
    f = ol.losses.squared_hinge_objective(Xg, y)
    step(f"{label_ds}: GIST-scad")
    res = tuned("GIST-scad", lambda v, it: ol.gist(f, ol.prox.scad(2.0 ** -10, 3.7), np.zeros(d + 1), maxiter=it,
                                                   eta=v, tol=1e-6, log_every=min(log_every, it), progress=False),
                maxiter)
    wg = np.asarray(res.params)
    traces["GIST-scad"] = res.trace
    rows.append({"dataset": label_ds, "method": "GIST-scad", "problem": "sq. hinge + scad", "lam": 2.0 ** -10,
                 "time_s": res.trace.times[-1], "iterations": res.n_iter, "status": res.status,
                 "nzf_pct": 100 * np.mean(wg[:d] != 0), "n_features": int(np.sum(wg[:d] != 0)),
                 "test_acc": _accuracy(Xt @ wg[:d] + wg[d], yt), "objective": res.trace.last("objective"),
                 **tuning["GIST-scad"].fields()})

    step(f"{label_ds}: LIBLINEAR-l1")
    t0 = time.perf_counter()
    svc = LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=1.0 / (n * lam), tol=1e-4, random_state=0,
                    max_iter=10000).fit(X, y)
    t_svc = time.perf_counter() - t0
    wl, cl = svc.coef_.ravel(), float(svc.intercept_[0])
    m = y * (np.asarray(X @ wl).ravel() + cl)
    rows.append({"dataset": label_ds, "method": "LIBLINEAR-l1", "problem": "sq. hinge + l1", "lam": lam,
                 "time_s": t_svc, "iterations": int(np.max(svc.n_iter_)), "status": "",
                 "nzf_pct": 100 * np.mean(wl != 0), "n_features": int(np.sum(wl != 0)),
                 "test_acc": _accuracy(Xt @ wl + cl, yt),
                 "objective": float(np.mean(np.maximum(1 - m, 0) ** 2) + lam * np.abs(wl).sum()),
                 **_tuning.untuned_fields("external solver run to its tolerance")})
    rows.append({"dataset": label_ds, "method": "HiGHS-LP-l1", "problem": "hinge + l1", "lam": lam, "time_s": t_lp,
                 "status": "optimal", "nzf_pct": 100 * np.mean(np.abs(w_lp) > 1e-9),
                 "n_features": int(np.sum(np.abs(w_lp) > 1e-9)), "test_acc": _accuracy(Xt @ w_lp + c_lp, yt),
                 "objective": f_lp, "gap_to_lp": 0.0, **_tuning.untuned_fields("exact LP")})
    for r in rows:
        r["data"] = kind
    return rows, traces, f_lp, tuning


def run_path(name, *, quick, sets: DataSets | None = None, tuning: dict | None = None):
    """Every path method at every λ of the grid (see the module docstring); returns one row per run. ``tuning``:
    the table-1 tuning (``{label: Tuned}``) whose chosen values the path runs use (ADMM-scad/mcp from every start at
    their penalty's ρ scale, LQA at its ε); without it, the defaults."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import optlab as ol
    from optlab.solvers.baselines.scad_lqa import scad_lqa

    sets = sets or DataSets(quick)
    ds = sets.load(name)
    label_ds, kind = sets.label(name), sets.kind(name)
    X, y, Xt, yt = ds.X, np.asarray(ds.y, float), ds.X_test, np.asarray(ds.y_test, float)
    lo, hi = PATHS[name]
    lams = np.geomspace(hi, lo, _n_path(quick))          # decreasing: ℓ1 continuation
    maxiter = 1000 if quick else 10000
    rows = []
    tuning = tuning or {}
    base = _default_rhos(X)

    def own(method):
        """(svm_admm ρ keywords or LQA ε, table columns) of ``method`` (any start) from the table-1 tuning."""
        key = method.split(" (")[0]
        if key not in tuning:
            return ({"eps": 1e-6} if key == "LQA-scad" else {}), _tuning.untuned_fields("no table-1 tuning")
        t = tuning[key]
        return (({"eps": t.chosen} if key == "LQA-scad" else _rhos(base, t.chosen)),
                t.fields(borrowed=f"tuned for {key} at table 1's λ"))

    def add(method, lam, w, c, status, iters, t):
        w = np.asarray(w)
        rows.append({"dataset": label_ds, "data": kind, "method": method, "lam": float(lam),
                     "nzf_pct": 100 * np.mean(w != 0),
                     "n_features": int(np.sum(w != 0)), "test_acc": _accuracy(Xt @ w + float(c), yt),
                     "status": status, "iterations": iters, "time_s": t, **own(method)[1]})

    prev = None
    own_path = {"scad": None, "mcp": None}   # the previous λ's solution of the same penalty (continuation)
    for lam in lams:
        step(f"{label_ds} path λ={lam:.3g}: ADMM-l1")
        l1 = ol.svm_admm(X, y, ol.prox.l1(lam), maxiter=maxiter, progress=False, warm_start=prev,
                         **own("ADMM-l1")[0])
        prev = l1
        add("ADMM-l1", lam, l1.params["w"], l1.params["b"], l1.status, l1.n_iter, l1.trace.times[-1])
        for pen_name in ("scad", "mcp"):
            pen = ol.prox.get(pen_name, lam=jnp.asarray(lam), **PENALTIES[pen_name])
            for tag, ws in (("", None), (" (l1 start)", l1), (" (path)", own_path[pen_name])):
                step(f"{label_ds} path λ={lam:.3g}: ADMM-{pen_name}{tag}")
                r = ol.svm_admm(X, y, pen, maxiter=maxiter, progress=False, warm_start=ws,
                                **own(f"ADMM-{pen_name}")[0])
                add(f"ADMM-{pen_name}{tag}", lam, r.params["w"], r.params["b"], r.status, r.n_iter,
                    r.trace.times[-1])
                if tag == " (path)":
                    own_path[pen_name] = r
        step(f"{label_ds} path λ={lam:.3g}: LQA-scad")
        r = scad_lqa(X, y, lam, 3.7, maxiter=LQA_ITERS, tol=1e-6, progress=False, **own("LQA-scad")[0])
        add("LQA-scad", lam, r.params["w"], r.params["b"], r.status, r.n_iter, r.trace.times[-1])
    return rows


def matched_table(path_rows, ref_acc, ref_label):
    """Per method: the sparsest path model with test accuracy >= ``ref_acc - MATCH_POINTS`` (ties: higher
    accuracy, then larger λ), and the sparsest one at the best accuracy reached by any run."""
    best = max(r["test_acc"] for r in path_rows)
    out = []
    for level, target in ((f"≥ {ref_label} − {MATCH_POINTS} pt", ref_acc - MATCH_POINTS - 1e-9),
                          ("= best of all runs", best - 1e-9)):
        for method in dict.fromkeys(r["method"] for r in path_rows):
            ok = [r for r in path_rows if r["method"] == method and r["test_acc"] >= target]
            if not ok:
                out.append({"accuracy level": level, "target_acc": target, "method": method, "lam": "",
                            "n_features": "", "nzf_pct": "", "test_acc": "none reaches it", "status": ""})
                continue
            r = min(ok, key=lambda r: (r["n_features"], -r["test_acc"], -r["lam"]))
            out.append({"accuracy level": level, "target_acc": round(target, 2), "method": method,
                        "lam": r["lam"], "n_features": r["n_features"], "nzf_pct": r["nzf_pct"],
                        "test_acc": r["test_acc"], "status": r["status"],
                        **{k: r[k] for k in (_tuning.COLUMN, _tuning.GRID_COLUMN) if k in r}})
    return out


def _path_figure(name, path_rows, out, sets: DataSets | None = None):
    import optlab as ol

    label_ds = sets.label(name) if sets else name
    fig, axes = ol.plot.grid(2, ncols=2)
    for method in dict.fromkeys(r["method"] for r in path_rows):
        rs = [r for r in path_rows if r["method"] == method]
        style = "--" if "l1 start" in method else (":" if "(path)" in method else "-")
        axes[0].plot([r["lam"] for r in rs], [r["n_features"] for r in rs], style, marker="o", ms=3, label=method)
        axes[1].plot([r["n_features"] for r in rs], [r["test_acc"] for r in rs], "o", ms=4, label=method,
                     alpha=0.7)
    axes[0].set(xscale="log", yscale="symlog", xlabel="λ", ylabel="nonzero features", ylim=(0, None),
                title=f"{label_ds}: features along the λ path")
    accs = sorted(r["test_acc"] for r in path_rows)
    axes[1].set(xscale="symlog", xlabel="nonzero features", ylabel="test accuracy %", xlim=(0, None),
                ylim=(accs[len(accs) // 10] - 2, accs[-1] + 1),
                title=f"{label_ds}: test accuracy vs features (every path run;\nthe worst 10 % of runs below the axis)")
    ol.plot.legend(axes[0], fontsize=7)
    if sets:
        sets.mark(fig, [name])
    png = out / f"svm_admm_path_{name}.png"
    ol.plot.save(fig, png)
    return png


@register("svm-admm", "Guan et al. 2018: nonconvex-penalised SVM by ADMM vs LQA, GIST, LIBLINEAR and the HiGHS LP "
                      "(heart_scale, mushrooms), sparsity at matched accuracy along λ paths")
def run(out: Path, quick: bool = False, seed: int = 0) -> dict:
    import optlab as ol
    from optlab.trace import write_long_csv, write_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, tables, path_tables, all_traces, long_rows, tuning_rows = [], {}, {}, {}, [], []
    sets = DataSets(quick)
    expect(len(DATASETS) * (RUNS_TABLE1 + RUNS_PER_LAMBDA * _n_path(quick)))
    for name, lam in DATASETS.items():
        rows, traces, f_lp, tuning = run_dataset(name, lam, quick=quick, sets=sets)
        label_ds, kind = sets.label(name), sets.kind(name)
        for label, t in tuning.items():
            tuning_rows += t.rows(dataset=label_ds, data=kind, method=label, lam=lam)
        write_table(tuning_rows, out / "svm_admm_tuning.csv")
        all_traces[name] = traces
        for label, tr in traces.items():
            long_rows += tr.thinned(200).long(solver=label, dataset=label_ds, data=kind)
        path = out / f"svm_admm_{name}.csv"
        tables[name] = write_table([{k: _f(v) for k, v in r.items()} for r in rows], path)
        files.append(path)
        print(f"\n== {label_ds} (λ = {lam:g}; n = {sets.load(name).X.shape[0]} train) ==")
        print(tables[name])

        prow = run_path(name, quick=quick, sets=sets, tuning=tuning)
        path = out / f"svm_admm_path_{name}.csv"
        write_table([{k: _f(v) for k, v in r.items()} for r in prow], path)
        files.append(path)
        ref = next(r for r in rows if r["method"] == "ADMM-l1")
        mt = matched_table(prow, ref["test_acc"], f"ADMM-l1 at λ = {lam:g} ({ref['test_acc']:.2f} %)")
        for r in mt:
            r.update(dataset=label_ds, data=kind)
        path = out / f"svm_admm_matched_{name}.csv"
        path_tables[name] = write_table([{k: _f(v) for k, v in r.items()} for r in mt], path)
        files.append(path)
        print(f"\n-- {label_ds}: sparsest model per method along its λ path at matched test accuracy --")
        print(path_tables[name])
        files.append(_path_figure(name, prow, out, sets))

        admm = {k: v for k, v in traces.items() if k.startswith("ADMM")}
        fig, axes = ol.plot.grid(4, ncols=2)
        ol.plot.convergence(admm, "objective", x="iter", ax=axes[0], title=f"{label_ds}: ADMM objective (own penalty)")
        ol.plot.convergence(admm, "objective", x="time", ax=axes[1], title=f"{label_ds}: ADMM objective (own penalty)")
        ol.plot.convergence({"ADMM-l1": traces["ADMM-l1"]}, "objective", x="iter", reference=f_lp, relative=True,
                            ax=axes[2], title=f"{label_ds}: ℓ1 gap to the HiGHS LP optimum",
                            ylabel="(F − F_LP)/F_LP")
        ol.plot.convergence(admm, "kkt", x="iter", ax=axes[3], title=f"{label_ds}: max relative residual (tol 1e-5)",
                            ylabel="max(primal, dual) relative residual")
        ol.plot.legend(axes[0], fontsize=7)
        sets.mark(fig, [name])
        png = out / f"svm_admm_{name}.png"
        ol.plot.save(fig, png)
        files.append(png)
    write_long_csv(long_rows, out / "svm_admm_traces.csv")
    files += [out / "svm_admm_traces.csv", out / "svm_admm_tuning.csv"]
    return {"files": [str(p) for p in files], "tables": tables, "path_tables": path_tables, "traces": all_traces}
