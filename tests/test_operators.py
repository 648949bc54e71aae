"""Tests for optlab.operators: difference and graph-guided matrices, spectral norms, conversions, checks."""

import os
import pathlib

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402
from jax.experimental import sparse as jsparse  # noqa: E402

from optlab import operators as ops  # noqa: E402


def _rng(seed=0):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------- first_difference
@pytest.mark.parametrize("d", [1, 2, 7, 50])
def test_first_difference_matches_numpy_diff(d):
    x = _rng(d).normal(size=d)
    D = ops.first_difference(d)
    assert (sp.issparse(D) and D.format == "csr") and D.shape == (d - 1, d) and D.dtype == np.float64
    np.testing.assert_allclose(D @ x, np.diff(x), rtol=0, atol=1e-14)
    Dd = ops.first_difference(d, sparse=False)
    assert isinstance(Dd, np.ndarray)
    np.testing.assert_array_equal(Dd, D.toarray())
    if d > 1:
        assert D.nnz == 2 * (d - 1)
        assert np.all(np.diag(Dd) == -1) and np.all(np.diag(Dd, k=1) == 1)


def test_first_difference_dtype_and_bad_d():
    assert ops.first_difference(5, dtype=np.float32).dtype == np.float32
    assert ops.first_difference(5, sparse=False, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="d must be"):
        ops.first_difference(0)


# --------------------------------------------------------------------------------------------- spectral_norm
def _dense_cases():
    rng = _rng(1)
    A = rng.normal(size=(60, 35))
    # repeated top singular value: U diag(s) V^T with s = (3, 3, 1, ...)
    U, _ = np.linalg.qr(rng.normal(size=(20, 10)))
    V, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    s = np.r_[3.0, 3.0, np.linspace(1.0, 0.1, 8)]
    B = (U * s) @ V.T
    return {"gauss": A, "wide": A.T.copy(), "repeated_top": B, "column": rng.normal(size=(9, 1))}


@pytest.mark.parametrize("case", ["gauss", "wide", "repeated_top", "column"])
def test_spectral_norm_dense_numpy_and_jax(case):
    A = _dense_cases()[case]
    ref = np.linalg.norm(A, 2)
    got_np = ops.spectral_norm(A)
    assert isinstance(got_np, float)
    np.testing.assert_allclose(got_np, ref, rtol=1e-6)
    got_jax = ops.spectral_norm(jnp.asarray(A))
    assert got_jax.dtype == jnp.float64
    np.testing.assert_allclose(float(got_jax), ref, rtol=1e-6)
    assert float(got_jax) <= ref * (1 + 1e-12)  # power iteration approaches from below


def test_spectral_norm_sparse_scipy_bcoo_linear_operator():
    A = sp.random(80, 40, density=0.1, random_state=2, format="csr")
    ref = np.linalg.norm(A.toarray(), 2)
    for M in (A, A.tocsc(), A.tocoo()):
        np.testing.assert_allclose(ops.spectral_norm(M), ref, rtol=1e-6)
    np.testing.assert_allclose(float(ops.spectral_norm(ops.as_jax(A))), ref, rtol=1e-6)
    np.testing.assert_allclose(ops.spectral_norm(spla.aslinearoperator(A)), ref, rtol=1e-6)


def test_spectral_norm_jit_vmap_float32_and_zero():
    rng = _rng(3)
    As = rng.normal(size=(3, 30, 12))
    refs = [np.linalg.norm(a, 2) for a in As]
    jitted = jax.jit(ops.spectral_norm)
    np.testing.assert_allclose(float(jitted(jnp.asarray(As[0]))), refs[0], rtol=1e-6)
    batched = jax.jit(jax.vmap(ops.spectral_norm))(jnp.asarray(As))
    np.testing.assert_allclose(np.asarray(batched), refs, rtol=1e-6)
    s32 = ops.spectral_norm(jnp.asarray(As[0], dtype=jnp.float32))
    assert s32.dtype == jnp.float32
    np.testing.assert_allclose(float(s32), refs[0], rtol=1e-5)
    assert float(ops.spectral_norm(jnp.zeros((4, 3)))) == 0.0
    assert ops.spectral_norm(np.zeros((4, 3))) == 0.0
    assert ops.spectral_norm(sp.csr_matrix((5, 4))) == 0.0


