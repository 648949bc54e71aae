"""Data-parallel stochastic solvers beyond the registry contract (tests/parallel/test_parallel_contract.py): several
blocks per worker with padding rows, whole-block batches are the batch method (LPDHG), SAG-ADMM's per-row table
split over workers, the batch references in parallel, one-iteration harness steps under simulated asynchrony
(max_delay=0 is Sync bit for bit; bounded staleness is ahead in simulated time under a straggler), sparse rows, and
bad input."""
import jax
import numpy as np
import pytest
import scipy.sparse as sp

import optlab as ol
from optlab.parallel import SimulatedAsync, Sync

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")
MU, GAMMA = 1e-2, 0.1
KW = dict(gamma=GAMMA, variant="sc_nonuniform", progress=False)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    n, d = 202, 10                  # 202 = 4 * 51 - 2 = 8 * 26 - 6: the last block has padding rows (weight 0)
    A = rng.normal(size=(n, d))
    w = np.repeat(rng.normal(size=2), 5) / np.sqrt(d)
    y = np.where(A @ w + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    return A, y, ol.operators.first_difference(d)


def w_of(res):
    return np.asarray(res.params["w"])


@pytest.mark.parametrize("name", ["spdhg", "spdpeg"])
def test_two_blocks_per_worker_with_padding_is_the_serial_run(problem, name):
    A, y, F = problem
    fn = getattr(ol, name)
    serial = fn(A, y, F, MU, epochs=4, batch_size=2, n_blocks=8, **KW)
    par = fn(A, y, F, MU, epochs=4, batch_size=2, n_blocks=8, parallel=Sync(4), **KW)
    assert par.trace.meta["padding_rows"] == 6 and par.trace.meta["global_batch"] == 16
    np.testing.assert_allclose(w_of(par), w_of(serial), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(par.trace["objective"], serial.trace["objective"], rtol=1e-12)


def test_whole_block_batches_are_the_batch_method(problem):
    A, y, F = problem    # every row of every block in each iteration (padding rows weighted 0): the full gradient
    lp = ol.lpdhg(A, y, F, MU, GAMMA, variant="sc_nonuniform", maxiter=30, progress=False)
    # burn_in=0: LPDHG averages from the start (spdhg's default averages the last half of the epochs)
    par = ol.spdhg(A, y, F, MU, epochs=30, batch_size=51, parallel=Sync(4), burn_in=0.0, **KW)
    assert par.n_iter == 30 and par.trace.meta["iters_per_epoch"] == 1
    np.testing.assert_allclose(w_of(par), w_of(lp), rtol=1e-10, atol=1e-13)


def test_sag_admm_table_split_over_workers(problem):
    A, y, F = problem
    kw = dict(epochs=3, batch_size=5, progress=False)
    serial = ol.sag_admm(A, y, F, MU, GAMMA, n_blocks=4, **kw)
    par = ol.sag_admm(A, y, F, MU, GAMMA, parallel=Sync(4), **kw)
    np.testing.assert_allclose(w_of(par), w_of(serial), rtol=1e-10, atol=1e-13)
    table = np.asarray(par.state.inner.rows.table)[:202]
    np.testing.assert_allclose(np.asarray(par.state.inner.core.aux), table @ A, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["lpdhg", "egadm"])
def test_batch_references_in_parallel(problem, name):
    A, y, F = problem
    fn = getattr(ol, name)
    serial = fn(A, y, F, MU, gamma=GAMMA, maxiter=20, progress=False)
    par = fn(A, y, F, MU, gamma=GAMMA, maxiter=20, progress=False, parallel=Sync(4))
    np.testing.assert_allclose(w_of(par), w_of(serial), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["spdhg", "spdpeg"])
def test_one_iteration_steps_async(problem, name):
    A, y, F = problem     # segments = 10 iterations per epoch: every harness step is one (possibly stale) iteration
    fn = getattr(ol, name)
    kw = dict(epochs=4, batch_size=5, segments=10, **KW)
    sync = fn(A, y, F, MU, parallel=Sync(4, speeds="straggler"), **kw)
    exact = fn(A, y, F, MU, parallel=SimulatedAsync(4, max_delay=0, speeds="straggler"), **kw)
    np.testing.assert_array_equal(w_of(exact), w_of(sync))
    np.testing.assert_array_equal(exact.trace["sim_time"], sync.trace["sim_time"])
    stale = fn(A, y, F, MU, parallel=SimulatedAsync(4, max_delay=3, speeds="straggler"), **kw)
    assert int(np.max(np.asarray(stale.state.age))) <= 3
    assert not np.array_equal(w_of(stale), w_of(sync))              # stale gradients were used
    assert stale.trace.last("sim_time") < 0.5 * sync.trace.last("sim_time")
    assert stale.trace.last("objective") < stale.trace["objective"][0]


def test_sparse_rows_are_sharded_too(problem):
    A, y, F = problem
    A = A * (np.abs(A) > 1.5)       # at most a few nonzeros per row: stored as padded sparse rows
    dense = ol.spdhg(A, y, F, MU, epochs=3, parallel=Sync(4), **KW)
    sparse = ol.spdhg(sp.csr_matrix(A), y, F, MU, epochs=3, parallel=Sync(4), **KW)
    assert sparse.trace.meta["sparse_rows"] and not dense.trace.meta["sparse_rows"]
    np.testing.assert_allclose(w_of(sparse), w_of(dense), rtol=1e-12, atol=1e-14)


def test_bad_input(problem):
    A, y, F = problem
    with pytest.raises(ValueError, match="batch_size"):
        ol.spdhg(A, y, F, MU, batch_size=60, parallel=Sync(4), progress=False)
    with pytest.raises(ValueError, match="multiple of the number of workers"):
        ol.opg_admm(A, y, F, MU, n_blocks=6, parallel=Sync(4), progress=False)
    with pytest.raises(TypeError, match="parallel must be"):
        ol.spdpeg(A, y, F, MU, parallel="sync", progress=False)
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        ol.spdhg(A, y, F, MU, parallel=Sync(64), progress=False)
    with pytest.raises(ValueError, match="max_delay"):
        ol.spdhg(A, y, F, MU, parallel=SimulatedAsync(4, max_delay=-1), progress=False)
