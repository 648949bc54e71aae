"""The harness: stopping rules, timing, divergence, checkpoint/resume, the fully-jitted mode, traces."""
import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optlab import harness
from optlab.trace import Trace, format_table, write_long_csv, write_table


class GDState(NamedTuple):
    x: jax.Array
    key: jax.Array


class Quadratic(NamedTuple):
    Q: jax.Array
    b: jax.Array
    step: jax.Array


def gd_step(state, problem):
    """Gradient descent on ½xᵀQx − bᵀx, plus a PRNG key carried along (split every step)."""
    grad = problem.Q @ state.x - problem.b
    x = state.x - problem.step * grad
    key, _ = jax.random.split(state.key)
    rel = jnp.linalg.norm(x - state.x) / jnp.maximum(jnp.linalg.norm(x), 1e-300)
    return GDState(x, key), {"rel_change": rel, "grad_norm": jnp.linalg.norm(grad)}


def objective(state, problem):
    return 0.5 * state.x @ problem.Q @ state.x - problem.b @ state.x


def make_problem(d=20, seed=0, step_scale=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(d, d))
    Q = M @ M.T / d + 0.1 * np.eye(d)
    b = rng.normal(size=d)
    L = np.linalg.eigvalsh(Q).max()
    prob = Quadratic(jnp.asarray(Q, dtype), jnp.asarray(b, dtype), jnp.asarray(step_scale / L, dtype))
    state = GDState(jnp.zeros(d, dtype), jax.random.key(seed))
    return prob, state, (Q, b, step_scale / L)


def numpy_gd(Q, b, step, n):
    x = np.zeros(len(b))
    for _ in range(n):
        x = x - step * (Q @ x - b)
    return x


def test_stops_at_exact_iteration_where_tol_is_met():
    prob, state, (Q, b, step) = make_problem()
    tol = 1e-6
    res = harness.run(gd_step, state, prob, maxiter=10_000, log_every=37, tol=tol, stop_metric="rel_change",
                      metrics={"objective": objective})
    assert res.status == "converged" and res.converged
    # independent NumPy replay: first k with ‖x_k − x_{k−1}‖/‖x_k‖ <= tol
    x, k = np.zeros(len(b)), 0
    while True:
        x_new = x - step * (Q @ x - b)
        k += 1
        if np.linalg.norm(x_new - x) / np.linalg.norm(x_new) <= tol:
            break
        x = x_new
    assert res.n_iter == k
    np.testing.assert_allclose(np.asarray(res.state.x), x_new, rtol=1e-12, atol=1e-12)
    assert res.trace.iters[0] == 0 and res.trace.iters[-1] == k
    assert np.isnan(res.trace["rel_change"][0])  # no step diagnostic before the first step
    assert res.trace["objective"][-1] <= res.trace["objective"][0]
    f_star = -0.5 * b @ np.linalg.solve(Q, b)
    assert res.trace["objective"][-1] - f_star < 1e-6


def test_times_exclude_compile_time():
    # A fresh step function (never compiled before) so the warm-up really compiles.
    def fresh_step(state, problem):
        return gd_step(state, problem)

    prob, state, _ = make_problem(d=10)
    res = harness.run(fresh_step, state, prob, maxiter=5, log_every=5, metrics={"objective": objective})
    compile_time = res.trace.meta["compile_time"]
    assert compile_time > 0.01
    assert res.trace.times[0] == 0.0
    assert res.trace.times[1] < compile_time / 5, (res.trace.times, compile_time)
    assert np.all(np.diff(res.trace.times) >= 0)


def test_divergence_keeps_last_finite_state():
    prob, state, _ = make_problem(step_scale=50.0)
    res = harness.run(gd_step, state, prob, maxiter=100_000, log_every=1000, metrics={"objective": objective})
    assert res.status == "diverged" and not res.converged
    assert 0 < res.n_iter < 100_000
    assert np.all(np.isfinite(np.asarray(res.params.x)))
    # the returned state is exactly iterate n_iter of the same recursion (the next one overflowed)
    Q, b, step = np.asarray(prob.Q), np.asarray(prob.b), float(prob.step)
    with np.errstate(over="ignore", invalid="ignore"):
        x_next = np.asarray(res.state.x) - step * (Q @ np.asarray(res.state.x) - b)
    assert not np.all(np.isfinite(x_next))


