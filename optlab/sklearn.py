"""scikit-learn interface: :class:`NonconvexSVC`, a linear SVM with a (nonconvex) penalty fitted by
:func:`optlab.svm_admm` (SPEC §1).

    >>> from optlab.sklearn import NonconvexSVC
    >>> clf = NonconvexSVC(penalty="mcp", lam=0.01).fit(X, y)          # doctest: +SKIP
    >>> clf.predict(X_test), clf.coef_, clf.intercept_, clf.classes_  # doctest: +SKIP

Binary only: ``y`` must take exactly two values (any labels; ``classes_`` holds them in sorted order, the second
is the positive class). Dense arrays and SciPy sparse matrices are accepted. Sparse input stays sparse unless it is
small and mostly filled (:func:`solver_matrix`: at least :data:`DENSE_FRACTION` of its entries stored and at most
:data:`DENSE_MAX_ENTRIES` entries in all), which is solved as a dense array: the same problem, and each ADMM
iteration is about twice as fast (heart_scale, 96 % filled: 19 µs instead of 35 µs of CPU per iteration).

Cross-validation and grid search: ``tol`` is the ADMM tolerance on the relative primal and dual residuals (Boyd et
al. 2011, §3.3). For choosing hyperparameters ``tol=1e-3`` (the default relative tolerance of OSQP, Stellato et al.
2020) suffices: on heart_scale, a 4 × 3 ``GridSearchCV`` over ``lam`` × ``gamma`` (MCP, 5 folds) picks the same
``best_params_`` with the same ``best_score_`` as at the default ``tol=1e-4``, every fold's objective within 0.12 %
of the ``tol=1e-4`` fit's, in 3× fewer iterations (``optlab bench gridsearch``). Refit the chosen model at the
default tolerance when the coefficients themselves matter. ``warm_start=True`` (scikit-learn's convention) starts a
refit from the previous ``coef_``, ``intercept_``: for a path over ``lam`` by ``set_params``; ``GridSearchCV`` clones
the estimator for every fit, so warm starts do not carry over there.

Shape bucketing (``pad_rows=True``, the default): JAX compiles the solver once per array shape, and a grid search
refits on training folds of changing sizes. ``fit`` pads the rows to the next of a few sizes (:func:`bucket_size`:
``m·2^k`` with ``m`` in 4..7, at most 25 % extra rows) with zero rows masked out of the problem
(``svm_admm(row_mask=...)``, exact: the padded fit equals the unpadded one to rounding), and a sparse matrix's stored
entries likewise (explicit zeros in the padding rows), so a 5-fold grid search compiles for one or two shapes.
``pad_rows=N`` (an integer) pads to the bucket of at least ``N`` rows: with ``N`` the full data's row count, the
cross-validation fits and ``GridSearchCV``'s final refit share one compiled program (the refit otherwise needs the
next bucket up: in a fresh process that is one more program to trace, lower and load, which on heart_scale costs
about as much CPU time as 20 fits, 115 ms against 6 ms per fit; padding the small folds further costs little, as a
small problem's iteration time is mostly per-operation overhead).
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import validate

__all__ = ["NonconvexSVC", "bucket_size", "pad_rows", "solver_matrix", "DENSE_FRACTION", "DENSE_MAX_ENTRIES"]

#: A sparse ``X`` with at least this fraction of its entries stored is solved dense (when small, see below).
DENSE_FRACTION = 0.25
#: ... and at most this many entries in all (16 MiB in float64).
DENSE_MAX_ENTRIES = 1 << 21

_PENALTY_PARAMS = {
    "l1": (),
    "scad": ("a",),
    "mcp": ("gamma",),
    "lsp": ("theta",),
    "capped_l1": ("theta",),
}


def bucket_size(n: int) -> int:
    """The smallest ``m·2^k >= n`` with ``m`` in {4, 5, 6, 7} (four sizes per doubling, so padding to it adds at
    most 25 % and a range of sizes shares few buckets: every ``n`` in 209..224 gives 224). ``n <= 4`` gives 4."""
    n = int(n)
    if n <= 4:
        return 4
    k = max(n.bit_length() - 3, 0)            # 2^k <= n / 4
    m = -(-n // (1 << k))                     # ceil(n / 2^k), in 4..8
    return m << k


def pad_rows(X, y, min_rows: int = 0):
    """Pad ``(X, y)`` for shape bucketing: returns ``(X_pad, y_pad, row_mask)``.

    Rows are added up to :func:`bucket_size` of ``max(n, min_rows)`` (zero rows, label ``y[0]``, mask False). For
    a sparse ``X`` (converted to CSR) the number of stored entries is padded to ``bucket_size(nnz)`` with explicit
    zeros in the padding rows (more padding rows are added when they cannot hold them), since a sparse matrix's
    compiled shape is its number of stored entries.
    """
    n, d = X.shape
    rows = bucket_size(max(n, int(min_rows)))
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        X.sort_indices()
        extra = bucket_size(X.nnz) - X.nnz
        if (rows - n) * d < extra:
            rows = bucket_size(n + -(-extra // d))
        counts = np.zeros(rows - n, np.int64)
        full, rest = divmod(extra, d)
        counts[:full] = d
        if rest:
            counts[full] = rest
        cols = np.concatenate([np.arange(c) for c in counts]) if extra else np.zeros(0, np.int64)
        indptr = np.concatenate([X.indptr, X.indptr[-1] + np.cumsum(counts)])
        Xp = sp.csr_matrix((np.concatenate([X.data, np.zeros(extra, X.dtype)]),
                            np.concatenate([X.indices, cols]).astype(X.indices.dtype, copy=False),
                            indptr.astype(X.indptr.dtype, copy=False)), shape=(rows, d))
    else:
        Xp = np.concatenate([X, np.zeros((rows - n, d), X.dtype)])
    yp = np.concatenate([y, np.repeat(y[:1], rows - n)])
    return Xp, yp, np.arange(rows) < n


def solver_matrix(X):
    """The matrix the solver gets: ``X`` itself, or ``X.toarray()`` for a SciPy sparse ``X`` with at least
    :data:`DENSE_FRACTION` of its entries stored and at most :data:`DENSE_MAX_ENTRIES` entries. A stored entry of a
    sparse (BCOO) product costs an index gather and a scatter-add, a dense entry one multiply-add, so a mostly filled
    small matrix is faster dense; the problem is the same (the fit equals the sparse one to rounding)."""
    if not sp.issparse(X):
        return X
    n, d = X.shape
    if n * d <= DENSE_MAX_ENTRIES and X.nnz >= DENSE_FRACTION * n * d:
        return X.toarray()
    return sp.csr_matrix(X)


def _warn_unless_converged(status: str, n_iter: int, max_iter, tol) -> None:
    """scikit-learn's ConvergenceWarning for a fit that stopped without meeting the tolerance."""
    if status == "converged":
        return
    if status == "maxiter":
        msg = (f"NonconvexSVC: ADMM reached max_iter={max_iter} iterations without meeting tol={tol}; "
               "increase max_iter (or tol), or scale the features.")
    else:
        msg = (f"NonconvexSVC: ADMM stopped with status {status!r} after {n_iter} iterations without meeting "
               f"tol={tol}; see result_.status and result_.trace.")
    warnings.warn(msg, ConvergenceWarning, stacklevel=3)