def test_spectral_norm_difference_matrix():
    d = 40
    ref = 2 * np.sin((d - 1) * np.pi / (2 * d))
    np.testing.assert_allclose(ops.spectral_norm(ops.first_difference(d), iters=2000, tol=1e-9), ref, rtol=1e-6)


# --------------------------------------------------------------------------------------------- conversions
def test_as_jax_dense_sparse_and_matvec():
    rng = _rng(4)
    A32 = rng.normal(size=(7, 5)).astype(np.float32)
    J = ops.as_jax(A32)
    assert isinstance(J, jax.Array) and J.dtype == jnp.float32
    assert ops.as_jax(J) is J
    assert ops.as_jax(J, dtype=jnp.float64).dtype == jnp.float64

    # COO with a duplicate entry: duplicates are summed
    S = sp.coo_matrix((np.array([1.0, 2.0, 3.0]), (np.array([0, 0, 2]), np.array([1, 1, 3]))), shape=(3, 4))
    B = ops.as_jax(S)
    assert isinstance(B, jsparse.BCOO) and B.nse == 2 and B.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(B.todense()), S.toarray())
    assert ops.as_jax(B) is B
    assert ops.as_jax(S.astype(np.float32)).dtype == jnp.float32

    M = sp.random(9, 6, density=0.3, random_state=5, format="csr")
    x, y = rng.normal(size=6), rng.normal(size=9)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(9, 2))
    for op in (M, M.toarray(), ops.as_jax(M), jnp.asarray(M.toarray())):
        np.testing.assert_allclose(np.asarray(ops.matvec(op, x)), M @ x, atol=1e-12)
        np.testing.assert_allclose(np.asarray(ops.rmatvec(op, y)), M.T @ y, atol=1e-12)
        np.testing.assert_allclose(np.asarray(ops.matvec(op, X)), M @ X, atol=1e-12)
        np.testing.assert_allclose(np.asarray(ops.rmatvec(op, Y)), M.T @ Y, atol=1e-12)


def test_check_finite():
    ops.check_finite("A", np.ones((2, 2)))
    ops.check_finite("A", np.arange(4))
    bad = np.ones((3, 3))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"^X contains 1 non-finite"):
        ops.check_finite("X", bad)
    with pytest.raises(ValueError, match="^A contains"):
        ops.check_finite("A", jnp.asarray([1.0, jnp.inf]))
    S = sp.csr_matrix(np.eye(3))
    S.data[0] = np.inf
    with pytest.raises(ValueError, match="^S contains"):
        ops.check_finite("S", S)
    with pytest.raises(ValueError, match="^B contains"):
        ops.check_finite("B", jsparse.BCOO.fromdense(jnp.asarray(bad)))

    @jax.jit
    def f(a):  # traced values cannot be inspected: skipped, no error
        ops.check_finite("a", a)
        return a

    f(jnp.ones(3))


# --------------------------------------------------------------------------------------------- graph-guided F
def _chain_data(d=8, n=4000, rho=0.45, seed=0):
    theta = np.eye(d) + rho * (np.eye(d, k=1) + np.eye(d, k=-1))
    X = _rng(seed).multivariate_normal(np.zeros(d), np.linalg.inv(theta), size=n)
    return X, [(i, i + 1) for i in range(d - 1)]


def test_graph_recovers_chain_both_forms():
    X, chain = _chain_data()
    d = X.shape[1]
    # papers' alpha/threshold are tuned for LIBSVM feature scales; for unit-variance Gaussians with n = 4000
    # a larger alpha and threshold separate true edges (|Theta_ij| ~ 0.45) from sampling noise (~0.015).
    g = ops.graph(X, alpha=0.05, threshold=0.05, form="signed")
    assert [tuple(e) for e in g.edges] == chain
    assert g.edges.dtype == np.int64 and g.converged and g.alpha == 0.05
    assert g.precision.shape == (d, d)
    F = g.F
    assert (sp.issparse(F) and F.format == "csr") and F.shape == (d, d)
    Fd = F.toarray()
    expected = np.zeros((d, d))
    for i, j in chain:
        expected[i, j], expected[j, i] = 1.0, -1.0
    np.testing.assert_array_equal(Fd, expected)
    np.testing.assert_array_equal(Fd, -Fd.T)  # +1 above, -1 below the diagonal, zero diagonal

    gi = ops.graph(X, alpha=0.05, threshold=0.05, form="incidence")
    Fi = gi.F
    assert (sp.issparse(Fi) and Fi.format == "csr") and Fi.shape == (d - 1, d)
    x = _rng(1).normal(size=d)
    np.testing.assert_allclose(Fi @ x, [x[i] - x[j] for i, j in chain])
    L = (Fi.T @ Fi).toarray()  # graph Laplacian
    np.testing.assert_allclose(L.sum(axis=1), 0)
    np.testing.assert_allclose(np.diag(L), np.bincount(np.ravel(chain), minlength=d))
    np.testing.assert_array_equal(
        ops.graph_guided(X, alpha=0.05, threshold=0.05, form="incidence").toarray(), Fi.toarray()
    )


