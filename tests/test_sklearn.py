"""optlab.sklearn.NonconvexSVC: scikit-learn's own estimator checks, labels, sparse input, penalties."""
import numpy as np
import pytest
import scipy.sparse as sp

from optlab.sklearn import NonconvexSVC


def test_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(NonconvexSVC(), on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed, failed


def _data(seed=0, n=200, d=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.where(X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0, "yes", "no")
    return X, y


@pytest.mark.parametrize("penalty", ["mcp", "scad", "lsp", "capped_l1", "l1"])
def test_fit_predict_string_labels(penalty):
    X, y = _data()
    clf = NonconvexSVC(penalty=penalty, lam=0.02).fit(X, y)
    assert list(clf.classes_) == ["no", "yes"]
    assert clf.coef_.shape == (1, 12) and clf.intercept_.shape == (1,)
    assert np.mean(clf.predict(X) == y) > 0.9
    assert np.sum(clf.coef_ != 0) < 12            # sparse model
    assert clf.get_params()["penalty"] == penalty


def test_sparse_input_matches_dense():
    X, y = _data(seed=1)
    X[np.abs(X) < 1.3] = 0.0                      # about 19 % stored: solved sparse
    a = NonconvexSVC(lam=0.02).fit(X, y)
    b = NonconvexSVC(lam=0.02).fit(sp.csr_matrix(X), y)
    assert b.result_.trace.meta["sparse"] and not a.result_.trace.meta["sparse"]
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(sp.csr_matrix(X)), rtol=1e-6, atol=1e-8)


def test_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="binary"):
        NonconvexSVC().fit(X, np.arange(200) % 3)
    with pytest.raises(ValueError, match="penalty must be one of"):
        NonconvexSVC(penalty="ridge").fit(X, y)


def test_init_l1_equals_the_warm_started_solver_run():
    """init="l1": an l1 fit at the same lam, then the nonconvex fit from there (same iterates as doing it by hand)."""
    import optlab as ol

    X, y = _data(seed=2)
    clf = NonconvexSVC(penalty="scad", lam=0.05, init="l1").fit(X, y)
    b = np.where(y == "yes", 1.0, -1.0)
    kw = dict(maxiter=1000, tol=1e-4, progress=False, log_every=1000)
    start = ol.svm_admm(X, b, ol.prox.l1(0.05), **kw)
    ref = ol.svm_admm(X, b, ol.prox.scad(0.05, 3.7), warm_start=start, **kw)
    np.testing.assert_allclose(clf.coef_.ravel(), np.asarray(ref.params["w"]), rtol=1e-10, atol=1e-12)
    cold = NonconvexSVC(penalty="scad", lam=0.05).fit(X, y)
    assert not np.allclose(cold.coef_, clf.coef_)          # a different start, a different stationary point
    with pytest.raises(ValueError, match="init must be"):
        NonconvexSVC(init="random").fit(X, y)


