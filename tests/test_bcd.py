"""The BCD baseline of Zeng et al. 2019 (optlab.solvers.baselines.bcd): exact ReLU block prox, monotone objective
(every update is an exact proximal block minimisation), predict, input errors, data-parallel runs with a hidden layer."""
import jax
import numpy as np
import pytest

from optlab.solvers.baselines.bcd import bcd, relu_prox


def test_relu_prox_is_the_exact_minimiser():
    rng = np.random.default_rng(0)
    v, m = 2 * rng.normal(size=400), 2 * rng.normal(size=400)
    for gamma, tau in [(1.0, 1.0), (1.3, 6.0), (5.0, 0.5)]:
        u = np.asarray(relu_prox(v, m, gamma, tau))
        grid = np.linspace(-12, 12, 96001)
        f = lambda u_: gamma / 2 * (v[:, None] - np.maximum(u_, 0)) ** 2 + tau / 2 * (u_ - m[:, None]) ** 2  # noqa: E731
        assert np.all(f(u[:, None])[:, 0] <= f(grid[None, :]).min(axis=1) + 1e-12)


def test_objective_never_increases_and_learns():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 5))
    y = np.argmax(X @ rng.normal(size=(5, 3)), axis=1)
    res = bcd(X, y, layers=[5, 12, 3], iters=40, log_every=1, progress=False, X_test=X[:30], y_test=y[:30])
    obj = res.trace["objective"]
    assert np.all(np.diff(obj) <= 1e-10 * np.abs(obj[:-1]))
    assert obj[-1] < 0.1 * obj[0]
    assert res.trace.last("train_acc") > max(0.55, res.trace["train_acc"][0] + 0.15)   # slow, but learns
    assert res.predict(X[:4]).shape == (4, 3)


def test_bad_input():
    X = np.zeros((10, 3))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="alpha"):
        bcd(X, y, layers=[3, 4, 2], alpha=0.0)
    with pytest.raises(ValueError, match="layers\\[0\\]"):
        bcd(X, y, layers=[4, 4, 2])


@pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")
def test_parallel_with_a_hidden_layer():
    """The registry's parallel contract runs BCD without hidden layer; here the ReLU blocks: Sync(4) = serial to
    rounding (203 rows: a padded shard), SimulatedAsync(max_delay=0) = Sync bit for bit, max_delay=3 still descends."""
    from optlab.parallel import SimulatedAsync, Sync

    rng = np.random.default_rng(2)
    X = rng.normal(size=(203, 6))
    y = np.argmax(X @ rng.normal(size=(6, 3)), axis=1)
    kw = dict(layers=[6, 10, 3], iters=30, log_every=10, progress=False)
    serial = bcd(X, y, **kw)
    sync = bcd(X, y, parallel=Sync(4, speeds="straggler"), **kw)
    np.testing.assert_allclose(sync.trace["objective"], serial.trace["objective"], rtol=1e-10)
    for a, b in zip(jax.tree.leaves(serial.params), jax.tree.leaves(sync.params)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sync.trace["train_acc"], serial.trace["train_acc"], rtol=1e-12)
    asyn = bcd(X, y, parallel=SimulatedAsync(4, max_delay=0, speeds="straggler"), **kw)
    for a, b in zip(jax.tree.leaves(sync.params), jax.tree.leaves(asyn.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    stale = bcd(X, y, parallel=SimulatedAsync(4, max_delay=3, speeds="heterogeneous"), **kw)
    assert stale.trace["objective"][-1] < 0.5 * stale.trace["objective"][0]
