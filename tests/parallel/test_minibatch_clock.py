"""The simulated clock and simulated asynchrony of the sampling methods (SPDHG) against the full-gradient ones.

A sampling method's per-worker work per iteration is its blocks' mini-batches, which do not shrink as rows are split
over more workers (``Algorithm.minibatch``): ``Sync(W)`` with one block per worker costs 1 per iteration whatever
``W``, while proximal gradient keeps the rows-share clock ``speed · rows_w / n``. A SimulatedAsync run whose every
step is a barrier (multi-iteration stochastic segments) is the Sync run and says so; with one iteration per step it
is really asynchronous: ``max_delay=0`` is Sync bit for bit, ``max_delay=2`` with a straggler differs from Sync, is
ahead in simulated time and reaches the optimum (CVXPY, independent) of the convex problem.
"""
import warnings

import jax
import numpy as np
import pytest

import optlab as ol
from optlab.parallel import SimulatedAsync, Sync, worker_times
from optlab.references import structured_optimum

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")
MU, GAMMA, BATCH = 1e-2, 0.1, 5
KW = dict(gamma=GAMMA, variant="sc_nonuniform", batch_size=BATCH, progress=False)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    n, d = 202, 10                     # 202 rows: 2 blocks of 101, 4 of 51 (2 padding rows)
    A = rng.normal(size=(n, d))
    w = np.repeat(rng.normal(size=2), 5) / np.sqrt(d)
    y = np.where(A @ w + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    return A, y, ol.operators.first_difference(d)


def per_epoch(n, blocks):
    return -(-n // blocks) // BATCH


def one_iteration_steps(A, W):
    """``segments`` = iterations per epoch with one block per worker: every harness step is one iteration."""
    return per_epoch(A.shape[0], W)


@pytest.mark.parametrize("W", [1, 2, 4])
def test_sync_clock_counts_minibatch_iterations(problem, W):
    A, y, F = problem
    res = ol.spdhg(A, y, F, MU, epochs=2, segments=one_iteration_steps(A, W), parallel=Sync(W), **KW)
    assert res.n_iter == 2 * per_epoch(A.shape[0], W)
    # one worker's mini-batch (5 rows of its block) per iteration, whatever W: 1 per iteration at uniform speeds
    np.testing.assert_array_equal(res.trace["sim_time"][1:], res.trace.iters[1:].astype(float))  # [0]: no step yet


def test_sync_clock_counts_blocks_held_and_the_slowest_worker(problem):
    A, y, F = problem
    # four blocks on two workers: each worker draws from 2 blocks per iteration; the straggler (speed 4) paces
    res = ol.spdhg(A, y, F, MU, epochs=1, n_blocks=4, segments=per_epoch(A.shape[0], 4),
                   parallel=Sync(2, speeds="straggler"), **KW)
    np.testing.assert_array_equal(res.trace["sim_time"][1:], 4.0 * 2 * res.trace.iters[1:])
    # a multi-iteration step is charged its iterations: 2 segments of 5 iterations, one worker, one block
    seg = ol.spdhg(A, y, F, MU, epochs=2, n_blocks=2, segments=2, parallel=Sync(1), **KW)
    assert seg.trace.meta["iters_per_epoch"] == 20
    np.testing.assert_array_equal(seg.trace["sim_time"][1:], 2 * 10.0 * seg.trace.iters[1:])


def test_proxgrad_clock_is_the_rows_share(problem):
    A, y, _ = problem
    f = ol.losses.logistic_objective(A, y)
    executor = Sync(4, speeds="straggler")
    res = ol.ista(f, ol.prox.l1(1e-2), np.zeros(A.shape[1]), step=1 / f.lipschitz(), maxiter=12, tol=0.0,
                  log_every=1, progress=False, parallel=executor)
    tau = np.max(worker_times(executor) * 51 / 202)       # the formula before sampling methods had their own
    np.testing.assert_array_equal(res.trace["sim_time"][1:], np.cumsum(np.full(12, tau)))


def test_async_without_delay_is_sync_bit_for_bit(problem):
    A, y, F = problem
    kw = dict(epochs=3, segments=one_iteration_steps(A, 2), **KW)
    sync = ol.spdhg(A, y, F, MU, parallel=Sync(2, speeds="straggler"), **kw)
    exact = ol.spdhg(A, y, F, MU, parallel=SimulatedAsync(2, max_delay=0, speeds="straggler"), **kw)
    np.testing.assert_array_equal(np.asarray(exact.params["w"]), np.asarray(sync.params["w"]))
    np.testing.assert_array_equal(exact.trace["objective"], sync.trace["objective"])
    np.testing.assert_array_equal(exact.trace["sim_time"], sync.trace["sim_time"])


def test_bounded_delay_with_a_straggler_is_asynchronous_and_reaches_the_optimum(problem):
    A, y, F = problem
    f_star, _ = structured_optimum(A, y, F, MU, GAMMA)
    kw = dict(epochs=40, segments=one_iteration_steps(A, 2), **KW)
    sync = ol.spdhg(A, y, F, MU, parallel=Sync(2, speeds="straggler"), **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # one-iteration steps: no barrier, no warning
        stale = ol.spdhg(A, y, F, MU, parallel=SimulatedAsync(2, max_delay=2, speeds="straggler"), **kw)
    assert stale.n_iter == sync.n_iter
    assert int(np.max(np.asarray(stale.state.age))) <= 2
    assert not np.array_equal(np.asarray(stale.params["w"]), np.asarray(sync.params["w"]))   # stale gradients
    # the straggler (speed 4) paces every Sync round; Async waits for it only every third iteration
    assert sync.trace.last("sim_time") == 4.0 * sync.n_iter
    assert stale.trace.last("sim_time") < 0.5 * sync.trace.last("sim_time")
    for res in (sync, stale):
        assert abs(res.trace.last("objective") - f_star) <= 2e-3 * abs(f_star), (res.trace.last("objective"), f_star)


def test_async_of_multi_iteration_steps_warns_that_it_is_sync(problem):
    A, y, F = problem
    kw = dict(epochs=2, segments=2, **KW)
    with pytest.warns(RuntimeWarning, match="segments = iterations per epoch"):
        asyn = ol.spdhg(A, y, F, MU, parallel=SimulatedAsync(2, max_delay=2, speeds="straggler"), **kw)
    sync = ol.spdhg(A, y, F, MU, parallel=Sync(2, speeds="straggler"), **kw)
    np.testing.assert_array_equal(np.asarray(asyn.params["w"]), np.asarray(sync.params["w"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # max_delay=0 asks for the synchronous method: nothing to warn about
        ol.spdhg(A, y, F, MU, parallel=SimulatedAsync(2, max_delay=0), **kw)
