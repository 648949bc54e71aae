"""ISTA and FISTA against scikit-learn's Lasso, divergence handling, vmap over a λ path, bad input."""
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
    lam = 0.05 * np.max(np.abs(A.T @ b)) / n
    return A, b, lam


@pytest.mark.parametrize("solver,kw,maxiter", [
    ("ista", {}, 20000), ("fista", {}, 3000), ("fista", {"backtracking": True}, 3000),
    ("ista", {"backtracking": True}, 20000)])
def test_reaches_sklearn_lasso_objective_to_1e8(solver, kw, maxiter):
    A, b, lam = lasso_data()
    f_star, x_star = lasso_optimum(A, b, lam)
    res = getattr(ol, solver)(ol.losses.least_squares_objective(A, b), ol.prox.l1(lam), np.zeros(A.shape[1]),
                              maxiter=maxiter, tol=1e-14, f_star=f_star, progress=False, **kw)
    rel = (res.trace.last("objective") - f_star) / abs(f_star)
    assert abs(rel) <= 1e-8, rel
    np.testing.assert_allclose(np.asarray(res.params), x_star, atol=1e-5)
    assert res.trace.last("gap") == pytest.approx(res.trace.last("objective") - f_star, abs=1e-15)


def test_fista_faster_than_ista_on_an_ill_conditioned_problem():
    rng = np.random.default_rng(1)
    d = 200
    cov = 0.95 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))  # AR(1) correlated features
    A = rng.normal(size=(100, d)) @ np.linalg.cholesky(cov).T
    b = A[:, :5].sum(axis=1) + 0.1 * rng.normal(size=100)
    lam = 0.01 * np.max(np.abs(A.T @ b)) / 100
    f_star, _ = lasso_optimum(A, b, lam)
    f, g, x0 = ol.losses.least_squares_objective(A, b), ol.prox.l1(lam), np.zeros(d)
    ista = ol.ista(f, g, x0, maxiter=200, tol=0, progress=False, f_star=f_star)
    fista = ol.fista(f, g, x0, maxiter=200, tol=0, progress=False, f_star=f_star)
    assert 0 < fista.trace.last("gap") < 0.1 * ista.trace.last("gap")


def test_plain_callable_f_and_backtracking_without_lipschitz():
    A, b, lam = lasso_data(seed=2)
    f_star, _ = lasso_optimum(A, b, lam)
    A_j, b_j = jnp.asarray(A), jnp.asarray(b)

    def f(x):
        return 0.5 * jnp.mean((A_j @ x - b_j) ** 2)

    with pytest.raises(ValueError, match="backtracking"):
        ol.fista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), maxiter=10)
    res = ol.fista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), backtracking=True, maxiter=3000, tol=1e-14,
                   progress=False)
    assert abs(res.trace.last("objective") - f_star) <= 1e-8 * abs(f_star)


def test_diverging_step_reports_diverged_with_finite_params():
    A, b, lam = lasso_data()
    L = np.linalg.norm(A, 2) ** 2 / A.shape[0]
    res = ol.ista(ol.losses.least_squares_objective(A, b), ol.prox.l1(lam), np.zeros(A.shape[1]), step=10.0 / L,
                  maxiter=100000, progress=False)
    assert res.status == "diverged"
    assert np.all(np.isfinite(np.asarray(res.params)))
    assert res.n_iter < 100000


def test_vmap_over_8_lambdas_matches_serial_runs():
    A, b, _ = lasso_data(seed=3)
    lam_max = np.max(np.abs(A.T @ b)) / A.shape[0]
    lams = jnp.asarray(np.geomspace(0.02, 0.8, 8) * lam_max)
    f = ol.losses.least_squares_objective(A, b)
    x0 = jnp.zeros(A.shape[1])

    @jax.jit
    def path(lams):
        return jax.vmap(lambda lam: ol.fista(f, ol.prox.l1(lam), x0, maxiter=2000, tol=1e-13, jit=True))(lams)

    out = path(lams)
    assert out.state.x.shape == (8, A.shape[1])
    for i in range(8):
        f_star, x_star = lasso_optimum(A, b, float(lams[i]))
        np.testing.assert_allclose(np.asarray(out.state.x[i]), x_star, atol=1e-6)
    # sparsity decreases along the path (larger λ -> fewer nonzeros)
    nnz = np.sum(np.abs(np.asarray(out.state.x)) > 1e-8, axis=1)
    assert nnz[0] > nnz[-1]


def test_bad_input_messages():
    A, b, lam = lasso_data()
    f = ol.losses.least_squares_objective(A, b)
    with pytest.raises(ValueError, match="step"):
        ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1]), step=-1.0)
    with pytest.raises(ValueError, match="x0"):
        ol.ista(f, ol.prox.l1(lam), np.full(A.shape[1], np.nan))
    with pytest.raises(TypeError, match="x0"):
        ol.ista(f, ol.prox.l1(lam), np.zeros(A.shape[1], dtype=int))
    with pytest.raises(TypeError, match="g must be"):
        ol.ista(f, lambda x: x, np.zeros(A.shape[1]))
    with pytest.raises(TypeError, match="scalar"):
        ol.ista(lambda x: x**2, ol.prox.l1(lam), np.zeros(3), step=0.1)
