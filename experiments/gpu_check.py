"""The one prepared script to run on a machine with a GPU (or any default JAX device).

For every registered solver (optlab.solvers.registry) it builds the solver's test problem, runs it on
``jax.devices()[0]`` in float32 and float64, checks the final objective against the independent float64
reference computed on the CPU, and times the compiled iterations (median of ``--repeats`` runs; compile
time excluded, as in every trace). Prints a table and writes ``gpu_check.csv``.

    python experiments/gpu_check.py [--size small|medium|large] [--repeats 3] [--out DIR]

Exit status 1 if any solver misses its accuracy bound on the device.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--maxiter", type=int, default=None, help="override each case's iteration count")
    parser.add_argument("--out", default=".")
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    from optlab.solvers.registry import SOLVERS

    device = jax.devices()[0]
    print(f"device: {device} ({jax.default_backend()}), jax {jax.__version__}")
    rows, failed = [], []
    for name, entry in SOLVERS.items():
        for dtype, rtol in ((np.float32, 1e-3), (np.float64, None)):
            case = entry.make(seed=0, dtype=dtype, size=args.size)
            maxiter = args.maxiter or case.maxiter
            times, res = [], None
            for _ in range(max(1, args.repeats)):
                res = case.solve(maxiter=maxiter, tol=0.0, progress=False)
                times.append(res.trace.times[-1] / max(res.n_iter, 1))
            value = res.trace.last(case.objective)
            rel = abs(value - case.reference) / abs(case.reference)
            bound = rtol if rtol is not None else case.rtol
            ok = bool(rel <= bound) and res.status != "diverged"
            if not ok:
                failed.append(f"{name}/{np.dtype(dtype).name}")
            rows.append({"solver": name, "dtype": np.dtype(dtype).name, "device": str(device),
                         "size": args.size, "iterations": res.n_iter, "status": res.status,
                         "rel_err_vs_cpu_f64_ref": f"{rel:.2e}", "bound": f"{bound:.0e}", "ok": ok,
                         "median_us_per_iter": f"{1e6 * float(np.median(times)):.2f}",
                         "compile_s": f"{res.trace.meta['compile_time']:.3f}"})
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for r in rows:
        print("  ".join(str(r[k]).ljust(widths[k]) for k in keys))
    out = Path(args.out) / "gpu_check.csv"
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