def _blowup_step(state, problem):
    """x <- x * problem["f"] entrywise (float32): one entry overflows to inf at a known iteration."""
    x = state["x"] * problem["f"]
    return {"x": x, "k": state["k"] + 1}, {"res": jnp.max(x), "k": state["k"] + 1}


@pytest.mark.parametrize("n_steps", [1, 5, 8, 40])
def test_chunk_stops_at_the_last_finite_state_like_a_per_entry_reference(n_steps):
    # entry 1 doubles from 1e36: 2e36, ..., 1.28e38 after 7 steps, inf at step 8; entries 0 and 2 stay finite
    x0 = np.array([3e37, 1e36, -3e37], np.float32)
    f = np.array([1.0, 2.0, 1.0], np.float32)
    state = {"x": jnp.asarray(x0), "k": jnp.zeros((), jnp.int32)}
    info = {"res": jnp.full((), np.nan, np.float32), "k": jnp.zeros((), jnp.int32)}
    out, out_info, steps, status = harness._chunk_plain(_blowup_step, None, state, info, {"f": jnp.asarray(f)},
                                                        np.int32(n_steps), np.float32(0.0))
    # reference: NumPy, entry by entry, stop before the first non-finite state
    x, taken = x0.copy(), 0
    with np.errstate(over="ignore"):
        while taken < n_steps and np.all(np.isfinite(x * f)):
            x, taken = x * f, taken + 1
    diverged = taken < n_steps
    assert int(steps) == taken and int(out["k"]) == taken
    np.testing.assert_array_equal(np.asarray(out["x"]), x)
    assert int(status) == (harness.DIVERGED if diverged else harness.RUNNING)
    if taken:
        assert float(out_info["res"]) == x.max() and int(out_info["k"]) == taken
    else:
        assert np.isnan(float(out_info["res"]))


def test_chunk_huge_finite_state_is_not_divergence():
    # every entry near float32's maximum: their sum overflows, the state is finite, the run goes on
    big = np.full(64, 3e38, np.float32)
    state = {"x": jnp.asarray(big), "k": jnp.zeros((), jnp.int32)}
    info = {"res": jnp.full((), np.nan, np.float32), "k": jnp.zeros((), jnp.int32)}
    out, _, steps, status = harness._chunk_plain(_blowup_step, "res", state, info, {"f": jnp.ones(64, jnp.float32)},
                                                 np.int32(10), np.float32(0.0))
    assert int(steps) == 10 and int(status) == harness.RUNNING
    np.testing.assert_array_equal(np.asarray(out["x"]), big)


def test_checkpoint_resume_is_exact(tmp_path):
    prob, state, _ = make_problem()
    ckpt = tmp_path / "run.npz"
    full = harness.run(gd_step, state, prob, maxiter=120, log_every=25, metrics={"objective": objective})
    part = harness.run(gd_step, state, prob, maxiter=50, log_every=25, metrics={"objective": objective},
                       checkpoint=ckpt)
    assert part.n_iter == 50 and ckpt.exists()
    resumed = harness.run(gd_step, state, prob, maxiter=120, log_every=25, metrics={"objective": objective},
                          resume=ckpt)
    assert resumed.n_iter == 120
    np.testing.assert_array_equal(np.asarray(resumed.state.x), np.asarray(full.state.x))
    np.testing.assert_array_equal(jax.random.key_data(resumed.state.key), jax.random.key_data(full.state.key))
    assert list(resumed.trace.iters) == [0, 25, 50, 75, 100, 120]
    np.testing.assert_allclose(resumed.trace["objective"][-1], full.trace["objective"][-1], rtol=0, atol=0)
    assert resumed.trace.times[3] >= resumed.trace.times[2]
    # a checkpoint of another problem (shape, or the same shape with other data) is refused with a clear message
    prob2, state2, _ = make_problem(d=7)
    with pytest.raises(harness.CheckpointError, match="another problem"):
        harness.run(gd_step, state2, prob2, maxiter=10, resume=ckpt)
    prob3, state3, _ = make_problem(seed=5)
    with pytest.raises(ValueError, match="another problem"):
        harness.run(gd_step, state3, prob3, maxiter=130, resume=ckpt)
    with pytest.raises(ValueError, match="beyond maxiter"):   # n_iter 50 > maxiter 40
        harness.run(gd_step, state, prob, maxiter=40, resume=ckpt)


