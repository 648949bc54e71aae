"""The optax training baseline (optlab.solvers.baselines.optax_train): learns, full batch and mini-batch, no
recompilation, predict, generic model_apply (a pytree X), input errors; and the iPDLAM experiment (data/slow)."""
import os

import jax.numpy as jnp
import numpy as np
import pytest

from optlab.solvers import mlp
from optlab.solvers.baselines import optax_train as ot


def _toy(n=200, d=4, C=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.argmax(X @ rng.normal(size=(d, C)), axis=1)
    y[:C] = np.arange(C)
    return X, y


@pytest.mark.parametrize("name,lr,batch", [("adam", 1e-2, None), ("rmsprop", 1e-2, 32)])
def test_learns_and_predicts(name, lr, batch):
    X, y = _toy()
    res = ot.train_mlp(X, y, layers=[4, 16, 3], optimizer=name, learning_rate=lr, batch_size=batch,
                       epochs=100 if batch is None else 20, X_test=X[:40], y_test=y[:40], progress=False)
    assert res.trace.last("train_acc") > 0.9
    assert res.trace["train_loss"][-1] < res.trace["train_loss"][0]
    assert res.predict(X[:5]).shape == (5, 3)
    assert {"objective", "train_loss", "train_acc", "test_acc", "batch_loss"} <= set(res.trace.metrics)


def test_same_start_as_ipdlam_and_no_recompile():
    X, y = _toy(seed=1)
    a = ot.train_mlp(X, y, layers=[4, 8, 3], epochs=3, batch_size=50, progress=False)
    X2, y2 = _toy(seed=2)
    b = ot.train_mlp(X2, y2, layers=[4, 8, 3], epochs=3, batch_size=50, progress=False)
    assert b.trace.meta["compile_time"] < 0.05
    p0 = mlp.init_params([4, 8, 3], "relu", 0, np.float64)
    zero = ot.train_mlp(X, y, layers=[4, 8, 3], epochs=0, progress=False)
    for w, w0 in zip(zero.params["W"], p0["W"]):
        np.testing.assert_array_equal(np.asarray(w), np.asarray(w0))
    assert a.n_iter == 3


def _pair_apply(params, X):
    """A model on a pytree input (two arrays per sample), as a sequence model would take."""
    return X["u"] @ params["A"] + X["v"] @ params["B"]


def test_generic_model_and_custom_loss():
    rng = np.random.default_rng(3)
    U, V = rng.normal(size=(120, 3)), rng.normal(size=(120, 2))
    target = U @ rng.normal(size=(3, 1)) + V @ rng.normal(size=(2, 1))
    params0 = {"A": jnp.zeros((3, 1)), "B": jnp.zeros((2, 1))}
    res = ot.train(_pair_apply, params0, {"u": U, "v": V}, target, "adam", learning_rate=0.05,
                   loss=_mse, accuracy=False, epochs=300, progress=False)
    assert res.trace.last("train_loss") < 1e-3 * res.trace["train_loss"][0]


def _mse(z, y):
    return jnp.mean((z - y) ** 2)


def test_bad_input():
    X, y = _toy()
    with pytest.raises(ValueError, match="learning_rate"):
        ot.train_mlp(X, y, layers=[4, 8, 3], learning_rate=0.0, progress=False)
    with pytest.raises(ValueError, match="optax optimizer"):
        ot.train_mlp(X, y, layers=[4, 8, 3], optimizer="nonexistent_opt", progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        ot.train_mlp(X, y, layers=[4, 8, 3], batch_size=0, progress=False)
    with pytest.raises(ValueError, match="layers\\[0\\]"):
        ot.train_mlp(X, y, layers=[5, 8, 3], progress=False)
    with pytest.raises(ValueError, match="outside"):
        ot.train_mlp(X, y + 1, layers=[4, 8, 3], progress=False)


@pytest.mark.data
@pytest.mark.slow
def test_ipdlam_experiment_quick(tmp_path):
    root = os.environ.get("OPTLAB_DATA")
    if not root or not os.path.isdir(os.path.join(root, "mnist")):
        pytest.skip("needs $OPTLAB_DATA with mnist/")
    from optlab.experiments import get

    summary = get("ipdlam").run(out=tmp_path, quick=True, seed=0)
    for f in summary["files"]:
        assert os.path.getsize(f) > 0
    assert summary["traces"]["iPDLAM (β=0.8)"].last("test_acc") >= 0.90
