"""SPDHG without a structured penalty (F = 0 or mu = 0): plain logistic regression, against scipy's optimum.
(The automatic dual step used to be theta / (eta * tiny) = inf there, and inf * 0 made the first iterate NaN.)"""
import numpy as np
import pytest
from scipy.optimize import minimize

import optlab as ol


def _logistic_optimum(X, y):
    def f(w):
        z = y * (X @ w)
        return np.mean(np.logaddexp(0, -z)), -(X.T @ (y / (1 + np.exp(z)))) / len(y)

    return minimize(f, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", options={"gtol": 1e-12}).fun


@pytest.mark.parametrize("case", ["F = 0", "mu = 0"])
def test_spdhg_without_structured_penalty_is_logistic_sgd(case):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8))
    y = np.where(X @ rng.normal(size=8) + rng.normal(size=400) > 0, 1.0, -1.0)   # noisy: a finite optimum
    F, mu = (np.zeros((1, 8)), 1e-3) if case == "F = 0" else (ol.operators.first_difference(8), 0.0)
    res = ol.spdhg(X, y, F, mu, epochs=20, progress=False)
    assert res.status == "maxiter"
    assert np.all(np.isfinite(res.params["w"])) and res.trace.last("dual_step") == 0
    f_star = _logistic_optimum(X, y)
    assert res.trace.last("objective") - f_star < 0.01 * f_star
