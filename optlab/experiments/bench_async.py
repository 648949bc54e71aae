"""Benchmark: real asynchronous workers (``RayAsync``) against synchronous ones — wall-clock time to a target.

``optlab bench async [--quick] [--out DIR] [--delay S] [--max-delay D] [--problems lasso,svm,admm_irnn]
[--admm-irnn-size SIZE] [--admm-irnn-target GAP]`` (needs ``pip install "optlab[distributed]"``).

Problems (each solver runs unchanged under every executor: one-executor design, DESIGN.md "Parallel"):

* ``lasso`` — proximal gradient (ISTA, step 1/L, :func:`optlab.ista`) for the Lasso ``(1/(2n))‖Ax − b‖² + λ‖x‖₁``,
  seeded Gaussian A with a common factor (n×d = 20000×200; 8000×100 with ``--quick``; one full gradient takes
  milliseconds), 10 true nonzeros, λ = 0.05·‖Aᵀb‖∞/n; F* from a long serial FISTA run; target ``(F − F*)/|F*| ≤
  1e-6``. Asynchronous proximal gradient with delayed gradients: Agarwal & Duchi (NeurIPS 2011).
* ``svm`` — global-consensus ADMM for the ℓ1-penalised hinge-loss SVM (:func:`optlab.svm_consensus_admm`, one block
  of rows per worker, λ = 1e-2) on a9a (LIBSVM, 32,561 × 123; ``--quick``: a seeded subset of 8,000 rows; a
  stand-in of the same shape when the file is missing, said in the table); F* = the exact LP optimum (HiGHS);
  target ``(F − F*)/|F*| ≤ 1e-4``. Under ``RayAsync`` a worker's block update uses the consensus it last read: the
  asynchronous consensus ADMM of Zhang & Kwok (ICML 2014).
* ``admm_irnn`` — data-parallel ADMMiRNN (:func:`optlab.admm_irnn`, Tang et al., ECML-PKDD 2020; each worker holds
  the auxiliaries and multipliers of its rows, the weight blocks' normal equations are sums over workers; asynchronous
  semantics in :mod:`optlab.solvers.admm_irnn`: the stale-synchronous parameter server of Ho et al., NIPS 2013) on the
  solver registry's seeded noisy-label sequences (2 features, label = sign of the feature-0 sum + last feature 1 +
  noise, so the loss has a positive floor), hidden 2, constant ρ = 10: 4,000 sequences × 8 steps (``--quick``: 400
  × 2; ``--admm-irnn-size small|medium|NxT`` chooses another size, e.g. ``8000x8``, with the same generator,
  ``--admm-irnn-target`` another target). F = the forward-pass training loss, F* = the smallest of a long serial run
  (3,000 iterations; 4,000 for small);
  target ``(F − F*)/|F*| ≤ 0.65`` (``--quick``: 3e-2), which ``Sync`` reaches in about 250 updates (server
  iterations). Nonconvex: no convergence guarantee under delays. Not in the default ``--problems``.

Executors, for W = 1, 2, 4 workers (``--quick``: the SVM with W = 1, 4; ADMM methods have no step: column ``-``):

* ``Sync(W)``: JAX's in-process SPMD executor over W simulated CPU devices (it cannot be slowed for real: with a
  straggler its row is the lower bound "measured time + delay × updates", since every round waits for the straggler);
* ``RayAsync(W, 0)``: the synchronous method on W Ray worker processes (every update waits for every worker);
* ``RayAsync(W, D, m)``: real asynchronous workers (``max_delay=D``, ``min_arrivals=m``): ``m = W − 1`` (the server
  waits for all but one worker, so only one part of the sums is stale) and ``m = 1`` (any single arrival). For the
  Lasso the ``m = 1`` run uses the delayed-gradient step 1/(L(1 + 2D)) (with every part stale, 1/L diverged here for
  W = 4: gap 8e124 after 2000 updates, and the simulator predicted it); ADMM has no step to shrink.

Each configuration runs without and with one real straggler (worker 0 sleeps ``--delay`` seconds in every round:
``RayAsync(straggler={0: delay})``). Reported: wall seconds to the target (log points every 5 updates; worker
start-up and compilation excluded; metrics evaluated after the run from stored server states,
``defer_metrics=True``), the final relative gap, server updates, the simulated executor's prediction for the same
speeds (``SimulatedAsync``/``Sync`` with ``speeds`` = the measured seconds per round of each worker, compute and
straggler delay; communication is not modelled) and the speed-up of the asynchronous run over the synchronous one,
real and predicted. Overheads: the server's time per update (µs, waiting excluded) of ``RayAsync``, the per-update
wall time of ``RayAsync(W, 0)`` beyond its slowest worker's round (all-reduce through Ray), and JAX's ``psum`` of a
d-vector over W simulated devices (µs). Writes ``bench_async.csv``. The machine load (``os.getloadavg``) is printed
per problem: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Problem:
    """One benchmark problem: ``run(parallel, maxiter, max_time, variant, callback)`` runs its solver; ``configs(W,
    D)`` lists the asynchronous runs ``(max_delay, min_arrivals, variant, step label)``; ``units(W)``: the rows the
    executor splits (data rows, or blocks), for the simulator's seconds per full pass; ``metric``: the trace column
    that is F (the gap ``(F − F*)/|F*|`` is measured on it)."""

    key: str
    title: str
    f_star: float
    target: float
    maxiter: int
    run: Callable
    configs: Callable
    units: Callable
    d: int
    workers: tuple
    straggler_workers: tuple
    metric: str = "objective"   # the trace column F is read from
    step: str = "-"             # the step of the synchronous rows (column step_L; "-": the method has none)


def problem(n, d, seed=0):
    """The Lasso data ``(A, b, λ)``."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) + 0.5 * rng.normal(size=(n, 1))
    w = np.zeros(d)
    w[:10] = rng.normal(size=10) * 2
    b = A @ w + 0.1 * rng.normal(size=n)
    return A, b, 0.05 * np.max(np.abs(A.T @ b)) / n


