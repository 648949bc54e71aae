"""STOC-ADMM's step schedules (Ouyang, He, Tran & Gray, ICML 2013; SPEC §7): the strongly convex schedule
eta_t = scale/(gamma t) of the paper's Theorem 2 against a CVXPY optimum, its O(log t / t) rate, the steps it logs,
and bad values of ``schedule``."""
import numpy as np
import pytest

import optlab as ol
from optlab.references import structured_optimum

MU, GAMMA, N, D = 1e-2, 1e-2, 300, 8


@pytest.fixture(scope="module")
def problem():
    """ℓ2-regularised fused logistic regression (γ = 1e-2 makes the objective γ-strongly convex) and its CVXPY
    optimum (an independent reference: CLARABEL on the exponential-cone formulation)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    y = np.where(X[:, :3].sum(1) + rng.normal(size=N) > 0, 1.0, -1.0)
    F = ol.operators.first_difference(D)
    f_star, x_star = structured_optimum(X, y, F, MU, GAMMA)
    return X, y, F, f_star, x_star


@pytest.fixture(scope="module")
def runs(problem):
    X, y, F, _, _ = problem
    return {s: ol.stoc_admm(X, y, F, MU, GAMMA, epochs=40, schedule=s, progress=False)
            for s in ("sqrt", "strongly_convex")}


def _gap(res, f_star):
    return (np.asarray(res.trace["objective"]) - f_star) / f_star


def test_strongly_convex_schedule_reaches_the_optimum_faster(problem, runs):
    _, _, _, f_star, x_star = problem
    sc, sq = _gap(runs["strongly_convex"], f_star), _gap(runs["sqrt"], f_star)
    assert np.all(sc[1:] > -1e-8)                                # never below the CVXPY optimum
    # measured: 1.8e-3 (strongly convex) vs 6.4e-3 (sqrt) after 40 epochs; 6.2e-3 vs 3.3e-2 after 10
    assert sc[40] < 3e-3, sc[40]
    assert sc[10] < sq[10] / 3 and sc[40] < sq[40] / 2, (sc[[10, 40]], sq[[10, 40]])
    dist = np.linalg.norm(np.asarray(runs["strongly_convex"].params["w"]) - x_star)
    assert dist < 0.5 * np.linalg.norm(np.asarray(runs["sqrt"].params["w"]) - x_star), dist   # 0.067 vs 0.278


def test_strongly_convex_schedule_rate_is_log_t_over_t(problem, runs):
    """Theorem 2's O(log t / t): 4x the iterations should divide the gap by about 4 log(t)/log(4t) = 3.4 (measured
    3.4); an O(1/sqrt t) rate would only halve it."""
    sc = _gap(runs["strongly_convex"], problem[3])
    t10, t40 = 10 * N, 40 * N
    predicted = (np.log(t40) / t40) / (np.log(t10) / t10)          # 0.29
    assert sc[40] / sc[10] < 0.4, sc[40] / sc[10]
    assert sc[40] / sc[10] > predicted / 2, sc[40] / sc[10]      # not a faster, suspicious rate either


def test_logged_steps_follow_the_schedules(problem, runs):
    """The step of the last iteration of epoch e (t = e n iterations, batch 1): scale/(gamma t) and
    (scale/L)/sqrt(t), L = max_i ||a_i||^2 / 4 (logistic)."""
    X = problem[0]
    t = N * np.arange(1, 41)
    np.testing.assert_allclose(np.asarray(runs["strongly_convex"].trace["eta"])[1:], 1 / (GAMMA * t), rtol=1e-12)
    L = 0.25 * np.max(np.sum(X * X, axis=1))
    np.testing.assert_allclose(np.asarray(runs["sqrt"].trace["eta"])[1:], 1 / (L * np.sqrt(t)), rtol=1e-12)
    assert runs["strongly_convex"].trace.meta["schedule"] == "strongly_convex"


def test_default_schedule_is_sqrt(problem):
    X, y, F, _, _ = problem
    a = ol.stoc_admm(X, y, F, MU, GAMMA, epochs=2, progress=False)
    b = ol.stoc_admm(X, y, F, MU, GAMMA, epochs=2, schedule="sqrt", progress=False)
    assert np.array_equal(np.asarray(a.params["w"]), np.asarray(b.params["w"]))
    assert a.trace.meta["schedule"] == "sqrt"


def test_bad_schedule(problem):
    X, y, F, _, _ = problem
    for bad in ("1/k", "Strongly_Convex", None, 1):
        with pytest.raises(ValueError, match=r"schedule must be one of \('sqrt', 'strongly_convex'\)"):
            ol.stoc_admm(X, y, F, MU, GAMMA, epochs=1, schedule=bad, progress=False)
    with pytest.raises(ValueError, match=r"schedule='strongly_convex' needs .*gamma > 0.*schedule='sqrt'"):
        ol.stoc_admm(X, y, F, MU, 0.0, epochs=1, schedule="strongly_convex", progress=False)
    with pytest.raises(ValueError, match="gamma"):
        ol.stoc_admm(X, y, F, MU, -1.0, epochs=1, schedule="strongly_convex", progress=False)
