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

    Xd, y, order, w = _numpy_sgd_problem(1, 50, 7)
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


def test_threshold_epoch_is_the_plain_sgd_loop_and_counts_its_scalars():
    """The loop-threshold probe: the same SGD iterate as a NumPy loop whatever the number of extra scalars, each
    scalar updated once per step (s <- 1.0001 s + 1), and a kernel count read from the compiled loop body."""
    import jax
    import jax.numpy as jnp

    from optlab.experiments import bench_epoch as B
    from optlab.solvers._stochastic import get_loss, prepare_data

    Xd, y, order, w = _numpy_sgd_problem(2, 40, 6)
    data = prepare_data(sp.csr_matrix(Xd), y, get_loss("logistic"), np.float64, layout="sparse")
    s_ref = np.arange(3.0)
    for _ in range(40):
        s_ref = s_ref * 1.0001 + 1.0
    counts = []
    for extras in (0, 3):
        got, scalars = B.threshold_epoch(data, jnp.asarray(order), 0.05, jnp.zeros(6), extras=extras)
        np.testing.assert_allclose(np.asarray(got), w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.asarray(scalars), s_ref[:extras], rtol=1e-12)
        text = jax.jit(lambda o, e=extras: B.threshold_epoch(data, o, 0.05, jnp.zeros(6), extras=e)).lower(
            jnp.asarray(order)).compile().as_text()
        counts.append(B.loop_body_kernels(text))
    assert all(isinstance(c, int) and c > 0 for c in counts) and counts[1] > counts[0], counts
    assert B.loop_body_kernels("HloModule m\nENTRY %main () -> f32[] {\n}\n") is None


def test_threshold_rows_fields():
    from optlab.experiments import bench_epoch as B

    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.normal(size=(200, 5)) * (rng.random((200, 5)) < 0.5))
    y = np.where(rng.random(200) < 0.5, 1.0, -1.0)
    rows = B.threshold_rows(X, y, "toy", repeats=1, extras=(0, 2))
    assert [r["extra_scalars"] for r in rows] == [0, 2] and rows[0]["vs_no_extras"] == 1.0
    assert all(r["wall_s"] > 0 and r["cpu_s"] >= 0 for r in rows)


def _numpy_sgd_problem(seed, n, d, step=0.05):
    """A small sparse-ish logistic problem, a row order, and one epoch of plain SGD on it as a NumPy loop over the
    dense rows (the reference of the compiled loops): ``(X, y, order, w)``."""
    rng = np.random.default_rng(seed)
    Xd = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.4)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    order = rng.permutation(n).astype(np.int32)
    w = np.zeros(d)
    for i in order:
        w = w + step * y[i] * Xd[i] / (1 + np.exp(y[i] * Xd[i] @ w))
    return Xd, y, order, w