def lasso_problem(quick: bool) -> Problem:
    import optlab as ol

    n, d = (8000, 100) if quick else (20000, 200)
    A, b, lam = problem(n, d)
    f = ol.losses.least_squares_objective(A, b)
    g = ol.prox.l1(lam)
    x0 = np.zeros(d)
    step = 1.0 / float(f.lipschitz())
    f_star = float(ol.fista(f, g, x0, maxiter=20000, tol=1e-15, progress=False).trace["objective"].min())

    def run(parallel, maxiter, max_time=None, variant=1, callback=None):
        return ol.ista(f, g, x0, step=step / variant, maxiter=maxiter, tol=0.0, log_every=EVERY, progress=False,
                       max_time=max_time, callback=callback, parallel=parallel)

    def configs(W, D):
        # waiting for all but one worker (only the straggler's part is stale) at step 1/L; any single arrival at
        # the delayed-gradient step 1/(L(1 + 2·max_delay)) (Agarwal & Duchi 2011: with every part stale, 1/L can
        # diverge)
        if W == 1:
            return []
        if W == 2:
            return [(D, 1, 1, "1")]
        return [(D, W - 1, 1, "1"), (D, 1, 1 + 2 * D, f"1/{1 + 2 * D}")]

    return Problem("lasso", f"Lasso {n}×{d}, proximal gradient (ISTA)", f_star, 1e-6, 450 if quick else 500, run,
                   configs, lambda W: n, d, (1, 2, 4), (2, 4), step="1")


def _admm_configs(W, D):
    """ADMM's asynchronous runs (no step to shrink): all but one arrival, and any single arrival."""
    return [] if W == 1 else [(D, W - 1, 1, "-"), (D, 1, 1, "-")] if W > 2 else [(D, 1, 1, "-")]