def test_max_time_and_callback_stop():
    prob, state, _ = make_problem(d=200)
    res = harness.run(gd_step, state, prob, maxiter=10**9, log_every=200, max_time=0.05)
    assert res.status == "max_time" and res.trace.times[-1] >= 0.05
    seen = []

    def cb(k, record, st):
        seen.append(k)
        return k >= 30

    res = harness.run(gd_step, state, prob, maxiter=1000, log_every=10, callback=cb)
    assert res.status == "stopped" and res.n_iter == 30 and seen == [10, 20, 30]


def test_no_recompile_for_new_data_of_same_shape():
    traces = []

    def counting_step(state, problem):
        traces.append(1)  # runs only while JAX traces (compiles) the function
        return gd_step(state, problem)

    prob, state, _ = make_problem(seed=1)
    harness.run(counting_step, state, prob, maxiter=20, log_every=10)
    n_after_first = len(traces)
    prob2, state2, _ = make_problem(seed=2)
    res2 = harness.run(counting_step, state2, prob2, maxiter=20, log_every=10, tol=1e-3, stop_metric=None)
    assert len(traces) == n_after_first
    assert res2.trace.meta["compile_time"] < 0.5


def test_dtype_float32_preserved():
    prob, state, _ = make_problem(dtype=np.float32)
    res = harness.run(gd_step, state, prob, maxiter=30, log_every=10, metrics={"objective": objective})
    assert res.state.x.dtype == jnp.float32


def test_run_jit_matches_run_and_vmaps_over_a_path():
    prob, state, _ = make_problem()
    ref = harness.run(gd_step, state, prob, maxiter=200, log_every=20, tol=1e-5, stop_metric="rel_change",
                      metrics={"objective": objective})
    out = harness.run_jit(gd_step, state, prob, maxiter=200, log_every=20, tol=1e-5, stop_metric="rel_change",
                          metrics={"objective": objective})
    assert int(out.n_iter) == ref.n_iter and harness.status_name(out.status) == ref.status
    np.testing.assert_allclose(np.asarray(out.state.x), np.asarray(ref.state.x), rtol=1e-13, atol=1e-13)
    logged = np.asarray(out.iters) >= 0
    np.testing.assert_array_equal(np.asarray(out.iters)[logged], ref.trace.iters)
    np.testing.assert_allclose(np.asarray(out.history["objective"])[logged], ref.trace["objective"], rtol=1e-12)

    # vmap over 8 step sizes (a "path"): each lane equals its own serial run
    steps = jnp.linspace(0.2, 1.0, 8) * prob.step

    def solve(step):
        return harness.run_jit(gd_step, state, prob._replace(step=step), maxiter=150, log_every=50,
                               tol=1e-8, stop_metric="rel_change", metrics={"objective": objective})

    batched = jax.jit(jax.vmap(solve))(steps)
    assert batched.state.x.shape == (8, 20)
    for i in (0, 3, 7):
        single = harness.run(gd_step, state, prob._replace(step=steps[i]), maxiter=150, log_every=50,
                             tol=1e-8, stop_metric="rel_change")
        np.testing.assert_allclose(np.asarray(batched.state.x[i]), np.asarray(single.state.x), rtol=1e-12,
                                   atol=1e-14)
        assert int(batched.n_iter[i]) == single.n_iter


