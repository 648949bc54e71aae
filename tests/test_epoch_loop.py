"""The per-sample epoch loop (optlab.solvers._stochastic.make_step with a schedule): the same iterates as the plain
per-iteration loop (each iteration computing its own step sizes and running average), dense and sparse rows."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import optlab as ol
from optlab import harness
from optlab.solvers import _stochastic as S
from optlab.solvers import spdhg as M


def _data(sparse, n=240, d=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < (0.3 if sparse else 1.0))
    y = np.where(X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0, 1.0, -1.0)
    return (sp.csr_matrix(X) if sparse else X), y


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("variant, gamma, n_blocks, batch, segments, burn_in, dual", [
    ("gc", 0.0, 1, 1, 1, 0.0, "auto"),
    ("sc_nonuniform", 1e-2, 1, 1, 3, 0.5, "auto"),
    ("sc_uniform", 1e-2, 2, 2, 2, 0.0, 0.3),
])
def test_scheduled_segment_matches_per_iteration_loop(sparse, variant, gamma, n_blocks, batch, segments, burn_in,
                                                      dual):
    X, y = _data(sparse)
    n, d = X.shape
    F = ol.operators.first_difference(d)
    per_epoch = -(-n // n_blocks) // batch
    pb, loss, auto, _ = M.build_problem(X, y, F, 0.05, gamma, dual_step=dual, n_blocks=n_blocks,
                                        avg_start=S.avg_start(burn_in, per_epoch))
    n_b = -(-n // n_blocks)
    fast = M.algorithm(loss.name, variant, auto, batch, segments, n_blocks, n_b, n)
    plain = S.segment_algorithm("spdhg", M._update(loss.name, variant, auto, n_blocks * batch), M._info, loss.name,
                                batch, segments, n_b, n, False, False)          # no schedule: per-iteration scalars
    state = M.init(pb, n_blocks, seed=3)
    out = [harness.solve(alg, state, pb, maxiter=3 * segments, progress=False).state.core for alg in (fast, plain)]
    for name in ("x", "u", "xbar", "wsum", "k", "eta", "sig"):
        a, b = np.asarray(getattr(out[0], name)), np.asarray(getattr(out[1], name))
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)
    assert int(out[0].k) == 3 * per_epoch


def test_sparse_row_expansion_equals_scatter():
    rng = np.random.default_rng(1)
    d = 40
    cols = np.concatenate([rng.choice(d, 7, replace=False), np.zeros(3, int)]).astype(np.int32)  # 3 padding entries
    vals = np.concatenate([rng.normal(size=7), np.zeros(3)])
    dense = np.zeros(d)
    np.add.at(dense, cols, vals)
    got = jax.jit(S._sparse_row, static_argnums=2)(jnp.asarray(cols), jnp.asarray(vals), d)
    np.testing.assert_array_equal(np.asarray(got), dense)
    big = S._sparse_row(jnp.asarray(cols), jnp.asarray(vals), S.ONE_HOT_MAX)       # past the limit: the scatter
    np.testing.assert_array_equal(np.asarray(big)[:d], dense)
