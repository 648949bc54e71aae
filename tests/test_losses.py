"""Tests for optlab.losses: elementwise losses, smoothness constants, Smooth pytrees, empirical risks."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from jax.experimental import sparse as jsparse  # noqa: E402

from optlab import losses as L  # noqa: E402

BINARY = [L.hinge, L.squared_hinge, L.logistic]
SMOOTH_SCALAR = [L.squared_hinge, L.logistic, L.least_squares]


def _rng(seed=0):
    return np.random.default_rng(seed)


# Op-by-op (eager) JAX dispatch compiles every primitive separately; the tests jit whole computations instead.
@jax.jit
def _evaluate(f, x):
    """f(x), f.grad(x), f.value_and_grad(x) and jax.grad of f.__call__, in one compiled call."""
    v, g = f.value_and_grad(x)
    return f(x), f.grad(x), v, g, jax.grad(lambda ff, xx: ff(xx), argnums=1)(f, x)


@jax.jit
def _lipschitz(f):
    return f.lipschitz()


@jax.jit
def _max_hessian_eig(f, xs):
    """Largest Hessian eigenvalue of f (x flattened) over the rows of xs."""
    shape = f.A.shape[1:2] + (() if xs.ndim == 2 else xs.shape[2:])

    def lam(x):
        h = jax.hessian(lambda v: f(v.reshape(shape)))(x.ravel())
        return jnp.linalg.eigvalsh(h)[-1]

    return jnp.max(jax.vmap(lam)(xs))


def _reference_value(loss, z, y):
    if loss is L.hinge:
        return np.maximum(0.0, 1.0 - y * z)
    if loss is L.squared_hinge:
        return np.maximum(0.0, 1.0 - y * z) ** 2
    if loss is L.logistic:
        return np.log1p(np.exp(-y * z))
    if loss is L.least_squares:
        return 0.5 * (z - y) ** 2
    raise AssertionError(loss)


def _targets(loss, n, rng):
    if loss.targets == "pm1":
        return np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return rng.normal(size=n)


# --------------------------------------------------------------------------------------------- elementwise losses
@pytest.mark.parametrize("loss", BINARY + [L.least_squares], ids=lambda l: l.name)
def test_value_and_grad_against_reference_and_finite_differences(loss):
    rng = _rng(1)
    z = rng.normal(scale=2.0, size=200)
    y = _targets(loss, 200, rng)
    if loss.targets == "pm1":  # stay away from the kink y z = 1
        z = np.where(np.abs(y * z - 1) < 1e-3, z + 0.01, z)
    value, grad = jax.jit(loss.value), jax.jit(loss.grad)
    np.testing.assert_allclose(np.asarray(value(z, y)), _reference_value(loss, z, y), rtol=1e-12, atol=1e-14)
    g = np.asarray(grad(jnp.asarray(z), jnp.asarray(y)))
    auto = np.asarray(jax.jit(jax.vmap(jax.grad(loss.value)))(jnp.asarray(z), jnp.asarray(y)))
    np.testing.assert_allclose(g, auto, rtol=1e-12, atol=1e-14)
    h = 1e-6
    fd = (_reference_value(loss, z + h, y) - _reference_value(loss, z - h, y)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


def test_hinge_subgradient_inequality_and_kink():
    rng = _rng(2)
    z1, z2 = rng.normal(scale=2, size=(2, 500))
    y = np.where(rng.random(500) < 0.5, -1.0, 1.0)
    value, grad = jax.jit(L.hinge.value), jax.jit(L.hinge.grad)
    v1, v2 = np.asarray(value(z1, y)), np.asarray(value(z2, y))
    g1 = np.asarray(grad(z1, y))
    assert np.all(v2 >= v1 + g1 * (z2 - z1) - 1e-12)  # convexity: g is a subgradient
    np.testing.assert_array_equal(np.asarray(grad(np.array([1.0, -1.0]), np.array([1.0, -1.0]))), [0.0, 0.0])
    assert L.hinge.smoothness is None and L.hinge.name == "hinge"


@pytest.mark.parametrize("loss", SMOOTH_SCALAR, ids=lambda l: l.name)
def test_smoothness_constant_valid_and_tight(loss):
    """max |l'(z1) - l'(z2)| / |z1 - z2| over a fine grid is <= smoothness and within 1% of it."""
    z = np.linspace(-10, 10, 40001)
    worst = 0.0
    grad = jax.jit(loss.grad)
    for yv in (-1.0, 1.0):
        g = np.asarray(grad(z, np.full_like(z, yv)))
        worst = max(worst, np.max(np.abs(np.diff(g)) / np.diff(z)))
    assert worst <= loss.smoothness * (1 + 1e-9)
    assert worst >= 0.99 * loss.smoothness


def test_softmax_cross_entropy_value_grad_and_smoothness():
    loss = L.softmax_cross_entropy
    rng = _rng(3)
    z = rng.normal(scale=3, size=(50, 4))
    y = rng.integers(0, 4, size=50)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ref = -np.log(p[np.arange(50), y])
    value, grad = jax.jit(loss.value), jax.jit(loss.grad)
    v = value(jnp.asarray(z), jnp.asarray(y))
    assert v.shape == (50,)
    np.testing.assert_allclose(np.asarray(v), ref, rtol=1e-12)
    g = np.asarray(grad(jnp.asarray(z), jnp.asarray(y)))
    np.testing.assert_allclose(g, p - np.eye(4)[y], atol=1e-14)
    auto = jax.jit(jax.grad(lambda zz, yy: jnp.sum(loss.value(zz, yy))))(jnp.asarray(z), jnp.asarray(y))
    np.testing.assert_allclose(g, np.asarray(auto), atol=1e-14)

    # Hessian diag(p) - p p^T: eigenvalues <= 1/2, attained for C = 2 at equal logits
    @jax.jit
    def max_eig(zs, ys):
        hess = jax.vmap(jax.hessian(loss.value))(zs, ys)
        return jnp.max(jnp.linalg.eigvalsh(hess))

    assert float(max_eig(jnp.asarray(z), jnp.asarray(y))) <= loss.smoothness + 1e-12
    np.testing.assert_allclose(
        float(max_eig(jnp.zeros((1, 2)), jnp.zeros(1, dtype=jnp.int32))), loss.smoothness, rtol=1e-12
    )

    big = jnp.asarray([[1e3, -1e3, 0.0], [-1e3, 1e3, 5.0]])
    vb = np.asarray(value(big, jnp.asarray([1, 1])))
    np.testing.assert_allclose(vb, [2e3, 0.0], atol=1e-9)
    assert np.all(np.isfinite(np.asarray(grad(big, jnp.asarray([1, 1])))))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_logistic_numerically_stable(dtype):
    z = jnp.asarray([1e3, -1e3, 1e3, -1e3, 0.0], dtype=dtype)
    y = jnp.asarray([1, 1, -1, -1, 1], dtype=dtype)
    v, g = L.logistic.value(z, y), L.logistic.grad(z, y)
    assert v.dtype == dtype and g.dtype == dtype
    np.testing.assert_allclose(np.asarray(v), [0.0, 1e3, 1e3, 0.0, np.log(2)], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(np.asarray(g), [0.0, -1.0, 1.0, 0.0, -0.5], rtol=1e-6, atol=1e-30)
    gg = jax.grad(lambda zz: jnp.sum(L.logistic.value(zz, y)))(z)
    assert np.all(np.isfinite(np.asarray(gg)))


def test_losses_are_hashable_static_objects():
    assert hash(L.logistic) == hash(type(L.logistic)("logistic", 0.25))
    assert L.logistic == type(L.logistic)("logistic", 0.25)
    assert L.logistic != L.least_squares
    assert L.get_loss("logistic") is L.logistic
    with pytest.raises(ValueError, match="loss must be"):
        L.get_loss("cauchy")
    with pytest.raises(Exception):
        L.logistic.smoothness = 1.0  # frozen


# --------------------------------------------------------------------------------------------- empirical risk
def _problem(n=40, d=12, seed=0, loss=L.logistic):
    rng = _rng(seed)
    A = rng.normal(size=(n, d))
    A[rng.random((n, d)) < 0.5] = 0.0
    if loss is L.softmax_cross_entropy:
        return A, rng.integers(0, 3, size=n), rng.normal(size=(d, 3))
    return A, _targets(loss, n, rng), rng.normal(size=d)


@pytest.mark.parametrize(
    "loss", [L.hinge, L.squared_hinge, L.logistic, L.least_squares, L.softmax_cross_entropy], ids=lambda l: l.name
)
def test_empirical_risk_value_grad_dense_and_sparse(loss):
    A, y, x = _problem(loss=loss)
    l2 = 0.3
    f = L.empirical_risk(loss, A, y, l2=l2)
    fs = L.empirical_risk(loss, sp.csr_matrix(A), y, l2=l2)
    assert isinstance(fs.A, jsparse.BCOO) and isinstance(f.A, jax.Array)
    if loss is L.softmax_cross_entropy:
        Z = A @ x
        ref = np.mean(np.asarray(loss.value(Z, y))) + 0.5 * l2 * np.sum(x**2)
    else:
        ref = np.mean(_reference_value(loss, A @ x, y)) + 0.5 * l2 * np.sum(x**2)
    for obj in (f, fs):
        # explicit gradient vs autodiff of __call__ (a subgradient of the same kind for the hinge)
        v, g, v2, g2, auto = _evaluate(obj, jnp.asarray(x))
        np.testing.assert_allclose([float(v), float(v2)], ref, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(g), np.asarray(auto), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(np.asarray(g2), np.asarray(auto), rtol=1e-10, atol=1e-13)
    if loss.smoothness is not None:
        np.testing.assert_allclose(float(_lipschitz(f)), float(_lipschitz(fs)), rtol=1e-9)
    else:
        with pytest.raises(L.LipschitzUnknownError, match="not differentiable"):
            f.lipschitz()


def test_least_squares_objective_is_sklearn_lasso_data_term_and_lipschitz_exact():
    A, _, x = _problem(n=50, d=20, seed=4)
    b = _rng(5).normal(size=50)
    f = L.least_squares_objective(A, b)
    np.testing.assert_allclose(float(f(x)), np.sum((A @ x - b) ** 2) / (2 * 50), rtol=1e-13)
    exact = np.linalg.norm(A, 2) ** 2 / 50  # the Hessian is A^T A / n
    lip = float(f.lipschitz())
    assert exact <= lip <= exact * (1 + 1e-5)
    assert float(L.least_squares_objective(A, b, l2=0.5).lipschitz()) == pytest.approx(lip + 0.5, rel=1e-12)


@pytest.mark.parametrize(
    "make", [L.logistic_objective, L.squared_hinge_objective], ids=["logistic", "squared_hinge"]
)
def test_lipschitz_bounds_true_hessian(make):
    A, y, _ = _problem(n=60, d=10, seed=6)
    f = make(A, y, 0.1)
    lip = float(f.lipschitz())
    xs = np.vstack([np.zeros(10), _rng(7).normal(size=(5, 10))])
    worst = float(_max_hessian_eig(f, jnp.asarray(xs)))
    assert worst <= lip
    assert worst >= 0.9 * lip  # at x = 0 the Hessian is beta A^T A / n + l2: the bound is attained


def test_softmax_lipschitz_bounds_hessian():
    A, y, _ = _problem(n=30, d=5, seed=8, loss=L.softmax_cross_entropy)
    f = L.empirical_risk(L.softmax_cross_entropy, A, y)
    lip = float(f.lipschitz())
    xs = np.stack([np.zeros((5, 3)), _rng(9).normal(size=(5, 3))])
    assert float(_max_hessian_eig(f, jnp.asarray(xs))) <= lip


def test_float32_preserved():
    A, y, x = _problem()
    f = L.logistic_objective(A.astype(np.float32), y.astype(np.float32))
    fs = L.logistic_objective(sp.csr_matrix(A.astype(np.float32)), y)
    x32 = jnp.asarray(x, dtype=jnp.float32)
    for obj in (f, fs):
        assert obj.A.dtype == jnp.float32 and obj.y.dtype == jnp.float32
        assert obj(x32).dtype == jnp.float32
        assert obj.grad(x32).dtype == jnp.float32
        assert obj.lipschitz().dtype == jnp.float32
    np.testing.assert_allclose(float(f(x32)), float(L.logistic_objective(A, y)(x)), rtol=1e-5)


def test_jit_does_not_recompile_for_new_data_of_same_shape():
    traces = []

    @jax.jit
    def step(f, x):
        traces.append(1)  # runs only while tracing
        v, g = f.value_and_grad(x)
        return v, x - g / f.lipschitz()

    A1, y1, x = _problem(seed=10)
    A2, y2, _ = _problem(seed=11)
    f1, f2 = L.logistic_objective(A1, y1, 0.1), L.logistic_objective(A2, y2, 0.1)
    v1, _ = step(f1, x)
    v2, _ = step(f2, x)
    assert len(traces) == 1
    assert float(v1) == pytest.approx(float(f1(x))) and float(v2) == pytest.approx(float(f2(x)))
    step(L.logistic_objective(A1, y1, 0.2), x)  # a different static l2 compiles again
    assert len(traces) == 2
    # same for the wrapped-function form
    fun = lambda v, c: 0.5 * jnp.sum((v - c) ** 2)  # noqa: E731
    step(L.smooth(fun, jnp.ones(12), lipschitz=1.0), x)
    step(L.smooth(fun, jnp.zeros(12), lipschitz=1.0), x)
    assert len(traces) == 3


def test_pytree_roundtrip_and_vmap():
    A1, y1, x = _problem(seed=12)
    A2, y2, _ = _problem(seed=13)
    f1, f2 = L.logistic_objective(A1, y1), L.logistic_objective(A2, y2)
    leaves, treedef = jax.tree_util.tree_flatten(f1)
    assert len(leaves) == 2
    g = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(g) is L.EmpiricalRisk and g.loss is L.logistic and float(g(x)) == float(f1(x))
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), f1, f2)
    vals = jax.vmap(lambda f: f(jnp.asarray(x)))(batch)
    lips = jax.jit(jax.vmap(lambda f: f.lipschitz()))(batch)
    np.testing.assert_allclose(np.asarray(vals), [float(f1(x)), float(f2(x))], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(lips), [float(f1.lipschitz()), float(f2.lipschitz())], rtol=1e-9)


def test_empirical_risk_input_errors():
    A, y, _ = _problem()
    An = A.copy()
    An[3, 4] = np.nan
    with pytest.raises(ValueError, match="^A contains"):
        L.logistic_objective(An, y)
    As = sp.csr_matrix(A)
    As.data[0] = np.inf
    with pytest.raises(ValueError, match="^A contains"):
        L.logistic_objective(As, y)
    yn = y.copy()
    yn[0] = np.inf
    with pytest.raises(ValueError, match="^y contains"):
        L.least_squares_objective(A, yn)
    with pytest.raises(ValueError, match=r"A and y .*\(40, 12\).*\(39,\)"):
        L.logistic_objective(A, y[:-1])
    with pytest.raises(ValueError, match="2-D"):
        L.logistic_objective(A[0], y)
    with pytest.raises(ValueError, match=r"-1/\+1.*2\*y - 1"):
        L.logistic_objective(A, (y + 1) / 2)
    with pytest.raises(ValueError, match="integer class"):
        L.empirical_risk(L.softmax_cross_entropy, A, np.full(40, 0.5))
    with pytest.raises(ValueError, match="l2"):
        L.logistic_objective(A, y, -1.0)
    f = L.empirical_risk("hinge", A, y)
    with pytest.raises(L.LipschitzUnknownError, match="step="):
        f.lipschitz()


# --------------------------------------------------------------------------------------------- smooth()
def test_smooth_wrapper():
    rng = _rng(14)
    M = rng.normal(size=(8, 5))
    c = rng.normal(size=8)

    def fun(x, M, c):
        return 0.5 * jnp.sum((M @ x - c) ** 2)

    x = rng.normal(size=5)
    f = L.smooth(fun, M, c, lipschitz=np.linalg.norm(M, 2) ** 2)
    assert isinstance(f, L.Smooth)
    np.testing.assert_allclose(float(f(x)), 0.5 * np.sum((M @ x - c) ** 2), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(f.grad(x)), M.T @ (M @ x - c), rtol=1e-12)
    v, g = f.value_and_grad(x)
    np.testing.assert_allclose(np.asarray(g), M.T @ (M @ x - c), rtol=1e-12)
    assert isinstance(f.lipschitz(), float)
    # the static float lives in the treedef, the args are leaves
    leaves, treedef = jax.tree_util.tree_flatten(f)
    assert len(leaves) == 2
    # a JAX-array Lipschitz constant is a leaf
    fj = L.smooth(fun, M, c, lipschitz=jnp.asarray(3.0))
    assert len(jax.tree_util.tree_leaves(fj)) == 3 and float(jax.jit(lambda f: f.lipschitz())(fj)) == 3.0

    fn = L.smooth(fun, M, c)
    with pytest.raises(L.LipschitzUnknownError, match=r"lipschitz=.*step="):
        fn.lipschitz()
    with pytest.raises(ValueError, match="positive"):
        L.smooth(fun, M, c, lipschitz=-1.0)
    with pytest.raises(TypeError, match="callable"):
        L.smooth(3.0)


def test_empirical_risk_built_inside_jit():
    A, y, x = _problem(seed=15)

    @jax.jit
    def run(A, y, x):  # value checks are skipped for traced data; shapes are still checked
        f = L.logistic_objective(A, y)
        return f(x), f.lipschitz()

    v, lip = run(jnp.asarray(A), jnp.asarray(y), jnp.asarray(x))
    f = L.logistic_objective(A, y)
    np.testing.assert_allclose(float(v), float(f(x)), rtol=1e-12)
    np.testing.assert_allclose(float(lip), float(f.lipschitz()), rtol=1e-12)
