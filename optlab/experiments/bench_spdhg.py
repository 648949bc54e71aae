"""Benchmark (``optlab bench spdhg``): stochastic steps per second of SPDHG vs a NumPy per-sample loop, and epochs
per second of SPDPEG and every stochastic-ADMM baseline.

Problem: GGLR on a9a (training rows of the seeded 80/20 split; μ = 1e-5, γ = 0; F the signed graph of
``optlab.operators.graph``, 123 x 123 with ~800 nonzeros). Data stay sparse: padded rows (ELL, ≤ 14 nonzeros per
row); F as passed: SciPy sparse (the solver stores it dense here, its padded rows being too long to pay off) and,
as a second row, the first-difference matrix (stored as padded rows, 2 per row) to show the cost of F.

* ours: ``ol.spdhg`` (GC, batch size 1), ``epochs`` full epochs, one harness step per epoch; steps/s = samples
  processed / solver time (compile time and metric evaluation excluded, :mod:`optlab.harness`); median of
  ``repeats`` runs, each after a warm-up run that compiles;
* NumPy: the same iteration (same permutation sampling, same step rules, dual step and averaging) as a Python loop
  over samples with NumPy operations on the same padded rows and F in the faster form for NumPy (the graph F dense,
  the difference matrix as SciPy CSR); timed on ``numpy_steps`` samples (steps/s is flat in the number of steps), median of ``repeats``;
* epochs/s of SPDPEG, LPDHG (1 pass per iteration), STOC-ADMM, OPG-ADMM, RDA-ADMM, SAG-ADMM, Ada-SADMM (diag), SGADM:
  median over ``repeats`` runs of ``epochs`` epochs.

Both SPDHG rows are also measured in *process CPU time* (``steps_per_cpu_s``: the compiled epoch step called
directly; the NumPy loop likewise), which is what to compare on a shared, oversubscribed machine, where wall time
mostly measures the other jobs. Writes ``bench_spdhg.csv`` and prints a table with the load average.

Usage: ``optlab bench spdhg [--epochs 3] [--repeats 3] [--numpy-steps 20000] [--out results/bench] [--quick]``.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def _numpy_spdhg(vals, cols, y, F, mu, L, steps, seed=0, theta=0.5, normF2=1.0):
    """SPDHG-GC, batch 1, as a NumPy per-sample loop (the reference for the speed-up)."""
    n, d = vals.shape[0], F.shape[1]
    x = np.zeros(d)
    u = np.zeros(F.shape[0])
    xbar = np.zeros(d)
    FT = F.T.tocsr() if hasattr(F, "tocsr") else F.T
    perm = np.random.default_rng(seed).permutation(n)
    muF2 = mu * mu * normF2
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(steps):
        i = perm[k % n]
        c, v = cols[i], vals[i]
        z = v @ x[c]
        s = -y[i] / (1.0 + np.exp(y[i] * z))
        eta = 1.0 / (np.sqrt(k + 1.0) + L)
        sig = theta / (eta * muF2)
        u = np.clip(u + sig * mu * (F @ x), -1.0, 1.0)
        step = mu * (FT @ u)
        np.add.at(step, c, s * v)
        x = x - eta * step
        xbar += (x - xbar) / (k + 1)
    return steps / (time.perf_counter() - t0), steps / (time.process_time() - c0)


def _padded_rows(X):
    """Each row's nonzero values and column indices, padded with zeros to the longest row (the NumPy peer's rows)."""
    import scipy.sparse as sp

    csr = sp.csr_matrix(X)
    counts = np.diff(csr.indptr)
    k = max(int(counts.max()), 1)
    vals, cols = np.zeros((csr.shape[0], k)), np.zeros((csr.shape[0], k), np.int64)
    pos = np.arange(csr.nnz) - np.repeat(csr.indptr[:-1], counts)
    rows = np.repeat(np.arange(csr.shape[0]), counts)
    vals[rows, pos], cols[rows, pos] = csr.data, csr.indices
    return vals, cols


def _median_rate(fn, repeats):
    return float(np.median([fn() for _ in range(repeats)]))


def _median_rates(fn, repeats):
    r = np.array([fn() for _ in range(repeats)])
    return float(np.median(r[:, 0])), float(np.median(r[:, 1]))


def _cpu_rate_of_step(X, y, Fm, mu, epochs):
    """Epochs per second of *process CPU time* for the compiled SPDHG epoch (the same step the harness runs, called
    directly once compiled): on a shared, oversubscribed machine wall time mostly measures the other jobs."""
    import jax

    from optlab.parallel import Serial
    from optlab.solvers import spdhg as M

    pb, loss, auto, _ = M.build_problem(X, y, Fm, mu, 0.0)
    n = X.shape[0]
    prepared = Serial().prepare(M.algorithm(loss.name, "gc", auto, 1, 1, 1, n, n), M.init(pb), pb)
    step, state = jax.jit(prepared.step), prepared.state
    jax.block_until_ready(step(state, pb))
    c0 = time.process_time()
    for _ in range(epochs):
        state, _ = step(state, pb)
    jax.block_until_ready(state)
    return epochs / (time.process_time() - c0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="optlab bench spdhg", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--numpy-steps", type=int, default=20000)
    p.add_argument("--out", default="results/bench")
    p.add_argument("--quick", action="store_true", help="1 epoch, 1 repeat, 3000 NumPy steps")
    args = p.parse_args(argv)  # None: sys.argv (run as a script); a list: from `optlab bench`
    if args.quick:
        args.epochs, args.repeats, args.numpy_steps = 1, 1, 3000

    import jax

    jax.config.update("jax_enable_x64", True)
    import warnings

    import optlab as ol
    from optlab.solvers.baselines import stochastic_admm as B

    ds = ol.data.load("a9a", split=0.2, seed=0)
    X, y = ds.X, ds.y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        F = ol.operators.graph_guided(X)
    n = X.shape[0]
    mu, gamma = 1e-5, 0.0
    vals, cols = _padded_rows(X)
    L = 0.25 * float(np.max(np.sum(vals * vals, axis=1)))     # logistic: beta_l max_i ||a_i||^2
    normF2 = ol.operators.spectral_norm(F) ** 2
    load = os.getloadavg()[0]

    rows = []

    def ours_rate(Fm, fn=ol.spdhg, **kw):
        fn(X, y, Fm, mu, epochs=1, progress=False, **kw)                      # compile
        def once():
            res = fn(X, y, Fm, mu, epochs=args.epochs, progress=False, **kw)
            return args.epochs / res.trace.times[-1]
        return _median_rate(once, args.repeats)

    D = ol.operators.first_difference(X.shape[1])
    for label, Fm, Fnp in (("graph F", F, F.toarray()), ("F = first difference", D, D.tocsr())):
        ep_s = ours_rate(Fm)
        ep_cpu = _median_rate(lambda Fm=Fm: _cpu_rate_of_step(X, y, Fm, mu, args.epochs), args.repeats)
        nF2 = ol.operators.spectral_norm(Fm) ** 2
        np_wall, np_cpu = _median_rates(lambda Fnp=Fnp, nF2=nF2: _numpy_spdhg(vals, cols, y, Fnp, mu, L,
                                                                              args.numpy_steps, normF2=nF2),
                                        args.repeats)
        rows.append({"method": f"SPDHG-GC, {label}", "epochs_per_s": ep_s, "steps_per_s": ep_s * n,
                     "numpy_steps_per_s": np_wall, "speedup_vs_numpy": ep_s * n / np_wall,
                     "steps_per_cpu_s": ep_cpu * n, "numpy_steps_per_cpu_s": np_cpu,
                     "speedup_vs_numpy_cpu": ep_cpu * n / np_cpu})
    others = {"SPDPEG": (ol.spdpeg, {}), "STOC-ADMM": (B.stoc_admm, {}), "OPG-ADMM": (B.opg_admm, {}),
              "RDA-ADMM": (B.rda_admm, {}), "SAG-ADMM": (B.sag_admm, {}), "Ada-SADMM (diag)": (B.ada_sadmm, {}),
              "SGADM": (B.sgadm, {})}
    for label, (fn, kw) in others.items():
        ep_s = ours_rate(F, fn=fn, **kw)
        rows.append({"method": label, "epochs_per_s": ep_s, "steps_per_s": ep_s * n})

    def lp_rate():
        res = ol.lpdhg(X, y, F, mu, maxiter=10 * args.epochs, progress=False)
        return 10 * args.epochs / res.trace.times[-1]
    ol.lpdhg(X, y, F, mu, maxiter=2, progress=False)
    rows.append({"method": "LPDHG (batch; 1 pass per iteration)", "epochs_per_s": _median_rate(lp_rate, args.repeats)})

    keys = ["method", "epochs_per_s", "steps_per_s", "numpy_steps_per_s", "speedup_vs_numpy", "steps_per_cpu_s",
            "numpy_steps_per_cpu_s", "speedup_vs_numpy_cpu"]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    print(f"a9a GGLR training rows n = {n}, d = {X.shape[1]}, F {F.shape} nnz {F.nnz}; device {jax.devices()[0]}; "
          f"load average at start {load:.2f} on {os.cpu_count()} CPUs; medians of {args.repeats}")
    print(ol.trace.format_table([{k: fmt(r.get(k, "")) for k in keys} for r in rows]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ol.trace.write_long_csv([{**{k: r.get(k, "") for k in keys}, "load_average": load} for r in rows], out / "bench_spdhg.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
