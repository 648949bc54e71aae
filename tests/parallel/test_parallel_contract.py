"""The parallel contract, driven by the solver registry: every data-parallel solver runs under every executor.

For each entry with a ``parallel`` case (optlab/solvers/registry.py), on 4 simulated CPU devices (tests/conftest.py):
``Sync(4)`` gives the serial iterates to rounding (float64), ``SimulatedAsync(4, max_delay=0)`` gives the ``Sync(4)``
iterates bit for bit (it *is* the synchronous method), and ``SimulatedAsync(4, max_delay=3)`` with heterogeneous
worker speeds reaches the serial reference optimum within the case's tolerance (convex cases).
"""
import jax
import numpy as np
import pytest

from optlab.parallel import SimulatedAsync, Sync
from optlab.solvers.registry import data_parallel

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")

CASES = data_parallel()


def flat(params) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in jax.tree.leaves(params)])


@pytest.mark.parametrize("name", sorted(CASES))
def test_sync_equals_serial(name, built):
    spec, case = CASES[name].parallel, built(name)
    kw = dict(maxiter=spec.iters, tol=0.0, progress=False)
    serial = case.solve(**kw, **spec.serial_kwargs)
    sync = case.solve(**kw, parallel=Sync(4))
    assert sync.n_iter == serial.n_iter == spec.iters
    np.testing.assert_allclose(flat(sync.params), flat(serial.params), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(sync.trace[case.objective], serial.trace[case.objective], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_async_without_delay_is_sync_bit_for_bit(name, built):
    spec, case = CASES[name].parallel, built(name)
    kw = dict(maxiter=spec.iters, tol=0.0, progress=False)
    sync = case.solve(**kw, parallel=Sync(4, speeds="straggler"))
    asyn = case.solve(**kw, parallel=SimulatedAsync(4, max_delay=0, speeds="straggler"))
    np.testing.assert_array_equal(flat(asyn.params), flat(sync.params))
    np.testing.assert_array_equal(asyn.trace[case.objective], sync.trace[case.objective])
    np.testing.assert_array_equal(asyn.trace["sim_time"], sync.trace["sim_time"])


@pytest.mark.parametrize("name", sorted(n for n in CASES if CASES[n].parallel.async_rtol is not None))
def test_bounded_delay_reaches_the_optimum(name, built):
    spec, case = CASES[name].parallel, built(name)
    executor = SimulatedAsync(4, max_delay=3, speeds="heterogeneous", seed=1)
    res = case.solve(maxiter=spec.async_maxiter or case.maxiter, tol=0.0, progress=False, parallel=executor,
                     **spec.async_kwargs)
    assert res.status in ("maxiter", "converged")
    assert int(np.max(np.asarray(res.state.age))) <= 3
    value = res.trace.last(case.objective)
    assert abs(value - case.reference) <= spec.async_rtol * max(1.0, abs(case.reference)), (value, case.reference)
