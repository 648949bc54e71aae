"""RayAsync: real asynchronous worker processes (optlab/ray_executor.py).

Registry-driven: every data-parallel solver under ``RayAsync(2, max_delay=0)`` (the synchronous method, run by two
worker processes) gives the serial iterates to rounding (float64). Then faults (a worker killed by its PID mid-run is
restarted and the run reaches the target; a worker that raises returns its traceback and an uncorrupted server
state), the straggler knob, checkpoint/resume, and bad input. Ray is started once for the module with 2 CPUs.
"""
import os
import re
import signal
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ray = pytest.importorskip("ray")

import optlab as ol  # noqa: E402
from optlab import row_risk  # noqa: E402
from optlab.algorithm import Algorithm  # noqa: E402
from optlab.harness import solve  # noqa: E402
from optlab.parallel import RayAsync  # noqa: E402
from optlab.ray_executor import WorkerError, running_worker_pids, shutdown_workers  # noqa: E402
from optlab.solvers.baselines import proxgrad  # noqa: E402
from optlab.solvers.registry import data_parallel  # noqa: E402

CASES = data_parallel()


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    shutdown_workers()
    if started:
        ray.shutdown()


def flat(params) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in jax.tree.leaves(params)])


# The stochastic family (spdhg, spdpeg, stochastic ADMM baselines) samples in row blocks: ``n_blocks`` defaults to
# the executor's worker count and a run draws the samples of the serial run with the same ``n_blocks``
# (optlab/solvers/_stochastic.py). The registry's serial reference (``serial_kwargs``) fixes ``n_blocks`` for its
# Sync(4) check, so RayAsync(2) runs with the same ``serial_kwargs`` (two whole blocks per worker process); the
# default (``n_blocks`` = 2 workers) and the one-iteration-per-step segmentation are checked below.
STOCHASTIC = sorted(n for n in CASES if "n_blocks" in CASES[n].parallel.serial_kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_synchronous_ray_equals_serial(name, built):
    spec, case = CASES[name].parallel, built(name)
    kw = dict(maxiter=spec.iters, tol=0.0, progress=False, **spec.serial_kwargs)
    serial = case.solve(**kw)
    real = case.solve(**kw, parallel=RayAsync(2, max_delay=0))
    assert real.n_iter == serial.n_iter == spec.iters
    np.testing.assert_allclose(flat(real.params), flat(serial.params), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(real.trace[case.objective], serial.trace[case.objective], rtol=1e-9, atol=1e-12)
    meta = real.trace.meta
    assert meta["staleness_hist"] == {"0": 2 * spec.iters}      # every contribution fresh
    assert [len(d) for d in meta["deliveries"]] == [spec.iters, spec.iters]
    assert len(meta["update_times"]) == spec.iters and all(t > 0 for t in meta["update_times"])


@pytest.mark.parametrize("name", STOCHASTIC)
def test_synchronous_ray_one_iteration_per_step_equals_serial(name, built):
    """``async_kwargs`` make every harness step one stochastic iteration (``segments`` = iterations per epoch): its
    reduces are at the top level of the step, not in a segment's loop; still the serial samples and iterates."""
    spec, case = CASES[name].parallel, built(name)
    kw = dict(maxiter=spec.iters, tol=0.0, progress=False, **spec.serial_kwargs, **spec.async_kwargs)
    serial = case.solve(**kw)
    real = case.solve(**kw, parallel=RayAsync(2, max_delay=0))
    np.testing.assert_allclose(flat(real.params), flat(serial.params), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(real.trace[case.objective], serial.trace[case.objective], rtol=1e-9, atol=1e-12)


def test_stochastic_default_blocks_are_the_worker_count(built):
    """Without ``n_blocks`` a stochastic solver under RayAsync(2) samples one block per worker: the serial run with
    ``n_blocks=2`` — not the one with the default ``n_blocks=1`` (plain sampling without replacement)."""
    case = built("spdhg")
    kw = dict(maxiter=20, tol=0.0, progress=False)
    real = case.solve(**kw, parallel=RayAsync(2, max_delay=0))
    assert real.trace.meta["n_blocks"] == 2
    np.testing.assert_allclose(flat(real.params), flat(case.solve(**kw, n_blocks=2).params), rtol=1e-9, atol=1e-11)
    assert not np.allclose(flat(real.params), flat(case.solve(**kw).params), rtol=1e-6)


def _lasso(n=80, d=20, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    b = A[:, :3] @ np.array([2.0, -1.0, 1.5]) + 0.1 * rng.normal(size=n)
    lam = 0.1 * np.max(np.abs(A.T @ b)) / n
    return A, b, lam


def test_bounded_delay_with_straggler_reaches_optimum_and_records_waits():
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    ref = ol.fista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=5000, tol=1e-14, progress=False)
    step = 1 / (5 * f.lipschitz())                     # delayed gradients: 1/(L(1 + 2·max_delay))
    res = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), step=step, maxiter=3000, tol=1e-12, progress=False,
                  parallel=RayAsync(2, max_delay=2, straggler={0: 0.01}))
    F = res.trace.last("objective")
    assert abs(F - ref.trace.last("objective")) <= 1e-6 * abs(ref.trace.last("objective"))
    meta = res.trace.meta
    deliveries = [len(d) for d in meta["deliveries"]]
    assert deliveries[1] > deliveries[0]                # the straggler delivers less often ...
    assert len(meta["waited_for"][0]) > 0               # ... and is waited for once its age reaches max_delay
    assert max(int(a) for a in meta["staleness_hist"]) >= 1
    assert meta["round_seconds"][0] >= 0.01


def test_killed_worker_is_restarted_and_the_run_reaches_the_target():
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    ref = ol.fista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=5000, tol=1e-14, progress=False)
    killed = []

    def kill_once(iteration, record, state):
        if iteration >= 20 and not killed:
            pid = running_worker_pids()[1]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    step = 1 / (5 * f.lipschitz())
    res = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), step=step, maxiter=3000, tol=1e-12, log_every=10,
                  progress=False, callback=kill_once, parallel=RayAsync(2, max_delay=2))
    assert killed
    restarts = res.trace.meta["restarts"]
    assert len(restarts) == 1 and restarts[0]["worker"] == 1 and restarts[0]["old_pid"] == killed[0]
    assert restarts[0]["new_pid"] != killed[0] and res.trace.meta["worker_pids"][1] == restarts[0]["new_pid"]
    assert res.status == "converged"
    F, F_ref = res.trace.last("objective"), ref.trace.last("objective")
    assert abs(F - F_ref) <= 1e-6 * abs(F_ref)


