"""Run guarantees of the harness (issue 15's cases): honest statuses, validated counts and tolerances, checkpoints
that are never trusted blindly, and Ctrl-C that stops at a safe point."""
import os
import signal
import threading

import jax
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


# ===================================================================================================================
# Issue 15, "Must show" 4: every case under "Why" has a test. One bullet of the issue per line, then the tests.
#
# * Checkpoints written in place / unreadable after a kill; partial file resumes with a misleading message
#     -> tests/test_checkpoint_faults.py::test_killed_checkpointing_run_always_leaves_a_resumable_checkpoint
#        (random kills of a checkpointing child by PID, bit-for-bit resume);
#        tests/test_run_guarantees.py::test_checkpoint_values_are_validated_not_trusted (truncated file: named error)
# * Statuses lie:
#   - fista/ista/pig with step=1e-20 'converged' at iteration 1 (objective 6.95, optimum 0.051); float32 tiny steps
#     -> test_a_step_too_small_to_move_is_stalled_not_converged,
#        test_a_tiny_step_is_stalled_and_far_from_the_sklearn_optimum (below, float64 and float32)
#   - gist with L_min=1e30 -> test_gist_with_a_huge_curvature_floor_does_not_claim_convergence
#   - NaN objective with a finite state 'converged' -> test_nan_objective_with_finite_state_is_not_converged
#   - ipdlam on data scaled by 1e150 'converged' (weights did not move)
#     -> test_ipdlam_on_data_scaled_by_1e150_is_not_converged (below; scikit-learn optimum as the reference),
#        test_bcd_on_data_scaled_by_1e150_is_not_converged (the BCD baseline of the same experiments)
#   - spdhg with scale=1e4 ends 'maxiter' at objective 1.5e6 -> tests/test_bad_inputs.py cases
#     spdhg-scale-1e4-diverges, spdpeg-scale-1e4-diverges, sag_admm-scale-1e4-diverges;
#     test_spdhg_with_a_huge_scale_is_diverged_not_maxiter (below, against the structured_optimum reference)
#   - a 'diverged' run returns a last finite state of size 1e306
#     -> test_exploding_objective_is_diverged_and_returns_the_last_good_state
# * max_time checked only between compiled chunks (svm_admm, fista); hangs in compiled loops with huge max_backtracks
#     -> tests/test_time_limits.py::test_max_time_with_unbounded_maxiter (every solver, max_time=2)
# * The checkpoint loader trusts values (status, NaN state, n_iter > maxiter); jit=True ignores checkpoint=
#     -> test_checkpoint_values_are_validated_not_trusted, test_jit_mode_refuses_checkpoints;
#        tests/test_bad_inputs.py::test_checkpoint_loader_rejects, ::test_checkpoint_status_is_recomputed
# * Starting points not validated (NaN x0 in gist, NaN warm_start in svm_admm, NaN params0 in ipdlam)
#     -> tests/test_bad_inputs.py cases gist-nan-x0, svm-nan-warm-start(-b), ipdlam-nan-params0 (and every solver's)
# * Unvalidated / truncated parameters (cg_iters=0, negative/NaN tol, gist sigma/eta/L_min, max_delay=1.5, float
#   widths, maxiter=10.7, colliding seeds)
#     -> tests/test_bad_inputs.py cases svm-cg-iters-0, *-neg-tol, *-nan-tol, gist-sigma-neg, gist-eta-below-1,
#        gist-Lmin-above-Lmax, spdhg-async-max-delay-float, ipdlam-float-layers, *-maxiter-float, *-seed-*;
#        ::test_seed_range, ::test_count_refuses_non_integers; test_bad_run_options_are_named_errors
# * Data: no checksums, http + md5 only, local files not verified, NaN/Inf features and bad labels load silently
#     -> tests/test_data_integrity.py (test_tampered_file_is_rejected_with_both_digests_and_the_opt_out,
#        test_every_shared_file_matches_its_pinned_digest, test_fashion_mnist_is_fetched_over_https_with_md5_and_an_http_mirror,
#        test_invalid_svmlight_values_are_rejected_even_without_verification, test_invalid_idx_files, ...)
# * Obscure errors (wrong-length / 2-D x0, CSR or empty X in ipdlam, integer x0 in gist, parallel="sync"); CLI
#   tracebacks; no --version
#     -> tests/test_bad_inputs.py cases fista-x0-wrong-length, fista-x0-2d, ipdlam-csr-X, ipdlam-empty-X,
#        gist-int-x0, *-parallel-str; tests/test_cli_errors.py::test_bad_input_is_one_line_with_a_fix_and_exit_2,
#        ::test_version
# * NonconvexSVC at max_iter gives no ConvergenceWarning -> tests/test_bad_inputs.py::test_nonconvex_svc_warns_at_max_iter
# ===================================================================================================================
from optlab.references import lasso_optimum  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_tiny_step_is_stalled_and_far_from_the_sklearn_optimum(dtype):
    f, g, x0 = lasso()
    A, b = np.asarray(f.A, np.float64), np.asarray(f.y, np.float64)
    f_star, _ = lasso_optimum(A, b, 0.01)
    f32 = ol.losses.least_squares_objective(np.asarray(A, dtype), np.asarray(b, dtype))
    res = ol.fista(f32, g, np.ones(10, dtype), step=1e-20, maxiter=100, progress=False)
    gap = float(res.trace.last("objective")) - f_star
    assert gap > 10 * abs(f_star)                   # far from the optimum: calling it 'converged' would be false
    assert res.status == "stalled" and res.n_iter <= 2


