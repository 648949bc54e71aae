"""Jacobi multi-block PIG (ol.pig_jacobi, and pig_blocks(parallel=...)) over 4 simulated devices: Sync is the Jacobi
recursion (checked against a plain NumPy loop) and reaches scikit-learn's Lasso optimum, bounded staleness reaches the
same objective with the smaller default step, and the Jacobi step condition (full L, not block L_i) is needed.
(Sync = serial and SimulatedAsync(max_delay=0) = Sync bit for bit are in test_parallel_contract.py.)"""
import jax
import numpy as np
import pytest

import optlab as ol
from optlab.parallel import Async, Sync
from optlab.references import lasso_optimum

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")


def lasso(n=90, d=38, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) + 0.5 * rng.normal(size=(n, 1))   # a common factor: correlated columns
    w = np.zeros(d)
    w[:6] = rng.normal(size=6) * 2
    b = A @ w + 0.05 * rng.normal(size=n)
    lam = 0.1 * np.max(np.abs(A.T @ b)) / n
    return A, b, lam


def blocks(d, s=6):
    return np.array_split(np.zeros(d), s)   # 38 = 7+7+6+6+6+6: uneven blocks, 2/2/1/1 blocks per worker


def numpy_jacobi(A, b, lam, sizes, steps, betas, iters):
    """Plain Jacobi PIG: every block from the same iterate (no workers, no JAX)."""
    n = A.shape[0]
    cuts = np.cumsum([0] + list(sizes))
    x = np.zeros(A.shape[1])
    x_prev = x.copy()
    for _ in range(iters):
        grad = A.T @ (A @ x - b) / n
        new = np.empty_like(x)
        for i in range(len(sizes)):
            sl = slice(cuts[i], cuts[i + 1])
            v = x[sl] - steps[i] * grad[sl] + betas[i] * (x[sl] - x_prev[sl])
            new[sl] = np.sign(v) * np.maximum(np.abs(v) - steps[i] * lam, 0)
        x_prev, x = x, new
    return x


def test_sync_is_the_jacobi_recursion_for_any_number_of_workers():
    A, b, lam = lasso()
    f, parts = ol.losses.least_squares_objective(A, b), blocks(A.shape[1])
    betas = [0.5, 0.3, 0.0, 0.6, 0.5, 0.2]
    runs = {W: ol.pig_blocks(f, [ol.prox.l1(lam)] * 6, parts, beta=betas, maxiter=80, tol=0, progress=False,
                             parallel=Sync(W)) for W in (2, 4)}
    steps = runs[4].trace.meta["steps"]
    L = runs[4].trace.meta["lipschitz"]
    np.testing.assert_allclose(steps, [(1 - be) / L for be in betas])   # the Jacobi default: full L
    ref = numpy_jacobi(A, b, lam, [p.size for p in parts], steps, betas, 80)
    for W, res in runs.items():
        assert res.n_iter == 80
        x = np.concatenate([np.asarray(p) for p in res.params])
        np.testing.assert_allclose(x, ref, rtol=1e-9, atol=1e-12)    # must show: ≤ 1e-6 in float64
    # uniform speeds: a round costs a worker's share of the rows (here blocks): ceil(6/4) = 2 of 6
    assert runs[4].trace["sim_time"][-1] == pytest.approx(80 * 2 / 6)


def test_sync_reaches_sklearn_lasso_optimum():
    A, b, lam = lasso(seed=1)
    f_star, x_star = lasso_optimum(A, b, lam)
    f = ol.losses.least_squares_objective(A, b)
    res = ol.pig_blocks(f, [ol.prox.l1(lam)] * 6, blocks(A.shape[1]), beta=0.5, maxiter=5000, tol=1e-13,
                        f_star=f_star, progress=False, parallel=Sync(4))
    assert res.status == "converged"
    assert abs(res.trace.last("objective") - f_star) <= 1e-4 * abs(f_star)
    assert abs(res.trace.last("gap")) <= 1e-10 * abs(f_star)            # measured: ~1e-16 relative
    np.testing.assert_allclose(np.concatenate(res.params), x_star, atol=1e-6)