def test_killed_worker_in_synchronous_rounds_keeps_the_iterates():
    """Synchronous rounds (max_delay=0) block in all-reduces: the restarted worker rejoins the round and the
    iterates stay those of the serial method."""
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    killed = []

    def kill_once(iteration, record, state):
        if iteration >= 10 and not killed:
            killed.append(running_worker_pids()[0])
            os.kill(killed[0], signal.SIGKILL)

    kw = dict(maxiter=40, tol=0.0, log_every=5, progress=False)
    serial = ol.fista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), backtracking=True, **kw)
    res = ol.fista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), backtracking=True, callback=kill_once,
                   parallel=RayAsync(2, max_delay=0), **kw)
    assert len(res.trace.meta["restarts"]) == 1
    np.testing.assert_allclose(flat(res.params), flat(serial.params), rtol=1e-9, atol=1e-11)


def _failing_algorithm(fail_at: int, worker: int):
    """ISTA whose phase 1 raises in ``worker`` at the first state it reads after ``fail_at`` or more updates (the
    message names that update). "At or after", not "at": an asynchronous worker reads only the states of the updates
    it arrived in and may skip update ``fail_at`` (measured: 2 of 6 runs of RayAsync(2, 2) never gave worker 1 the
    state after update 5 — the test that raised only there then saw no error)."""
    base = proxgrad.algorithm(False)

    def check(it, me):
        if int(it) >= fail_at and int(me) == worker:
            raise ValueError(f"injected failure at iteration {int(it)}")
        return np.zeros((), np.int32)

    def step(state, problem, comm):
        inner, it = state
        flag = jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.int32), it, jnp.asarray(comm.worker))
        new, info = base.step(inner, problem, comm)
        return (new, it + 1 + flag), info

    return Algorithm(name="failing_ista", step=step,
                     metrics=(("objective", lambda s, p, c: proxgrad.objective(s[0], p, c)),),
                     params=lambda s: s[0].x, stop_metric="rel_change")


