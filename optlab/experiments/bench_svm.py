"""Benchmark (``optlab bench svm``): ℓ1-penalised hinge SVM, time to a 1e-4 relative objective gap.

Problem: ``min_{w,c} (1/n) Σ (1 − y_i(x_iᵀw + c))₊ + λ‖w‖₁`` on the training split of each data set
(λ = 1e-3; heart_scale 2⁻⁶). Data: heart_scale, mushrooms, a9a, w8a (LIBSVM, ../shared/data) and ``synthetic``: a
seeded sparse
100,000 × 1,000 set, ``ol.data.load("synthetic_classification", n=100_000, d=1_000, k=200, density=0.02,
noise=0.1, seed=0)`` (2 % N(0, 1) nonzeros, 2M stored entries; labels = sign(X w_true + 0.1 N(0, 1)) with 200
informative features, so almost every row sees the signal).

* Reference optimum F*: HiGHS (``scipy.optimize.linprog(method="highs")``, the LP of
  :func:`optlab.references.svm_l1_hinge_lp`) with a time limit (``--highs-limit``, default 180 s); its wall time is
  the HiGHS column. Where HiGHS does not finish in the limit (the synthetic set), F* is the best objective of a
  long ADMM run (4 × ``--maxiter`` iterations or relative residuals ≤ 1e-8; *not* an independent reference), and
  beside it a *certified lower bound* L from the LP dual (``max Σα_i`` s.t. ``0 ≤ α_i ≤ 1/n``, ``Σα_iy_i = 0``,
  ``‖Xᵀ(α∘y)‖_∞ ≤ λ``), built from that run's multipliers (``α = −ρ2·u2`` clipped to ``[0, 1/n]``, class sums
  balanced, scaled into the ℓ∞ constraint) — weak duality makes L ≤ F*, but the bound converges more slowly than
  the objective, so it brackets F* only loosely;
* ours: :func:`optlab.svm_admm` with default settings (problem-scaled ρ's), sparse input kept sparse (BCOO),
  float64, ``tol=0``, a log point every 10 iterations, stopped by a callback at the first log point with
  (F − F*)/F* ≤ 1e-4; the time to 1e-4 is the solver time there (compile time and metric evaluation excluded,
  see :mod:`optlab.harness`). Beside it the same with ``anderson=5`` (safeguarded Anderson acceleration;
  ``admm_aa5_*`` columns) and with ``rho_rule="balance"`` (adaptive ρ1/ρ2; ``admm_bal_*`` columns);
* liblinear: scikit-learn ``LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=1/(nλ))`` — a different
  loss (squared hinge), so this is the time of liblinear's own fit to its default tolerance, not a time to the
  same optimum;
* per-iteration time vs the bandwidth floor: bytes of A read per iteration (two passes over the BCOO arrays:
  values 8 B + two int32 indices per stored entry) divided by the measured memory bandwidth (NumPy sum over a
  256 MiB array).

Medians over ``--repeats`` runs (HiGHS on a9a, w8a and synthetic: one run unless ``--repeats-lp`` says otherwise).
Prints a table with the 1-minute load average at each data set (the machine is shared) and writes
``bench_svm.csv``.

:func:`svm_rows` returns the rows (one dict per data set) for other benchmark tables (``optlab bench peers``).

Usage: ``optlab bench svm [--datasets heart_scale,mushrooms,a9a,w8a,synthetic] [--repeats 3] [--out results/bench]
[--quick]``.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

LAMBDAS = {"mushrooms": 1e-3, "a9a": 1e-3, "w8a": 1e-3, "heart_scale": 2.0 ** -6, "synthetic": 1e-3}
DATASETS = ("heart_scale", "mushrooms", "a9a", "w8a", "synthetic")
#: data sets where HiGHS runs once by default (tens of seconds or its time limit)
SLOW_LP = ("a9a", "w8a", "synthetic")
SYNTHETIC = dict(n=100_000, d=1_000, k=200, density=0.02, noise=0.1, seed=0)


def bandwidth_gbs() -> float:
    a = np.ones(32 * 1024 * 1024)  # 256 MiB
    a.sum()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        a.sum()
        times.append(time.perf_counter() - t0)
    return a.nbytes / min(times) / 1e9


def dual_lower_bound(X, y, lam, state, rho2_base) -> float:
    """A feasible point of the ℓ1-hinge LP's dual built from ``svm_admm``'s margin multipliers (``state``, base
    ``rho2``); returns its value ``Σ α_i`` (≤ F* by weak duality)."""
    st = state
    n = y.shape[0]
    rho2 = float(st.tau) * rho2_base
    a = np.clip(-rho2 * np.asarray(st.u2, np.float64), 0.0, 1.0 / n)
    s_pos, s_neg = a[y > 0].sum(), a[y < 0].sum()
    t = min(s_pos, s_neg)
    a[y > 0] *= t / max(s_pos, np.finfo(float).tiny)
    a[y < 0] *= t / max(s_neg, np.finfo(float).tiny)
    g = float(np.abs(np.asarray(X.T @ (a * y))).max())
    return float(min(1.0, lam / max(g, np.finfo(float).tiny)) * a.sum())


def load(name):
    import optlab as ol

    if name == "synthetic":
        ds = ol.data.load("synthetic_classification", **SYNTHETIC)
    else:
        ds = ol.data.load(name)
    return ds.X, np.asarray(ds.y, float)


def bench_dataset(name, repeats, repeats_lp, maxiter, highs_limit):
    import jax
    import scipy.sparse as sp
    from sklearn.svm import LinearSVC

    jax.config.update("jax_enable_x64", True)
    import optlab as ol

    X, y = load(name)
    n, d = X.shape
    lam = LAMBDAS.get(name, 1e-3)
    load_avg = os.getloadavg()[0]
    t_lp, f_star, ref = [], None, "HiGHS"
    for _ in range(repeats_lp):
        t0 = time.perf_counter()
        try:
            f_star, _, _ = ol.references.svm_l1_hinge_lp(X, y, lam, time_limit=highs_limit)
        except RuntimeError as err:           # time limit reached
            print(f"{name}: HiGHS stopped after {time.perf_counter() - t0:.0f} s ({err}); F* from a long ADMM run instead")
            t_lp = [np.nan]
            break
        t_lp.append(time.perf_counter() - t0)
    if f_star is None:     # reference from a long ADMM run, with a certified lower bound beside it
        long = ol.svm_admm(X, y, ol.prox.l1(lam), maxiter=4 * maxiter, tol=1e-8, log_every=50, progress=False)
        f_star = float(np.min(long.trace["objective"]))
        lower = dual_lower_bound(X, y, lam, long.state, long.trace.meta["rho2"])
        ref = f"long ADMM run ({long.n_iter} it; certified gap {(f_star - lower) / lower:.1e})"
        print(f"{name}: F* ~ {f_star:.8g} (best of {long.n_iter} ADMM iterations, status {long.status}); "
              f"dual lower bound {lower:.8g}")
    Xl = X
    if sp.issparse(X):   # liblinear wants 32-bit sparse indices
        Xl = sp.csr_matrix(X)
        Xl.indices, Xl.indptr = Xl.indices.astype(np.int32), Xl.indptr.astype(np.int32)
    t_lib = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=1.0 / (n * lam)).fit(Xl, y)
        t_lib.append(time.perf_counter() - t0)
    nnz = X.nnz if hasattr(X, "nnz") else n * d
    row = {"dataset": name, "n": n, "d": d, "nnz": nnz, "lam": lam, "F_star": f_star, "F_star_from": ref,
           "highs_s": float(np.median(t_lp)), "liblinear_s": float(np.median(t_lib))}
    for prefix, kw in (("admm", {}), ("admm_aa5", {"anderson": 5}), ("admm_bal", {"rho_rule": "balance"})):
        row.update(_time_to_gap(ol, X, y, lam, f_star, repeats, maxiter, prefix, kw))
    row.update({"bytes_per_iter": 2 * nnz * (8 + 8), "load_avg_1min": load_avg})
    return row


def _time_to_gap(ol, X, y, lam, f_star, repeats, maxiter, prefix, kw):
    """Median solver time and iterations of ``svm_admm(**kw)`` to a 1e-4 relative gap (columns ``<prefix>_*``)."""
    t_hit, it_hit, per_iter, compile_t = [], [], [], []
    stop = lambda it, rec, st: (rec["objective"] - f_star) / f_star <= 1e-4  # noqa: E731
    for _ in range(repeats):
        res = ol.svm_admm(X, y, ol.prox.l1(lam), maxiter=maxiter, tol=0.0, log_every=10, progress=False,
                          callback=stop, **kw)
        tr = res.trace
        hit = res.status == "stopped"
        t_hit.append(tr.times[-1] if hit else np.nan)
        it_hit.append(res.n_iter if hit else -1)
        per_iter.append(tr.times[-1] / max(res.n_iter, 1))
        compile_t.append(tr.meta["compile_time"])
    return {f"{prefix}_to_1e-4_s": float(np.median(t_hit)), f"{prefix}_iters_to_1e-4": int(np.median(it_hit)),
            f"{prefix}_s_per_iter": float(np.median(per_iter)), f"{prefix}_compile_s": float(np.median(compile_t))}


def svm_rows(datasets=DATASETS, repeats=3, repeats_lp=None, maxiter=3000, highs_limit=180.0) -> list[dict]:
    """The benchmark's rows, one dict per data set (HiGHS, liblinear and ``svm_admm`` times, iterations, ratios,
    the memory-bandwidth floor, the load average); what ``optlab bench svm`` prints and writes."""
    bw = bandwidth_gbs()
    rows = []
    for name in datasets:
        rlp = repeats_lp if repeats_lp is not None else (1 if name in SLOW_LP else repeats)
        row = bench_dataset(name, repeats, rlp, maxiter, highs_limit)
        row["bandwidth_GBs"] = bw
        row["floor_s_per_iter"] = row["bytes_per_iter"] / (bw * 1e9)
        row["speedup_vs_highs"] = row["highs_s"] / row["admm_to_1e-4_s"]
        row["speedup_vs_liblinear"] = row["liblinear_s"] / row["admm_to_1e-4_s"]
        row["aa5_speedup"] = row["admm_to_1e-4_s"] / row["admm_aa5_to_1e-4_s"]
        row["bal_speedup"] = row["admm_to_1e-4_s"] / row["admm_bal_to_1e-4_s"]
        rows.append(row)
    return rows


def main(argv=None) -> int:
    from optlab.trace import format_table, write_long_csv

    p = argparse.ArgumentParser(prog="optlab bench svm", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--repeats-lp", type=int, default=None)
    p.add_argument("--maxiter", type=int, default=3000)
    p.add_argument("--highs-limit", type=float, default=180.0, help="HiGHS time limit in seconds")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--quick", action="store_true", help="mushrooms only, one repeat")
    args = p.parse_args(argv)
    names = ["mushrooms"] if args.quick else args.datasets.split(",")
    repeats = 1 if args.quick else args.repeats
    rows = svm_rows(names, repeats, args.repeats_lp, args.maxiter, args.highs_limit)
    bw = rows[0]["bandwidth_GBs"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else v  # noqa: E731
    print(f"memory bandwidth (NumPy sum, 256 MiB): {bw:.1f} GB/s")
    write_long_csv(rows, out / "bench_svm.csv")
    print(format_table([{k: fmt(v) for k, v in r.items()} for r in rows]))
    print(f"wrote {out / 'bench_svm.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
