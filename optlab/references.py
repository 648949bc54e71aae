"""Independent reference solutions (scikit-learn, SciPy, CVXPY) that tests, experiments and benchmarks
compare our solvers against. Each returns float64 values computed by a library we did not write."""
from __future__ import annotations

import numpy as np

from ._optional import require

__all__ = ["lasso_optimum", "l1_logistic_optimum", "structured_optimum"]


def lasso_optimum(A, b, lam: float, *, tol: float = 1e-12, max_iter: int = 1_000_000):
    """Optimal value and solution of ``min_x (1/(2n))‖Ax − b‖² + lam‖x‖₁`` by scikit-learn's coordinate
    descent (``Lasso(fit_intercept=False)``) run to ``tol``. Returns ``(F*, x*)`` in float64."""
    from sklearn.linear_model import Lasso

    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    model = Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=max_iter).fit(A, b)
    x = model.coef_
    return float(0.5 * np.mean((A @ x - b) ** 2) + lam * np.abs(x).sum()), x


def l1_logistic_optimum(A, b, lam: float, *, tol: float = 1e-12, max_iter: int = 100_000):
    """Optimal value and solution of ``min_x (1/n)Σᵢ log(1 + exp(−bᵢ aᵢᵀx)) + lam‖x‖₁`` (labels ±1, no intercept) by
    scikit-learn's ``LogisticRegression(penalty="l1", solver="liblinear", C=1/(n·lam))`` run to ``tol``.
    liblinear's own accuracy limits this to roughly 1e-9 relative; callers that need more take the minimum with a
    long float64 run of their own. Returns ``(F*, x*)`` in float64."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = A.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear convergence / API deprecation notices
        model = LogisticRegression(penalty="l1", solver="liblinear", C=1.0 / (n * lam), fit_intercept=False,
                                   tol=tol, max_iter=max_iter).fit(A, b)
    x = model.coef_.ravel()
    return float(np.mean(np.logaddexp(0.0, -b * (A @ x))) + lam * np.abs(x).sum()), x


def svm_l1_hinge_lp(X, y, lam: float, *, fit_intercept: bool = True, time_limit: float | None = None):
    r"""Exact optimum of the ℓ1-penalised hinge-loss SVM as a linear program, solved by SciPy's HiGHS.

    Problem: :math:`\min_{w,c} \frac1n\sum_i (1 - y_i(x_i^\top w + c))_+ + \lambda\|w\|_1`, ``y`` in ±1.
    LP form: :math:`w = w^+ - w^-`, :math:`c = c^+ - c^-`, slacks :math:`\xi`, all nonnegative;
    minimise :math:`\lambda\mathbf 1^\top(w^+ + w^-) + \frac1n\mathbf 1^\top\xi` subject to
    :math:`\xi_i \ge 1 - y_i(x_i^\top w + c)`. ``X`` may be dense or SciPy sparse (kept sparse).
    Returns ``(F*, w*, c*)`` in float64.
    """
    import scipy.sparse as sp
    from scipy.optimize import linprog

    Xs = sp.csr_matrix(X, dtype=np.float64)
    y = np.asarray(y, np.float64).ravel()
    n, d = Xs.shape
    H = sp.diags(y) @ Xs
    yc = sp.csr_matrix(y[:, None])
    blocks = [-H, H] + ([-yc, yc] if fit_intercept else []) + [-sp.eye(n, format="csr")]
    n_c = 2 if fit_intercept else 0
    cost = np.concatenate([np.full(2 * d, float(lam)), np.zeros(n_c), np.full(n, 1.0 / n)])
    options = {} if time_limit is None else {"time_limit": float(time_limit)}
    res = linprog(cost, A_ub=sp.hstack(blocks, format="csr"), b_ub=-np.ones(n), bounds=(0, None),
                  method="highs", options=options)
    if res.status != 0:
        raise RuntimeError(f"HiGHS did not solve the ℓ1-hinge LP: {res.message}")
    x = res.x
    w = x[:d] - x[d:2 * d]
    c = float(x[2 * d] - x[2 * d + 1]) if fit_intercept else 0.0
    return float(res.fun), w, c


def l1_squared_hinge_liblinear(X, y, lam: float, *, tol: float = 1e-10, max_iter: int = 100_000):
    r"""``min_w (1/n) Σ max(0, 1 − y_i x_iᵀw)² + lam‖w‖₁`` (no intercept) by liblinear
    (scikit-learn ``LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=1/(n·lam))``).
    Returns ``(F*, w*)`` in float64."""
    from sklearn.svm import LinearSVC

    y = np.asarray(y, np.float64)
    n = y.shape[0]
    model = LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=1.0 / (n * lam), fit_intercept=False,
                      tol=tol, max_iter=max_iter).fit(X, y)
    w = model.coef_.ravel()
    m = np.asarray(X @ w).ravel() * y
    return float(np.mean(np.maximum(1 - m, 0) ** 2) + lam * np.abs(w).sum()), w


def _reference_cache(kind: str, arrays: dict, params: dict):
    """Path of the on-disk cache entry (``.npz``, no pickle) for a reference problem, keyed by a hash of its data."""
    import hashlib
    import json

    import scipy.sparse as sp

    from .data import cache_dir

    h = hashlib.sha256(kind.encode())
    for name in sorted(arrays):
        a = arrays[name]
        if sp.issparse(a):
            a = sp.csr_matrix(a, dtype=np.float64)
            a.sum_duplicates()
            parts = [np.asarray(a.shape, np.int64), a.indptr.astype(np.int64), a.indices.astype(np.int64), a.data]
        else:
            a = np.asarray(a, dtype=np.float64)
            parts = [np.asarray(a.shape, np.int64), a]
        h.update(name.encode())
        for p in parts:
            h.update(np.ascontiguousarray(p).tobytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    return cache_dir() / "references" / f"{kind}_{h.hexdigest()[:24]}.npz"


def structured_optimum(X, y, F, mu: float, gamma: float = 0.0, *, loss: str = "logistic", l1: float = 0.0,
                       solver: str = "CLARABEL", cache: bool = True):
    r"""Optimal value and solution of the graph-guided / fused models of the SPDHG and SPDPEG papers by CVXPY:

    .. math:: \min_x \frac1n\sum_i \ell(a_i^\top x, y_i) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1 + \text{l1}\,\|x\|_1,

    with the logistic loss (labels ±1, exponential cone; CLARABEL) or least squares :math:`\frac12(a_i^\top x - y_i)^2`.
    ``X`` and ``F`` may be SciPy sparse. The result is cached per problem (a hash of the data and parameters) under
    ``optlab.data.cache_dir()/references`` as ``.npz``; ``cache=False`` recomputes. Returns ``(P*, x*)`` in float64,
    where ``P*`` is the objective re-evaluated in float64 at the solver's ``x*``.
    """
    import scipy.sparse as sp

    params = {"mu": float(mu), "gamma": float(gamma), "loss": loss, "l1": float(l1), "solver": solver}
    path = _reference_cache("structured", {"X": X, "y": y, "F": F}, params)
    if cache and path.exists():
        with np.load(path, allow_pickle=False) as f:
            return float(f["value"]), np.array(f["x"])
    cp = require("cvxpy", extra="repro", purpose="the CVXPY reference optimum (structured_optimum)")

    Xs = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, np.float64)
    Fs = sp.csr_matrix(F, dtype=np.float64) if sp.issparse(F) else np.asarray(F, np.float64)
    yv = np.asarray(y, np.float64)
    n, d = Xs.shape
    x = cp.Variable(d)
    z = Xs @ x
    if loss == "logistic":
        data_term = cp.sum(cp.logistic(-cp.multiply(yv, z))) / n
    elif loss == "least_squares":
        data_term = 0.5 * cp.sum_squares(z - yv) / n
    else:
        raise ValueError(f"loss must be 'logistic' or 'least_squares', got {loss!r}")
    obj = data_term + 0.5 * gamma * cp.sum_squares(x) + mu * cp.norm1(Fs @ x) + l1 * cp.norm1(x)
    prob = cp.Problem(cp.Minimize(obj))
    prob.solve(solver=solver)
    if prob.status not in ("optimal", "optimal_inaccurate") or x.value is None:
        raise RuntimeError(f"CVXPY ({solver}) did not solve the reference problem: status {prob.status}")
    xv = np.asarray(x.value, np.float64)
    zv = np.asarray(Xs @ xv).ravel()
    lv = np.logaddexp(0.0, -yv * zv) if loss == "logistic" else 0.5 * (zv - yv) ** 2
    value = float(lv.mean() + 0.5 * gamma * xv @ xv + mu * np.abs(np.asarray(Fs @ xv)).sum() + l1 * np.abs(xv).sum())
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, value=np.array(value), x=xv, status=np.array(prob.status))
        tmp.replace(path)
    return value, xv
