"""Parallel executors: convergence vs iteration and vs *simulated* wall clock for 1, 2, 4, 8 workers, and real
asynchronous workers on Ray (measured wall clock) for proximal gradient and SVM ADMM.

Every method of :data:`METHODS` is run with ``Sync(W)`` and ``Async(W, max_delay=3)`` (bounded staleness, partial
barrier of one arrival) for uniform worker speeds and for a straggler (worker 0 four times slower), and the relative
gap ``(F − F*)/|F*|`` is recorded against server iterations and against the simulated clock (``sim_time``). The
methods (full run; quick run in brackets):

* ``proxgrad`` — data-parallel proximal gradient (``ol.ista(..., parallel=...)``) for ℓ1-logistic regression,
  ``λ = 1e-2``, on a seeded synthetic set 20,000 × 200 (4,000 × 100), step ``1/L``; F* from 20,000 serial FISTA
  iterations. (``mushrooms`` was tried first and dropped: separable, still at a 6.2e-4 gap after 3,000 ISTA
  iterations for every executor.) One time unit = one full gradient on a speed-1 worker; a worker needs
  ``speed · rows_w / n``. Worst-case analyses of delayed proximal gradient ask for a step that shrinks with the delay
  (``1/(L(1 + 2D))``, used in the tests); here ``1/L`` converged for ``D = 3``, while ``1/(4L)`` cost Async its lead
  (quick problem, straggler: simulated time to a 1e-4 gap 11.25 with ``1/L``, 27.0 with ``1/(2L)``, 56.25 with
  ``1/(4L)``, against 56 for Sync(4)).
* ``svm_admm`` — global-consensus ADMM (``ol.svm_admm(..., parallel=...)``, :mod:`optlab.solvers.svm_consensus`)
  for the ℓ1-penalised hinge-loss SVM, ``λ = 1e-2``, on standardised synthetic data 8,000 × 40 (2,000 × 20) with 5 %
  flipped labels, 600 (300) iterations; F* is the exact LP optimum (HiGHS). One time unit = one pass over the data
  on a speed-1 worker.
* ``spdhg`` — stochastic PDHG (``ol.spdhg(..., parallel=...)``: stratified sampling, one block per worker) for
  graph-guided (first-difference) logistic regression with ``μ = 1e-2``, ``γ = 1e-2``, variant ``sc_nonuniform``,
  4 samples per worker per iteration, 20 (10) epochs, on synthetic data 16,000 × 40 (4,000 × 20); F* by CVXPY. Every
  harness step is one iteration (``segments`` = iterations per epoch, 10 log points per epoch), under Sync and Async
  alike, so that Async's gradients may be stale (a multi-iteration step's gradients are barriers: Async would be
  Sync). One time unit = one worker's mini-batch gradient (4 rows) on a speed-1 worker
  (:class:`optlab.algorithm.MiniBatchWork`), so ``Sync(1)`` costs 1 per iteration and W workers process W times more
  samples per unit time (and do W times fewer iterations per epoch); the iteration axis counts server iterations.
* ``admm_irnn`` — data-parallel ADMMiRNN (``ol.admm_irnn(..., parallel=...)``; asynchronous semantics in
  :mod:`optlab.solvers.admm_irnn`), tanh RNN with 16 (8) hidden units on seeded synthetic sequence
  classification, 4,000 (400) sequences of 10 (6) steps × 3 features, label = sign of ``Σ_t sin(x_t0) + x_T1/2``,
  200 (40) iterations (quick: Jacobi sweep, which compiles faster, and no test set). Nonconvex: the metric is the
  forward-pass training loss (target 0.35); the full run's traces also hold the test accuracy on 2,000 held-out
  sequences. One time unit = one serial sweep over the data on a speed-1 worker.

Simulated clock: Sync waits for the slowest worker every round, Async follows the model of :mod:`optlab.parallel`.
These are simulated times, not measurements, and every figure says so. Workers: 1, 2, 4, 8 (quick: 1, 4), limited
to the devices JAX sees (``optlab`` sets 8 simulated CPU devices when the CLI starts on a CPU-only machine, unless
``XLA_FLAGS`` already sets a count).

A new method is one more :class:`Method` in :data:`METHODS`: ``setup(quick, seed)`` builds the problem once and
returns a context dict (with ``"data"``, a description), ``run(ctx, executor, quick)`` runs one executor and returns
its :class:`optlab.Trace`, which must contain ``sim_time`` and the metric named by ``metric`` (lower is better;
default ``rel_gap``); ``target`` is the level at which the speed-up is read off. A method with ``units(ctx, W)`` (the
rows the executor splits: data rows, or blocks) also gets the real-async rows; its ``run`` then takes
``iter_scale=k`` (k times the iterations, rounded; log points as for k = 1).

**Real asynchronous workers (Ray).** For the methods with ``units`` (proxgrad and svm_admm, the problems of the
asynchronous claims) the same solvers also run on real worker processes, :class:`optlab.parallel.RayAsync` (one Ray
actor per worker, :mod:`optlab.ray_executor`), for W = 2, 4 (quick: 2): ``RayAsync(W, 0)`` (the synchronous method;
its iterates are Sync's to rounding) and ``RayAsync(W, D=3)`` (any single arrival, as the simulated Async; it runs W
times the server updates, since an update then holds about 1/W of a round's work; quick: 2/3 of these iterations,
which still reach both targets), first with equal workers, then with worker 0 a real straggler: it sleeps ``3 ×``
the median compute round of the equal-speed ``RayAsync(W, D=3)`` run in every round, so its rounds take about 4 times
the others' (the simulated ``"straggler"``; a round of ``RayAsync(W, 0)`` also holds the all-reduce, the wait for the
others, so it is not used). Recorded: real wall seconds per server update (median), to the target and in all (worker
start-up, compilation and metric evaluation excluded: ``defer_metrics``), the final gap, each worker's median round
(``round_ms``), the 1-minute load average; beside every real run (``clock="real"``) the simulated executor's
prediction for the same speeds (``clock="simulated"``: Sync/SimulatedAsync with each worker's measured compute
seconds per round in the ``RayAsync(W, D=3)`` run of that speed model,
:func:`optlab.experiments.bench_async.simulated_like`; communication is not modelled, so real minus predicted is
roughly its cost). These are
measurements on the machine that ran them; real and simulated times are in separate columns of the figure. Ray starts
locally (:func:`optlab.experiments.bench_async.ray_session`) and is shut down at the end; without Ray installed
(``pip install "optlab[distributed]"``) these rows are skipped with a message. ``run(..., ray=False)`` skips them,
``run(..., simulated=False)`` runs only them.

Writes ``parallel_traces.csv`` (the metric and ``sim_time`` at 50 log-spaced points per run), ``parallel_summary.csv``,
``parallel_convergence.png``, ``parallel_speedup.png``, and with Ray ``parallel_ray.csv`` (the summary, column
``clock``), ``parallel_ray_traces.csv`` (the gap against real or simulated seconds, column ``clock``) and
``parallel_ray.png``; ``run(out, methods=[keys], prefix=...)`` runs some methods only and names the files
``{prefix}_traces.csv`` etc.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import numpy as np

from optlab.experiments import register
from optlab.experiments._progress import expect, step

MAX_DELAY = 3
SPEEDS = ("uniform", "straggler")


@dataclasses.dataclass(frozen=True)
class Method:
    key: str
    title: str
    setup: Callable[[bool, int], dict]
    run: Callable        # (ctx, executor, quick) -> Trace with "sim_time" and `metric`
    target: float        # speed-up read off where `metric` first falls to this level
    metric: str = "rel_gap"
    metric_label: str = "(F − F*)/|F*|"
    time_unit: str = "time units"
    units: Callable | None = None   # (ctx, W) -> rows the executor splits (data rows or blocks); set: real-async rows


def _rel_gap(trace, f_star):
    trace.metrics["rel_gap"] = np.maximum(trace["objective"] - f_star, 0) / abs(f_star)
    return trace


# ------------------------------------------------------------------------------------------- proximal gradient
def _proxgrad_setup(quick, seed):
    import optlab as ol

    n, d = (4000, 100) if quick else (20000, 200)
    ds = ol.data.make_sparse_classification(n=n, d=d, k=10, noise=1.0, seed=seed)
    f = ol.losses.logistic_objective(np.asarray(ds.X), np.asarray(ds.y))
    g = ol.prox.l1(1e-2)
    x0 = np.zeros(d)
    ref = ol.fista(f, g, x0, maxiter=3000 if quick else 20000, tol=0.0, progress=False)
    return {"data": f"synthetic {n}x{d}", "f": f, "g": g, "x0": x0, "L": f.lipschitz(), "n": n,
            "f_star": float(np.min(ref.trace["objective"]))}


def _proxgrad_run(ctx, executor, quick, iter_scale=1):
    import optlab as ol

    base = 300 if quick else 3000
    res = ol.ista(ctx["f"], ctx["g"], ctx["x0"], step=1 / ctx["L"], maxiter=round(base * iter_scale), tol=0.0,
                  log_every=max(1, base // 150), progress=False, parallel=executor)
    return _rel_gap(res.trace, ctx["f_star"])


# ------------------------------------------------------------------------------------------------ SVM ADMM
def _svm_setup(quick, seed):
    from optlab.references import svm_l1_hinge_lp

    n, d = (2000, 20) if quick else (8000, 40)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d)
    X = (X - X.mean(0)) / X.std(0)
    y = np.where(X[:, :4] @ np.array([1.0, -1.0, 0.5, 2.0]) + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    y[rng.random(n) < 0.05] *= -1
    lam = 1e-2
    f_star, _, _ = svm_l1_hinge_lp(X, y, lam)
    return {"data": f"synthetic {n}x{d}", "X": X, "y": y, "lam": lam, "f_star": f_star}


def _svm_run(ctx, executor, quick, iter_scale=1):
    import optlab as ol

    base = 300 if quick else 600
    res = ol.svm_admm(ctx["X"], ctx["y"], ol.prox.l1(ctx["lam"]), maxiter=round(base * iter_scale), tol=0.0,
                      log_every=max(1, base // 150), progress=False, parallel=executor)
    return _rel_gap(res.trace, ctx["f_star"])


# ---------------------------------------------------------------------------------------------------- SPDHG
def _spdhg_setup(quick, seed):
    import optlab as ol
    from optlab.references import structured_optimum

    n, d = (4000, 20) if quick else (16000, 40)
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    w = np.repeat(rng.normal(size=d // 5), 5) / np.sqrt(d)
    y = np.where(A @ w + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    F = ol.operators.first_difference(d)
    mu, gamma = 1e-2, 1e-2
    f_star, _ = structured_optimum(A, y, F, mu, gamma)
    return {"data": f"synthetic {n}x{d}", "A": A, "y": y, "F": F, "mu": mu, "gamma": gamma, "f_star": f_star}


SPDHG_BATCH = 4
SPDHG_LOGS_PER_EPOCH = 10


def _spdhg_run(ctx, executor, quick):
    import optlab as ol

    # one iteration per harness step under every executor (segments = iterations per epoch): a multi-iteration step's
    # gradients are barriers, which would make SimulatedAsync the Sync run; log points stay 10 per epoch
    per_epoch = -(-ctx["A"].shape[0] // executor.n_workers) // SPDHG_BATCH     # one block per worker
    res = ol.spdhg(ctx["A"], ctx["y"], ctx["F"], ctx["mu"], gamma=ctx["gamma"], variant="sc_nonuniform",
                   batch_size=SPDHG_BATCH, epochs=10 if quick else 20, segments=per_epoch, seed=0, progress=False,
                   log_every=max(1, per_epoch // SPDHG_LOGS_PER_EPOCH), parallel=executor)
    if res.trace.meta["iters_per_epoch"] != per_epoch:
        raise RuntimeError(f"spdhg ran {res.trace.meta['iters_per_epoch']} iterations per epoch, expected {per_epoch}")
    return _rel_gap(res.trace, ctx["f_star"])      # harness steps are server iterations


# ------------------------------------------------------------------------------------------------ ADMMiRNN
def _rnn_setup(quick, seed):
    n, T = (400, 6) if quick else (4000, 10)
    rng = np.random.default_rng(seed)

    def draw(m):   # sequence classification: the sign of sum_t sin(x_t0) + x_T1 / 2
        X = rng.normal(size=(m, T, 3))
        return X, (np.sin(X[:, :, 0]).sum(1) + 0.5 * X[:, -1, 1] > 0).astype(int)

    (X, y), (Xt, yt) = draw(n), draw(n // 2)
    return {"data": f"synthetic sequences {n}x{T}x3", "X": X, "y": y, "X_test": Xt, "y_test": yt}


def _rnn_run(ctx, executor, quick):
    import optlab as ol

    iters = 40 if quick else 200
    # quick: the Jacobi sweep (compiles in about half the time of the default Gauss-Seidel-over-time sweep), no test set
    test = {} if quick else {"X_test": ctx["X_test"], "y_test": ctx["y_test"]}
    res = ol.admm_irnn(ctx["X"], ctx["y"], hidden=8 if quick else 16, iters=iters, **test,
                       sweep="jacobi" if quick else "sequential", log_every=max(1, iters // 50), progress=False,
                       parallel=executor)
    return res.trace


METHODS: list[Method] = [
    Method("proxgrad", "proximal gradient, ℓ1-logistic", _proxgrad_setup, _proxgrad_run, target=1e-4,
           time_unit="full gradients", units=lambda ctx, W: ctx["n"]),
    Method("svm_admm", "consensus SVM ADMM, ℓ1-hinge", _svm_setup, _svm_run, target=1e-4, time_unit="data passes",
           units=lambda ctx, W: W),          # svm_admm(parallel=...) splits W blocks of rows, one per worker
    Method("spdhg", "SPDHG, graph-guided logistic", _spdhg_setup, _spdhg_run, target=3e-3,
           time_unit="mini-batch gradients"),
    Method("admm_irnn", "ADMMiRNN, tanh RNN sequence classification", _rnn_setup, _rnn_run, target=0.35,
           metric="train_loss", metric_label="training loss (forward pass)", time_unit="sweeps"),
]


def _first_hit(trace, metric, target):
    hit = np.nonzero(trace[metric] <= target)[0]
    return (int(trace.iters[hit[0]]), float(trace["sim_time"][hit[0]])) if hit.size else (None, None)


def _executors(W, speeds):
    from optlab.parallel import Async, Sync

    configs = {f"Sync({W})": Sync(W, speeds=speeds)}
    if W > 1:
        configs[f"Async({W}, D={MAX_DELAY})"] = Async(W, max_delay=MAX_DELAY, speeds=speeds)
    return configs


# ------------------------------------------------------------------------------- real asynchronous workers (Ray)
RAY_SLOWDOWN = 4.0     # the real straggler's round takes this many times the others' (the simulated "straggler")
RAY_QUICK_ITERS = 2 / 3    # quick: the real runs do 2/3 of the simulated runs' iterations (both targets are met)


def _ray_workers(quick, n_devices):
    # the predictions run the simulated executors, which need W (simulated) devices
    return [W for W in ((2,) if quick else (2, 4)) if W <= n_devices]


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401, PLC0415 - optional (the `distributed` extra)
    except ImportError:
        print('ray is not installed (pip install "optlab[distributed]"): the real-async (RayAsync) rows are skipped')
        return False
    return True


def _ray_runs(method, ctx, W, quick):
    """The real-async runs of one method for W workers: ``RayAsync(W, 0)`` (the synchronous method) and
    ``RayAsync(W, MAX_DELAY)`` (any single arrival, as the simulated Async), first with equal workers, then with worker
    0 a real straggler: it sleeps ``(RAY_SLOWDOWN − 1) ×`` the median seconds per round of the equal-speed
    ``RayAsync(W, MAX_DELAY)`` run in every round. The worker speeds are those of the ``RayAsync(W, MAX_DELAY)`` run of
    the speed model: its rounds are compute (and sleep) only, while a round of ``RayAsync(W, 0)`` also holds the
    all-reduce, i.e. the wait for the other workers. Each real run is followed by its prediction: the simulated executor
    with those speeds (:func:`optlab.experiments.bench_async.simulated_like`; communication is not modelled). Yields
    ``(speeds, label, max_delay, delay_s, speeds_s, real_trace, predicted_trace)``; real traces hold wall seconds
    (start-up, compilation and metric evaluation excluded: ``defer_metrics``) and ``meta["load1"]``, predicted ones
    ``sim_time`` in seconds."""
    from optlab.experiments.bench_async import simulated_like
    from optlab.parallel import RayAsync

    def scale(D):   # an update on any single arrival holds about 1/W of a round's work; quick: fewer iterations
        return (1 if D == 0 else W) * (RAY_QUICK_ITERS if quick else 1)

    delay = 0.0
    for speeds in SPEEDS:
        straggler = {0: delay} if speeds == "straggler" else None
        reals = {}
        for D in (0, MAX_DELAY):
            step(f"{method.key}: {_ray_label(W, D)}, {speeds} speeds (real workers)")
            reals[D] = method.run(ctx, RayAsync(W, max_delay=D, straggler=straggler, defer_metrics=True), quick,
                                  iter_scale=scale(D))
            reals[D].meta["load1"] = os.getloadavg()[0]
        rounds = reals[MAX_DELAY].meta["round_seconds"]
        if straggler is None:
            delay = (RAY_SLOWDOWN - 1) * float(np.median(rounds))
        for D, real in reals.items():
            predicted = method.run(ctx, simulated_like(W, D, 1, rounds, method.units(ctx, W)), quick,
                                   iter_scale=scale(D))
            yield speeds, _ray_label(W, D), D, delay if straggler else 0.0, rounds, real, predicted


def _ray_label(W, D):
    return f"RayAsync({W}, {D})" if D == 0 else f"RayAsync({W}, D={D})"


def _ray_rows(method, ctx, W, quick, rows, summary, traces):
    """Run :func:`_ray_runs` and add its traces (``rows``, long format, column ``clock``), its summary rows (one
    ``clock="real"`` row per run and beside it the ``clock="simulated"`` prediction) and its traces (``traces[(method,
    speeds, label, clock)]``)."""
    import optlab as ol

    base = {}
    for speeds, label, D, delay, rounds, real, predicted in _ray_runs(method, ctx, W, quick):
        clocks = {"real": real,
                  "simulated": ol.Trace(predicted.iters, predicted["sim_time"],
                                        {method.metric: predicted[method.metric]}, predicted.meta)}
        for clock, tr in clocks.items():
            traces[(method.key, speeds, label, clock)] = tr
            small = ol.Trace(tr.iters, tr.times, {method.metric: tr[method.metric]}, tr.meta)
            rows += small.thinned(50).long(solver=label, dataset=ctx["data"], method=method.key, speeds=speeds,
                                           workers=W, clock=clock)
            hit = np.nonzero(tr[method.metric] <= method.target)[0]
            t = float(tr.times[hit[0]]) if hit.size else None
            if D == 0:
                base[(speeds, clock)] = t
            ref = base.get((speeds, clock))
            per_update = float(np.median(tr.meta["update_times"])) if clock == "real" else \
                float(tr.times[-1] / max(int(tr.iters[-1]), 1))
            summary.append({
                "method": method.key, "speeds": speeds, "executor": label, "clock": clock, "workers": W,
                "max_delay": D, "straggler_ms": f"{delay * 1e3:.3g}",
                "round_ms": "/".join(f"{1e3 * r:.3g}" for r in (real.meta["round_seconds"] if clock == "real"
                                                                else rounds)),
                "iterations": int(tr.iters[-1]),
                "s_per_update": f"{per_update:.3g}", "target": f"{method.target:g}",
                "iters_to_target": "" if t is None else int(tr.iters[hit[0]]),
                "time_to_target_s": "" if t is None else f"{t:.4g}",
                f"final_{method.metric}": f"{tr[method.metric][-1]:.2e}",
                "speedup_vs_D0": f"{ref / t:.2f}" if t and ref else "",
                "load1": f"{real.meta['load1']:.2f}" if clock == "real" else ""})


@register("parallel", "Sync vs Async data-parallel proximal gradient, SVM ADMM, SPDHG and ADMMiRNN: iterations and "
                      "simulated time, 1-8 workers; real asynchronous workers on Ray (wall time)")
def run(out: Path, quick: bool = False, seed: int = 0, methods=None, prefix: str = "parallel", simulated: bool = True,
        ray: bool | None = None) -> dict:
    """``simulated=False``: only the real-async (Ray) rows; ``ray``: ``None`` runs them when Ray is installed,
    ``False`` never."""
    import contextlib

    import jax

    jax.config.update("jax_enable_x64", True)
    import optlab as ol
    from optlab.trace import write_long_csv, write_table

    workers = [w for w in ((1, 4) if quick else (1, 2, 4, 8)) if w <= len(jax.devices())]
    chosen = [m for m in METHODS if methods is None or m.key in methods]
    ray_methods = [m for m in chosen if m.units is not None] if ray is not False else []
    ray_workers = _ray_workers(quick, len(jax.devices())) if ray_methods else []
    if not (ray_workers and _ray_available()):
        ray_methods = []
    rows, summary, traces, data, ctxs = [], [], {}, {}, {}
    ray_rows, ray_summary, ray_traces = [], [], {}
    # per method: the set-up, then one run per executor (one worker runs once, not once per speed model); Ray: four
    # real runs per method and worker count
    expect(len(chosen) * (1 + simulated * sum(len(_executors(W, sp)) for sp in SPEEDS for W in workers
                                              if W > 1 or sp == SPEEDS[0]))
           + bool(ray_methods) + 2 * len(SPEEDS) * len(ray_methods) * len(ray_workers))
    for method in chosen:
        step(f"{method.key}: problem set-up")
        ctx = ctxs[method.key] = method.setup(quick, seed)
        data[method.key] = ctx["data"]
        for speeds in SPEEDS if simulated else ():
            base_time = None
            for W in workers:
                for label, executor in _executors(W, speeds).items():
                    if W == 1 and speeds != SPEEDS[0]:      # one worker: the speed model changes nothing
                        tr = traces[(method.key, SPEEDS[0], label)].thinned(10**9)
                    else:
                        step(f"{method.key}: {label}, {speeds} speeds")
                        tr = method.run(ctx, executor, quick)
                    tr.meta.update({"label": label, "dataset": ctx["data"], "speeds": speeds, "workers": W,
                                    "method": method.key})
                    traces[(method.key, speeds, label)] = tr
                    small = ol.Trace(tr.iters, tr.times, {k: tr[k] for k in (method.metric, "sim_time")}, tr.meta)
                    rows += small.thinned(50).long(solver=label, dataset=ctx["data"], method=method.key, speeds=speeds,
                                                   workers=W)
                    it, t = _first_hit(tr, method.metric, method.target)
                    if label == "Sync(1)":
                        base_time = t
                    summary.append({
                        "method": method.key, "speeds": speeds, "executor": label, "workers": W,
                        "iterations": int(tr.iters[-1]), f"final_{method.metric}": f"{tr[method.metric][-1]:.2e}",
                        "target": f"{method.target:g}", "iters_to_target": "" if it is None else it,
                        "sim_time_to_target": "" if t is None else f"{t:.4g}",
                        "speedup": f"{base_time / t:.2f}" if t and base_time else ""})
    if ray_methods:
        from optlab.experiments.bench_async import ray_session

        import time

        step("Ray: start-up")          # one local Ray for every real run; its worker processes stop at the end
        t_ray = time.perf_counter()
        with ray_session():
            for method in ray_methods:
                for W in ray_workers:
                    _ray_rows(method, ctxs[method.key], W, quick, ray_rows, ray_summary, ray_traces)
        t_ray = time.perf_counter() - t_ray

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, table, ray_table = [], "", ""
    if simulated:
        files = [out / f"{prefix}_{name}" for name in ("traces.csv", "summary.csv", "convergence.png", "speedup.png")]
        write_long_csv(rows, files[0])
        table = write_table(summary, files[1])
        _plot_convergence(ol, chosen, traces, data, files[2])
        _plot_speedup(ol, chosen, summary, workers, files[3])
        print(f"workers: {workers}; simulated clocks; data: " + "; ".join(f"{k}: {v}" for k, v in data.items()))
        print(table)
    if ray_methods:
        ray_files = [out / f"{prefix}_{name}" for name in ("ray.csv", "ray_traces.csv", "ray.png")]
        ray_table = write_table(ray_summary, ray_files[0])
        write_long_csv(ray_rows, ray_files[1])
        _plot_ray(ol, ray_methods, ray_traces, data, ray_workers, ray_files[2])
        files += ray_files
        print(f"real asynchronous workers (RayAsync, one process each) on this machine ({os.cpu_count()} CPUs): "
              "clock=real rows are measured wall seconds (worker start-up, compilation and metric evaluation "
              "excluded); clock=simulated rows are the simulated executor's prediction with the worker speeds (round_ms) "
              "measured in the RayAsync(W, D=3) run of the same speed model (communication not modelled); round_ms: "
              "median seconds per round of each worker (a RayAsync(W, 0) round holds the all-reduce); load1: 1-minute "
              "load average after the run")
        print(ray_table)
        print(f"Ray part: {t_ray:.0f} s of wall time (Ray and worker start-up, compilation and predictions included)")
    return {"files": [str(p) for p in files], "table": table, "traces": traces, "summary": summary,
            "ray_table": ray_table, "ray_traces": ray_traces, "ray_summary": ray_summary}


def _plot_convergence(ol, methods, traces, data, path):
    fig, axes = ol.plot.grid(4 * len(methods), ncols=4)
    for r, method in enumerate(methods):
        for c, speeds in enumerate(SPEEDS):
            runs = {lab: tr for (key, sp, lab), tr in traces.items() if key == method.key and sp == speeds}
            ax_it, ax_t = axes[4 * r + 2 * c], axes[4 * r + 2 * c + 1]
            ol.plot.convergence(runs, method.metric, x="iter", ax=ax_it, ylabel=method.metric_label,
                                title=f"{method.key}: {speeds} speeds ({data[method.key]})")
            for lab, tr in runs.items():
                keep = tr[method.metric] > 0
                ax_t.semilogy(tr["sim_time"][keep], tr[method.metric][keep], label=lab, **ol.plot.style(lab))
            ax_t.set_xlabel(f"SIMULATED time [{method.time_unit}]")
            ax_t.set_ylabel(method.metric_label)
            ax_t.set_title(f"{method.key}: {speeds} speeds (simulated clock)")
            ax_t.grid(True, which="both", alpha=0.3)
            ol.plot.legend(ax_t, fontsize="x-small")
    ol.plot.save(fig, path)


def _plot_speedup(ol, methods, summary, workers, path):
    fig, axes = ol.plot.grid(2 * len(methods), ncols=2)
    for r, method in enumerate(methods):
        for ax, speeds in zip(axes[2 * r: 2 * r + 2], SPEEDS):
            for kind, style in (("Sync", "o-"), ("Async", "s--")):
                pts = [(row["workers"], float(row["speedup"])) for row in summary
                       if row["method"] == method.key and row["speeds"] == speeds
                       and row["executor"].startswith(kind) and row["speedup"]]
                if kind == "Async":     # W = 1 has no asynchrony: Async starts from the same point as Sync
                    pts = [(row["workers"], float(row["speedup"])) for row in summary
                           if row["method"] == method.key and row["speeds"] == speeds
                           and row["executor"] == "Sync(1)" and row["speedup"]] + pts
                if pts:
                    ws, ss = zip(*pts)
                    ax.plot(ws, ss, style, label=kind)
            ax.plot(workers, workers, "k:", label="linear")
            ax.set_xlabel("workers")
            ax.set_ylabel(f"speed-up to {method.target:g} (simulated time)")
            ax.set_title(f"{method.key}: {speeds} speeds")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="small")
    ol.plot.save(fig, path)


def _plot_ray(ol, methods, traces, data, workers, path):
    """Per method and worker count: the gap against REAL wall time (measured) and beside it against the simulated
    prediction's time (same speeds), for equal workers and one straggler; the pair of panels shares its x range."""
    panels = [(m, W, sp) for m in methods for W in workers for sp in SPEEDS]
    fig, axes = ol.plot.grid(2 * len(panels), ncols=4)
    for i, (method, W, speeds) in enumerate(panels):
        pair = axes[2 * i: 2 * i + 2]
        for ax, clock in zip(pair, ("real", "simulated")):
            for (key, sp, lab, ck), tr in traces.items():
                if key == method.key and sp == speeds and ck == clock and lab.startswith(f"RayAsync({W},"):
                    keep = tr[method.metric] > 0
                    synchronous = lab.endswith(", 0)")
                    ax.semilogy(tr.times[keep], tr[method.metric][keep], label=lab, color="C0" if synchronous else "C1",
                                ls="-" if synchronous else "--")
            ax.axhline(method.target, color="k", lw=0.6, ls=":")
            ax.set_xlabel("REAL wall time [s] (measured)" if clock == "real" else
                          "SIMULATED time [s] (measured speeds, no communication)")
            ax.set_ylabel(method.metric_label)
            ax.set_title(f"{method.key}: {W} workers, {speeds} ({clock} clock)", fontsize="small")
            ax.grid(True, which="both", alpha=0.3)
            ol.plot.legend(ax, fontsize="x-small")
        right = max(ax.get_xlim()[1] for ax in pair)
        for ax in pair:
            ax.set_xlim(0, right)
    ol.plot.save(fig, path)
