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
    X[np.abs(X) < 0.8] = 0.0
    a = NonconvexSVC(lam=0.02).fit(X, y)
    b = NonconvexSVC(lam=0.02).fit(sp.csr_matrix(X), y)
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
