"""The one prepared script to run on a machine with a GPU (or any default JAX device).

For every registered solver (optlab.solvers.registry) it builds the solver's test problem, runs it on
``jax.devices()[0]`` in float32 and float64, checks the final objective against the independent float64
reference (scikit-learn, HiGHS, SciPy or CVXPY, computed on the host CPU), and times the compiled iterations
(median of ``--repeats`` runs; compile time excluded, as in every trace). Prints one row per run as soon as it
finishes (so a run cut short by a time limit still reports), and writes ``gpu_check.csv``.

    python experiments/gpu_check.py [--size small|medium|large] [--repeats 3] [--solvers a,b] [--budget-s S] [--out DIR]

Exit status 1 if any solver misses its accuracy bound on the device or raises.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
import traceback
from pathlib import Path

import numpy as np

COLUMNS = ["solver", "dtype", "device", "size", "iterations", "status", "rel_err_vs_cpu_f64_ref", "bound", "ok",
           "median_us_per_iter", "compile_s"]


def check_one(name, entry, dtype, rtol, args, device) -> dict:
    case = entry.make(seed=0, dtype=dtype, size=args.size)
    maxiter = args.maxiter or case.maxiter
    times, res, compile_s = [], None, None
    for _ in range(max(1, args.repeats)):
        res = case.solve(maxiter=maxiter, tol=0.0, progress=False)
        times.append(res.trace.times[-1] / max(res.n_iter, 1))
        if compile_s is None:   # the first call compiles; later calls hit the cache
            compile_s = res.trace.meta["compile_time"]
    value = res.trace.last(case.objective)
    rel = abs(value - case.reference) / abs(case.reference)
    bound = rtol if rtol is not None else case.rtol
    ok = bool(rel <= bound) and res.status != "diverged"
    return {"solver": name, "dtype": np.dtype(dtype).name, "device": str(device), "size": args.size,
            "iterations": res.n_iter, "status": res.status, "rel_err_vs_cpu_f64_ref": f"{rel:.2e}",
            "bound": f"{bound:.0e}", "ok": ok, "median_us_per_iter": f"{1e6 * float(np.median(times)):.2f}",
            "compile_s": f"{compile_s:.3f}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--maxiter", type=int, default=None, help="override each case's iteration count")
    parser.add_argument("--solvers", default="", help="comma-separated registry names (default: all)")
    parser.add_argument("--budget-s", type=float, default=float("inf"),
                        help="start no new solver after this many seconds (the rest are reported as skipped)")
    parser.add_argument("--out", default=".")
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    from optlab.solvers.registry import SOLVERS
    from optlab.trace import format_table

    names = [s for s in args.solvers.split(",") if s] or list(SOLVERS)
    unknown = sorted(set(names) - set(SOLVERS))
    if unknown:
        parser.error(f"--solvers: unknown {unknown}; known: {sorted(SOLVERS)}")
    device = jax.devices()[0]
    print(f"device: {device} ({jax.default_backend()}), jax {jax.__version__}", flush=True)
    out = Path(args.out) / "gpu_check.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, failed, skipped, start = [], [], [], time.perf_counter()
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for name in names:
            if time.perf_counter() - start > args.budget_s:
                skipped.append(name)
                continue
            for dtype, rtol in ((np.float32, 1e-3), (np.float64, None)):
                try:
                    row = check_one(name, SOLVERS[name], dtype, rtol, args, device)
                except Exception as err:  # report and go on: one broken solver must not hide the others
                    traceback.print_exc()
                    row = {"solver": name, "dtype": np.dtype(dtype).name, "device": str(device),
                           "size": args.size, "status": f"error: {type(err).__name__}", "ok": False}
                if not row["ok"]:
                    failed.append(f"{name}/{row['dtype']}")
                rows.append(row)
                writer.writerow(row)
                fh.flush()
                print(" | ".join(f"{k}={row.get(k, '')}" for k in COLUMNS if k not in ("device", "size")),
                      flush=True)
    print(format_table(rows))
    print(f"wrote {out}; {time.perf_counter() - start:.0f} s in all")
    if skipped:
        print(f"SKIPPED (time budget): {', '.join(skipped)}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
