"""iPDLAM / DLAM (optlab.solvers.ipdlam): the sufficient-decrease inequality of every block update, monotone Φ_ρ
for β = 0 at fixed ρ, input errors, predict, mini-batch mode, and a small MNIST run (marked data/slow)."""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
from optlab.solvers import ipdlam as ip
from optlab.solvers import mlp


def _toy(n=40, d=5, C=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = np.argmax(X @ rng.normal(size=(d, C)), axis=1)
    y[:C] = np.arange(C)
    return X, y


@functools.lru_cache(maxsize=None)
def _recording_sweep(cfg):
    """A jitted sweep (cached per static config) returning per block Φ(B̂ config), Φ(B⁺ config), c, ‖B⁺ − B̂‖²."""
    @jax.jit
    def one(prob, net, prev, c_W, c_A, rho):
        out = ip.sweep(cfg, prob, net, prev, c_W, c_A, rho, prob.beta, prob.data.X, prob.data.y, record=True)
        phi = lambda nt: ip.objective(cfg, nt, prob.data.X, prob.data.y, rho, prob.regs)  # noqa: E731
        recs = [(phi(before), phi(after), c,
                 sum(jnp.vdot(a - b, a - b) for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before))))
                for before, after, c in out[4]]
        return out[0], out[1], out[2], out[3], recs
    return one


def _record_sweeps(cfg, prob, state, n_sweeps):
    """Run ``n_sweeps`` sweeps at the fixed ρ of ``state``; return the per-block records and the rejections."""
    one = _recording_sweep(cfg)
    (net, prev), c_W, c_A = ip.nets(state), state.c_W, state.c_A
    rows, rejected = [], 0
    for _ in range(n_sweeps):
        new, c_W, c_A, rej, recs = one(prob, net, prev, c_W, c_A, state.rho)
        rows += [tuple(float(v) for v in r) for r in recs]
        rejected += int(rej)
        prev, net = net, new
    return rows, rejected


@pytest.mark.parametrize("activation,loss,reg", [
    ("relu", "cross_entropy", None),
    ("tanh", "squared", "l1"),
    ("sigmoid", "cross_entropy", "l1"),
])
def test_every_block_update_sufficient_decrease(activation, loss, reg):
    """Random small networks, float64, fixed ρ: Φ_ρ(B⁺) ≤ Φ_ρ(B̂) − (δc/2)‖B⁺ − B̂‖² for every block update;
    with β = 0 (B̂ = B^k) the objective never increases from block to block."""
    for seed, beta in [(0, 0.0), (1, 0.8), (2, 0.0), (3, 0.5)]:
        X, y = _toy(seed=seed)
        regs = ol.prox.l1(1e-3) if reg == "l1" else None
        rho = 0.7 + seed
        cfg, prob, state = ip.build(X, y, layers=[5, 7, 6, 3], activation=activation, loss=loss, beta=beta,
                                    rho0=rho, rho_growth=1.0, rho_max=rho, seed=seed, regularizers=regs)
        # start from an infeasible point (a_l off the forward pass) so that every penalty term is active
        rng = np.random.default_rng(seed + 10)
        A = tuple(a + 0.3 * rng.normal(size=a.shape) for a in state.aux.A)
        state = state._replace(aux=state.aux.replace(A=A, A_prev=A))
        rows, _ = _record_sweeps(cfg, prob, state, 12)
        assert len(rows) == 12 * 5                                      # blocks W1, a1, W2, a2, W3
        decrease = float(prob.decrease)
        for j, (phi_hat, phi_new, c, d2) in enumerate(rows):
            slack = 1e-12 * (1 + abs(phi_hat))
            assert phi_new <= phi_hat - decrease * c / 2 * d2 + slack, (seed, j, phi_hat, phi_new, c, d2)
        if beta == 0:
            phis = [rows[0][0]] + [r[1] for r in rows]
            assert all(b <= a + 1e-12 * (1 + abs(a)) for a, b in zip(phis, phis[1:])), phis
            # with β = 0 the extrapolated point is the current one: each block starts where the last ended
            for prev_row, row in zip(rows, rows[1:]):
                assert row[0] == pytest.approx(prev_row[1], rel=1e-12, abs=1e-14)
            assert phis[-1] < phis[0]


def test_capped_search_falls_back_to_extrapolated_point():
    """A search that cannot succeed (tiny first constant, one retry) must leave the block at B̂: Φ never rises."""
    X, y = _toy(seed=4)
    cfg, prob, state = ip.build(X, y, layers=[5, 7, 6, 3], beta=0.0, rho0=1.0, rho_growth=1.0, rho_max=1.0,
                                c_shrink=1e-9, c_grow=1.5, max_backtracks=1)
    rows, rejected = _record_sweeps(cfg, prob, state, 6)
    assert rejected > 0
    for phi_hat, phi_new, c, d2 in rows:
        assert phi_new <= phi_hat - float(prob.decrease) * c / 2 * d2 + 1e-12 * (1 + abs(phi_hat))


def test_dlam_objective_monotone_through_harness_fixed_rho():
    X, y = _toy(n=60, seed=3)
    res = ol.dlam(X, y, layers=[5, 8, 3], activation="tanh", rho0=2.0, rho_growth=1.0, rho_max=2.0, iters=60,
                  log_every=1, progress=False)
    phi = res.trace["objective"]
    assert np.all(np.diff(phi) <= 1e-12 * (1 + np.abs(phi[:-1])))
    assert phi[-1] < phi[0]
    assert res.trace.meta["solver"] == "dlam"


