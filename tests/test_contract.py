"""One contract over every registered solver (optlab.solvers.registry): converges to the independent
reference, keeps the input dtype, does not recompile for new data of the same shape, resumes exactly
from a checkpoint, and runs in the fully compiled mode."""
import jax
import numpy as np
import pytest

from optlab import harness
from optlab.solvers.registry import SOLVERS

from _lowerings import lowerings

CASES = sorted(SOLVERS)


@pytest.mark.parametrize("name", CASES)
def test_converges_to_reference(name):
    case = SOLVERS[name].make(seed=0)
    res = case.solve(maxiter=case.maxiter, tol=0.0, progress=False)
    value = res.trace.last(case.objective)
    assert res.status in ("maxiter", "converged")
    assert abs(value - case.reference) <= case.rtol * abs(case.reference), (value, case.reference)


@pytest.mark.parametrize("name", CASES)
def test_float32_preserved_and_close(name):
    case = SOLVERS[name].make(seed=0, dtype=np.float32)
    # tol=0: the whole budget runs past convergence, so a float32 run that stalls must stay at the optimum
    # (GIST once restarted its line search from L_min = 1e-30 when x stopped moving and jumped to 1e10)
    res = case.solve(maxiter=case.maxiter, tol=0.0, progress=False)
    for leaf in jax.tree.leaves(res.params):
        assert leaf.dtype == np.float32
    assert abs(res.trace.last(case.objective) - case.reference) <= 1e-3 * abs(case.reference)


@pytest.mark.parametrize("name", CASES)
def test_second_call_does_not_recompile(name):
    SOLVERS[name].make(seed=2).solve(maxiter=20, progress=False)
    case = SOLVERS[name].make(seed=3)
    assert lowerings(lambda: case.solve(maxiter=20, progress=False)) == 0


@pytest.mark.parametrize("name", CASES)
def test_checkpoint_round_trip(name, tmp_path):
    case = SOLVERS[name].make(seed=4)
    full = case.solve(maxiter=60, tol=0.0, log_every=10, progress=False)
    case.solve(maxiter=30, tol=0.0, log_every=10, progress=False, checkpoint=tmp_path / "c.npz")
    resumed = case.solve(maxiter=60, tol=0.0, log_every=10, progress=False, resume=tmp_path / "c.npz")
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", [n for n in CASES if SOLVERS[n].jit_capable])
def test_jit_mode_matches_host_mode(name):
    case = SOLVERS[name].make(seed=5)
    host = case.solve(maxiter=100, log_every=25, progress=False)
    out = case.solve(maxiter=100, log_every=25, jit=True)
    assert isinstance(out, harness.JitRun)
    assert int(out.n_iter) == host.n_iter
    for a, b in zip(jax.tree.leaves(out.state), jax.tree.leaves(host.state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