def test_async_zero_delay_equals_sync_exactly_and_bounded_delay_reaches_the_optimum():
    A, b, lam = lasso(seed=2)
    f_star, _ = lasso_optimum(A, b, lam)
    f, parts, gs = ol.losses.least_squares_objective(A, b), blocks(A.shape[1]), [ol.prox.l1(lam)] * 6
    kw = dict(beta=0.4, tol=0, progress=False, f_star=f_star)
    sync = ol.pig_blocks(f, gs, parts, maxiter=60, parallel=Sync(4, speeds="straggler"), **kw)
    asyn0 = ol.pig_blocks(f, gs, parts, maxiter=60, parallel=Async(4, max_delay=0, speeds="straggler"), **kw)
    np.testing.assert_array_equal(np.concatenate(asyn0.params), np.concatenate(sync.params))
    np.testing.assert_array_equal(asyn0.trace["sim_time"], sync.trace["sim_time"])
    # bounded staleness: default step (1-β)/(L(1+2·3)); the straggler is waited for only when its age hits 3
    asyn = ol.pig_blocks(f, gs, parts, maxiter=4000, parallel=Async(4, max_delay=3, speeds="straggler"), **kw)
    assert asyn.trace.meta["steps"][0] == pytest.approx(sync.trace.meta["steps"][0] / 7)
    assert abs(asyn.trace.last("objective") - f_star) <= 1e-3 * abs(f_star)
    assert int(np.max(np.asarray(asyn.state.age))) <= 3
    assert np.min(asyn.trace["arrived"][1:]) < 4     # some rounds really were partial


def test_jacobi_needs_the_full_lipschitz_step():
    # two identical column blocks: L = 2 L_i. Gauss–Seidel with γ = 1.5/L_i converges; Jacobi with it does not.
    rng = np.random.default_rng(3)
    B = rng.normal(size=(60, 5))
    A = np.hstack([B, B])
    b = rng.normal(size=60)
    f = ol.losses.least_squares_objective(A, b)
    L_i = np.linalg.norm(B, 2) ** 2 / 60
    parts, gs = [np.zeros(5), np.zeros(5)], [ol.prox.zero()] * 2
    gs_run = ol.pig_blocks(f, gs, parts, beta=0.0, step=1.5 / L_i, maxiter=3000, tol=1e-12, progress=False)
    assert gs_run.status == "converged"
    with pytest.raises(ValueError, match="step"):
        ol.pig_blocks(f, gs, parts, beta=0.0, step=1.5 / L_i, progress=False, parallel=Sync(2))
    jac = ol.pig_blocks(f, gs, parts, beta=0.0, step=1.5 / L_i, maxiter=3000, tol=1e-12, progress=False,
                        parallel=Sync(2), allow_unsafe_step=True)
    assert jac.status == "diverged"


def test_bad_parallel_input_for_blocks():
    A, b, lam = lasso()
    f = ol.losses.least_squares_objective(A, b)
    with pytest.raises(ValueError, match="only 3 rows"):
        ol.pig_blocks(f, [ol.prox.l1(lam)] * 3, blocks(A.shape[1], 3), progress=False, parallel=Sync(4))
    with pytest.raises(ValueError, match="order"):
        ol.pig_blocks(f, [ol.prox.l1(lam)] * 6, blocks(A.shape[1]), order="random", progress=False,
                      parallel=Sync(2))
    with pytest.raises(TypeError, match="empirical_risk"):
        ol.pig_blocks(lambda xs: sum((x ** 2).sum() for x in xs), [ol.prox.l1(lam)] * 2,
                      [np.zeros(3), np.zeros(3)], step=0.1, progress=False, parallel=Sync(2))
    with pytest.raises(ValueError, match="non-empty"):
        ol.pig_blocks(f, [ol.prox.l1(lam)] * 3, [np.zeros(0), np.zeros(19), np.zeros(19)], progress=False,
                      parallel=Sync(2))
    with pytest.raises(ValueError, match="max_delay"):
        Async(2, max_delay=-1)


def test_async_checkpoint_resume_and_jit_mode(tmp_path):
    A, b, lam = lasso(seed=2)
    f, parts, gs = ol.losses.least_squares_objective(A, b), blocks(A.shape[1]), [ol.prox.l1(lam)] * 6
    kw = dict(beta=0.4, tol=0, log_every=10, parallel=Async(4, max_delay=3, speeds="straggler"))
    full = ol.pig_blocks(f, gs, parts, maxiter=60, progress=False, **kw)
    ol.pig_blocks(f, gs, parts, maxiter=30, progress=False, checkpoint=tmp_path / "c.npz", **kw)
    resumed = ol.pig_blocks(f, gs, parts, maxiter=60, progress=False, resume=tmp_path / "c.npz", **kw)
    for a, c in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    out = ol.pig_blocks(f, gs, parts, maxiter=60, jit=True, **kw)
    np.testing.assert_allclose(np.asarray(out.state.inner.blocks.x), np.asarray(full.state.inner.blocks.x),
                               rtol=1e-12, atol=1e-14)