def _scaled_multiclass(scale, n=120, d=4, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.8 * rng.normal(size=n) > 0).astype(int)      # not separable: a finite optimum
    return X * scale, X, y


def test_ipdlam_on_data_scaled_by_1e150_is_not_converged():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    Xs, X, y = _scaled_multiclass(1e150)
    # layers [d, C]: softmax regression; its optimal loss is the same for X and 1e150·X (W absorbs the scale)
    ref = LogisticRegression(C=1e10, tol=1e-12, max_iter=10_000).fit(X, y)
    opt = log_loss(y, ref.predict_proba(X))
    for fn in (ol.ipdlam, ol.dlam):
        res = fn(Xs, y, layers=[4, 2], iters=50, progress=False)
        assert res.status in ("stalled", "diverged"), (fn.__name__, res.status)
        assert res.trace.last("objective") > 1e6 * opt         # nowhere near the optimum
        meta = res.trace.meta.get("stationarity")
        assert meta is None or not meta["end"] <= meta["limit"] * meta["start"]
    # the same data unscaled: the tolerance test fires with the residual down, and the loss is the optimum's
    ok = ol.dlam(X, y, layers=[4, 2], iters=5000, tol=1e-7, progress=False)
    assert ok.status == "converged"
    assert abs(ok.trace.last("train_loss") - opt) <= 1e-3 * opt


def test_bcd_on_data_scaled_by_1e150_is_not_converged():
    from optlab.solvers.baselines.bcd import bcd

    Xs, X, y = _scaled_multiclass(1e150)
    Y = np.eye(2)[y]
    Xb = np.hstack([X, np.ones((len(X), 1))])
    W, *_ = np.linalg.lstsq(Xb, Y, rcond=None)
    opt = 0.5 / 3 * np.sum((Y - Xb @ W) ** 2)     # min of the split objective (γ = ρ = 1), scale-free
    res = bcd(Xs, y, layers=[4, 2], iters=300, tol=1e-6, progress=False)
    assert res.status in ("stalled", "diverged", "maxiter")
    assert res.trace.last("objective") > 1e6 * opt
    ok = bcd(X, y, layers=[4, 2], iters=3000, tol=1e-6, progress=False)
    assert ok.status == "converged"
    assert abs(ok.trace.last("objective") - opt) <= 1e-3 * opt


def test_spdhg_with_a_huge_scale_is_diverged_not_maxiter():
    from optlab.references import structured_optimum

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = np.sign(X[:, 0] + 0.1)
    F = ol.operators.first_difference(5)
    p_star = structured_optimum(X, y, F, 1e-2)[0]
    for fn in (ol.spdhg, ol.spdpeg):
        # spdpeg damps a step beyond its stability condition by default (issue 18); "off" runs it as given
        unchecked = {"step_check": "off"} if fn is ol.spdpeg else {}
        res = fn(X, y, F, 1e-2, scale=1e4, epochs=20, progress=False, **unchecked)
        assert res.status == "diverged", (fn.__name__, res.status)
        for leaf in jax.tree.leaves(res.params):
            assert np.all(np.isfinite(np.asarray(leaf)))
        assert res.trace["objective"].max() > 10 * p_star       # the objective did explode
        normal = fn(X, y, F, 1e-2, epochs=20, progress=False)
        assert normal.status == "maxiter" and normal.trace.last("objective") < 2 * p_star   # slow but sane


@pytest.mark.xfail(strict=True, reason="known gap (issue 15): the stochastic family (optlab/solvers/_stochastic.py) "
                   "has no stationarity residual, so a step too small to move the averaged iterate ends 'converged'")
def test_stochastic_step_too_small_to_move_is_not_converged():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype(np.float32)       # float32: the 1e-30 steps leave the average exactly 0
    y = np.sign(X[:, 0] + 0.1)
    res = ol.spdhg(X, y, ol.operators.first_difference(5), 1e-2, scale=1e-30, epochs=20, tol=1e-6, progress=False)
    assert res.status != "converged"
