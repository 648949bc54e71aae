"""scikit-learn estimators on :func:`optlab.glm` (working-set coordinate descent, sparse penalties).

* :class:`SparseLinearRegression`: least squares, :math:`\\frac1{2n}\\|y - Xw - b\\|^2 + \\sum_j P(w_j)`
  (``penalty="l1"``, ``alpha`` = λ is scikit-learn's ``Lasso(alpha)``; ``"elastic_net"`` is ``ElasticNet``).
* :class:`SparseLogisticRegression`: :math:`\\frac1n\\sum_i \\log(1 + e^{-y_i(x_i^\\top w + b)}) + \\sum_j P(w_j)`
  (``penalty="l1"`` with ``alpha`` = 1/(n C) is ``LogisticRegression(penalty="l1", C)``); more than two classes
  are fitted one-vs-rest.

``penalty`` is one of ``"l1"``, ``"elastic_net"`` (``l1_ratio``), ``"mcp"`` (``gamma``), ``"scad"`` (``a``),
``"lsp"`` (``theta``), ``"capped_l1"`` (``theta``), all from :mod:`optlab.prox`. Dense arrays and SciPy sparse
matrices are accepted (sparse stays sparse).

    >>> from optlab.glm_estimators import SparseLinearRegression
    >>> model = SparseLinearRegression(penalty="mcp", alpha=0.1, gamma=3.0).fit(X, y)   # doctest: +SKIP
    >>> model.coef_, model.intercept_, model.predict(X_test)                           # doctest: +SKIP
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["SparseLinearRegression", "SparseLogisticRegression"]

_PENALTY_PARAMS = {"l1": (), "elastic_net": ("l1_ratio",), "mcp": ("gamma",), "scad": ("a",),
                   "lsp": ("theta",), "capped_l1": ("theta",)}
_SPARSE = ["csr", "csc"]


class _SparseGLMBase(BaseEstimator):
    _loss = "least_squares"

    def __init__(self, penalty="l1", alpha=0.01, *, l1_ratio=0.5, gamma=3.0, a=3.7, theta=0.1,
                 fit_intercept=True, tol=1e-4, max_iter=100, max_epochs=50_000):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.gamma = gamma
        self.a = a
        self.theta = theta
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.max_epochs = max_epochs

    def _make_penalty(self):
        from . import prox

        if self.penalty not in _PENALTY_PARAMS:
            raise ValueError(f"penalty must be one of {sorted(_PENALTY_PARAMS)}, got {self.penalty!r}")
        params = {k: getattr(self, k) for k in _PENALTY_PARAMS[self.penalty]}
        return prox.get(self.penalty, lam=self.alpha, **params)

    def _fit_one(self, X, y, pen):
        from .sparse_glm import glm

        res = glm(X, y, self._loss, pen, fit_intercept=bool(self.fit_intercept), tol=float(self.tol),
                  max_iter=int(self.max_iter), max_epochs=int(self.max_epochs))
        if not res.converged:
            warnings.warn(f"{type(self).__name__} did not converge in max_iter={self.max_iter} outer iterations "
                          f"(last KKT violation {res.trace.last('kkt'):.3g}); raise max_iter or tol",
                          ConvergenceWarning, stacklevel=3)
        return res

    def _decision(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=_SPARSE, dtype=np.float64, reset=False)
        return np.asarray(X @ self.coef_.T).reshape(X.shape[0], -1) + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class SparseLinearRegression(RegressorMixin, _SparseGLMBase):
    """Sparse least-squares regression by a working-set solver (:func:`optlab.glm`).

    Minimises ``(1/(2n)) ||y - X w - b||² + Σ_j P(w_j)``.

    Parameters
    ----------
    penalty : {"l1", "elastic_net", "mcp", "scad", "lsp", "capped_l1"}
    alpha : penalty level λ >= 0 (``Lasso(alpha)`` for ``"l1"``).
    l1_ratio : elastic-net mixing ρ in [0, 1]. gamma : MCP concavity (> 0). a : SCAD parameter (> 2).
    theta : LSP / capped-ℓ1 parameter (> 0).
    fit_intercept : fit the unpenalised intercept.
    tol : convex penalties: duality gap relative to the intercept-only objective; nonconvex: KKT violation.
    max_iter : outer (working-set) iterations. max_epochs : coordinate-descent epochs per inner solve.

    Attributes
    ----------
    coef_ : (n_features,) array. intercept_ : float. n_iter_ : coordinate-descent epochs run.
    result_ : the :class:`optlab.Result` (trace with objective, duality gap, KKT violation per outer iteration).
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, accept_sparse=_SPARSE, dtype=np.float64, y_numeric=True)
        res = self._fit_one(X, y, self._make_penalty())
        self.result_ = res
        self.coef_ = np.asarray(res.params["w"], dtype=np.float64)
        self.intercept_ = float(res.params["b"])
        self.n_iter_ = int(res.n_iter)
        return self

    def predict(self, X):
        return self._decision(X).ravel()


class SparseLogisticRegression(ClassifierMixin, _SparseGLMBase):
    """Sparse logistic regression by a working-set solver (:func:`optlab.glm`); one-vs-rest for > 2 classes.

    Minimises ``(1/n) Σ_i log(1 + exp(-y_i (x_iᵀ w + b))) + Σ_j P(w_j)`` with ``y_i = ±1`` (the second class of
    ``classes_`` is +1). For ``penalty="l1"``, ``alpha = 1/(n C)`` matches
    ``LogisticRegression(penalty="l1", C=C)``.

    Parameters are those of :class:`SparseLinearRegression`; ``tol`` is a KKT violation when an intercept is
    fitted (no duality gap is defined then) and a relative duality gap otherwise (ℓ1 / elastic net).

    Attributes
    ----------
    classes_ : the labels. coef_ : (1, n_features) for two classes, (n_classes, n_features) otherwise.
    intercept_ : (1,) or (n_classes,). n_iter_ : epochs per fitted problem. results_ : the Results.
    """

    _loss = "logistic"

    def fit(self, X, y):
        X, y = validate_data(self, X, y, accept_sparse=_SPARSE, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError(f"SparseLogisticRegression needs samples of at least 2 classes; got only one class "
                             f"({self.classes_[0]!r})")
        pen = self._make_penalty()
        targets = [self.classes_[1]] if self.classes_.size == 2 else list(self.classes_)
        results = [self._fit_one(X, np.where(y == c, 1.0, -1.0), pen) for c in targets]
        self.results_ = results
        self.coef_ = np.stack([np.asarray(r.params["w"], np.float64) for r in results])
        self.intercept_ = np.array([float(r.params["b"]) for r in results])
        self.n_iter_ = np.array([int(r.n_iter) for r in results])
        return self

    def decision_function(self, X):
        scores = self._decision(X)
        return scores.ravel() if self.classes_.size == 2 else scores

    def predict(self, X):
        scores = self.decision_function(X)
        if self.classes_.size == 2:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X):
        from scipy.special import expit

        scores = self.decision_function(X)
        if self.classes_.size == 2:
            p1 = expit(scores)
            return np.column_stack([1 - p1, p1])
        p = expit(scores)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))


