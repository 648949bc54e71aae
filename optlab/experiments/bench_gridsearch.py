"""Benchmark (``optlab bench gridsearch``): a 4 × 3 ``GridSearchCV`` over :class:`optlab.sklearn.NonconvexSVC`
against the same-size grid over scikit-learn's ``LinearSVC``, each timed in a fresh process (issue 17).

Data: heart_scale, all 270 rows (training and test split stacked; a sparse CSR matrix as loaded). Grids, 5-fold
cross-validation (``cv=5``, 61 fits each):

* ours: ``NonconvexSVC(penalty="mcp")`` over ``lam`` in {0.001, 0.003, 0.01, 0.03} × ``gamma`` in {2, 3, 5}
  (default ``max_iter=1000``, ``tol=1e-4``);
* peer: ``LinearSVC()`` over ``C`` in {0.01, 0.1, 1, 10} × ``intercept_scaling`` in {0.5, 1, 2}.

Each repeat starts a new Python process that imports optlab, loads the data and times the two ``fit`` calls
(``time.perf_counter``; LinearSVC first). A first, untimed process fills JAX's persistent compilation cache
(:mod:`optlab._config`), so the timed processes measure a *fresh process with a warm cache*: every program is
traced and lowered again but loaded from disk instead of compiled. ``--no-pad`` times ``pad_rows=False`` (one
program per training-set shape) for comparison. Prints the per-repeat times, the medians, their ratio and the
1-minute load average (the machine may be shared: compare the ratio, measured in the same process).

Usage: ``optlab bench gridsearch [--repeats 3] [--no-pad]``, or ``python -m optlab.experiments.bench_gridsearch``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

LAMS = [0.001, 0.003, 0.01, 0.03]
GAMMAS = [2.0, 3.0, 5.0]
CS = [0.01, 0.1, 1.0, 10.0]
SCALINGS = [0.5, 1.0, 2.0]


def _child(pad_rows: bool) -> dict:
    """One timed process: LinearSVC's grid, then NonconvexSVC's; returns the seconds and best scores."""
    import time
    import warnings

    import scipy.sparse as sp
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import LinearSVC

    from optlab import data
    from optlab.sklearn import NonconvexSVC

    ds = data.load("heart_scale")
    X = sp.vstack([ds.X, ds.X_test]).tocsr()
    y = np.concatenate([ds.y, ds.y_test])
    warnings.simplefilter("ignore", ConvergenceWarning)
    t = time.perf_counter()
    lin = GridSearchCV(LinearSVC(), {"C": CS, "intercept_scaling": SCALINGS}, cv=5).fit(X, y)
    t_lin = time.perf_counter() - t
    t = time.perf_counter()
    ours = GridSearchCV(NonconvexSVC(penalty="mcp", pad_rows=pad_rows), {"lam": LAMS, "gamma": GAMMAS},
                        cv=5).fit(X, y)
    t_ours = time.perf_counter() - t
    return {"linear_s": t_lin, "ours_s": t_ours, "linear_score": float(lin.best_score_),
            "ours_score": float(ours.best_score_), "ours_best": ours.best_params_, "load": os.getloadavg()[0]}


def _run_child(pad_rows: bool) -> dict:
    cmd = [sys.executable, "-m", "optlab.experiments.bench_gridsearch", "--child"] + ([] if pad_rows else ["--no-pad"])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark process failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="optlab bench gridsearch", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed fresh processes (default 3)")
    ap.add_argument("--no-pad", action="store_true", help="NonconvexSVC(pad_rows=False): no shape bucketing")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    pad = not args.no_pad
    if args.child:
        print(json.dumps(_child(pad)))
        return 0
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    print(f"warming the compilation cache (one untimed process, pad_rows={pad}) ...", flush=True)
    _run_child(pad)
    rows = []
    print(f"{'repeat':>6} {'NonconvexSVC [s]':>17} {'LinearSVC [s]':>14} {'ratio':>6} {'load':>5}")
    for i in range(args.repeats):
        r = _run_child(pad)
        rows.append(r)
        print(f"{i:>6} {r['ours_s']:>17.2f} {r['linear_s']:>14.3f} {r['ours_s'] / r['linear_s']:>6.1f} "
              f"{r['load']:>5.1f}", flush=True)
    ours = float(np.median([r["ours_s"] for r in rows]))
    lin = float(np.median([r["linear_s"] for r in rows]))
    ratios = [r["ours_s"] / r["linear_s"] for r in rows]
    print(f"median: NonconvexSVC {ours:.2f} s, LinearSVC {lin:.3f} s, ratio of medians {ours / lin:.1f}, "
          f"median per-process ratio {np.median(ratios):.1f} (pad_rows={pad})")
    print(f"best CV accuracy: NonconvexSVC {rows[-1]['ours_score']:.3f} {rows[-1]['ours_best']}, "
          f"LinearSVC {rows[-1]['linear_score']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