def test_worker_error_returns_traceback_and_server_state():
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    problem = proxgrad.ProxGradProblem(f=row_risk.from_smooth(f, jnp.float64), g=ol.prox.l1(lam),
                                       shrink=jnp.asarray(0.5), f_star=jnp.asarray(np.nan))
    state = (proxgrad.init(np.zeros(A.shape[1]), 1 / f.lipschitz()), jnp.int32(0))
    with pytest.raises(WorkerError) as info:
        solve(_failing_algorithm(5, 1), state, problem, executor=RayAsync(2, max_delay=0), maxiter=20,
              progress=False)
    err = info.value
    assert err.worker == 1 and err.n_iter == 5
    assert "injected failure at iteration 5" in str(err) and "Traceback" in err.remote_traceback
    serial = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=5, tol=0.0, progress=False)
    np.testing.assert_allclose(np.asarray(err.state[0].x), np.asarray(serial.params), rtol=1e-9, atol=1e-12)
    assert int(err.state[1]) == 5
    # the executor is usable again after the failure
    res = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=5, tol=0.0, progress=False,
                  parallel=RayAsync(2, max_delay=0))
    np.testing.assert_allclose(flat(res.params), flat(serial.params), rtol=1e-9, atol=1e-12)


def test_checkpoint_and_resume(tmp_path):
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    path = tmp_path / "ray.npz"
    kw = dict(tol=0.0, log_every=10, progress=False)
    first = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=20, checkpoint=path,
                    parallel=RayAsync(2, max_delay=0), **kw)
    assert first.n_iter == 20
    resumed = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=40, resume=path,
                      parallel=RayAsync(2, max_delay=0), **kw)
    serial = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=40, **kw)
    assert resumed.n_iter == 40 and resumed.trace.meta["resumed_from_iter"] == 20
    np.testing.assert_allclose(flat(resumed.params), flat(serial.params), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(resumed.trace["objective"], serial.trace["objective"], rtol=1e-9)


def test_max_time_stops_the_run():
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    res = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=10**6, tol=0.0, progress=False,
                  max_time=0.5, parallel=RayAsync(2, max_delay=1, straggler={1: 0.01}))
    assert res.status == "max_time" and 0.5 <= res.trace.times[-1] < 2.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_workers=0), "n_workers must be an integer >= 1"),
    (dict(n_workers=2, max_delay=-1), "max_delay must be an integer >= 0"),
    (dict(n_workers=2, max_delay=1.5), "max_delay must be an integer >= 0"),
    (dict(n_workers=2, min_arrivals=0), r"min_arrivals must be an integer in \[1, n_workers=2\]"),
    (dict(n_workers=2, min_arrivals=3), r"min_arrivals must be an integer in \[1, n_workers=2\]"),
    (dict(n_workers=2, straggler={2: 0.1}), "straggler keys must be worker indices"),
    (dict(n_workers=2, straggler={0: -1}), "straggler"),
    (dict(n_workers=2, shard_sizes=(10,)), "shard_sizes must be 2 positive integers"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RayAsync(**kwargs)


def test_bad_problem_sizes_and_jit():
    A, b, lam = _lasso(n=6)
    f = ol.losses.least_squares_objective(A, b)
    with pytest.raises(ValueError, match="8 workers but only 6 rows"):
        ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=3, parallel=RayAsync(8, max_delay=0))
    with pytest.raises(ValueError, match="shard_sizes"):
        ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=3,
                parallel=RayAsync(2, max_delay=0, shard_sizes=(2, 3)))
    with pytest.raises(ValueError, match="jit=True"):
        ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=3, jit=True, parallel=RayAsync(2, max_delay=0))