def test_convergence_warning_at_max_iter():
    """scikit-learn's ConvergenceWarning when ADMM uses all max_iter iterations (issue 15), none when it converges."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X, y = _data()
    with pytest.warns(ConvergenceWarning, match="max_iter=5 "):
        clf = NonconvexSVC(penalty="l1", lam=0.02, max_iter=5).fit(X, y)
    assert clf.result_.status == "maxiter" and clf.n_iter_ == 5
    assert clf.coef_.shape == (1, 12)  # still fitted: the last iterate
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        done = NonconvexSVC(penalty="l1", lam=0.02, max_iter=5000).fit(X, y)
    assert done.result_.status == "converged" and done.n_iter_ < 5000


def test_convergence_warning_names_other_statuses():
    from sklearn.exceptions import ConvergenceWarning

    from optlab.sklearn import _warn_unless_converged

    with pytest.warns(ConvergenceWarning, match="status 'diverged' after 7 iterations"):
        _warn_unless_converged("diverged", 7, 100, 1e-4)


# ------------------------------------------------------------------------------------- shape bucketing (issue 17)
def test_bucket_size_is_the_smallest_m_times_power_of_two():
    """Brute force over m in 4..7 and k: the smallest m·2^k >= n; at most 25 % padding."""
    from optlab.sklearn import bucket_size

    sizes = sorted({m << k for m in (4, 5, 6, 7) for k in range(16)})
    for n in range(1, 5000):
        want = next(s for s in sizes if s >= n)
        assert bucket_size(n) == want, n
        assert n <= 4 or bucket_size(n) <= 1.25 * n
    assert len({bucket_size(n) for n in range(209, 225)}) == 1       # 5-fold training sizes share one bucket


def test_pad_rows_keeps_the_data_and_buckets_sparse_entries():
    from optlab.sklearn import bucket_size, pad_rows

    X, y = _data(seed=3, n=217, d=9)
    X[np.abs(X) < 0.7] = 0.0
    Xs = sp.csr_matrix(X)
    Xp, yp, mask = pad_rows(Xs, y)
    n_pad = Xp.shape[0]
    assert n_pad >= bucket_size(217) and mask.sum() == 217 and not mask[217:].any()
    assert Xp.nnz == bucket_size(Xs.nnz)                       # stored entries padded with explicit zeros
    np.testing.assert_array_equal(Xp.toarray()[:217], X)
    assert not Xp.toarray()[217:].any() and list(yp[:217]) == list(y)
    Xd, yd, md = pad_rows(X, y)
    assert Xd.shape == (bucket_size(217), 9) and np.array_equal(Xd[:217], X) and not Xd[217:].any()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("penalty,init", [("mcp", "zeros"), ("l1", "zeros"), ("scad", "l1")])
@pytest.mark.parametrize("sparse", [False, True])
def test_padded_fit_equals_unpadded_fit(penalty, init, sparse):
    """pad_rows=True (masked zero rows) gives the unpadded iterates: same iteration count, model to rounding."""
    X, y = _data(seed=4, n=203, d=10)
    if sparse:
        X[np.abs(X) < 1.3] = 0.0                  # about 19 % stored: solved sparse (solver_matrix)
        X = sp.csr_matrix(X)
    kw = dict(penalty=penalty, lam=0.03, init=init, max_iter=400)
    a = NonconvexSVC(pad_rows=False, **kw).fit(X, y)
    b = NonconvexSVC(pad_rows=True, **kw).fit(X, y)
    assert b.result_.state.u2.shape[0] == 224 and a.result_.state.u2.shape[0] == 203
    assert a.n_iter_ == b.n_iter_ and a.result_.status == b.result_.status
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.result_.trace["objective"], a.result_.trace["objective"], rtol=1e-5)
    np.testing.assert_array_equal(b.predict(X), a.predict(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_padded_refits_on_new_row_counts_do_not_recompile():
    """Fits on 210, 215 and 222 rows share the 224-row bucket: after the first, nothing is lowered or compiled
    (jax.monitoring events); without padding each new row count lowers the solver anew."""
    from _lowerings import lowerings

    X, y = _data(seed=5, n=230, d=7)
    lowered = {}
    for pad in (True, False):
        fit = lambda n: NonconvexSVC(lam=0.01, pad_rows=pad, max_iter=20, tol=1e-12).fit(X[:n], y[:n])  # noqa: E731
        lowered[pad] = [lowerings(lambda: fit(n)) for n in (210, 215, 222)]
    assert lowered[True][1:] == [0, 0], lowered
    assert min(lowered[False]) > 0, lowered


def test_row_mask_errors():
    import optlab as ol

    X, y = _data()
    with pytest.raises(ValueError, match="row_mask must be an \\(200,\\) array"):
        ol.svm_admm(X, y, ol.prox.l1(0.1), row_mask=np.ones(10, bool))
    with pytest.raises(ValueError, match="row_mask keeps 1 rows"):
        ol.svm_admm(X, y, ol.prox.l1(0.1), row_mask=np.arange(200) == 3)


# ------------------------------------------------------------------------------------------ dense solving of full X
def test_mostly_filled_small_sparse_input_is_solved_dense():
    """solver_matrix: >= DENSE_FRACTION stored (and small) -> dense; the fit equals the sparse solver's to rounding."""
    import optlab as ol
    from optlab.sklearn import DENSE_FRACTION, solver_matrix

    X, y = _data(seed=6)
    X[np.abs(X) < 0.3] = 0.0                      # about 76 % stored
    Xs = sp.csr_matrix(X)
    assert Xs.nnz >= DENSE_FRACTION * X.size
    assert isinstance(solver_matrix(Xs), np.ndarray)
    assert sp.issparse(solver_matrix(sp.csr_matrix(X * (np.abs(X) > 1.3))))      # about 19 % stored: stays sparse
    clf = NonconvexSVC(penalty="mcp", lam=0.02, max_iter=300, pad_rows=False).fit(Xs, y)
    assert not clf.result_.trace.meta["sparse"]
    b = np.where(y == "yes", 1.0, -1.0)
    ref = ol.svm_admm(Xs, b, ol.prox.mcp(0.02, 3.0), maxiter=300, tol=1e-4, progress=False, log_every=300)
    assert ref.trace.meta["sparse"] and ref.n_iter == clf.n_iter_
    np.testing.assert_allclose(clf.coef_.ravel(), np.asarray(ref.params["w"]), rtol=1e-6, atol=1e-8)


