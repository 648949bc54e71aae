"""Benchmark: real asynchronous workers (``RayAsync``) against synchronous ones — wall-clock time to a target.

``optlab bench async [--quick] [--out DIR] [--delay S] [--max-delay D]`` (needs ``pip install "optlab[distributed]"``).

Problem: Lasso ``(1/(2n))‖Ax − b‖² + λ‖x‖₁``, seeded Gaussian A with a common factor (n×d = 20000×200; 8000×100 with
``--quick``; one full gradient takes milliseconds), 10 true nonzeros, λ = 0.05·‖Aᵀb‖∞/n; F* from a long serial FISTA
run. Method: proximal gradient (ISTA, step 1/L) through :func:`optlab.ista` with ``parallel=``:

* ``Sync(W)``: JAX's in-process SPMD executor over W simulated CPU devices (it cannot be slowed for real: with a
  straggler its row is the lower bound "measured time + delay × updates", since every round waits for the straggler);
* ``RayAsync(W, 0)``: the synchronous method on W Ray worker processes (every update waits for every worker);
* ``RayAsync(W, D, m)``: real asynchronous workers (``max_delay=D``, ``min_arrivals=m``): ``m = W − 1`` (the server
  waits for all but one worker, so only one part of the gradient is stale) at step 1/L, and ``m = 1`` at the
  delayed-gradient step 1/(L(1 + 2D)) (with every part stale, 1/L diverged here for W = 4: gap 8e124 after 2000
  updates, and the simulator predicted it).

Each configuration runs without and with one real straggler (worker 0 sleeps ``--delay`` seconds in every round:
``RayAsync(straggler={0: delay})``). Reported: wall seconds to ``(F − F*)/|F*| ≤ target`` (log points every 5
updates; worker start-up and compilation excluded; metrics evaluated after the run from stored server states,
``defer_metrics=True``), the final relative gap, server updates, the simulated executor's prediction for the same
speeds (``SimulatedAsync``/``Sync`` with ``speeds`` = the measured seconds per round of each worker, compute and
straggler delay; communication is not modelled) and the speed-up of the asynchronous run over the synchronous one,
real and predicted. Overheads: the server's time per update (µs, waiting excluded) of ``RayAsync``, the per-update
wall time of ``RayAsync(W, 0)`` beyond its slowest worker's round (all-reduce through Ray), and JAX's ``psum`` of a
d-vector over W simulated devices (µs). Consensus SVM ADMM and AP-ADMMiRNN are not in this benchmark: their solvers
are not on the one-executor design in this branch. Writes ``bench_async.csv``.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def problem(n, d, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) + 0.5 * rng.normal(size=(n, 1))
    w = np.zeros(d)
    w[:10] = rng.normal(size=10) * 2
    b = A @ w + 0.1 * rng.normal(size=n)
    return A, b, 0.05 * np.max(np.abs(A.T @ b)) / n


def _time_to(trace, f_star, target):
    gap = (np.asarray(trace["objective"]) - f_star) / abs(f_star)
    hit = np.flatnonzero(gap <= target)
    return (float(trace.times[hit[0]]), int(trace.iters[hit[0]])) if hit.size else (float("nan"), -1)


def _sim_time_to(trace, f_star, target):
    gap = (np.asarray(trace["objective"]) - f_star) / abs(f_star)
    hit = np.flatnonzero(gap <= target)
    return float(trace["sim_time"][hit[0]]) if hit.size else float("nan")


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="optlab bench async")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=".")
    parser.add_argument("--delay", type=float, default=0.02, help="straggler's extra seconds per round")
    parser.add_argument("--max-delay", type=int, default=2)
    parser.add_argument("--target", type=float, default=1e-6, help="relative gap (F - F*)/|F*| to reach")
    args = parser.parse_args(argv)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:   # before JAX starts: W simulated devices for Sync
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=4".strip()

    import jax

    jax.config.update("jax_enable_x64", True)
    import ray

    import optlab as ol
    from optlab.parallel import RayAsync, SimulatedAsync, Sync
    from optlab.ray_executor import shutdown_workers
    from optlab.trace import format_table, write_table

    n, d = (8000, 100) if args.quick else (20000, 200)
    maxiter, every = (450, 5) if args.quick else (500, 5)   # synchronous runs need 200 (375) updates
    async_maxiter = 4 * maxiter
    A, b, lam = problem(n, d)
    f = ol.losses.least_squares_objective(A, b)
    g = ol.prox.l1(lam)
    x0 = np.zeros(d)
    step = 1.0 / float(f.lipschitz())
    f_star = ol.fista(f, g, x0, maxiter=20000, tol=1e-15, progress=False).trace["objective"].min()
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
    load = os.getloadavg()
    print(f"Lasso n×d = {n}×{d}, ISTA step 1/L, target (F−F*)/|F*| ≤ {args.target:g}, straggler +{args.delay * 1e3:g} ms "
          f"per round on worker 0; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")

    def run(parallel, maxiter=maxiter, max_time=None, step=step):
        return ol.ista(f, g, x0, step=step, maxiter=maxiter, tol=0.0, log_every=every, progress=False,
                       max_time=max_time, parallel=parallel)

    def predict(W, D, m, round_seconds, step):
        # the simulator's τ_w is per full pass; a worker's round covers its 1/W of the rows
        per = -(-n // W)
        tau = np.asarray(round_seconds) * n / per
        sim = Sync(W, speeds=tau) if D == 0 else SimulatedAsync(W, max_delay=D, min_arrivals=m, speeds=tau)
        return _sim_time_to(run(sim, maxiter if D == 0 else async_maxiter, step=step).trace, f_star, args.target)

    rows = []
    psum = {W: _psum_us(W, d) for W in (1, 2, 4)}
    try:
        for straggling in (False, True):
            for W in ((2, 4) if straggling else (1, 2, 4)):
                delay = {0: args.delay} if straggling else None
                label = "one straggler" if delay else "none"
                res = run(Sync(W))
                t, it = _time_to(res.trace, f_star, args.target)
                if delay:
                    # JAX's Sync cannot be slowed for real; every round waits for the straggler: its time plus the
                    # delay once per update is a lower bound on a real synchronous run with that straggler
                    t = t + it * args.delay
                rows.append({"straggler": label if W > 1 else "-", "W": W,
                             "executor": f"Sync({W}) JAX" + (" + delay bound" if delay else ""), "step_L": "1",
                             "time_to_target_s": round(t, 3), "updates_to_target": it,
                             "final_rel_gap": f"{(res.trace.last('objective') - f_star) / abs(f_star):.1e}",
                             "updates": res.n_iter, "predicted_s": float("nan"), "speedup": float("nan"),
                             "predicted_speedup": float("nan"), "server_us": float("nan"),
                             "allreduce_us": round(psum[W], 1)})
                sync_t = sync_pred = None
                D = args.max_delay
                # (max_delay, min_arrivals, step): the synchronous method; waiting for all but one worker (only
                # the straggler's part is stale) at step 1/L; any single arrival at the delayed-gradient step
                # 1/(L(1 + 2·max_delay)) (Agarwal & Duchi 2011: with every part stale, 1/L can diverge)
                configs = [(0, W, step)]
                if W > 1:
                    configs += [(D, W - 1, step), (D, 1, step / (1 + 2 * D))] if W > 2 else [(D, 1, step)]
                for D_run, m, s in configs:
                    limit = None if D_run == 0 or not np.isfinite(sync_t) else 1.5 * sync_t
                    res = run(RayAsync(W, max_delay=D_run, min_arrivals=m, straggler=delay, defer_metrics=True),
                              maxiter if D_run == 0 else async_maxiter, limit, s)
                    meta = res.trace.meta
                    t, it = _time_to(res.trace, f_star, args.target)
                    pred = predict(W, D_run, m, meta["round_seconds"], s)
                    overhead = float(np.median(meta["update_times"]) - max(meta["round_seconds"])) * 1e6
                    if D_run == 0:
                        sync_t, sync_pred = t, pred
                    name = f"RayAsync({W}, {D_run})" if D_run == 0 else f"RayAsync({W}, {D_run}, m={m})"
                    rows.append({"straggler": label if W > 1 else "-", "W": W, "executor": name,
                                 "step_L": f"1/{round(step / s)}" if s != step else "1",
                                 "time_to_target_s": round(t, 3), "updates_to_target": it,
                                 "final_rel_gap": f"{(res.trace.last('objective') - f_star) / abs(f_star):.1e}",
                                 "updates": res.n_iter, "predicted_s": round(pred, 3),
                                 "speedup": round(sync_t / t, 2) if D_run else float("nan"),
                                 "predicted_speedup": round(sync_pred / pred, 2) if D_run else float("nan"),
                                 "server_us": round(meta["server_overhead_us"], 1),
                                 "allreduce_us": round(overhead, 1) if D_run == 0 else float("nan")})
                    print(f"  {name:<22} straggler={label:<13} {t:7.3f} s to target ({it} updates), "
                          f"predicted {pred:.3f} s", flush=True)
    finally:
        shutdown_workers()
        if started:
            ray.shutdown()
    print(format_table(rows))
    print("time_to_target_s: real wall seconds (compile, start-up and metrics excluded); predicted_s: SimulatedAsync/"
          "Sync with the measured seconds per round (communication not modelled); speedup: RayAsync(W, 0) / "
          "RayAsync(W, D) time, real and predicted; server_us: server time per update (median, waiting excluded); "
          "allreduce_us: JAX psum of a d-vector (Sync rows), per-update wall time beyond the slowest worker's round "
          "(RayAsync(W, 0) rows). Consensus SVM ADMM / AP-ADMMiRNN: not on the one-executor design in this branch.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows, out / "bench_async.csv")
    print(f"wrote {out / 'bench_async.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
