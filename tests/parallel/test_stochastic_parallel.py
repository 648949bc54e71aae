"""Data-parallel SPDHG / SPDPEG over 4 simulated devices: Sync(1) is the serial method, Sync(4) with the whole
shard as the batch is LPDHG, Sync(4) reaches the CVXPY optimum to 1e-4, Async(max_delay=0) equals Sync bit for bit,
bounded-staleness Async reaches the optimum to 1e-3 and is ahead in simulated time under a straggler."""
import jax
import numpy as np
import pytest
import scipy.sparse as sp

import optlab as ol
from optlab.parallel import Async, Sync
from optlab.references import structured_optimum

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")
MU, GAMMA = 1e-2, 0.1


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    n, d = 202, 10                  # 202 = 4 * 51 - 2: the last shard has two masked padding rows
    A = rng.normal(size=(n, d))
    w = np.repeat(rng.normal(size=2), 5) / np.sqrt(d)
    y = np.where(A @ w + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    F = ol.operators.first_difference(d)
    f_star, _ = structured_optimum(A, y, F, MU, GAMMA)
    return A, y, F, f_star


SOLVERS = {"spdhg": ol.spdhg, "spdpeg": ol.spdpeg}
KW = dict(gamma=GAMMA, variant="sc_nonuniform", progress=False)
# per-worker batch and epochs per method, shared by the tests so that the compiled steps are reused
BATCH = {"spdhg": 1, "spdpeg": 10}
EPOCHS = {"spdhg": 160, "spdpeg": 400}


def gap(res, f_star):
    return (res.trace.last("objective") - f_star) / f_star


@pytest.mark.parametrize("name", SOLVERS)
def test_one_worker_is_the_serial_method(problem, name):
    A, y, F, _ = problem
    serial = SOLVERS[name](A, y, F, MU, epochs=5, batch_size=BATCH[name], **KW)
    par = SOLVERS[name](A, y, F, MU, epochs=5, batch_size=BATCH[name], parallel=Sync(1), **KW)
    np.testing.assert_allclose(np.asarray(par.params["w"]), np.asarray(serial.params["w"]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(par.trace["objective"], serial.trace["objective"], rtol=1e-12)


def test_whole_shard_batches_are_the_batch_method(problem):
    A, y, F, _ = problem    # batch = a whole shard on every worker: the all-reduced gradient is the full gradient
    lp = ol.lpdhg(A, y, F, MU, GAMMA, variant="sc_nonuniform", maxiter=30, progress=False)
    par = ol.spdhg(A, y, F, MU, epochs=30, batch_size=51, parallel=Sync(4), **KW)
    assert par.n_iter == 30 and par.trace.meta["iters_per_epoch"] == 1
    np.testing.assert_allclose(np.asarray(par.params["w"]), np.asarray(lp.params["w"]), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", SOLVERS)
def test_sync_reaches_the_optimum(problem, name):
    A, y, F, f_star = problem
    res = SOLVERS[name](A, y, F, MU, epochs=EPOCHS[name], batch_size=BATCH[name], log_every=EPOCHS[name],
                        parallel=Sync(4), **KW)
    assert 0 <= gap(res, f_star) <= 1e-4
    assert res.trace.meta["global_batch"] == 4 * BATCH[name]


@pytest.mark.parametrize("name", SOLVERS)
def test_async_without_delay_equals_sync_exactly(problem, name):
    A, y, F, _ = problem
    kw = dict(epochs=4, batch_size=BATCH[name], **KW)
    sync = SOLVERS[name](A, y, F, MU, parallel=Sync(4, speeds="straggler"), **kw)
    asyn = SOLVERS[name](A, y, F, MU, parallel=Async(4, max_delay=0, speeds="straggler"), **kw)
    np.testing.assert_array_equal(np.asarray(asyn.params["w"]), np.asarray(sync.params["w"]))
    np.testing.assert_array_equal(asyn.trace["sim_time"], sync.trace["sim_time"])


@pytest.mark.parametrize("name", SOLVERS)
def test_async_bounded_delay_reaches_the_optimum_ahead_in_simulated_time(problem, name):
    A, y, F, f_star = problem
    kw = dict(epochs=EPOCHS[name], batch_size=BATCH[name], log_every=EPOCHS[name], **KW)
    asyn = SOLVERS[name](A, y, F, MU, parallel=Async(4, max_delay=3, speeds="straggler"), **kw)
    assert 0 <= gap(asyn, f_star) <= 1e-3
    assert int(np.max(np.asarray(asyn.state[2].age))) <= 3
    sync = SOLVERS[name](A, y, F, MU, parallel=Sync(4, speeds="straggler"), **kw)
    assert asyn.trace.last("sim_time") < 0.5 * sync.trace.last("sim_time")


def test_sparse_rows_are_sharded_too(problem):
    A, y, F, _ = problem
    A = A * (np.abs(A) > 1.5)       # at most a few nonzeros per row: stored as padded sparse rows
    dense = ol.spdhg(A, y, F, MU, epochs=3, parallel=Sync(4), **KW)
    sparse = ol.spdhg(sp.csr_matrix(A), y, F, MU, epochs=3, parallel=Sync(4), **KW)
    assert sparse.trace.meta["sparse_rows"] and not dense.trace.meta["sparse_rows"]
    np.testing.assert_allclose(np.asarray(sparse.params["w"]), np.asarray(dense.params["w"]), rtol=1e-12,
                               atol=1e-14)


def test_bad_input(problem):
    A, y, F, _ = problem
    with pytest.raises(ValueError, match="larger than a worker's shard"):
        ol.spdhg(A, y, F, MU, batch_size=60, parallel=Sync(4), progress=False)
    with pytest.raises(TypeError, match="parallel must be"):
        ol.spdpeg(A, y, F, MU, parallel="sync", progress=False)
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        ol.spdhg(A, y, F, MU, parallel=Sync(64), progress=False)
    with pytest.raises(ValueError, match="max_delay"):
        ol.spdhg(A, y, F, MU, parallel=Async(4, max_delay=-1), progress=False)