# -------------------------------------------------------------------------------------------------- warm start
def test_warm_start_reaches_the_lp_optimum_in_fewer_iterations():
    """warm_start=True along an l1 path (set_params): the same objective as a cold fit and as the exact LP optimum
    (HiGHS, optlab.references), in fewer iterations."""
    from optlab.references import svm_l1_hinge_lp

    X, y = _data(seed=7)
    b = np.where(y == "yes", 1.0, -1.0)
    kw = dict(penalty="l1", max_iter=5000, tol=1e-5)
    warm = NonconvexSVC(lam=0.02, warm_start=True, **kw).fit(X, y)
    warm.set_params(lam=0.03).fit(X, y)
    cold = NonconvexSVC(lam=0.03, **kw).fit(X, y)
    f_star, _, _ = svm_l1_hinge_lp(X, b, 0.03)
    f_warm, f_cold = warm.result_.trace["objective"][-1], cold.result_.trace["objective"][-1]
    assert abs(f_warm - f_star) <= 1e-4 * abs(f_star) and abs(f_cold - f_star) <= 1e-4 * abs(f_star)
    assert warm.result_.status == cold.result_.status == "converged"
    assert warm.n_iter_ < cold.n_iter_, (warm.n_iter_, cold.n_iter_)
    # the warm fit started from the previous model: its first logged objective is that model's (not the zero model's)
    first = warm.result_.trace["objective"][0]
    assert first < cold.result_.trace["objective"][0]


def test_warm_start_equals_the_solver_warm_started_by_hand():
    """The refit is svm_admm(warm_start={"w": coef_, "b": intercept_}) on the same data (MCP, padded rows)."""
    import optlab as ol

    X, y = _data(seed=8)
    clf = NonconvexSVC(penalty="mcp", lam=0.02, warm_start=True, max_iter=300, pad_rows=False).fit(X, y)
    w0, c0 = clf.coef_.ravel().copy(), float(clf.intercept_[0])
    clf.set_params(lam=0.04).fit(X, y)
    b = np.where(y == "yes", 1.0, -1.0)
    ref = ol.svm_admm(X, b, ol.prox.mcp(0.04, 3.0), maxiter=300, tol=1e-4, progress=False, log_every=300,
                      warm_start={"w": w0, "b": c0})
    assert clf.n_iter_ == ref.n_iter
    np.testing.assert_allclose(clf.coef_.ravel(), np.asarray(ref.params["w"]), rtol=1e-10, atol=1e-12)


