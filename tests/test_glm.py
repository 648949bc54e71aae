"""Tests of the working-set GLM solver (optlab.glm) and its scikit-learn estimators.

References are independent: scikit-learn's coordinate descent / liblinear, brute-force 1-D minimisation for the
nonconvex stationarity check, dense vs sparse runs of the same problem.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression

import optlab as ol
from optlab import prox
from optlab.sparse_glm import compile_count, lambda_max
from optlab.sparse_glm.anderson import extrapolate
from optlab.sparse_glm.blocks import size_class


def _regression(n=60, p=40, k=5, seed=0, rho=0.5):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, p))
    X = np.empty_like(Z)
    X[:, 0] = Z[:, 0]
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho**2) * Z[:, j]
    w = np.zeros(p)
    w[rng.choice(p, k, replace=False)] = rng.standard_normal(k) * 2
    return X, X @ w + 0.3 * rng.standard_normal(n) + 1.5


def _classification(n=80, p=30, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    w = np.zeros(p)
    w[:4] = [2.0, -1.5, 1.0, 0.5]
    y = np.where(X @ w + 1.0 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


def _ls_objective(X, y, w, b, pen):
    return 0.5 * np.mean((y - X @ w - b) ** 2) + float(pen.value(w))


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_lasso_matches_sklearn(fit_intercept):
    X, y = _regression()
    lam = 0.1 * lambda_max(X, y, fit_intercept=fit_intercept)
    res = ol.glm(X, y, "least_squares", prox.l1(lam), fit_intercept=fit_intercept, tol=1e-15)
    ref = Lasso(alpha=lam, fit_intercept=fit_intercept, tol=1e-16, max_iter=1_000_000).fit(X, y)
    assert res.converged and res.trace.meta["stop"] == "gap"
    np.testing.assert_allclose(res.params["w"], ref.coef_, atol=1e-8)
    np.testing.assert_allclose(res.params["b"], ref.intercept_ if fit_intercept else 0.0, atol=1e-8)
    assert 0 < np.count_nonzero(res.params["w"]) < X.shape[1]
    assert res.trace.last("gap") >= -1e-12  # a duality gap is nonnegative


def test_elastic_net_matches_sklearn():
    X, y = _regression(seed=3)
    lam = 0.05 * lambda_max(X, y)
    res = ol.glm(X, y, "least_squares", prox.elastic_net(lam, 0.7), tol=1e-15)
    ref = ElasticNet(alpha=lam, l1_ratio=0.7, fit_intercept=False, tol=1e-16, max_iter=1_000_000).fit(X, y)
    assert res.converged
    np.testing.assert_allclose(res.params["w"], ref.coef_, atol=1e-8)


def test_l1_logistic_matches_liblinear():
    X, y = _classification()
    n = X.shape[0]
    lam = 0.05 * lambda_max(X, y, "logistic")
    res = ol.glm(X, y, "logistic", prox.l1(lam), tol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(penalty="l1", C=1 / (n * lam), solver="liblinear", fit_intercept=False,
                                 tol=1e-14, max_iter=100_000).fit(X, y)
    w_ref = ref.coef_.ravel()

    def obj(w):
        return np.mean(np.logaddexp(0, -y * (X @ w))) + lam * np.abs(w).sum()

    assert res.converged
    assert obj(res.params["w"]) <= obj(w_ref) + 1e-12
    np.testing.assert_allclose(res.params["w"], w_ref, atol=1e-6)
    np.testing.assert_allclose(obj(res.params["w"]), obj(w_ref), rtol=1e-9)


def test_mcp_stationarity_brute_force():
    """Every coordinate of the MCP solution minimises F along its axis (checked on a fine grid), and the KKT
    conditions hold with finite-difference gradients."""
    X, y = _regression(n=40, p=8, k=3, seed=5)
    y = y - y.mean()
    lam, gamma = 0.2, 3.0
    pen = prox.mcp(lam, gamma)
    res = ol.glm(X, y, "least_squares", pen, tol=1e-12)
    assert res.converged and res.trace.meta["stop"] == "kkt"
    w = res.params["w"]
    F = _ls_objective(X, y, w, 0.0, pen)
    for j in range(X.shape[1]):
        grid = w[j] + np.linspace(-3, 3, 6001)
        W = np.repeat(w[None], grid.size, 0)
        W[:, j] = grid
        vals = 0.5 * np.mean((y[None] - W @ X.T) ** 2, axis=1) + np.array([float(pen.value(v)) for v in W])
        assert vals.min() >= F - 1e-10
        # KKT by central differences of the smooth part
        h = 1e-6
        e = np.zeros_like(w)
        e[j] = h
        g = (0.5 * np.mean((y - X @ (w + e)) ** 2) - 0.5 * np.mean((y - X @ (w - e)) ** 2)) / (2 * h)
        u = abs(w[j])
        if w[j] != 0:
            dpen = np.sign(w[j]) * max(lam - u / gamma, 0.0)
            assert abs(g + dpen) < 1e-6
        else:
            assert abs(g) <= lam + 1e-6
    assert 0 < np.count_nonzero(w) < X.shape[1]


@pytest.mark.parametrize("loss,pen_fn,fit_intercept", [
    ("least_squares", lambda lam: prox.mcp(lam, 3.0), True),
    ("logistic", lambda lam: prox.l1(lam), True),
    ("squared_hinge", lambda lam: prox.elastic_net(lam, 0.5), False),
])
def test_sparse_equals_dense(loss, pen_fn, fit_intercept):
    rng = np.random.default_rng(0)
    Xs = sp.random(120, 70, density=0.1, random_state=1, format="csr")
    if loss == "least_squares":
        y = Xs @ rng.standard_normal(70) + 0.1 * rng.standard_normal(120)
    else:
        y = np.where(Xs @ rng.standard_normal(70) + 0.3 * rng.standard_normal(120) > 0, 1.0, -1.0)
    lam = 0.1 * lambda_max(Xs, y, loss, fit_intercept=fit_intercept)
    rs = ol.glm(Xs, y, loss, pen_fn(lam), fit_intercept=fit_intercept, tol=1e-12)
    rd = ol.glm(Xs.toarray(), y, loss, pen_fn(lam), fit_intercept=fit_intercept, tol=1e-12)
    assert rs.converged and rd.converged and rs.trace.meta["sparse"] and not rd.trace.meta["sparse"]
    np.testing.assert_allclose(rs.params["w"], rd.params["w"], atol=1e-7)
    np.testing.assert_allclose(rs.params["b"], rd.params["b"], atol=1e-7)


@pytest.mark.parametrize("loss", ["least_squares", "logistic"])
def test_screening_keeps_the_support(loss):
    if loss == "least_squares":
        X, y = _regression(n=100, p=200, k=8, seed=2)
        y = y - y.mean()
    else:
        X, y = _classification(n=100, p=200, seed=4)
    lam = 0.2 * lambda_max(X, y, loss)
    res = ol.glm(X, y, loss, prox.l1(lam), tol=1e-12, screening=True, p0=10)
    ref = ol.glm(X, y, loss, prox.l1(lam), tol=1e-14, screening=False)
    screened = res.state["screened"]
    assert screened.sum() > X.shape[1] // 2  # the rule does remove features
    assert not np.any(screened & (np.abs(ref.params["w"]) > 0))
    np.testing.assert_allclose(res.params["w"], ref.params["w"], atol=1e-6)
    if loss == "least_squares":  # and an independent reference agrees on the support
        sk = Lasso(alpha=lam, fit_intercept=False, tol=1e-14, max_iter=100_000).fit(X, y)
        assert not np.any(screened & (sk.coef_ != 0))


def test_compile_count_bounded_by_size_classes():
    X, y = _regression(n=80, p=120, k=30, seed=7, rho=0.3)
    lams = lambda_max(X, y) * np.geomspace(0.9, 0.01, 12)
    before = compile_count("inner")
    path = ol.glm_path(X, y, "least_squares", lams, penalty="l1", tol=1e-10, p0=10)
    sizes = {int(s) for r in path.results for s in r.trace["ws_size"] if s > 0}
    classes = {size_class(s) for s in sizes}
    new = compile_count("inner") - before
    assert len(sizes) > len(classes)  # several working-set sizes share an executable
    assert new <= len(classes)
    # a second path with other levels and other data of the same shape compiles nothing new
    before = compile_count("inner")
    ol.glm_path(X[::-1].copy(), y[::-1].copy(), "least_squares", lams * 1.1, penalty="l1", tol=1e-10, p0=10)
    assert compile_count("inner") - before <= len(classes) - len(classes & sizes) + 2
    assert all(r.trace.meta["compile_time"] >= 0 for r in path.results)


def test_path_warm_start():
    X, y = _regression(n=80, p=60, k=6, seed=8)
    # 20 values: on 8 coarse values (ratio 0.57) warm and cold starts tie at 215 epochs on one CPU and differ by one
    # 5-epoch check on another; on this grid the warm path saves ~19 % (435 vs 535 epochs, AMD EPYC, float64).
    lams = lambda_max(X, y) * np.geomspace(0.5, 0.01, 20)
    path = ol.glm_path(X, y, "least_squares", lams, penalty="l1", tol=1e-13, p0=10)
    cold = [ol.glm(X, y, "least_squares", prox.l1(lam), tol=1e-13, p0=10) for lam in lams]
    assert path.coefs.shape == (20, 60) and all(r.converged for r in path.results)
    warm_epochs, cold_epochs = sum(r.n_iter for r in path.results), sum(r.n_iter for r in cold)
    assert warm_epochs <= 0.9 * cold_epochs, (warm_epochs, cold_epochs)  # warm starts save epochs
    for lam, coef in zip(lams, path.coefs):
        ref = Lasso(alpha=lam, fit_intercept=False, tol=1e-15, max_iter=100_000).fit(X, y)
        np.testing.assert_allclose(coef, ref.coef_, atol=1e-7)
    mcp = ol.glm_path(X, y, "least_squares", lams, penalty="mcp", penalty_params={"gamma": 3.0}, tol=1e-10)
    assert all(r.converged and r.trace.last("kkt") <= 1e-10 for r in mcp.results)
    assert mcp.results[-1].params["w"] is mcp.coefs[-1] or np.array_equal(mcp.results[-1].params["w"], mcp.coefs[-1])


def test_anderson_exact_on_linear_map():
    """For x+ = A x + c in dimension d, Anderson with M = d differences returns the fixed point."""
    rng = np.random.default_rng(0)
    d = 4
    A = 0.3 * rng.standard_normal((d, d))
    c = rng.standard_normal(d)
    xs = [np.zeros(d)]
    for _ in range(d + 1):
        xs.append(A @ xs[-1] + c)
    x_acc, ok = extrapolate(np.array(xs))
    fixed = np.linalg.solve(np.eye(d) - A, c)
    assert bool(ok)
    np.testing.assert_allclose(np.asarray(x_acc), fixed, atol=1e-8)


def test_bad_inputs():
    X, y = _regression(n=20, p=5)
    pen = prox.l1(0.1)
    with pytest.raises(ValueError, match="y must be a vector of length n"):
        ol.glm(X, y[:-1], "least_squares", pen)
    with pytest.raises(ValueError, match="2-D"):
        ol.glm(X[:, 0], y, "least_squares", pen)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains 1 non-finite"):
        ol.glm(Xn, y, "least_squares", pen)
    with pytest.raises(ValueError, match=r"labels -1/\+1.*y = 2\*y - 1"):
        ol.glm(X, (y > y.mean()).astype(float), "logistic", pen)
    with pytest.raises(ValueError, match="separable sparse penalty"):
        ol.glm(X, y, "least_squares", prox.tv1d(0.1))
    with pytest.raises(ValueError, match="penalty is required"):
        ol.glm(X, y, "least_squares")
    with pytest.raises(ValueError, match="loss must be one of"):
        ol.glm(X, y, "hinge", pen)
    with pytest.raises(ValueError, match="solver must be"):
        ol.glm(X, y, "least_squares", pen, solver="newton")
    with pytest.raises(ValueError, match="length p = 5"):
        ol.glm(X, y, "least_squares", prox.l1(np.ones(3)))
    with pytest.raises(ValueError, match="tol must be"):
        ol.glm(X, y, "least_squares", pen, tol=-1.0)


def test_estimators_fit_and_predict():
    from optlab.glm_estimators import SparseLinearRegression, SparseLogisticRegression

    X, y = _regression()
    lam = 0.1 * lambda_max(X, y, fit_intercept=True)
    model = SparseLinearRegression(alpha=lam, tol=1e-14).fit(X, y)
    ref = Lasso(alpha=lam, tol=1e-16, max_iter=1_000_000).fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(model.predict(X), ref.predict(X), atol=1e-7)
    Xc, yc = _classification()
    labels = np.array(["no", "yes"])[(yc > 0).astype(int)]
    clf = SparseLogisticRegression(alpha=0.01).fit(Xc, labels)
    assert clf.score(Xc, labels) > 0.8
    assert set(clf.predict(Xc)) <= {"no", "yes"} and clf.coef_.shape == (1, Xc.shape[1])
    np.testing.assert_allclose(clf.predict_proba(Xc).sum(1), 1.0)


@pytest.mark.slow
def test_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    from optlab.glm_estimators import SparseLinearRegression, SparseLogisticRegression

    for est in (SparseLinearRegression(), SparseLogisticRegression()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_estimator(est)


def _skewed_sparse(n=400, p=60, seed=5):
    """A sparse design whose column lengths range from 1 to n (like a9a's one-hot and count features)."""
    rng = np.random.default_rng(seed)
    cols = []
    for j in range(p):
        nnz = int(np.clip(round(n * 0.9 ** j), 1, n))  # 400, 360, ..., down to 1 entry
        col = np.zeros(n)
        col[rng.choice(n, nnz, replace=False)] = rng.standard_normal(nnz) + 1.0
        cols.append(col)
    X = sp.csc_matrix(np.column_stack(cols))
    return X, rng


def test_chunked_sparse_block_products():
    """Every product of the chunked working-set block equals the dense float64 one, for columns of very
    unequal length, chunk lengths that do and do not divide them, and padded (empty) block columns."""
    import jax.numpy as jnp

    from optlab.losses import get_loss
    from optlab.sparse_glm.blocks import ChunkedColumns, SparseBlock

    X, rng = _skewed_sparse()
    n, p = X.shape
    y = np.where(rng.standard_normal(n) > 0, 1.0, -1.0)
    Xd = X.toarray()
    ws = np.sort(rng.choice(p, 25, replace=False))
    z = rng.standard_normal(n)
    v = rng.standard_normal(n)
    w = np.zeros(32)
    w[:25] = rng.standard_normal(25)
    w[::3] = 0.0  # zero coefficients are skipped by add_matvec
    loss = get_loss("logistic")
    raw = np.asarray(loss.grad(jnp.asarray(z), jnp.asarray(y)))
    for chunk in (None, 1, 8, 64, 1024):
        cols = ChunkedColumns(X, y, np.float64, chunk)
        assert cols.C & (cols.C - 1) == 0 or chunk == 1  # a power of two by default
        block = SparseBlock.gather(cols, ws, 32).ready()
        for j in (0, 7, 24, 25, 31):  # real columns and padded (empty) ones
            ref = Xd[:, ws[j]] @ raw if j < 25 else 0.0
            np.testing.assert_allclose(float(block.grad_dot(j, loss, jnp.asarray(z), jnp.asarray(y))), ref,
                                       rtol=1e-12, atol=1e-12)
            ref_axpy = z + 0.7 * Xd[:, ws[j]] if j < 25 else z
            np.testing.assert_allclose(np.asarray(block.axpy(j, 0.7, jnp.asarray(z))), ref_axpy, atol=1e-12)
        np.testing.assert_allclose(np.asarray(block.rmatvec(jnp.asarray(v)))[:25], Xd[:, ws].T @ v, atol=1e-11)
        np.testing.assert_allclose(np.asarray(block.rmatvec(jnp.asarray(v)))[25:], 0.0)
        np.testing.assert_allclose(np.asarray(block.add_matvec(jnp.asarray(w), jnp.asarray(z), 25)),
                                   z + Xd[:, ws] @ w[:25], atol=1e-11)
        np.testing.assert_allclose(np.asarray(block.matvec(jnp.asarray(w))), Xd[:, ws] @ w[:25], atol=1e-11)


@pytest.mark.parametrize("loss", ["least_squares", "logistic"])
def test_skewed_sparse_matches_sklearn(loss):
    """Sparse input with column lengths from 1 to n: the objective of scikit-learn (coordinate descent /
    liblinear run to 1e-12) is reached to 1e-9 relative, and the default first working set is max(10, p // 20)."""
    X, rng = _skewed_sparse(seed=6)
    n, p = X.shape
    w_true = np.zeros(p)
    w_true[[0, 3, 10, 30]] = [1.0, -2.0, 1.5, 3.0]
    t = X @ w_true + 0.3 * rng.standard_normal(n)
    y = t if loss == "least_squares" else np.where(t > np.median(t), 1.0, -1.0)
    lam = 0.05 * lambda_max(X, y, loss)
    res = ol.glm(X, y, loss, prox.l1(lam), tol=1e-12)
    assert res.converged and res.trace["ws_size"][0] == min(max(10, p // 20), p)
    w = res.params["w"]
    z = X @ w
    if loss == "least_squares":
        ref = Lasso(alpha=lam, fit_intercept=False, tol=1e-14, max_iter=1_000_000).fit(X, y).coef_
        f = lambda c: 0.5 * np.mean((y - X @ c) ** 2) + lam * np.abs(c).sum()  # noqa: E731
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = LogisticRegression(penalty="l1", C=1 / (n * lam), solver="liblinear", fit_intercept=False,
                                     tol=1e-12, max_iter=100_000).fit(X, y).coef_.ravel()
        f = lambda c: np.mean(np.logaddexp(0, -y * (X @ c))) + lam * np.abs(c).sum()  # noqa: E731
    assert np.isfinite(z).all()
    assert f(w) <= f(ref) * (1 + 1e-9)
    np.testing.assert_allclose(w, ref, atol=1e-4)


def test_bench_peers_cli_exit_status(monkeypatch, tmp_path):
    """``optlab bench peers`` returns exit status 0 after writing its CSV (it used to fail on int(rows))."""
    from optlab import cli
    from optlab.experiments import bench_peers

    X, y = _regression(n=50, p=12, k=3, seed=9)
    prob = dict(name="tiny l1 LS", X=X, y=y, loss="least_squares", penalty="l1", lam=0.1 * lambda_max(X, y),
                gamma=3.0)
    monkeypatch.setattr(bench_peers, "synthetic_problems", lambda full: [prob])
    monkeypatch.setattr(bench_peers, "real_problems", lambda: [])
    monkeypatch.setattr(bench_peers, "TOLS", (1e-6,))
    assert cli.main(["bench", "peers", "--sections", "glm", "--repeats", "1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "bench_peers.csv").read_text().count("tiny l1 LS") >= 2  # ours and a peer


@pytest.mark.data
def test_bench_peers_svm_section_on_heart_scale(tmp_path, capsys):
    """The SVM section of ``optlab bench peers``: svm_admm's time to a 1e-4 gap against HiGHS (whose optimum is the
    reference) and liblinear, in one table and a CSV."""
    import csv

    from optlab import cli
    from optlab.data.api import local_files

    if not all(local_files("heart_scale").values()):
        pytest.skip("heart_scale is not in $OPTLAB_DATA")
    assert cli.main(["bench", "peers", "--sections", "svm", "--only", "heart", "--repeats", "1",
                     "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "l1-hinge SVM" in out and "x liblinear" in out
    rows = list(csv.DictReader(open(tmp_path / "bench_peers_svm.csv")))
    assert [r["dataset"] for r in rows] == ["heart_scale"]
    assert 0 < float(rows[0]["admm_to_1e-4_s"]) < 60 and float(rows[0]["F_star"]) > 0


def test_bench_peers_rejects_an_unknown_section():
    from optlab.experiments import bench_peers

    with pytest.raises(SystemExit):
        bench_peers.main(["--sections", "glm,lasso"])