def test_trace_outputs_round_trip(tmp_path):
    prob, state, _ = make_problem()
    res = harness.run(gd_step, state, prob, maxiter=40, log_every=10, metrics={"objective": objective},
                      meta={"solver": "gd", "dataset": "toy"})
    tr = res.trace
    back = Trace.from_json(tr.to_json(tmp_path / "t.json"))
    np.testing.assert_array_equal(back.iters, tr.iters)
    np.testing.assert_allclose(back["objective"], tr["objective"])
    assert np.isnan(back["rel_change"][0])
    csv_text = tr.to_csv(tmp_path / "t.csv")
    header = csv_text.splitlines()[0].split(",")
    assert header[:2] == ["iteration", "time"] and "objective" in header
    rows = tr.long()
    assert {r["metric"] for r in rows} == set(tr.metrics)
    assert rows[0]["solver"] == "gd" and rows[0]["dataset"] == "toy"
    write_long_csv(rows, tmp_path / "long.csv")
    assert (tmp_path / "long.csv").read_text().startswith("solver,dataset,iteration,time,metric,value")
    json.loads((tmp_path / "t.json").read_text())


def test_bad_arguments():
    prob, state, _ = make_problem()
    with pytest.raises(ValueError, match="log_every"):
        harness.run(gd_step, state, prob, maxiter=10, log_every=0)
    with pytest.raises(ValueError, match="max_time"):
        harness.run(gd_step, state, prob, maxiter=10, max_time=-1)
    with pytest.raises(TypeError, match="metrics"):
        harness.run(gd_step, state, prob, maxiter=10, metrics=[objective])


def test_trace_thinned_keeps_ends_and_is_log_spaced():
    tr = Trace(np.arange(10_000), np.linspace(0, 1, 10_000), {"f": np.arange(10_000.0)})
    th = tr.thinned(100)
    assert len(th) <= 100 and th.iters[0] == 0 and th.iters[-1] == 9999
    assert np.all(np.diff(th.iters) > 0) and np.sum(th.iters < 100) > 20  # dense at the start
    np.testing.assert_array_equal(th["f"], th.iters.astype(float))
    assert len(tr.thinned(20_000)) == 10_000


def test_write_table_csv_and_text_agree(tmp_path):
    import csv

    rows = [{"method": "fista", "time_s": "0.10"}, {"method": "ista", "iters": 12}]
    text = write_table(rows, tmp_path / "t.csv")
    with open(tmp_path / "t.csv") as fh:
        back = list(csv.DictReader(fh))
    assert [r["method"] for r in back] == ["fista", "ista"]
    assert back[0]["iters"] == "" and back[1]["iters"] == "12"
    lines = text.splitlines()
    assert lines[0].split() == ["method", "time_s", "iters"] and lines[2].split() == ["ista", "12"]
    assert text == format_table(rows)
    with pytest.raises(ValueError, match="rows is empty"):
        format_table([])


def test_matmul_precision_is_true_float32_unless_the_caller_chooses():
    """The loop is traced under precision "highest" (no silent TF32 on GPUs); a caller's choice wins."""
    seen = []

    def step(state, problem):
        seen.append(jax.default_matmul_precision.value)   # read at trace time
        return state * problem, {"change": jnp.zeros(())}

    harness.run(step, jnp.ones(3), jnp.float64(0.5), maxiter=3, log_every=3, progress=False)
    harness.run_jit(step, jnp.ones(4), jnp.float64(0.5), maxiter=3)
    assert seen and set(seen) == {"highest"}
    seen.clear()
    with jax.default_matmul_precision("tensorfloat32"):
        harness.run(step, jnp.ones(5), jnp.float64(0.5), maxiter=3, log_every=3, progress=False)
    assert seen and set(seen) == {"tensorfloat32"}
    assert jax.default_matmul_precision.value is None   # nothing leaks out of the harness
