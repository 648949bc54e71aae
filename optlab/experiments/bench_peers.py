"""Benchmark: optlab against the CPU specialists a researcher picks today, one run, one table per section.

``optlab bench peers [--sections glm,svm,epoch] [--full] [--out DIR] [--repeats R] [--only TEXT,...] [--budget S]``

Sections: ``glm`` — ``ol.glm`` (working sets + compiled coordinate descent + Anderson) on sparse GLMs against
skglm, scikit-learn and celer (below); ``svm`` — ℓ1-hinge SVM, ``svm_admm`` with default settings to a 1e-4
relative gap against HiGHS and liblinear's own fit, on heart_scale, mushrooms, a9a, w8a (and the synthetic
100,000×1,000 set with ``--full``), method in :mod:`optlab.experiments.bench_svm`; ``epoch`` — one per-sample epoch
of SPDHG / STOC-ADMM on a9a (dense and CSR) against scikit-learn's ``SGDClassifier``, method in
:mod:`optlab.experiments.bench_epoch`. ``--only`` filters every section by name.

GLM problems (float64, no intercept, λ = 0.05·λmax where λmax = ‖Xᵀℓ'(0, y)‖∞/n):

* Lasso, elastic net (ρ = 0.5), MCP (γ = 3) least squares on the synthetic AR(0.6)-correlated design of
  :func:`optlab.data.make_sparse_regression` (k = p/20 true nonzeros, noise 1), sizes 1,000×200 and 5,000×2,000
  (20,000×5,000 with ``--full``);
* ℓ1 logistic regression on :func:`optlab.data.make_sparse_classification` with the same design (noise 1);
* Lasso and ℓ1 logistic regression on the sparse real sets w8a and a9a when ``$OPTLAB_DATA`` holds them
  (``ol.data.load``).

Peers, each skipped with a message when it does not import: skglm (``Lasso``, ``ElasticNet``,
``MCPRegression``, ``SparseLogisticRegression``), scikit-learn (``Lasso``, ``ElasticNet``, liblinear
``LogisticRegression``), celer (``Lasso``, ``ElasticNet``, ``LogisticRegression``).

Method. Every solver has its own stopping rule, so each is run along a ladder of tolerances
(1e-3 … 1e-10) from loose to tight (a ladder stops at a fit longer than ``--budget`` seconds also when repeated:
the first fits of a solver include its compilation, JAX or numba). The *target* is, for the convex rows, the best
objective any solver reached, times (1 + 1e-6) (i.e. 1e-6 relative); for the nonconvex (MCP) rows, where solvers
may stop at different stationary points, the *best common* objective: the worst of the final objectives, times
(1 + 1e-6). A solver's time is the median wall time (``--repeats`` calls, after one warm-up call so that
compilation — JAX or numba — is excluded) at the loosest tolerance of the ladder whose solution reaches the target.
Objectives are evaluated by one NumPy formula for all. ``ratio`` = solver time / ``ol.glm`` time (> 1: ``ol.glm``
is faster). Writes ``bench_peers.csv`` (``_svm.csv``, ``_epoch.csv`` for the other sections); the machine load (1-minute load average) is printed and stored.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

TOLS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10)


# ------------------------------------------------------------------------------------------------- problems
def _lambda_max(X, y, loss):
    raw = -y if loss == "least_squares" else -0.5 * y  # ℓ'(0, y): least squares -y, logistic -y/2
    return float(np.max(np.abs(X.T @ raw)) / X.shape[0])


def objective(prob, w):
    """The objective every solver is judged by (NumPy, float64)."""
    X, y, lam = prob["X"], prob["y"], prob["lam"]
    z = np.asarray(X @ w).ravel()
    data = 0.5 * np.mean((y - z) ** 2) if prob["loss"] == "least_squares" else np.mean(np.logaddexp(0, -y * z))
    u = np.abs(w)
    if prob["penalty"] == "l1":
        pen = lam * u.sum()
    elif prob["penalty"] == "elastic_net":
        pen = lam * (0.5 * u.sum() + 0.25 * np.sum(w * w))
    else:
        g = prob["gamma"]
        pen = np.sum(np.where(u <= g * lam, lam * u - u * u / (2 * g), 0.5 * g * lam * lam))
    return float(data + pen)


def synthetic_problems(full):
    from optlab.data import make_sparse_classification, make_sparse_regression

    sizes = [(1000, 200), (5000, 2000)] + ([(20000, 5000)] if full else [])
    probs = []
    for n, p in sizes:
        reg = make_sparse_regression(n, p, k=max(1, p // 20), noise=1.0, correlation=0.6, seed=0)
        X, y = np.asarray(reg.X, np.float64), np.asarray(reg.y, np.float64)
        lam = 0.05 * _lambda_max(X, y, "least_squares")
        for pen in ("l1", "elastic_net", "mcp"):
            probs.append(dict(name=f"{pen} LS AR(0.6) {n}x{p}", X=X, y=y, loss="least_squares", penalty=pen,
                              lam=lam, gamma=3.0))
        cls = make_sparse_classification(n, p, k=max(1, p // 20), noise=1.0, correlation=0.6, seed=0)
        Xc, yc = np.asarray(cls.X, np.float64), np.asarray(cls.y, np.float64)
        probs.append(dict(name=f"l1 logistic AR(0.6) {n}x{p}", X=Xc, y=yc, loss="logistic", penalty="l1",
                          lam=0.05 * _lambda_max(Xc, yc, "logistic"), gamma=3.0))
    return probs


def real_problems():
    import optlab as ol

    probs = []
    for name in ("w8a", "a9a"):
        try:
            ds = ol.data.load(name)
        except Exception as exc:  # noqa: BLE001 - a missing file is reported, not fatal
            print(f"[skip] {name}: {str(exc).splitlines()[0]}")
            continue
        X = sp.csr_matrix(ds.X, dtype=np.float64)
        X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)  # peers reject int64
        y = np.asarray(ds.y, np.float64)
        for loss in ("least_squares", "logistic"):
            label = "l1 LS" if loss == "least_squares" else "l1 logistic"
            probs.append(dict(name=f"{label} {name} {X.shape[0]}x{X.shape[1]}", X=X, y=y, loss=loss,
                              penalty="l1", lam=0.05 * _lambda_max(X, y, loss), gamma=3.0))
    return probs


# ------------------------------------------------------------------------------------------------- solvers
def our_solver(prob):
    import optlab as ol

    pen = {"l1": lambda: ol.prox.l1(prob["lam"]), "elastic_net": lambda: ol.prox.elastic_net(prob["lam"], 0.5),
           "mcp": lambda: ol.prox.mcp(prob["lam"], prob["gamma"])}[prob["penalty"]]()
    return lambda tol: ol.glm(prob["X"], prob["y"], prob["loss"], pen, tol=tol).params["w"]


def peer_solvers(prob):
    """name -> (fit(tol) -> w) for the installed peers that handle this problem; prints skips."""
    out = {}
    lam, n, X, y = prob["lam"], prob["X"].shape[0], prob["X"], prob["y"]
    ls, pen = prob["loss"] == "least_squares", prob["penalty"]
    try:
        import skglm

        def sk(tol):
            if ls and pen == "l1":
                m = skglm.Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=1000)
            elif ls and pen == "elastic_net":
                m = skglm.ElasticNet(alpha=lam, l1_ratio=0.5, fit_intercept=False, tol=tol, max_iter=1000)
            elif ls:
                m = skglm.MCPRegression(alpha=lam, gamma=prob["gamma"], fit_intercept=False, tol=tol, max_iter=1000)
            else:
                m = skglm.SparseLogisticRegression(alpha=lam, fit_intercept=False, tol=tol, max_iter=1000)
            return np.ravel(m.fit(X, y).coef_)
        out["skglm"] = sk
    except ImportError as exc:
        print(f"[skip] skglm: {exc} (pip install skglm)")
    from sklearn import linear_model as lm

    if pen != "mcp":
        def skl(tol):
            if ls and pen == "l1":
                m = lm.Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=100_000)
            elif ls:
                m = lm.ElasticNet(alpha=lam, l1_ratio=0.5, fit_intercept=False, tol=tol, max_iter=100_000)
            else:
                m = lm.LogisticRegression(penalty="l1", C=1 / (n * lam), solver="liblinear", fit_intercept=False,
                                          tol=tol, max_iter=1000)
            return np.ravel(m.fit(X, y).coef_)
        out["scikit-learn" + ("" if ls else " (liblinear)")] = skl
    try:
        import celer

        if pen != "mcp":
            def ce(tol):
                if ls and pen == "l1":
                    m = celer.Lasso(alpha=lam, fit_intercept=False, tol=tol)
                elif ls:
                    m = celer.ElasticNet(alpha=lam, l1_ratio=0.5, fit_intercept=False, tol=tol)
                else:
                    m = celer.LogisticRegression(C=1 / (n * lam), fit_intercept=False, tol=tol)
                return np.ravel(m.fit(X, y).coef_)
            out["celer"] = ce
    except ImportError as exc:
        print(f"[skip] celer: {exc} (pip install celer)")
    return out


# ------------------------------------------------------------------------------------------------- measuring
def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def _median_time(fn, tol, repeats):
    _quiet(fn, tol)  # warm-up: JAX / numba compilation excluded
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _quiet(fn, tol)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def bench_problem(prob, repeats, budget):
    solvers = {"ol.glm": our_solver(prob), **peer_solvers(prob)}
    ladders = {}
    for name, fit in solvers.items():
        ladder = []
        for tol in TOLS:
            try:
                t0 = time.perf_counter()
                ladder.append((tol, objective(prob, _quiet(fit, tol))))
            except Exception as exc:  # noqa: BLE001 - a failing peer is reported and left out
                print(f"[skip] {name} on {prob['name']} (tol {tol}): {type(exc).__name__}: {exc}")
                break
            if time.perf_counter() - t0 > budget:  # timed again: the first fits include compilation
                t0 = time.perf_counter()
                _quiet(fit, tol)
                if time.perf_counter() - t0 > budget:  # tighter tolerances would only take longer
                    print(f"[note] {name} on {prob['name']}: tol {tol} took > {budget} s; tighter ones not run")
                    break
        if ladder:
            ladders[name] = ladder
    finals = {name: lad[-1][1] for name, lad in ladders.items()}
    convex = prob["penalty"] != "mcp"
    base = min(finals.values()) if convex else max(finals.values())
    target = base * (1 + 1e-6)
    rows = []
    for name, lad in ladders.items():
        hit = next(((tol, obj) for tol, obj in lad if obj <= target), None)
        if hit is None:
            rows.append(dict(problem=prob["name"], solver=name, tol="-", time_s=np.nan, objective=finals[name],
                             rel_to_target=(finals[name] - base) / abs(base), reached="no"))
            continue
        tol, obj = hit
        t = _median_time(solvers[name], tol, repeats)
        rows.append(dict(problem=prob["name"], solver=name, tol=tol, time_s=t, objective=obj,
                         rel_to_target=(obj - base) / abs(base), reached="yes"))
    ours = next((r["time_s"] for r in rows if r["solver"] == "ol.glm"), np.nan)
    for r in rows:
        r["ratio"] = r["time_s"] / ours if np.isfinite(r["time_s"]) and np.isfinite(ours) else np.nan
        r["target"] = "best objective (1e-6 rel.)" if convex else "best common objective (1e-6 rel.)"
    return rows


def _fmt(rows):
    out = []
    for r in rows:
        out.append({"problem": r["problem"], "solver": r["solver"], "tol": r["tol"],
                    "time [s]": f"{r['time_s']:.4f}" if np.isfinite(r["time_s"]) else "not reached",
                    "objective": f"{r['objective']:.10g}", "rel. to target": f"{r['rel_to_target']:.1e}",
                    "time / ol.glm": f"{r['ratio']:.2f}" if np.isfinite(r["ratio"]) else "-"})
    return out


def main(argv=None) -> int:
    """Run the benchmark from the command line ``argv``; the exit status (0), as ``optlab bench`` expects."""
    parser = argparse.ArgumentParser(prog="bench_peers", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the 20,000×5,000 design")
    parser.add_argument("--out", default=".", help="directory for bench_peers.csv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=None,
                        help="run only problems whose name contains one of these comma-separated texts")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="seconds: a solver whose fit takes longer stops its tolerance ladder there")
    parser.add_argument("--sections", default="glm,svm,epoch",
                        help="comma-separated: glm (sparse GLMs vs skglm/scikit-learn/celer), svm (l1-hinge SVM vs "
                             "HiGHS and liblinear, optlab bench svm), epoch (one per-sample epoch vs SGDClassifier, "
                             "optlab bench epoch)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; choose from {list(SECTIONS)}")

    import jax

    jax.config.update("jax_enable_x64", True)
    from optlab.trace import format_table, write_long_csv

    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, 1-min load average {load:.2f} at start")
    keys = [k.strip() for k in args.only.split(",") if k.strip()] if args.only else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tables = []
    rows = []
    if "glm" in sections:
        probs = synthetic_problems(args.full) + real_problems()
        if keys:
            probs = [p for p in probs if any(k in p["name"] for k in keys)]
        for prob in probs:
            print(f"--- {prob['name']}", flush=True)
            r = bench_problem(prob, args.repeats, args.budget)
            print(format_table(_fmt(r)), flush=True)
            rows += r
        if rows:
            tables.append(("sparse GLMs: time to the common target (ratio = solver time / ol.glm time)",
                           format_table(_fmt(rows))))
            write_long_csv(rows, out / "bench_peers.csv")
    if "svm" in sections:
        from .bench_svm import DATASETS, svm_rows

        names = [d for d in DATASETS if (args.full or d != "synthetic") and (not keys or any(k in d for k in keys))]
        svm = svm_rows(names, repeats=args.repeats) if names else []
        if svm:
            tables.append(("l1-hinge SVM, time to a 1e-4 relative gap (x > 1: svm_admm is faster)",
                           format_table(_svm_table(svm))))
            print(tables[-1][1], flush=True)
            write_long_csv(svm, out / "bench_peers_svm.csv")
    if "epoch" in sections and (not keys or any(k in "a9a" for k in keys)):
        from .bench_epoch import a9a_rows, format_rows

        epoch = a9a_rows(repeats=args.repeats)
        if epoch:
            tables.append(("one per-sample epoch, logistic loss (ratio = ours / SGDClassifier)",
                           format_table(format_rows(epoch))))
            print(tables[-1][1], flush=True)
            write_long_csv(epoch, out / "bench_peers_epoch.csv")
    load_end = os.getloadavg()[0]
    for title, table in tables:
        print(f"\n{title}\n{table}")
    print(f"1-min load average: {load:.2f} at start, {load_end:.2f} at end")
    print(f"wrote {', '.join(sorted(str(p) for p in out.glob('bench_peers*.csv')))}")
    return 0


SECTIONS = ("glm", "svm", "epoch")


def _svm_table(rows):
    """The SVM section's columns: peers' times, ours to 1e-4, iterations and the two speed-ups."""
    def g(v):
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3g}"

    return [{"data set": f"{r['dataset']} {r['n']}x{r['d']}", "HiGHS [s]": g(r["highs_s"]),
             "liblinear [s]": g(r["liblinear_s"]), "svm_admm [s]": g(r["admm_to_1e-4_s"]),
             "iterations": r["admm_iters_to_1e-4"], "x HiGHS": g(r["speedup_vs_highs"]),
             "x liblinear": g(r["speedup_vs_liblinear"]), "load": g(r["load_avg_1min"])} for r in rows]


if __name__ == "__main__":
    raise SystemExit(main())