def test_predict_shape_dtype_learning_and_schedules():
    X, y = _toy(n=200, d=4, C=3, seed=6, dtype=np.float32)
    res = ol.ipdlam(X, y, layers=[4, 16, 3], iters=150, rho0=0.1, rho_growth=2.0, rho_max=1.0, beta=0.6,
                    beta_schedule="increasing", log_every=1, progress=False, X_test=X[:50], y_test=y[:50])
    np.testing.assert_allclose(res.trace["rho"][1:7], [0.1, 0.2, 0.4, 0.8, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(res.trace["beta"][1:7], [min(0.6, k / (k + 3)) for k in range(6)], rtol=1e-6)
    scores = res.predict(X[:7])
    assert scores.shape == (7, 3) and scores.dtype == np.float32
    assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(res.params))
    assert res.trace.last("train_acc") > 0.9
    assert {"objective", "train_loss", "train_acc", "test_acc", "test_loss", "rho"} <= set(res.trace.metrics)
    np.testing.assert_allclose(np.asarray(scores), np.asarray(mlp.apply(res.params, X[:7], "relu")), rtol=1e-6)


def test_deep_network_and_regularizer_list():
    X, y = _toy(n=120, d=5, C=2, seed=7)
    res = ol.ipdlam(X, y, layers=[5, 8, 8, 2], activation="tanh", iters=80,
                    regularizers=[ol.prox.l2sq(1e-3), None, ol.prox.l1(1e-4)], progress=False)
    assert np.isfinite(res.trace.last("objective"))
    assert res.trace.last("train_acc") > 0.8


def test_minibatch_mode_holds_no_auxiliary_variables():
    X, y = _toy(n=300, d=4, C=3, seed=8)
    res = ol.ipdlam(X, y, layers=[4, 16, 3], iters=15, batch_size=64, inner_sweeps=3, progress=False)
    assert res.state.aux.A == () and res.state.aux.A_prev == ()
    assert res.trace.last("train_acc") > 0.85
    # a different seed gives different permutations but the same shapes: no recompilation
    res2 = ol.ipdlam(X, y, layers=[4, 16, 3], iters=2, batch_size=64, seed=1, progress=False)
    assert res2.trace.meta["compile_time"] < 0.05


@pytest.mark.parametrize("kwargs,match", [
    ({"layers": [6, 8, 3]}, "layers\\[0\\]"),
    ({"layers": [5, 8, 4]}, "layers\\[-1\\] = 4"),
    ({"layers": [5, 8, 2]}, "outside 0..C-1"),
    ({"layers": [5]}, "at least"),
    ({"layers": [5, 0, 3]}, "positive"),
    ({"rho0": 0.0}, "rho0"),
    ({"rho0": -1.0}, "rho0"),
    ({"rho_growth": 0.9}, "rho_growth"),
    ({"beta": 1.0}, "beta"),
    ({"beta": -0.1}, "beta"),
    ({"rho_max": 1e-3}, "rho_max"),
    ({"activation": "gelu"}, "activation"),
    ({"loss": "hinge"}, "loss"),
    ({"batch_size": 0}, "batch_size"),
    ({"beta_schedule": "cosine"}, "beta_schedule"),
    ({"regularizers": [None]}, "regularizers"),
])
def test_bad_input(kwargs, match):
    X, y = _toy()
    kw = {"layers": [5, 8, 3], **kwargs}
    with pytest.raises(ValueError, match=match):
        ol.ipdlam(X, y, iters=1, progress=False, **kw)


def test_bad_labels():
    X, y = _toy()
    with pytest.raises(ValueError, match="outside 0..C-1"):
        ol.ipdlam(X, np.where(y == 0, -1, y), layers=[5, 8, 3], iters=1, progress=False)
    with pytest.raises(ValueError, match="integer"):
        ol.ipdlam(X, y + 0.5, layers=[5, 8, 3], iters=1, progress=False)
    with pytest.raises(ValueError, match="y_test has labels outside"):
        ol.ipdlam(X, y, layers=[5, 8, 3], iters=1, X_test=X, y_test=y + 1, progress=False)
    with pytest.raises(ValueError, match="X must"):
        ol.ipdlam(X[:, :, None], y, layers=[5, 8, 3], iters=1, progress=False)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        ol.ipdlam(Xn, y, layers=[5, 8, 3], iters=1, progress=False)


def _mnist():
    root = os.environ.get("OPTLAB_DATA")
    if not root or not os.path.isdir(os.path.join(root, "mnist")):
        pytest.skip("needs $OPTLAB_DATA with mnist/")
    return ol.data.load("mnist")


@pytest.mark.data
@pytest.mark.slow
def test_mnist_small_run():
    ds = _mnist()
    assert ds.X.shape == (8000, 784) and ds.X_test.shape == (2000, 784)
    res = ol.ipdlam(ds.X, ds.y, layers=[784, 128, 10], iters=80, beta=0.8, X_test=ds.X_test, y_test=ds.y_test,
                    log_every=40, progress=False)
    assert res.trace.last("test_acc") >= 0.88, res.trace["test_acc"]
    assert res.trace["train_loss"][-1] < 0.5 * res.trace["train_loss"][0]
    assert res.predict(ds.X_test[:5]).shape == (5, 10)