def test_warm_start_falls_back_to_a_cold_start():
    """No previous fit, other features or other labels: the fit is the cold one; a bad value is a clear error."""
    X, y = _data(seed=9)
    cold = NonconvexSVC(lam=0.02, max_iter=200).fit(X, y)
    assert np.array_equal(NonconvexSVC(lam=0.02, max_iter=200, warm_start=True).fit(X, y).coef_, cold.coef_)
    clf = NonconvexSVC(lam=0.02, max_iter=200, warm_start=True).fit(X[:, :5], y)
    assert np.array_equal(clf.fit(X, y).coef_, cold.coef_)                    # 5 features before, 12 now
    clf = NonconvexSVC(lam=0.02, max_iter=200, warm_start=True).fit(X, np.where(y == "yes", "a", "b"))
    assert np.array_equal(clf.fit(X, y).coef_, cold.coef_)                    # other labels before
    with pytest.raises(ValueError, match="warm_start must be True or False"):
        NonconvexSVC(warm_start="yes").fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pad_rows_to_a_row_count_shares_one_program_with_the_refit():
    """pad_rows=N: folds of 184 rows and the refit on 230 share the bucket of 230 (one lowering, then none); the fit
    equals the unpadded one; a bad value is a clear error."""
    from _lowerings import lowerings

    from optlab.sklearn import bucket_size

    X, y = _data(seed=10, n=230, d=7)
    counts = []
    for n in (184, 230):
        fitted = []
        counts.append(lowerings(lambda: fitted.append(
            NonconvexSVC(lam=0.01, pad_rows=230, max_iter=30, tol=1e-12).fit(X[:n], y[:n]))))
        assert fitted[0].result_.state.u2.shape == (bucket_size(230),)
    assert counts[1] == 0, counts
    ref = NonconvexSVC(lam=0.01, pad_rows=False, max_iter=30, tol=1e-12).fit(X[:184], y[:184])
    padded = NonconvexSVC(lam=0.01, pad_rows=230, max_iter=30, tol=1e-12).fit(X[:184], y[:184])
    np.testing.assert_allclose(padded.coef_, ref.coef_, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="pad_rows must be a positive integer"):
        NonconvexSVC(pad_rows=0).fit(X, y)
    with pytest.raises(TypeError, match="pad_rows must be an integer"):
        NonconvexSVC(pad_rows="yes").fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_refits_run_one_chunk_each_and_fit_the_same(monkeypatch):
    """A grid search's refits (other folds, other penalty values, one row bucket) make one call of the compiled loop
    each: the harness's warm-up call only for the first (optlab.harness._WARM_CHUNKS); the coefficients are the
    same bit for bit as a fit made with the warm-up call."""
    from optlab import harness

    if harness._donating_backend():
        pytest.skip("accelerators always warm up")
    calls = []
    real = harness._chunk_plain

    def chunk(step, stop_metric, state, info, problem, n_steps, tol):
        calls.append(int(n_steps))
        return real(step, stop_metric, state, info, problem, n_steps, tol)

    monkeypatch.setattr(harness, "_chunk_plain", chunk)       # a new program key: the first fit warms up
    X, y = _data(seed=11, n=150, d=6)
    fits = [NonconvexSVC(lam=lam, gamma=g, pad_rows=150, max_iter=40).fit(X[rows], y[rows])
            for lam, g, rows in [(0.01, 3.0, slice(0, 120)), (0.03, 2.0, slice(30, 150)), (0.01, 3.0, slice(0, 120))]]
    assert calls == [0, 40, 40, 40], calls
    assert np.array_equal(fits[2].coef_, fits[0].coef_) and np.array_equal(fits[2].intercept_, fits[0].intercept_)
    assert fits[2].n_iter_ == fits[0].n_iter_ and fits[2].result_.status == fits[0].result_.status
