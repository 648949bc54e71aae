"""Data-parallel ADMMiRNN beyond the registry's parallel contract (tests/parallel/test_parallel_contract.py runs the
constant-ρ case on 400 rows): padded rows (203 over 4 workers) under the default adaptive guard with rejections,
the worker rows equal the serial auxiliaries row for row, SimulatedAsync(max_delay=0) equals Sync bit for bit with
the guard on, the sequence model with the Jacobi sweep and plain ADMM, bounded staleness reaches the synchronous
test accuracy within one point (nonconvex: no optimum to compare with), bad input."""
import jax
import numpy as np
import pytest

import optlab as ol
from optlab.parallel import SimulatedAsync, Sync

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")


def toy(n=203, n_test=1000, T=6, seed=0):
    """Sequence classification: the sign of sum_t sin(x_t0) + x_T1 / 2 (203 rows: the last shard is padded)."""
    rng = np.random.default_rng(seed)

    def draw(m):
        X = rng.normal(size=(m, T, 3))
        return X, (np.sin(X[:, :, 0]).sum(1) + 0.5 * X[:, -1, 1] > 0).astype(int)

    return (*draw(n), *draw(n_test))


# ρ1 = ρ2 = 0.05: steps long enough that the guard rejects some and doubles ρ1, ρ2
KW = dict(hidden=8, rho=(0.05, 0.05, 1.0), progress=False)


def close_params(a, b, rtol):
    for k in a.params:
        x, y = np.asarray(a.params[k]), np.asarray(b.params[k])
        assert np.max(np.abs(x - y)) <= rtol * np.max(np.abs(x)), k


def test_padded_rows_and_the_guard_sync_equals_serial_and_async0_equals_sync():
    X, y, Xt, yt = toy()
    kw = dict(KW, iters=30, X_test=Xt, y_test=yt, log_every=1)
    serial = ol.admm_irnn(X, y, **kw)
    sync = ol.admm_irnn(X, y, parallel=Sync(4, speeds="straggler"), **kw)
    assert sync.n_iter == serial.n_iter == 30
    close_params(serial, sync, 1e-7)      # measured: 1.1e-9 relative (b) after 30 iterations with rejections
    for m in ("augmented_lagrangian", "residual", "r1", "train_loss", "aux_loss", "test_loss", "train_acc"):
        np.testing.assert_allclose(sync.trace[m], serial.trace[m], rtol=1e-7, atol=1e-12, err_msg=m)
    # the same adaptive-schedule decisions, and there were some (rejected steps, doubled ρ1)
    np.testing.assert_array_equal(sync.trace["rejected"], serial.trace["rejected"])
    np.testing.assert_array_equal(sync.trace["rho1"], serial.trace["rho1"])
    assert np.nansum(serial.trace["rejected"]) >= 1 and serial.trace["rho1"][-1] > 0.05
    # the workers' auxiliaries and multipliers are the serial ones, row for row (padding dropped)
    for f in ("A", "S", "O", "L1", "L2", "L3"):
        serial_rows = np.asarray(getattr(serial.state.rows, f))
        np.testing.assert_allclose(np.asarray(getattr(sync.state.inner.rows, f))[: len(serial_rows)], serial_rows,
                                   atol=1e-8, err_msg=f)
    # simulated clock: the straggler (τ = 4) paces every round; a shard is ceil(203/4) = 51 rows
    np.testing.assert_allclose(sync.trace["sim_time"][1:], sync.trace.iters[1:] * 4 * 51 / 203)
    # SimulatedAsync without delay is the synchronous method, guard decisions included
    asyn = ol.admm_irnn(X, y, parallel=SimulatedAsync(4, max_delay=0, speeds="straggler"), **kw)
    for k in sync.params:
        np.testing.assert_array_equal(np.asarray(asyn.params[k]), np.asarray(sync.params[k]), err_msg=k)
    for m in ("sim_time", "augmented_lagrangian", "test_acc", "rho1", "rejected"):
        np.testing.assert_array_equal(asyn.trace[m], sync.trace[m], err_msg=m)


def test_sync_reproduces_the_serial_sequence_model_with_other_options():
    # every step an output step (task="sequence"), the Jacobi sweep, plain ADMM; 61 rows over 3 workers
    rng = np.random.default_rng(1)
    X = rng.normal(size=(61, 5, 3))
    y = (np.cumsum(X[:, :, 0], 1) > 0).astype(int)
    kw = dict(hidden=6, iters=25, task="sequence", sweep="jacobi", reproject_every=0, progress=False)
    serial = ol.admm_irnn(X, y, **kw)
    par = ol.admm_irnn(X, y, parallel=Sync(3), **kw)
    close_params(serial, par, 1e-8)
    np.testing.assert_array_equal(par.trace["rho1"], serial.trace["rho1"])
    np.testing.assert_allclose(par.predict(X), serial.predict(X), rtol=1e-8, atol=1e-10)


def test_bounded_staleness_reaches_the_sync_test_accuracy():
    X, y, Xt, yt = toy()
    kw = dict(hidden=8, progress=False, iters=150, X_test=Xt, y_test=yt, log_every=50)
    sync = ol.admm_irnn(X, y, parallel=Sync(4, speeds="straggler"), **kw)
    target = sync.trace["test_acc"][-1]
    assert target >= 0.8                                                      # chance is ~0.5
    for speeds in ("straggler", "heterogeneous"):
        asyn = ol.admm_irnn(X, y, parallel=SimulatedAsync(4, max_delay=3, speeds=speeds), **kw)
        assert asyn.trace["test_acc"][-1] >= target - 0.01, speeds
        assert int(np.max(np.asarray(asyn.state.age))) <= 3
        assert np.min(asyn.trace["arrived"][1:]) < 4                          # partial rounds happened
        assert asyn.trace["sim_time"][-1] < 0.5 * sync.trace["sim_time"][-1]  # simulated: no waiting for the slowest


def test_bad_parallel_input():
    X, y, _, _ = toy(n=40, n_test=1)
    with pytest.raises(ValueError, match="4 workers but only 3"):
        ol.admm_irnn(X[:3], y[:3], iters=2, parallel=Sync(4), **KW)
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        ol.admm_irnn(X, y, iters=2, parallel=Sync(len(jax.devices()) + 1), **KW)
