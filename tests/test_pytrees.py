"""Pytree iterates in ista / fista / pig / gist: a Lasso with an unpenalised intercept as ``{"w", "b"}`` against
scikit-learn's Lasso(fit_intercept=True), pytree runs against the same problem on one concatenated array, a
penalty broadcast over leaves, jit/vmap over a penalty weight, and the input errors (x0 leaves, shapes, penalty
structure, GIST's constants)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import Lasso

import optlab as ol

SOLVERS = {
    "ista": lambda f, g, x0, **kw: ol.ista(f, g, x0, maxiter=20000, tol=1e-13, **kw),
    "fista": lambda f, g, x0, **kw: ol.fista(f, g, x0, maxiter=5000, tol=1e-13, **kw),
    "pig": lambda f, g, x0, **kw: ol.pig(f, g, x0, beta=0.5, maxiter=20000, tol=1e-13, **kw),
    "gist": lambda f, g, x0, **kw: ol.gist(f, g, x0, maxiter=5000, tol=1e-12, **kw),
}


def data(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    y = A[:, :3] @ np.array([2.0, -1.0, 0.5]) + 3.0 + 0.1 * rng.normal(size=n)
    return A, y


def lasso_intercept(A, y):
    n = A.shape[0]

    def loss(p, A, y):
        r = A @ p["w"] + p["b"] - y
        return 0.5 * jnp.vdot(r, r) / n

    # L of the joint (w, b) gradient: the largest eigenvalue of [A 1]^T [A 1] / n
    A1 = np.hstack([A, np.ones((n, 1))])
    L = float(np.linalg.norm(A1, 2) ** 2 / n)
    return ol.losses.smooth(loss, jnp.asarray(A), jnp.asarray(y), lipschitz=L)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_lasso_with_intercept_matches_sklearn(name):
    A, y = data()
    lam = 0.05
    ref = Lasso(alpha=lam, fit_intercept=True, tol=1e-14, max_iter=100000).fit(A, y)
    x0 = {"w": np.zeros(A.shape[1]), "b": np.float64(0.0)}
    res = SOLVERS[name](lasso_intercept(A, y), {"w": ol.prox.l1(lam), "b": ol.prox.zero()}, x0)
    assert set(res.params) == {"w", "b"} and res.params["b"].shape == ()
    np.testing.assert_allclose(np.asarray(res.params["w"]), ref.coef_, atol=1e-6)
    np.testing.assert_allclose(float(res.params["b"]), ref.intercept_, atol=1e-6)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_pytree_run_equals_concatenated_array_run(name):
    """Two leaves with one l1 for both (broadcast) = one array of their concatenation (same math, the norms
    summed over leaves)."""
    A, y = data(d=10, seed=1)
    lam = 0.02
    f_arr = ol.losses.least_squares_objective(A, y)
    f_tree = ol.losses.smooth(lambda p: f_arr(jnp.concatenate([p["u"], p["v"]])), lipschitz=f_arr.lipschitz())
    arr = SOLVERS[name](f_arr, ol.prox.l1(lam), np.zeros(10))
    tree = SOLVERS[name](f_tree, ol.prox.l1(lam), {"u": np.zeros(4), "v": np.zeros(6)})
    np.testing.assert_allclose(np.concatenate([tree.params["u"], tree.params["v"]]), np.asarray(arr.params),
                               atol=1e-9)
    np.testing.assert_allclose(tree.trace.last("objective"), arr.trace.last("objective"), rtol=1e-10)


def test_fista_backtracking_on_a_tuple_of_matrices():
    """A tuple pytree with a 2-D leaf, backtracking (no Lipschitz constant given), l2sq on one leaf only:
    the optimum of a ridge-like problem in closed form."""
    rng = np.random.default_rng(2)
    B = rng.normal(size=(4, 3))
    c = rng.normal(size=5)
    lam = 0.3

    def f(p):
        return 0.5 * jnp.sum((p[0] - B) ** 2) + 0.5 * jnp.sum((p[1] - c) ** 2)

    res = ol.fista(f, (ol.prox.l2sq(lam), ol.prox.zero()), (np.zeros((4, 3)), np.zeros(5)), backtracking=True,
                   maxiter=2000, tol=1e-14)
    # argmin 0.5||X - B||^2 + (lam/2)||X||^2 = B / (1 + lam)  (l2sq(lam) = lam/2 ||x||^2)
    np.testing.assert_allclose(np.asarray(res.params[0]), B / (1 + lam), atol=1e-10)
    np.testing.assert_allclose(np.asarray(res.params[1]), c, atol=1e-10)


def test_jit_vmap_over_lambda_with_leafwise_penalty():
    A, y = data()
    f = lasso_intercept(A, y)
    x0 = {"w": jnp.zeros(A.shape[1]), "b": jnp.zeros(())}
    lams = jnp.array([0.01, 0.05, 0.2])
    out = jax.jit(jax.vmap(lambda lam: ol.fista(f, {"w": ol.prox.l1(lam), "b": ol.prox.zero()}, x0, maxiter=3000,
                                                 tol=1e-13, jit=True)))(lams)
    assert out.state.x["w"].shape == (3, A.shape[1])
    for i, lam in enumerate(np.asarray(lams)):
        ref = Lasso(alpha=lam, fit_intercept=True, tol=1e-14, max_iter=100000).fit(A, y)
        np.testing.assert_allclose(np.asarray(out.state.x["w"][i]), ref.coef_, atol=1e-6)
        np.testing.assert_allclose(float(out.state.x["b"][i]), ref.intercept_, atol=1e-6)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_integer_array_x0_says_astype_float(name):
    f = ol.losses.least_squares_objective(*data())
    with pytest.raises(TypeError, match=r"x0.*x0\.astype\(float\)"):
        SOLVERS[name](f, ol.prox.l1(0.1), np.zeros(8, dtype=int))


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_bad_leaf_named_by_its_path(name):
    f = lasso_intercept(*data())
    g = {"w": ol.prox.l1(0.1), "b": ol.prox.zero()}
    with pytest.raises(TypeError, match=r"x0\['w'\].*int.*astype\(float\)"):
        SOLVERS[name](f, g, {"w": np.zeros(8, dtype=np.int32), "b": 0.0})
    with pytest.raises(ValueError, match=r"x0\['b'\].*non-finite"):
        SOLVERS[name](f, g, {"w": np.zeros(8), "b": np.nan})


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_wrong_length_x0_is_a_clear_error(name):
    f = ol.losses.least_squares_objective(*data())   # A is (60, 8)
    with pytest.raises(ValueError, match=r"x0 has shape \(7,\).*\(60, 8\).*\(8,\)"):
        SOLVERS[name](f, ol.prox.l1(0.1), np.zeros(7))
    with pytest.raises(ValueError, match=r"x0 has shape \(8, 2\).*\(8,\)"):
        SOLVERS[name](f, ol.prox.l1(0.1), np.zeros((8, 2)))
    with pytest.raises(TypeError, match=r"pytree x0 needs a user f"):
        SOLVERS[name](f, ol.prox.l1(0.1), {"w": np.zeros(8)})


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_user_f_that_rejects_x0_shape(name):
    A, y = data()
    f = ol.losses.smooth(lambda p: 0.5 * jnp.sum((A @ p["w"] - y) ** 2), lipschitz=1e3)
    with pytest.raises(ValueError, match=r"f cannot be evaluated at x0.*shape"):
        SOLVERS[name](f, ol.prox.zero(), {"w": np.zeros(5)})


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_penalty_structure_must_match_x0(name):
    f = lasso_intercept(*data())
    x0 = {"w": np.zeros(8), "b": 0.0}
    with pytest.raises(ValueError, match=r"one penalty per leaf of x0"):
        SOLVERS[name](f, {"w": ol.prox.l1(0.1)}, x0)
    with pytest.raises(TypeError, match=r"pytree of optlab.prox penalties"):
        SOLVERS[name](f, {"w": ol.prox.l1(0.1), "b": 0.0}, x0)


@pytest.mark.parametrize("kw, match", [({"sigma": 0.0}, r"sigma must be a finite number > 0.*sigma="),
                                       ({"eta": 1.0}, r"eta must be .*> 1|eta must be in \(1"),
                                       ({"L_min": 1.0, "L_max": 1.0}, "L_min must be < L_max"),
                                       ({"L_min": -1.0}, r"L_min must be a finite number > 0.*L_min=")])
def test_gist_constants_checked(kw, match):
    f = ol.losses.least_squares_objective(*data())
    with pytest.raises(ValueError, match=match):
        ol.gist(f, ol.prox.l1(0.1), np.zeros(8), **kw)


def test_leafwise_prox_is_the_leaf_proxes():
    """The leaf-wise prox equals each leaf's own prox (scalar step), and the value is the sum."""
    rng = np.random.default_rng(3)
    v = {"a": jnp.asarray(rng.normal(size=5)), "b": jnp.asarray(rng.normal(size=(2, 3)))}
    g = ol.prox.leafwise({"a": ol.prox.mcp(0.4, 3.0), "b": ol.prox.l1(0.2)}, v)
    out = g.prox(v, 0.7)
    np.testing.assert_array_equal(out["a"], ol.prox.mcp(0.4, 3.0).prox(v["a"], 0.7))
    np.testing.assert_array_equal(out["b"], ol.prox.l1(0.2).prox(v["b"], 0.7))
    assert float(g.value(v)) == pytest.approx(float(ol.prox.mcp(0.4, 3.0).value(v["a"]) + 0.2 * jnp.abs(v["b"]).sum()))