def test_unequal_shards():
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    kw = dict(maxiter=15, tol=0.0, progress=False)
    serial = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), **kw)
    res = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), parallel=RayAsync(2, 0, shard_sizes=(70, 10)), **kw)
    assert res.trace.meta["shard_sizes"] == [70, 10]
    np.testing.assert_allclose(flat(res.params), flat(serial.params), rtol=1e-9, atol=1e-12)


def test_unreachable_cluster_address_fails_fast():
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match="does not answer"):
        A, b, lam = _lasso()
        f = ol.losses.least_squares_objective(A, b)
        ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=3,
                parallel=RayAsync(2, max_delay=0, address="127.0.0.1:1", connect_timeout=2))
    assert time.perf_counter() - t0 < 10


def test_without_ray_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "optlab\[distributed\]"'):
        RayAsync(2, max_delay=0)


def test_deferred_metrics_match_live_metrics():
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    kw = dict(maxiter=20, tol=0.0, log_every=5, progress=False)
    live = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), parallel=RayAsync(2, 0), **kw)
    deferred = ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), parallel=RayAsync(2, 0, defer_metrics=True), **kw)
    np.testing.assert_array_equal(deferred.trace.iters, live.trace.iters)
    np.testing.assert_allclose(deferred.trace["objective"], live.trace["objective"], rtol=1e-12)
    with pytest.raises(ValueError, match="defer_metrics"):
        ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), callback=lambda *a: None,
                parallel=RayAsync(2, 0, defer_metrics=True), **kw)


def test_worker_error_in_asynchronous_rounds():
    A, b, lam = _lasso()
    f = ol.losses.least_squares_objective(A, b)
    problem = proxgrad.ProxGradProblem(f=row_risk.from_smooth(f, jnp.float64), g=ol.prox.l1(lam),
                                       shrink=jnp.asarray(0.5), f_star=jnp.asarray(np.nan))
    state = (proxgrad.init(np.zeros(A.shape[1]), 1 / (5 * f.lipschitz())), jnp.int32(0))
    D = 2
    with pytest.raises(WorkerError, match=r"injected failure at iteration \d+") as info:
        solve(_failing_algorithm(5, 1), state, problem, executor=RayAsync(2, max_delay=D), maxiter=50,
              progress=False)
    err = info.value
    read = int(re.search(r"injected failure at iteration (\d+)", str(err)).group(1))
    # worker 1 reads a state after update 5 within D + 1 updates of it (it is waited for at age D), and its error
    # reaches the server before the server makes D more updates without it
    assert err.worker == 1 and 5 <= read <= 5 + D and read <= err.n_iter <= read + D
    assert int(err.state[1]) == err.n_iter        # the server's counter: one per completed update, none half-done
    assert np.all(np.isfinite(np.asarray(err.state[0].x)))
    assert "Traceback" in err.remote_traceback


def test_all_barrier_steps_warn_that_they_run_synchronously(built):
    """A stochastic solver's multi-iteration segment calls its reduces in a loop (barriers, ``Algorithm.fresh``):
    every RayAsync step is then a synchronous round. RayAsync says so with SimulatedAsync's RuntimeWarning, and the
    iterates are the synchronous ones (checked against the serial run with the same blocks)."""
    spec, case = CASES["spdhg"].parallel, built("spdhg")
    kw = dict(maxiter=spec.iters, tol=0.0, progress=False, **spec.serial_kwargs)
    with pytest.warns(RuntimeWarning, match=r"RayAsync\(2, max_delay=2\) runs each step as a synchronous round"):
        real = case.solve(**kw, parallel=RayAsync(2, max_delay=2))
    np.testing.assert_allclose(flat(real.params), flat(case.solve(**kw).params), rtol=1e-9, atol=1e-11)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        case.solve(**kw, parallel=RayAsync(2, max_delay=0))      # synchronous rounds asked for: no warning