def test_graph_papers_defaults_and_sparse_input():
    X, _ = _chain_data(d=6, n=500, seed=3)
    g_dense = ops.graph(X)
    g_sparse = ops.graph(sp.csr_matrix(X))
    np.testing.assert_array_equal(g_dense.edges, g_sparse.edges)
    np.testing.assert_allclose(g_dense.precision, g_sparse.precision, atol=1e-8)
    # edges are exactly the thresholded upper-triangular entries of the precision
    iu, ju = np.triu_indices(6, 1)
    keep = np.abs(g_dense.precision[iu, ju]) > 2.5e-3
    np.testing.assert_array_equal(g_dense.edges, np.stack([iu[keep], ju[keep]], 1))


def test_graph_dense_dim_fallback():
    X, _ = _chain_data(d=8, n=200)
    g = ops.graph(X, max_dense_dim=8)
    np.testing.assert_array_equal(g.F.toarray(), 3 * np.eye(8))
    assert g.edges.shape == (0, 2) and g.precision is None
    with pytest.raises(ValueError, match="max_dense_dim"):
        ops.graph(X, form="incidence", max_dense_dim=8)


def test_graph_binary_features_with_constant_and_collinear_columns():
    rng = _rng(7)
    n = 400
    cat = rng.integers(0, 3, size=n)
    onehot = np.eye(3)[cat]  # columns sum to 1: singular covariance
    other = (rng.random((n, 4)) < 0.3).astype(float)
    X = np.hstack([onehot, np.zeros((n, 1)), other, np.ones((n, 1))])  # two constant columns
    g = ops.graph(sp.csr_matrix(X))
    d = X.shape[1]
    assert g.F.shape == (d, d) and np.all(np.isfinite(g.precision))
    touched = set(g.edges.ravel().tolist())
    assert 3 not in touched and d - 1 not in touched  # constant columns are isolated nodes
    assert {(0, 1), (0, 2), (1, 2)} <= {tuple(e) for e in g.edges}  # the one-hot block is connected


def test_graph_bad_inputs():
    X, _ = _chain_data(d=4, n=50)
    with pytest.raises(ValueError, match="form"):
        ops.graph(X, form="laplacian")
    with pytest.raises(ValueError, match="alpha"):
        ops.graph(X, alpha=0.0)
    with pytest.raises(ValueError, match="2-D"):
        ops.graph(X[:, 0])
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="^X contains"):
        ops.graph(Xn)


def _data_dir():
    path = os.environ.get("OPTLAB_DATA")
    return pathlib.Path(path) if path else None


@pytest.mark.data
def test_graph_on_splice():
    root = _data_dir()
    if root is None or not (root / "libsvm" / "splice").exists():
        pytest.skip("set OPTLAB_DATA to the shared data folder (needs libsvm/splice)")
    from sklearn.datasets import load_svmlight_file

    X, _ = load_svmlight_file(str(root / "libsvm" / "splice"), n_features=60)
    g = ops.graph(X)
    assert g.F.shape == (60, 60) and len(g.edges) > 0 and g.converged
    Fd = g.F.toarray()
    np.testing.assert_array_equal(Fd, -Fd.T)
    assert set(np.unique(Fd)) <= {-1.0, 0.0, 1.0}
    assert np.all(np.triu(Fd) >= 0) and np.all(np.tril(Fd) <= 0)
    Fi = ops.graph_guided(X, form="incidence")
    assert Fi.shape == (len(g.edges), 60)
    np.testing.assert_array_equal(np.asarray(abs(Fi).sum(axis=1)).ravel(), 2.0)
