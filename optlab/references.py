"""Independent reference solutions (scikit-learn, SciPy, CVXPY) that tests, experiments and benchmarks
compare our solvers against. Each returns float64 values computed by a library we did not write."""
from __future__ import annotations

import numpy as np

__all__ = ["lasso_optimum"]


def lasso_optimum(A, b, lam: float, *, tol: float = 1e-12, max_iter: int = 1_000_000):
    """Optimal value and solution of ``min_x (1/(2n))‖Ax − b‖² + lam‖x‖₁`` by scikit-learn's coordinate
    descent (``Lasso(fit_intercept=False)``) run to ``tol``. Returns ``(F*, x*)`` in float64."""
    from sklearn.linear_model import Lasso

    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    model = Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=max_iter).fit(A, b)
    x = model.coef_
    return float(0.5 * np.mean((A @ x - b) ** 2) + lam * np.abs(x).sum()), x
