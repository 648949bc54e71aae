"""The "SGD epoch" benchmark rows (optlab.experiments.bench_epoch) on a small synthetic problem."""
import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("sklearn")


@pytest.mark.parametrize("sparse", [False, True])
def test_epoch_rows_time_both_and_ratio_is_their_quotient(sparse):
    import optlab as ol
    from optlab.experiments import bench_epoch as B

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6)) * (rng.random((400, 6)) < 0.5)
    y = np.where(X[:, 0] + 0.1 * rng.normal(size=400) > 0, 1.0, -1.0)
    X = sp.csr_matrix(X) if sparse else X
    methods = (("spdhg", ol.spdhg, ol.operators.first_difference(6), "l1"),)
    rows = B.epoch_rows(X, y, "toy", repeats=1, epochs=2, methods=methods)
    assert [r["method"] for r in rows] == ["spdhg"]
    r = rows[0]
    assert r["sgd_penalty"] == "l1" and r["problem"] == "toy"
    assert r["sgd_s"] > 0 and r["ours_s"] > 0 and r["sgd_cpu_s"] > 0 and r["ours_cpu_s"] >= 0
    assert r["ratio"] == pytest.approx(r["ours_s"] / r["sgd_s"])
    assert r["ratio_cpu"] == pytest.approx(r["ours_cpu_s"] / r["sgd_cpu_s"])
    cells = B.format_rows(rows)[0]
    assert cells["ratio"] == f"{r['ratio']:.2f}" and cells["SGDClassifier"] == "penalty=l1"


def test_epoch_times_need_two_epochs():
    from optlab.experiments import bench_epoch as B

    with pytest.raises(ValueError, match="epochs"):
        B.optlab_epoch_times(None, None, None, None, epochs=1)


@pytest.mark.parametrize("sparse", [False, True])
def test_loop_floor_epoch_is_the_plain_sgd_loop(sparse):
    """The floor row's loop against the same SGD written as a NumPy loop over the dense rows (float64)."""
    import jax.numpy as jnp

    from optlab.experiments import bench_epoch as B

    rng = np.random.default_rng(1)
    Xd = rng.normal(size=(50, 7)) * (rng.random((50, 7)) < 0.4)
    y = np.where(rng.random(50) < 0.5, 1.0, -1.0)
    order = rng.permutation(50).astype(np.int32)
    w = np.zeros(7)
    for i in order:
        w = w + 0.05 * y[i] * Xd[i] / (1 + np.exp(y[i] * Xd[i] @ w))
    from optlab.solvers._stochastic import get_loss, prepare_data

    data = prepare_data(sp.csr_matrix(Xd) if sparse else Xd, y, get_loss("logistic"), np.float64,
                        layout="sparse" if sparse else "dense")
    assert (data.cols is None) != sparse
    got = B.loop_floor_epoch(data, jnp.asarray(order), 0.05, jnp.zeros(7))
    np.testing.assert_allclose(np.asarray(got), w, rtol=1e-12, atol=1e-14)


def test_floor_row_fields():
    from optlab.experiments import bench_epoch as B

    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.normal(size=(300, 5)) * (rng.random((300, 5)) < 0.5))
    y = np.where(rng.random(300) < 0.5, 1.0, -1.0)
    r = B.floor_row(X, y, "toy", repeats=1)
    assert r["sgd_penalty"] == "None" and r["method"].startswith("JAX loop floor")
    assert r["ratio"] == pytest.approx(r["ours_s"] / r["sgd_s"]) and r["ours_s"] > 0