def svm_problem(quick: bool) -> Problem:
    import optlab as ol
    from optlab.experiments._datasets import DataSets
    from optlab.references import svm_l1_hinge_lp

    sets = DataSets(quick)
    ds = sets.load("a9a")
    X = ds.X.toarray() if hasattr(ds.X, "toarray") else np.asarray(ds.X, np.float64)
    y = np.asarray(ds.y, np.float64)
    if quick:
        keep = np.sort(np.random.default_rng(0).choice(X.shape[0], size=8000, replace=False))
        X, y = X[keep], y[keep]
    lam = 1e-2
    f_star, _, _ = svm_l1_hinge_lp(X, y, lam)
    penalty = ol.prox.l1(lam)

    def run(parallel, maxiter, max_time=None, variant=1, callback=None):
        return ol.svm_consensus_admm(X, y, penalty, maxiter=maxiter, tol=0.0, log_every=EVERY, progress=False,
                                     max_time=max_time, callback=callback, parallel=parallel)

    name = sets.label("a9a") + (" (8,000-row subset)" if quick else "")
    return Problem("svm", f"consensus SVM ADMM, ℓ1 hinge, λ = {lam:g}, {name} {X.shape[0]}×{X.shape[1]}",
                   float(f_star), 1e-4, 900 if quick else 1200, run, _admm_configs, lambda W: W, X.shape[1],
                   (1, 4) if quick else (1, 2, 4), (4,) if quick else (2, 4))


ADMM_IRNN_SIZES = ("small", "medium")     # the solver registry's named sizes offered here (400×2, 4000×8)


def admm_irnn_size(spec: str) -> tuple[int, int]:
    """``small``, ``medium`` (the registry's 400×2 and 4000×8) or ``NxT`` (N sequences of T steps, e.g. ``8000x8``)."""
    from optlab.solvers.registry import ADMM_IRNN_SIZES as sizes

    if spec in ADMM_IRNN_SIZES:
        return sizes[spec]
    m = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", spec)
    if not m or int(m[1]) < 8 or int(m[2]) < 1:
        raise ValueError(f"admm_irnn size {spec!r}: use {', '.join(ADMM_IRNN_SIZES)} or NxT with N ≥ 8, T ≥ 1 "
                         "(e.g. 8000x8)")
    return int(m[1]), int(m[2])


def admm_irnn_problem(quick: bool, size: str | None = None, target: float | None = None) -> Problem:
    import optlab as ol
    from optlab.solvers.registry import admm_irnn_sequences

    # the solver registry's seeded noisy-label sequences (the loss has a positive floor) and its setting: hidden 2,
    # constant ρ = 10 (the adaptive schedule's rejections would make the update count depend on the executor).
    # size None: small with --quick, medium otherwise (the default rows); the target defaults to 3e-2 for small and
    # 0.65 for every other size
    size = size or ("small" if quick else "medium")
    n, T = admm_irnn_size(size)
    f_iters = 4000 if size == "small" else 3000
    target = target if target is not None else (3e-2 if size == "small" else 0.65)
    if not target > 0:
        raise ValueError(f"admm_irnn target must be > 0, got {target!r}")
    X, y = admm_irnn_sequences(0, n, T)
    hidden = 2
    kw = {"hidden": hidden, "rho": 10.0, "rho_schedule": None, "tol": 0.0, "progress": False}
    f_star = float(np.min(ol.admm_irnn(X, y, iters=f_iters, log_every=EVERY, **kw).trace["train_loss"]))

    def run(parallel, maxiter, max_time=None, variant=1, callback=None):
        return ol.admm_irnn(X, y, iters=maxiter, log_every=EVERY, max_time=max_time, callback=callback,
                            parallel=parallel, **kw)

    n, T, d = X.shape     # d (Problem): the weights U, W, b, V, c (binary labels: 2 classes)
    return Problem("admm_irnn", f"ADMMiRNN, tanh RNN (hidden 2, ρ = 10), noisy synthetic sequences {n}×{T}×{d}",
                   f_star, target, 400, run, _admm_configs, lambda W: n,
                   hidden * (d + hidden + 1) + (hidden + 1) * 2, (1, 2, 4), (2, 4), metric="train_loss")


PROBLEMS = {"lasso": lasso_problem, "svm": svm_problem, "admm_irnn": admm_irnn_problem}
EVERY = 5


def _gap(trace, f_star, metric="objective"):
    return (np.asarray(trace[metric]) - f_star) / abs(f_star)


def _time_to(trace, f_star, target, metric="objective"):
    hit = np.flatnonzero(_gap(trace, f_star, metric) <= target)
    return (float(trace.times[hit[0]]), int(trace.iters[hit[0]])) if hit.size else (float("nan"), -1)


def _sim_time_to(trace, f_star, target, metric="objective"):
    hit = np.flatnonzero(_gap(trace, f_star, metric) <= target)
    return float(trace["sim_time"][hit[0]]) if hit.size else float("nan")


