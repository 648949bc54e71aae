"""Benchmark: multi-block PIG over workers — iterations and *simulated* time to a 1e-6 relative gap.

``optlab bench pig_parallel [--quick] [--out DIR]`` (the CLI simulates 8 CPU devices; run directly, set
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` or more before Python starts).

Problem: Lasso ``(1/(2n))‖Ax − b‖² + λ‖x‖₁``, seeded Gaussian A (n×d = 400×160, 200×80 with ``--quick``) with a
common factor (correlated columns), 8 true nonzeros, λ = 0.05·‖Aᵀb‖∞/n, cut into 8 equal column blocks; F* from
scikit-learn's ``Lasso`` (tol 1e-12). ``pig_blocks(..., parallel=...)`` with β = 0.5 and its default steps:
Jacobi (1 − β)/L for ``Sync(W)`` and (1 − β)/(L(1 + 2·max_delay)) for ``Async(W, max_delay=3)``; one row also runs
Async with the Jacobi step (``allow_unsafe_step``: outside the proven condition). Speeds ``uniform`` and
``straggler`` (worker 0 four times slower, see :func:`optlab.parallel.worker_times`). Reported: the first logged
iteration (every 10th is logged) with ``(F − F*)/|F*| ≤ 1e-6`` and the simulated clock there (units: one pass over all columns by one
worker of speed 1). Simulated time, not wall-clock. Writes ``bench_pig_parallel.csv``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def problem(n, d, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) + 0.7 * rng.normal(size=(n, 1))
    w = np.zeros(d)
    w[rng.choice(d, 8, replace=False)] = rng.normal(size=8) * 2
    b = A @ w + 0.1 * rng.normal(size=n)
    return A, b, 0.05 * np.max(np.abs(A.T @ b)) / n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="optlab bench pig_parallel")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=".")
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    import optlab as ol
    from optlab.parallel import Async, Sync
    from optlab.references import lasso_optimum
    from optlab.trace import write_table

    n, d = (200, 80) if args.quick else (400, 160)
    maxiter, every = (20000, 10) if args.quick else (50000, 10)   # iterations resolved to `every`
    A, b, lam = problem(n, d)
    f_star, _ = lasso_optimum(A, b, lam)
    f = ol.losses.least_squares_objective(A, b)
    parts, gs = np.array_split(np.zeros(d), 8), [ol.prox.l1(lam)] * 8
    configs = []
    for speeds in ("uniform", "straggler"):
        for W in (1, 2, 4):
            configs.append((f"Sync({W})", speeds, Sync(W, speeds=speeds), {}))
        for W in (2, 4):
            configs.append((f"Async({W}, 3)", speeds, Async(W, max_delay=3, speeds=speeds), {}))
        configs.append(("Async(4, 3) Jacobi step", speeds, Async(4, max_delay=3, speeds=speeds),
                        {"step": 0.5 / f.lipschitz(), "allow_unsafe_step": True}))
    rows = []
    for name, speeds, par, extra in configs:
        if par.n_workers > len(jax.devices()):
            continue
        res = ol.pig_blocks(f, gs, parts, beta=0.5, maxiter=maxiter, tol=0, f_star=f_star, log_every=every,
                            progress=False, parallel=par, callback=lambda k, rec, st: rec["gap"] <= 1e-6 * abs(f_star),
                            **extra)
        rel = res.trace["gap"] / abs(f_star)
        hit = np.flatnonzero(rel <= 1e-6)
        k = int(res.trace.iters[hit[0]]) if hit.size else None
        rows.append({"method": name, "speeds": speeds, "iters_to_1e-6": k if k is not None else f"> {maxiter}",
                     "sim_time_to_1e-6": round(float(res.trace["sim_time"][hit[0]]), 2) if hit.size else "",
                     "step": f"{res.trace.meta['steps'][0]:.3g}", "final_rel_gap": f"{rel[-1]:.1e}"})
        print(rows[-1], flush=True)
    print(f"Lasso {n}x{d}, 8 column blocks, beta=0.5; simulated time (not wall clock)")
    print(write_table(rows, Path(args.out) / "bench_pig_parallel.csv"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
