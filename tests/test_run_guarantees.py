"""Run guarantees of the harness (issue 15's cases): honest statuses, validated counts and tolerances, checkpoints
that are never trusted blindly, and Ctrl-C that stops at a safe point."""
import os
import signal
import threading

import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
from optlab import harness


def lasso(n=40, d=10, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    return ol.losses.least_squares_objective(A, A[:, 0] + 0.1 * rng.normal(size=n)), ol.prox.l1(0.01), np.zeros(d)


def test_exploding_objective_is_diverged_and_returns_the_last_good_state():
    f, g, x0 = lasso()
    L = float(f.lipschitz())
    res = ol.ista(f, g, x0 + 1.0, step=5.0 / L, maxiter=3000, log_every=10, tol=0, progress=False)
    assert res.status == "diverged"
    obj0 = res.trace["objective"][0]
    good = float(f(res.params) + g.value(res.params))
    assert np.isfinite(good) and good <= obj0 + 1e3 * abs(obj0)       # not the 1e306 state
    assert res.n_iter < res.trace.meta["diverged_at"]


def test_nan_objective_with_finite_state_is_not_converged():
    f, g, x0 = lasso()
    # a smooth part whose value is NaN while its gradient is finite: the state stays finite
    nan_f = ol.losses.smooth(lambda x: jnp.nan * jnp.sum(x) + jnp.sum(x * x), lipschitz=2.0)
    res = ol.fista(nan_f, g, x0 + 1.0, maxiter=50, progress=False)
    assert res.status == "diverged"


@pytest.mark.parametrize("kw, exc, match", [
    ({"maxiter": 10.7}, TypeError, "maxiter must be an integer"),
    ({"maxiter": -1}, ValueError, "maxiter must be an integer >= 0"),
    ({"log_every": 0}, ValueError, "log_every must be a positive integer"),
    ({"tol": -1e-3}, ValueError, "tol must be finite and >= 0"),
    ({"tol": float("nan")}, ValueError, "tol must be finite and >= 0"),
    ({"tol": "small"}, TypeError, "tol must be a number"),
    ({"max_time": 0}, ValueError, "max_time must be"),
    ({"max_time": "soon"}, ValueError, "max_time must be"),
])
def test_bad_run_options_are_named_errors(kw, exc, match):
    f, g, x0 = lasso()
    with pytest.raises(exc, match=match):
        ol.ista(f, g, x0, progress=False, **kw)


def test_jit_mode_refuses_checkpoints(tmp_path):
    f, g, x0 = lasso()
    with pytest.raises(ValueError, match="cannot write or read checkpoints"):
        ol.fista(f, g, x0, jit=True, checkpoint=tmp_path / "c.npz")


def _edit_checkpoint(path, **changes):
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    data.update(changes)
    with open(path, "wb") as fh:
        np.savez(fh, **data)


def test_checkpoint_values_are_validated_not_trusted(tmp_path):
    f, g, x0 = lasso()
    ckpt = tmp_path / "c.npz"
    ol.ista(f, g, x0, maxiter=20, log_every=5, tol=0, checkpoint=ckpt, progress=False)
    # a stored 'converged' status is not believed: the resumed run decides afresh (and goes on to maxiter)
    _edit_checkpoint(ckpt, status=np.array("converged"))
    res = ol.ista(f, g, x0, maxiter=40, log_every=5, tol=0, resume=ckpt, progress=False)
    assert res.status == "maxiter" and res.n_iter == 40
    # NaN state, n_iter past maxiter, counters that disagree with the trace, a truncated file: refused
    ol.ista(f, g, x0, maxiter=20, log_every=5, tol=0, checkpoint=ckpt, progress=False)
    good = ckpt.read_bytes()
    with np.load(ckpt) as z:
        x = np.array(z["state_0"])
    x[0] = np.nan
    _edit_checkpoint(ckpt, state_0=x)
    with pytest.raises(harness.CheckpointError, match="not finite"):
        ol.ista(f, g, x0, maxiter=40, resume=ckpt, progress=False)
    ckpt.write_bytes(good)
    with pytest.raises(harness.CheckpointError, match="beyond maxiter"):
        ol.ista(f, g, x0, maxiter=10, resume=ckpt, progress=False)
    _edit_checkpoint(ckpt, n_iter=np.array(15, np.int64))
    with pytest.raises(harness.CheckpointError, match="inconsistent"):
        ol.ista(f, g, x0, maxiter=40, resume=ckpt, progress=False)
    ckpt.write_bytes(good[: len(good) // 2])
    with pytest.raises(harness.CheckpointError, match="not a readable"):
        ol.ista(f, g, x0, maxiter=40, resume=ckpt, progress=False)
    # another solver's checkpoint (same shapes) is refused by the fingerprint
    ckpt.write_bytes(good)
    with pytest.raises(harness.CheckpointError, match="another problem or solver"):
        ol.fista(f, g, x0, maxiter=40, resume=ckpt, progress=False)


def test_ctrl_c_stops_at_a_log_point_with_status_interrupted_and_a_checkpoint(tmp_path):
    f, g, x0 = lasso(n=400, d=200)
    ckpt = tmp_path / "c.npz"
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))

    def callback(it, record, state):  # the first log point starts the clock for the Ctrl-C
        if not timer.is_alive() and not timer.finished.is_set():
            timer.start()

    res = ol.ista(f, g, x0, maxiter=10**9, log_every=50, tol=0, checkpoint=ckpt, callback=callback,
                  progress=False)
    timer.cancel()
    assert res.status == "interrupted"
    state, trace, n_iter = harness.load_checkpoint(ckpt, res.state)
    assert n_iter == res.n_iter and trace.meta["status"] == "interrupted"
    np.testing.assert_array_equal(np.asarray(state.x), np.asarray(res.params))


@pytest.mark.parametrize("solver", ["ista", "fista", "pig"])
def test_a_step_too_small_to_move_is_stalled_not_converged(solver):
    # step = 1e-20: x - s·∇f(x) rounds to x, the relative change is 0 <= tol at iteration 1; the gradient mapping
    # (the optimality residual) has not moved, so the status must not claim convergence
    f, g, x0 = lasso()
    res = getattr(ol, solver)(f, g, x0 + 1.0, step=1e-20, maxiter=100, progress=False)
    assert res.status == "stalled"
    meta = res.trace.meta["stationarity"]
    assert meta["end"] > meta["limit"] * meta["start"]
    ok = getattr(ol, solver)(f, g, x0 + 1.0, maxiter=5000, progress=False)    # the default step converges
    assert ok.status == "converged"
    assert ok.trace.meta["stationarity"]["end"] <= 1e-5 * ok.trace.meta["stationarity"]["start"]


def test_gist_with_a_huge_curvature_floor_does_not_claim_convergence():
    f, g, x0 = lasso()
    A = np.random.default_rng(1).normal(size=(40, 10))
    fs = ol.losses.squared_hinge_objective(A, np.sign(A[:, 0]))
    res = ol.gist(fs, g, x0, L_min=1e30, L_max=1e31, maxiter=200, progress=False)
    assert res.status in ("stalled", "maxiter")