def simulated_like(W, max_delay, min_arrivals, round_seconds, units):
    """The simulated executor with the speeds a real run measured: ``Sync(W)`` for ``max_delay = 0``, else
    ``SimulatedAsync(W, max_delay, min_arrivals)``, with ``speeds`` = each worker's measured seconds per round
    (``RayAsync``'s ``trace.meta["round_seconds"]``: compute plus straggler delay) scaled to a full pass over the
    ``units`` rows the executor splits (data rows, or blocks): the simulator's τ_w is per full pass and a worker's
    round covers ``ceil(units / W)`` of them. Its ``sim_time`` is then in seconds; communication is not modelled."""
    from optlab.parallel import SimulatedAsync, Sync

    tau = np.asarray(round_seconds) * units / -(-units // W)
    return Sync(W, speeds=tau) if max_delay == 0 else SimulatedAsync(W, max_delay=max_delay,
                                                                     min_arrivals=min_arrivals, speeds=tau)


@contextlib.contextmanager
def ray_session(num_cpus=None):
    """Ray on this machine for a benchmark: started unless already running (``num_cpus``: default the CPU count, at
    least 2; no dashboard, worker logs not forwarded); at the end RayAsync's idle worker processes are stopped and a
    Ray started here is shut down."""
    import ray

    from optlab.ray_executor import init_ray, shutdown_workers

    started = not ray.is_initialized()
    if started:
        init_ray(num_cpus=num_cpus or max(2, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        shutdown_workers()
        if started:
            ray.shutdown()


def _psum_us(W, d, repeats=200):
    """Median µs of a jitted ``psum`` of a d-vector over W simulated devices (the all-reduce of ``Sync``)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from optlab.parallel import AXIS, REPLICATED, SHARDED, spmd

    fn = jax.jit(spmd(lambda x: lax.psum(x, AXIS), W, (SHARDED,), REPLICATED))
    x = jnp.ones((W, d))
    fn(x).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x).block_until_ready()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6)


def bench_problem(pb: Problem, args) -> list[dict]:
    """The rows of one problem: every worker count and executor, without and with the straggler."""
    from optlab.parallel import RayAsync, Sync

    target, f_star, maxiter, metric = pb.target, pb.f_star, pb.maxiter, pb.metric
    async_maxiter = 3 * maxiter
    load = os.getloadavg()
    print(f"{pb.title}: target (F−F*)/|F*| ≤ {target:g}, straggler +{args.delay * 1e3:g} ms per round on worker 0; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs", flush=True)

    def reached(iteration, record, state):      # the simulator's runs stop at the target (their time is the answer)
        return (record[metric] - f_star) / abs(f_star) <= target

    def predict(W, D, m, round_seconds, variant):
        sim = simulated_like(W, D, m, round_seconds, pb.units(W))
        res = pb.run(sim, maxiter if D == 0 else async_maxiter, variant=variant, callback=reached)
        return _sim_time_to(res.trace, f_star, target, metric)

    rows = []
    psum = {W: _psum_us(W, pb.d) for W in sorted(set(pb.workers) | set(pb.straggler_workers))}
    for straggling in (False, True):
        for W in (pb.straggler_workers if straggling else pb.workers):
            delay = {0: args.delay} if straggling else None
            label = "one straggler" if delay else "none"
            res = pb.run(Sync(W), maxiter)
            t, it = _time_to(res.trace, f_star, target, metric)
            if delay:
                # JAX's Sync cannot be slowed for real; every round waits for the straggler: its time plus the
                # delay once per update is a lower bound on a real synchronous run with that straggler
                t = t + it * args.delay
            base = {"problem": pb.key, "straggler": label if W > 1 else "-", "W": W}
            rows.append({**base, "executor": f"Sync({W}) JAX" + (" + delay bound" if delay else ""), "step_L": pb.step,
                         "time_to_target_s": round(t, 3), "updates_to_target": it,
                         "final_rel_gap": f"{_gap(res.trace, f_star, metric)[-1]:.1e}", "updates": res.n_iter,
                         "predicted_s": float("nan"), "speedup": float("nan"), "predicted_speedup": float("nan"),
                         "server_us": float("nan"), "allreduce_us": round(psum[W], 1)})
            sync_t = sync_pred = None
            for D_run, m, variant, step_label in [(0, W, 1, pb.step)] + pb.configs(
                    W, args.max_delay):
                limit = None if D_run == 0 or not np.isfinite(sync_t) else 1.5 * sync_t
                res = pb.run(RayAsync(W, max_delay=D_run, min_arrivals=m, straggler=delay, defer_metrics=True),
                             maxiter if D_run == 0 else async_maxiter, limit, variant)
                meta = res.trace.meta
                t, it = _time_to(res.trace, f_star, target, metric)
                pred = predict(W, D_run, m, meta["round_seconds"], variant)
                overhead = float(np.median(meta["update_times"]) - max(meta["round_seconds"])) * 1e6
                if D_run == 0:
                    sync_t, sync_pred = t, pred
                name = f"RayAsync({W}, {D_run})" if D_run == 0 else f"RayAsync({W}, {D_run}, m={m})"
                rows.append({**base, "executor": name, "step_L": step_label,
                             "time_to_target_s": round(t, 3), "updates_to_target": it,
                             "final_rel_gap": f"{_gap(res.trace, f_star, metric)[-1]:.1e}", "updates": res.n_iter,
                             "predicted_s": round(pred, 3),
                             "speedup": round(sync_t / t, 2) if D_run else float("nan"),
                             "predicted_speedup": round(sync_pred / pred, 2) if D_run else float("nan"),
                             "server_us": round(meta["server_overhead_us"], 1),
                             "allreduce_us": round(overhead, 1) if D_run == 0 else float("nan")})
                print(f"  {pb.key:<9} {name:<22} straggler={label:<13} {t:7.3f} s to target ({it} updates), "
                      f"predicted {pred:.3f} s", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="optlab bench async")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=".")
    parser.add_argument("--delay", type=float, default=0.02, help="straggler's extra seconds per round")
    parser.add_argument("--max-delay", type=int, default=2)
    parser.add_argument("--problems", default="lasso,svm", help="comma-separated, some of: " + ",".join(PROBLEMS))
    parser.add_argument("--admm-irnn-size", default=None, metavar="SIZE",
                        help="admm_irnn data: small (400x2), medium (4000x8) or NxT sequences x steps, e.g. 8000x8 "
                             "(default: small with --quick, medium otherwise)")
    parser.add_argument("--admm-irnn-target", type=float, default=None, metavar="GAP",
                        help="admm_irnn target (F-F*)/|F*| (default: 3e-2 for small, 0.65 otherwise)")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.problems.split(",") if k.strip()]
    unknown = [k for k in keys if k not in PROBLEMS]
    if unknown or not keys:
        parser.error(f"--problems: unknown {unknown or args.problems!r}; use some of {', '.join(PROBLEMS)}")
    if args.admm_irnn_size is not None:
        try:
            admm_irnn_size(args.admm_irnn_size)
        except ValueError as e:
            parser.error(f"--admm-irnn-size: {e}")
    if args.admm_irnn_target is not None and not args.admm_irnn_target > 0:
        parser.error(f"--admm-irnn-target: must be > 0, got {args.admm_irnn_target}")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:   # before JAX starts: W simulated devices for Sync
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=4".strip()

    import jax

    jax.config.update("jax_enable_x64", True)
    from optlab.trace import format_table, write_table

    rows = []
    with ray_session():
        for key in keys:
            pb = (admm_irnn_problem(args.quick, args.admm_irnn_size, args.admm_irnn_target) if key == "admm_irnn"
                  else PROBLEMS[key](args.quick))
            rows += bench_problem(pb, args)
    print(format_table(rows))
    print("time_to_target_s: real wall seconds (compile, start-up and metrics excluded); predicted_s: SimulatedAsync/"
          "Sync with the measured seconds per round (communication not modelled); speedup: RayAsync(W, 0) / "
          "RayAsync(W, D) time, real and predicted; server_us: server time per update (median, waiting excluded); "
          "allreduce_us: JAX psum of a d-vector (Sync rows), per-update wall time beyond the slowest worker's round "
          "(RayAsync(W, 0) rows).")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows, out / "bench_async.csv")
    print(f"wrote {out / 'bench_async.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
