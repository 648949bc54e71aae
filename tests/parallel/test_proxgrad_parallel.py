"""Data-parallel ISTA/FISTA over 4 simulated CPU devices (tests/conftest.py sets the device count):
Sync equals the serial iterates, Async(max_delay=0) equals Sync, bounded-staleness Async reaches the
same objective, and the simulated clocks behave as the model says."""
import jax
import numpy as np
import pytest

import optlab as ol
from optlab.parallel import Async, Sync, async_round, worker_times
from optlab.references import lasso_optimum

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")


def lasso(n=203, d=60, seed=0, corr=0.9):  # n not divisible by 4: the last shard is padded
    rng = np.random.default_rng(seed)
    cov = corr ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))  # correlated: slow, no exact fixed point
    A = rng.normal(size=(n, d)) @ np.linalg.cholesky(cov).T
    b = A[:, :4] @ np.array([2.0, -1.0, 0.5, 1.5]) + 0.1 * rng.normal(size=n)
    lam = 0.01 * np.max(np.abs(A.T @ b)) / n
    return A, b, lam


@pytest.mark.parametrize("solver", ["ista", "fista"])
def test_sync_reproduces_serial_iterates(solver):
    A, b, lam = lasso()
    f, g, x0 = ol.losses.least_squares_objective(A, b), ol.prox.l1(lam), np.zeros(A.shape[1])
    serial = getattr(ol, solver)(f, g, x0, maxiter=150, tol=0, log_every=50, progress=False)
    par = getattr(ol, solver)(f, g, x0, maxiter=150, tol=0, log_every=50, progress=False, parallel=Sync(4))
    assert par.n_iter == serial.n_iter == 150
    np.testing.assert_allclose(np.asarray(par.params), np.asarray(serial.params), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(par.trace["objective"], serial.trace["objective"], rtol=1e-12)
    # uniform speeds: a round costs one shard's share of a full gradient, ceil(203/4)/203
    assert par.trace["sim_time"][-1] == pytest.approx(par.n_iter * 51 / 203)


def test_sync_logistic_with_l2_matches_serial():
    A, b, _ = lasso(seed=1)
    labels = np.sign(b)
    f = ol.losses.logistic_objective(A, labels, l2=1e-2)
    serial = ol.ista(f, ol.prox.l1(1e-3), np.zeros(A.shape[1]), maxiter=200, tol=0, progress=False)
    par = ol.ista(f, ol.prox.l1(1e-3), np.zeros(A.shape[1]), maxiter=200, tol=0, progress=False, parallel=Sync(4))
    np.testing.assert_allclose(np.asarray(par.params), np.asarray(serial.params), rtol=1e-10, atol=1e-12)


def test_async_with_zero_delay_equals_sync_exactly():
    A, b, lam = lasso()
    f, g, x0 = ol.losses.least_squares_objective(A, b), ol.prox.l1(lam), np.zeros(A.shape[1])
    for speeds in ("uniform", "straggler"):
        sync = ol.ista(f, g, x0, maxiter=100, tol=0, progress=False, parallel=Sync(4, speeds=speeds))
        asyn = ol.ista(f, g, x0, maxiter=100, tol=0, progress=False,
                       parallel=Async(4, max_delay=0, speeds=speeds))
        np.testing.assert_array_equal(np.asarray(asyn.params), np.asarray(sync.params))
        np.testing.assert_array_equal(asyn.trace["sim_time"], sync.trace["sim_time"])


def test_async_bounded_delay_reaches_the_optimum_and_is_ahead_in_simulated_time():
    A, b, lam = lasso(d=30, corr=0.0)
    f_star, _ = lasso_optimum(A, b, lam)
    f, g, x0 = ol.losses.least_squares_objective(A, b), ol.prox.l1(lam), np.zeros(A.shape[1])
    L = f.lipschitz()
    # delayed gradients need a smaller step: 1/(L (1 + 2·max_delay)) is a standard safe choice
    asyn = ol.ista(f, g, x0, step=1 / (7 * L), maxiter=1500, tol=0, progress=False, f_star=f_star,
                   parallel=Async(4, max_delay=3, speeds="straggler"))
    assert asyn.status in ("maxiter", "converged")
    assert abs(asyn.trace.last("objective") - f_star) <= 1e-3 * abs(f_star)
    assert int(np.max(np.asarray(asyn.state.age))) <= 3
    sync = ol.ista(f, g, x0, step=1 / (7 * L), maxiter=1500, tol=0, progress=False,
                   parallel=Sync(4, speeds="straggler"))
    # the straggler (τ = 4) paces Sync at 4 time units per iteration; Async waits for it every 4th round
    assert asyn.trace["sim_time"][-1] < 0.5 * sync.trace["sim_time"][-1]


def test_async_round_model_by_hand():
    import jax.numpy as jnp

    tau = jnp.array([1.0, 1.0, 1.0, 4.0])
    ready, age, clock = tau, jnp.zeros(4, jnp.int32), jnp.asarray(0.0)
    history = []
    for _ in range(6):
        arrived, clock, ready, age = async_round(ready, age, clock, tau, max_delay=2, min_arrivals=1)
        history.append((float(clock), np.asarray(arrived).tolist(), np.asarray(age).tolist()))
    # fast workers deliver every time unit; the slow one (τ=4) is waited for once its age reaches 2
    assert history[0] == (1.0, [True, True, True, False], [0, 0, 0, 1])
    assert history[1] == (2.0, [True, True, True, False], [0, 0, 0, 2])
    assert history[2] == (4.0, [True, True, True, True], [0, 0, 0, 0])
    assert all(a <= 2 for _, _, ages in history for a in ages)


def test_bad_parallel_arguments():
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        Sync(64)
    with pytest.raises(ValueError, match="max_delay"):
        Async(2, max_delay=-1)
    with pytest.raises(ValueError, match="min_arrivals"):
        Async(2, min_arrivals=3)
    with pytest.raises(ValueError, match="speeds"):
        worker_times(Sync(2, speeds="fast"))
    A, b, lam = lasso()
    with pytest.raises(TypeError, match="empirical_risk"):
        ol.ista(lambda x: (x**2).sum(), ol.prox.l1(lam), np.zeros(3), step=0.1, parallel=Sync(2))