class NonconvexSVC(ClassifierMixin, BaseEstimator):
    """Linear SVM, hinge loss + nonconvex penalty, by ADMM (:func:`optlab.svm_admm`).

    Minimises ``(1/n) Σ max(0, 1 − y_i(x_iᵀw + b)) + Σ_j P(w_j)`` with ``P`` chosen by ``penalty``.

    Parameters
    ----------
    penalty : {"mcp", "scad", "lsp", "capped_l1", "l1"}
    lam : penalty level λ > 0.
    gamma : MCP concavity (γ > 0). a : SCAD parameter (a > 2). theta : LSP / capped-ℓ1 parameter (θ > 0).
    fit_intercept : fit the unpenalised intercept ``b``.
    max_iter, tol : ADMM iteration budget and tolerance on the relative primal/dual residuals.
    rho1, rho2 : ADMM penalties (None: the problem-scaled defaults of :func:`optlab.svm_admm`).
    init : ``"zeros"`` (SPEC §1) or ``"l1"``: first fit the ℓ1 penalty at the same ``lam`` and start the
        nonconvex fit there (the initial estimator of the one-step/LLA literature, Zou & Li 2008; Fan, Xue & Zou
        2014). For nonconvex penalties the stationary point reached depends on the start; on mushrooms
        (λ = 0.01) the ℓ1 start gives sparser models with lower SCAD/MCP objective (experiments/README_svm_admm.md).
    pad_rows : shape bucketing (see the module docstring): pad the rows to :func:`bucket_size` with masked zero rows
        so refits on other row counts reuse the compiled solver; the fit is the same to rounding. ``False``: solve
        on ``X`` as given. An integer ``N >= 1``: pad to the bucket of at least ``N`` rows (e.g. ``N = len(X)`` in a
        grid search, so that the folds and the refit share one program).
    warm_start : when True and the estimator was fitted before (same number of features, same ``classes_``), start
        ADMM from the previous ``coef_`` and ``intercept_`` (slacks set from them, multipliers at zero) instead of
        ``init`` (scikit-learn's convention). A convex penalty reaches the same minimiser in fewer iterations; a
        nonconvex one may stop at another stationary point near the start (the point of a path over ``lam``).

    Attributes
    ----------
    coef_ : (1, n_features) array. intercept_ : (1,) array. classes_ : the two labels.
    n_iter_ : ADMM iterations run. n_features_in_ : number of features seen in ``fit``.
    result_ : the :class:`optlab.Result` of the fit (trace, status ...); with ``pad_rows`` its state has the
        padded row count (the masked rows hold zeros).

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning : when ADMM stops without meeting ``tol`` (status ``"maxiter"``:
        it used all ``max_iter`` iterations; any other status but ``"converged"`` is named in the message).
        The model is still fitted (the last iterate), as scikit-learn's own solvers do.
    """

    def __init__(self, penalty="mcp", lam=0.01, *, gamma=3.0, a=3.7, theta=0.5, fit_intercept=True,
                 max_iter=1000, tol=1e-4, rho1=None, rho2=None, init="zeros", pad_rows=True, warm_start=False):
        self.penalty = penalty
        self.lam = lam
        self.gamma = gamma
        self.a = a
        self.theta = theta
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.rho1 = rho1
        self.rho2 = rho2
        self.init = init
        self.pad_rows = pad_rows
        self.warm_start = warm_start

    def _penalty(self):
        from . import prox

        if self.penalty not in _PENALTY_PARAMS:
            raise ValueError(f"penalty must be one of {sorted(_PENALTY_PARAMS)}, got {self.penalty!r}")
        params = {k: getattr(self, k) for k in _PENALTY_PARAMS[self.penalty]}
        return prox.get(self.penalty, lam=self.lam, **params)

    def fit(self, X, y):
        from .solvers.svm_admm import svm_admm

        previous = self._previous_model() if self.warm_start else None
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32],
                             y_numeric=False)
        check_classification_targets(y)          # rejects continuous targets; validate_data made y 1-d
        self.classes_ = np.unique(y)
        if self.classes_.size != 2:
            raise ValueError(f"Only binary classification is supported: y must take exactly two values, got "
                             f"{self.classes_.size} classes")
        pen = self._penalty()
        if self.init not in ("zeros", "l1"):
            raise ValueError(f"init must be 'zeros' or 'l1', got {self.init!r}")
        if self.warm_start not in (True, False):
            raise ValueError(f"warm_start must be True or False, got {self.warm_start!r}")
        Xs = solver_matrix(X)
        ys, row_mask = y, None
        if isinstance(self.pad_rows, (bool, np.bool_)):
            min_rows = 0 if self.pad_rows else None
        else:                                     # True/False or a row count
            min_rows = validate.count("pad_rows", self.pad_rows, minimum=1)
        if min_rows is not None:
            Xs, ys, row_mask = pad_rows(Xs, y, min_rows)
        max_iter = validate.count("max_iter", self.max_iter, minimum=1)
        tol = validate.tolerance("tol", self.tol)
        kw = dict(rho1=self.rho1, rho2=self.rho2, maxiter=max_iter, tol=tol,
                  fit_intercept=bool(self.fit_intercept), progress=False, log_every=max_iter, row_mask=row_mask)
        start = None
        if previous is not None and previous[0].shape == (X.shape[1],) and np.array_equal(previous[2], self.classes_):
            start = {"w": previous[0], "b": previous[1] if self.fit_intercept else 0.0}
        elif self.init == "l1" and self.penalty != "l1":
            from . import prox

            start = svm_admm(Xs, ys, prox.l1(self.lam), **kw)
        res = svm_admm(Xs, ys, pen, warm_start=start, **kw)
        self.result_ = res
        self.coef_ = np.asarray(res.params["w"], dtype=X.dtype).reshape(1, -1)
        self.intercept_ = np.asarray(res.params["b"], dtype=X.dtype).reshape(1)
        self.n_iter_ = int(res.n_iter)
        _warn_unless_converged(res.status, self.n_iter_, self.max_iter, self.tol)
        return self

    def _previous_model(self):
        """``(w, b, classes)`` of the last fit, or None when there was none."""
        if not hasattr(self, "coef_"):
            return None
        return np.asarray(self.coef_, np.float64).ravel(), float(self.intercept_[0]), self.classes_

    def decision_function(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], reset=False)
        scores = X @ self.coef_.ravel().astype(X.dtype) + self.intercept_[0]
        return np.asarray(scores).ravel()

    def predict(self, X):
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = False
        return tags
