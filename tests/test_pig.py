"""Proximal inertial gradient (pig, pig_blocks): scikit-learn's Lasso optimum on real data, the non-ergodic O(1/k)
bound, special cases (β = 0 is ISTA, g = 0 is heavy ball), vmap over a λ path, schedules, bad input."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
from optlab.references import lasso_optimum


def lasso_data(n=80, d=40, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[:6] = rng.normal(size=6) * 2
    b = A @ w + 0.05 * rng.normal(size=n)
    lam = 0.1 * np.max(np.abs(A.T @ b)) / n
    return A, b, lam


def real_lasso(name):
    if not os.environ.get("OPTLAB_DATA"):
        pytest.skip("OPTLAB_DATA unset")
    try:
        ds = ol.data.load(name, dense=True)
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"{name} not available: {err}")
    X = np.asarray(ds.X, float)
    A = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    b = np.asarray(ds.y, float) - np.mean(ds.y)
    lam = 0.05 * np.max(np.abs(A.T @ b)) / A.shape[0]
    return A, b, lam


# ------------------------------------------------------------------------------------------- must show 1
@pytest.mark.data
@pytest.mark.parametrize("name", ["heart_scale", "splice"])
def test_pig_reaches_sklearn_lasso_optimum_on_real_data(name):
    A, b, lam = real_lasso(name)
    f_star, x_star = lasso_optimum(A, b, lam)
    f = ol.losses.least_squares_objective(A, b)
    res = ol.pig(f, ol.prox.l1(lam), np.zeros(A.shape[1]), beta=0.5, maxiter=20000, tol=1e-15, progress=False)
    assert abs(res.trace.last("objective") - f_star) <= 1e-8 * abs(f_star)
    np.testing.assert_allclose(np.asarray(res.params), x_star, atol=1e-6)


@pytest.mark.data
@pytest.mark.parametrize("order", ["cyclic", "random"])
def test_pig_blocks_reach_sklearn_lasso_optimum_on_real_data(order):
    A, b, lam = real_lasso("splice")
    f_star, _ = lasso_optimum(A, b, lam)
    f = ol.losses.least_squares_objective(A, b)
    parts = np.array_split(np.zeros(A.shape[1]), 4)
    res = ol.pig_blocks(f, [ol.prox.l1(lam)] * 4, parts, order=order, seed=1, beta=[0.3, 0.5, 0.5, 0.2],
                        maxiter=5000, tol=1e-14, progress=False)
    assert abs(res.trace.last("objective") - f_star) <= 1e-6 * abs(f_star)
    assert [p.shape for p in res.params] == [p.shape for p in parts]


# ------------------------------------------------------------------------------------------- must show 2
def test_non_ergodic_k_times_gap_stays_bounded():
    # coercive (ℓ1) but not strongly convex: n < d
    A, b, lam = lasso_data(n=40, d=120, seed=7)
    f_star, _ = lasso_optimum(A, b, lam)
    f = ol.losses.least_squares_objective(A, b)
    res = ol.pig(f, ol.prox.l1(lam), np.zeros(120), beta=0.4, maxiter=3000, tol=0.0, log_every=1,
                 f_star=f_star, progress=False)
    k = res.trace.iters[1:].astype(float)
    kgap = k * np.maximum(res.trace["gap"][1:], 0.0)
    first = kgap[: len(k) // 10].max()
    # bounded over the whole run, and not growing: the later part never exceeds the early maximum
    assert np.all(np.isfinite(kgap))
    assert kgap.max() <= 1.0001 * first
    assert kgap[len(k) // 2:].max() <= first


# ------------------------------------------------------------------------------------------ special cases
def test_beta_zero_equals_ista_iterates_exactly():
    A, b, lam = lasso_data(seed=1)
    f = ol.losses.least_squares_objective(A, b)
    g = ol.prox.l1(lam)
    p = ol.pig(f, g, np.zeros(40), beta=0.0, maxiter=137, tol=0.0, progress=False)
    q = ol.ista(f, g, np.zeros(40), maxiter=137, tol=0.0, progress=False)
    np.testing.assert_array_equal(np.asarray(p.params), np.asarray(q.params))
    np.testing.assert_array_equal(p.trace["objective"], q.trace["objective"])


def test_heavy_ball_on_quadratic_matches_numpy_recursion():
    rng = np.random.default_rng(3)
    M = rng.normal(size=(30, 20))
    Q = M.T @ M / 30 + 0.1 * np.eye(20)
    c = rng.normal(size=20)
    L = np.linalg.eigvalsh(Q).max()
    f = ol.losses.smooth(lambda x, Q, c: 0.5 * x @ Q @ x - c @ x, jnp.asarray(Q), jnp.asarray(c), lipschitz=L)
    beta, gamma = 0.6, 0.5 / L
    res = ol.pig(f, ol.prox.zero(), np.ones(20), step=gamma, beta=beta, maxiter=80, tol=0.0, progress=False)
    x_prev = x = np.ones(20)
    for _ in range(80):
        x, x_prev = x - gamma * (Q @ x - c) + beta * (x - x_prev), x
    np.testing.assert_allclose(np.asarray(res.params), x, rtol=1e-12, atol=1e-13)
    # and it converges to the solution of Qx = c
    long = ol.pig(f, ol.prox.zero(), np.ones(20), beta=beta, maxiter=5000, tol=1e-14, progress=False)
    np.testing.assert_allclose(np.asarray(long.params), np.linalg.solve(Q, c), atol=1e-9)


def test_diminishing_and_callable_schedules():
    A, b, lam = lasso_data(seed=2)
    f = ol.losses.least_squares_objective(A, b)
    f_star, _ = lasso_optimum(A, b, lam)
    res = ol.pig(f, ol.prox.l1(lam), np.zeros(40), beta=0.8, beta_schedule="diminishing", maxiter=40, tol=0.0,
                 log_every=1, progress=False)
    k = res.trace.iters[1:]
    np.testing.assert_allclose(res.trace["beta"][1:], 0.8 / k)  # logged β is the one used at step k-1
    sched = lambda k: 0.5 * (k < 100)  # noqa: E731 - inertia switched off after 100 iterations
    res = ol.pig(f, ol.prox.l1(lam), np.zeros(40), beta_schedule=sched, maxiter=3000, tol=1e-14, progress=False)
    assert abs(res.trace.last("objective") - f_star) <= 1e-9 * f_star
    res = ol.pig(f, ol.prox.l1(lam), np.zeros(40), beta=0.5, ergodic=True, maxiter=50, tol=0.0, progress=False)
    assert np.all(np.isfinite(res.trace["objective_avg"]))


def test_vmap_over_lambda_path_in_jit_mode():
    A, b, _ = lasso_data(seed=3)
    lam_max = np.max(np.abs(A.T @ b)) / A.shape[0]
    lams = jnp.asarray(np.geomspace(0.02, 0.8, 6) * lam_max)
    f = ol.losses.least_squares_objective(A, b)
    x0 = jnp.zeros(A.shape[1])

    @jax.jit
    def path(lams):
        return jax.vmap(lambda lam: ol.pig(f, ol.prox.l1(lam), x0, beta=0.5, maxiter=4000, tol=1e-14,
                                           jit=True))(lams)

    out = path(lams)
    assert out.state.x.shape == (6, A.shape[1])
    for i in range(6):
        _, x_star = lasso_optimum(A, b, float(lams[i]))
        np.testing.assert_allclose(np.asarray(out.state.x[i]), x_star, atol=1e-6)


def test_pig_blocks_general_function_uses_block_hessian_estimate():
    rng = np.random.default_rng(5)
    M = rng.normal(size=(40, 12))
    Q = M.T @ M / 40
    c = rng.normal(size=12)

    def fun(blocks):
        x = jnp.concatenate(blocks)
        return 0.5 * x @ jnp.asarray(Q) @ x - jnp.asarray(c) @ x

    res = ol.pig_blocks(fun, [ol.prox.zero(), ol.prox.nonneg()], [np.zeros(5), np.zeros(7)], maxiter=4000,
                        tol=1e-14, progress=False)
    # block Lipschitz constants are the norms of the diagonal Hessian blocks
    Ls = res.trace.meta["lipschitz"]
    np.testing.assert_allclose(Ls, [np.linalg.eigvalsh(Q[:5, :5]).max(), np.linalg.eigvalsh(Q[5:, 5:]).max()],
                               rtol=1e-5)
    x = np.concatenate([np.asarray(p) for p in res.params])
    assert np.all(x[5:] >= 0)
    # KKT of min ½xᵀQx − cᵀx s.t. x[5:] ≥ 0
    grad = Q @ x - c
    np.testing.assert_allclose(grad[:5], 0, atol=1e-7)
    assert np.all(grad[5:] >= -1e-7) and np.all(np.abs(grad[5:] * x[5:]) <= 1e-7)


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    A, b, lam = lasso_data()
    f = ol.losses.least_squares_objective(A, b)
    g = ol.prox.l1(lam)
    x0 = np.zeros(40)
    with pytest.raises(ValueError, match="step must be > 0"):
        ol.pig(f, g, x0, step=0.0)
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\)"):
        ol.pig(f, g, x0, beta=1.0)
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\)"):
        ol.pig(f, g, x0, beta=-0.1)
    L = float(f.lipschitz())
    with pytest.raises(ValueError, match=r"2\(1 − β\)/L"):
        ol.pig(f, g, x0, beta=0.5, step=1.5 / L)
    ol.pig(f, g, x0, beta=0.5, step=1.5 / L, allow_unsafe_step=True, maxiter=5, progress=False)  # overridden
    with pytest.raises(TypeError, match="prox"):
        ol.pig(f, object(), x0)
    with pytest.raises(TypeError, match="scalar"):
        ol.pig(lambda x: x**2, g, x0, step=0.1)
    with pytest.raises(TypeError, match="floating|differentiable"):
        ol.pig(lambda x: jnp.sum(x > 0), g, x0, step=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        ol.pig(f, g, np.zeros(40, int))
    with pytest.raises(ValueError, match=r"x0 has shape \(39,\).*must have shape \(40,\)"):
        ol.pig(f, g, np.zeros(39))
    with pytest.raises(ValueError, match="beta_schedule"):
        ol.pig(f, g, x0, beta_schedule="linear")
    with pytest.raises(ValueError, match=r"beta_schedule\(k\)"):
        ol.pig(f, g, x0, beta_schedule=lambda k: 1.2 + 0.0 * k)
    with pytest.raises(ValueError, match="not differentiable|not smooth|Lipschitz"):
        ol.pig(ol.losses.empirical_risk("hinge", A, np.sign(b)), g, x0)
    # blocks
    parts = [np.zeros(20), np.zeros(20)]
    with pytest.raises(ValueError, match="same nonzero length"):
        ol.pig_blocks(f, [g], parts)
    with pytest.raises(ValueError, match="sum to 39"):
        ol.pig_blocks(f, [g, g], [np.zeros(20), np.zeros(19)])
    with pytest.raises(TypeError, match="share one dtype"):
        ol.pig_blocks(f, [g, g], [np.zeros(20), np.zeros(20, np.float32)])
    with pytest.raises(ValueError, match="order"):
        ol.pig_blocks(f, [g, g], parts, order="greedy")
    with pytest.raises(ValueError, match=r"beta\[1\]"):
        ol.pig_blocks(f, [g, g], parts, beta=[0.5, 1.0])
    with pytest.raises(TypeError, match=r"gs\[1\]"):
        ol.pig_blocks(f, [g, None], parts)
