"""Benchmark (``optlab bench svm``): ℓ1-penalised hinge SVM, time to a 1e-4 relative objective gap.

Problem: ``min_{w,c} (1/n) Σ (1 − y_i(x_iᵀw + c))₊ + λ‖w‖₁`` on the training split of each data set.
Reference optimum F* by HiGHS (``scipy.optimize.linprog(method="highs")``, the LP of
:func:`optlab.references.svm_l1_hinge_lp`); its wall time is the HiGHS column.

* ours: :func:`optlab.svm_admm` with default settings (problem-scaled ρ's), sparse input kept sparse (BCOO),
  float64, ``tol=0`` and a log point every 10 iterations; the time to 1e-4 is the solver time (compile time and
  metric evaluation excluded, see :mod:`optlab.harness`) at the first log point with (F − F*)/F* ≤ 1e-4;
* liblinear: scikit-learn ``LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=1/(nλ))`` — a different
  loss (squared hinge), so this is the time of liblinear's own fit to its default tolerance, not a time to the
  same optimum;
* per-iteration time vs the bandwidth floor: bytes of A read per iteration (two passes over the BCOO arrays:
  values 8 B + two int32 indices per stored entry) divided by the measured memory bandwidth (NumPy sum over a
  256 MiB array).

Medians over ``--repeats`` runs (HiGHS on a9a: one run unless ``--repeats-lp`` says otherwise). Prints a table and
writes ``bench_svm.csv``.

Usage: ``optlab bench svm [--datasets mushrooms,a9a] [--repeats 3] [--out results/bench] [--quick]``.
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

LAMBDAS = {"mushrooms": 1e-3, "a9a": 1e-3, "heart_scale": 2.0 ** -6}


def bandwidth_gbs() -> float:
    a = np.ones(32 * 1024 * 1024)  # 256 MiB
    a.sum()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        a.sum()
        times.append(time.perf_counter() - t0)
    return a.nbytes / min(times) / 1e9


def bench_dataset(name, repeats, repeats_lp, maxiter):
    import jax
    import scipy.sparse as sp
    from sklearn.svm import LinearSVC

    jax.config.update("jax_enable_x64", True)
    import optlab as ol

    ds = ol.data.load(name)
    X, y = ds.X, np.asarray(ds.y, float)
    n, d = X.shape
    lam = LAMBDAS.get(name, 1e-3)
    t_lp = []
    for _ in range(repeats_lp):
        t0 = time.perf_counter()
        f_star, _, _ = ol.references.svm_l1_hinge_lp(X, y, lam)
        t_lp.append(time.perf_counter() - t0)
    Xl = X
    if sp.issparse(X):   # liblinear wants 32-bit sparse indices
        Xl = sp.csr_matrix(X)
        Xl.indices, Xl.indptr = Xl.indices.astype(np.int32), Xl.indptr.astype(np.int32)
    t_lib = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=1.0 / (n * lam)).fit(Xl, y)
        t_lib.append(time.perf_counter() - t0)
    t_hit, it_hit, per_iter, compile_t = [], [], [], []
    for _ in range(repeats):
        res = ol.svm_admm(X, y, ol.prox.l1(lam), maxiter=maxiter, tol=0.0, log_every=10, progress=False)
        tr = res.trace
        gap = (tr["objective"] - f_star) / f_star
        hit = np.nonzero(gap <= 1e-4)[0]
        t_hit.append(tr.times[hit[0]] if hit.size else np.nan)
        it_hit.append(tr.iters[hit[0]] if hit.size else -1)
        per_iter.append(tr.times[-1] / max(res.n_iter, 1))
        compile_t.append(tr.meta["compile_time"])
    nnz = X.nnz if hasattr(X, "nnz") else n * d
    bytes_per_iter = 2 * nnz * (8 + 8)
    return {"dataset": name, "n": n, "d": d, "nnz": nnz, "lam": lam, "F_star": f_star,
            "highs_s": float(np.median(t_lp)), "liblinear_s": float(np.median(t_lib)),
            "admm_to_1e-4_s": float(np.median(t_hit)), "admm_iters_to_1e-4": int(np.median(it_hit)),
            "admm_s_per_iter": float(np.median(per_iter)), "admm_compile_s": float(np.median(compile_t)),
            "bytes_per_iter": bytes_per_iter}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="optlab bench svm", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="mushrooms,a9a")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--repeats-lp", type=int, default=None)
    p.add_argument("--maxiter", type=int, default=3000)
    p.add_argument("--out", default="results/bench")
    p.add_argument("--quick", action="store_true", help="mushrooms only, one repeat")
    args = p.parse_args(argv)  # None: sys.argv (run as a script); a list: from `optlab bench`
    names = ["mushrooms"] if args.quick else args.datasets.split(",")
    repeats = 1 if args.quick else args.repeats
    bw = bandwidth_gbs()
    rows = []
    for name in names:
        rlp = args.repeats_lp if args.repeats_lp is not None else (1 if name == "a9a" else repeats)
        row = bench_dataset(name, repeats, rlp, args.maxiter)
        row["bandwidth_GBs"] = bw
        row["floor_s_per_iter"] = row["bytes_per_iter"] / (bw * 1e9)
        row["speedup_vs_highs"] = row["highs_s"] / row["admm_to_1e-4_s"]
        row["speedup_vs_liblinear"] = row["liblinear_s"] / row["admm_to_1e-4_s"]
        rows.append(row)
    keys = ["dataset", "n", "d", "nnz", "highs_s", "liblinear_s", "admm_to_1e-4_s", "admm_iters_to_1e-4",
            "admm_s_per_iter", "floor_s_per_iter", "speedup_vs_highs", "speedup_vs_liblinear", "admm_compile_s"]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    cells = [[fmt(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print(f"memory bandwidth (NumPy sum, 256 MiB): {bw:.1f} GB/s")
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_svm.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out / 'bench_svm.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