def test_parallel_experiment_real_async_rows(tmp_path, monkeypatch):
    """`optlab reproduce parallel --quick` with Ray: for a method with real-async rows (the tiny Lasso of
    test_parallel_experiment.py) the Ray rows exist for both speed models, real and simulated, the synchronous
    RayAsync(2, 0) ends at the Sync runs' objective to rounding, the straggler really sleeps, and the files are
    written. proxgrad and svm_admm (issue 14's problems) have real-async rows."""
    import csv

    import optlab.experiments.parallel as E

    from .test_parallel_experiment import LASSO

    assert {m.key for m in E.METHODS if m.units is not None} >= {"proxgrad", "svm_admm"}
    monkeypatch.setattr(E, "METHODS", [E.Method(**LASSO)])
    out = E.run(tmp_path, quick=True, seed=0)
    for name in ("parallel_ray.csv", "parallel_ray_traces.csv", "parallel_ray.png", "parallel_summary.csv"):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "parallel_ray.csv") as fh:
        rows = {(r["speeds"], r["executor"], r["clock"]): r for r in csv.DictReader(fh)}
    assert set(rows) == {(s, e, c) for s in ("uniform", "straggler") for e in ("RayAsync(2, 0)", "RayAsync(2, D=3)")
                         for c in ("real", "simulated")}
    assert all(r["time_to_target_s"] and float(r["time_to_target_s"]) > 0 for r in rows.values())
    with open(tmp_path / "parallel_ray_traces.csv") as fh:
        assert {r["clock"] for r in csv.DictReader(fh)} == {"real", "simulated"}
    sync = out["traces"][("lasso", "uniform", "Sync(4)")]
    for speeds in ("uniform", "straggler"):
        real = out["ray_traces"][("lasso", speeds, "RayAsync(2, 0)", "real")]
        assert real.iters[-1] == round(400 * E.RAY_QUICK_ITERS)     # quick: the real runs do 2/3 of the iterations
        common, i, j = np.intersect1d(real.iters, sync.iters, return_indices=True)
        assert len(common) == len(real.iters) - 1                   # every log point but the last (267)
        np.testing.assert_allclose(real["objective"][i], sync["objective"][j], rtol=1e-10)
        assert float(rows[speeds, "RayAsync(2, 0)", "real"]["final_rel_gap"]) == pytest.approx(
            float(rows[speeds, "RayAsync(2, 0)", "simulated"]["final_rel_gap"]), rel=1e-6, abs=1e-12)
        stale = out["ray_traces"][("lasso", speeds, "RayAsync(2, D=3)", "real")]
        assert stale["rel_gap"][-1] <= LASSO["target"]           # the asynchronous run reaches the target too
    # worker 0 sleeps 3x the median round of the equal-speed synchronous run in every round of the straggler runs
    delay = float(rows["straggler", "RayAsync(2, 0)", "real"]["straggler_ms"]) / 1e3
    assert delay > 0 and float(rows["uniform", "RayAsync(2, 0)", "real"]["straggler_ms"]) == 0
    slow = out["ray_traces"][("lasso", "straggler", "RayAsync(2, 0)", "real")].meta["round_seconds"]
    assert slow[0] >= delay


def test_starting_ray_after_jax_does_not_warn_about_fork():
    """JAX's at-fork hook warns "os.fork() was called ... deadlock" for every daemon ray.init starts (subprocess: fork
    and exec at once, no JAX code in the child); RayAsync starting Ray must not show it. A fresh process, since this
    module's Ray is already running."""
    import subprocess

    code = ("import warnings, jax.numpy as jnp, ray\n"
            "jnp.ones(3).sum().block_until_ready()\n"          # JAX initialised: its at-fork hook is armed
            "from optlab.parallel import RayAsync\n"
            "from optlab.ray_executor import _connect\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            "    _connect(RayAsync(2))\n"
            "ray.shutdown()\n"
            "print('FORK WARNINGS', sum('os.fork()' in str(w.message) for w in seen))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, RAY_DISABLE_USAGE_STATS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FORK WARNINGS 0" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
