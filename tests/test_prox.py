"""Tests for optlab.prox: every prox against independent references.

* separable penalties: brute-force global minimisation of ``t*P(x) + (x - v)^2/2`` (fine grid + local refinement),
  with penalty values from NumPy formulas written here from the SPEC, over random and knot/tie cases;
* tv1d: an algorithm-free optimality certificate (dual feasibility), exhaustive sign-pattern enumeration in NumPy
  for short signals, and CVXPY;
* hypothesis properties (firm non-expansiveness, monotonicity, odd symmetry);
* pytree / jit / vmap behaviour, dtype preservation and parameter validation.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from optlab import prox


@pytest.fixture(autouse=True, scope="module")
def _x64():
    """Enable float64 for this module and restore the previous setting afterwards."""
    old = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


F64 = np.float64

# ---------------------------------------------------------------------------------------------------------
# NumPy reference penalties (per element), written from the formulas in SPEC §1


def ref_penalty(name, p, x):
    u = np.abs(x)
    if name == "l1":
        return p["lam"] * u
    if name == "l2sq":
        return 0.5 * p["lam"] * x * x
    if name == "elastic_net":
        lam, r = p["lam"], p["l1_ratio"]
        return lam * (r * u + 0.5 * (1 - r) * x * x)
    if name == "scad":
        lam, a = p["lam"], p["a"]
        return np.where(u <= lam, lam * u,
                        np.where(u <= a * lam, (2 * a * lam * u - u ** 2 - lam ** 2) / (2 * (a - 1)),
                                 (a + 1) * lam ** 2 / 2))
    if name == "mcp":
        lam, g = p["lam"], p["gamma"]
        return np.where(u <= g * lam, lam * u - u ** 2 / (2 * g), g * lam ** 2 / 2)
    if name == "lsp":
        return p["lam"] * np.log(1 + u / p["theta"])
    if name == "capped_l1":
        return p["lam"] * np.minimum(u, p["theta"])
    raise KeyError(name)


def breakpoints(name, p):
    """Points x >= 0 where the reference penalty is not smooth (the pieces of the scalar objective)."""
    lam = p["lam"]
    return {"l1": [0.0], "l2sq": [], "elastic_net": [0.0], "scad": [0.0, lam, p.get("a", 0) * lam],
            "mcp": [0.0, p.get("gamma", 0) * lam], "lsp": [0.0], "capped_l1": [0.0, p.get("theta", 0)]}[name]


def brute_prox(name, p, v, t, n_grid=8001):
    """Global minimiser of t*P(x) + (x-v)^2/2 by grid search + bounded Brent refinement.

    Refinement runs around the best grid local minima and on every smooth piece of P; the penalty's
    breakpoints and 0, v, -v are candidates too. Returns (x_best, f_best, unique), where ``unique`` is False
    when another candidate or a flat stretch of the grid reaches the optimal value within a tie tolerance.
    """

    def f(x):
        return t * ref_penalty(name, p, x) + 0.5 * (x - v) ** 2

    def refine(lo, hi):
        return float(minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}).x)

    r = abs(v) + 1.0
    grid = np.linspace(-r, r, n_grid)
    fg = f(grid)
    h = grid[1] - grid[0]
    bps = [b for b in breakpoints(name, p) if b < r]
    edges = np.unique(np.concatenate([[-r, r], bps, [-b for b in bps]]))
    cands = [0.0, v, -v, grid[np.argmin(fg)], *edges]
    cands += [refine(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]
    # local minima of the grid values (plateaus included), best few refined
    inner = np.flatnonzero((fg[1:-1] <= fg[:-2]) & (fg[1:-1] <= fg[2:])) + 1
    cands += [refine(grid[i - 1], grid[i + 1]) for i in inner[np.argsort(fg[inner])[:3]]]
    cands = np.array(cands)
    fc = f(cands)
    j = int(np.argmin(fc))
    x_best, f_best = cands[j], fc[j]
    tie = 1e-9 * (1 + v * v)
    unique = bool(np.all(np.abs(cands[fc <= f_best + tie] - x_best) <= 1e-7 * (1 + abs(v)))
                  and np.all(np.abs(grid[fg <= f_best + tie] - x_best) <= 2 * h))
    return x_best, f_best, unique


def loguniform(rng, lo, hi, size=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def random_params(name, rng):
    lam = float(loguniform(rng, 0.05, 3.0))
    if name == "l1":
        return {"lam": lam}
    if name == "l2sq":
        return {"lam": lam}
    if name == "elastic_net":
        return {"lam": lam, "l1_ratio": float(rng.choice([0.0, 1.0, rng.uniform()]))}
    if name == "scad":
        return {"lam": lam, "a": 2 + float(loguniform(rng, 1e-3, 10))}
    if name == "mcp":
        return {"lam": lam, "gamma": float(loguniform(rng, 0.05, 20))}
    if name in ("lsp", "capped_l1"):
        return {"lam": lam, "theta": float(loguniform(rng, 0.02, 5))}
    raise KeyError(name)


def knots(name, p, t):
    """Values of |v| at region boundaries and ties of the scalar prox problem (from the SPEC's case splits)."""
    lam = p["lam"]
    if name in ("l1", "l2sq"):
        return [t * lam, lam]
    if name == "elastic_net":
        return [t * lam * p["l1_ratio"]]
    if name == "scad":
        a = p["a"]
        return [t * lam, lam, (1 + t) * lam, a * lam, 0.5 * (a + 1 + t) * lam, np.sqrt(t * (a + 1)) * lam]
    if name == "mcp":
        g = p["gamma"]
        return [t * lam, g * lam, np.sqrt(t * g) * lam]
    if name == "lsp":
        th = p["theta"]
        return [th, 2 * np.sqrt(t * lam) - th, t * lam / th]
    if name == "capped_l1":
        th = p["theta"]
        return [th, t * lam, th + t * lam, th + 0.5 * t * lam, np.sqrt(2 * t * lam * th)]
    raise KeyError(name)


def special_steps(name, p, rng):
    """Steps at or near which the prox changes regime (a = 1 + t, a + 1 = t, gamma = t, t*lam = 2*theta, ...)."""
    if name == "scad":
        a = p["a"]
        return [a - 1, a + 1, rng.uniform(a - 1, a + 1)]
    if name == "mcp":
        return [p["gamma"], p["gamma"] * rng.uniform(0.5, 2)]
    if name == "capped_l1":
        return [2 * p["theta"] / p["lam"], 2 * p["theta"] / p["lam"] * rng.uniform(0.5, 2)]
    if name == "lsp":
        return [p["theta"] ** 2 / p["lam"], p["theta"] ** 2 / p["lam"] * rng.uniform(0.5, 4)]
    return [1.0]


SEPARABLE = ["l1", "l2sq", "elastic_net", "scad", "mcp", "lsp", "capped_l1"]


def make_cases(name, seed, n_random=300):
    """(v, t, params) cases: random steps (small, large, and at/near regime changes) and v exactly at, just
    beside, between and around the knots/ties, or random; both signs."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n_random):
        p = random_params(name, rng)
        t = float(loguniform(rng, 1e-3, 1e2)) if rng.uniform() < 0.6 else float(rng.choice(special_steps(name, p, rng)))
        ks = sorted(k for k in knots(name, p, t) if np.isfinite(k) and k >= 0)
        kind = rng.uniform()
        if kind < 0.3:  # exactly at a knot
            v = float(rng.choice(ks))
        elif kind < 0.5:  # just beside a knot
            v = float(rng.choice(ks)) * (1 + rng.choice([-1, 1]) * rng.choice([1e-9, 1e-4, 1e-2]))
        elif kind < 0.65 and len(ks) > 1:  # between two consecutive knots
            i = rng.integers(len(ks) - 1)
            v = float(ks[i] + rng.uniform() * (ks[i + 1] - ks[i]))
        elif kind < 0.8:  # around the knots
            v = float(rng.choice(ks)) * rng.uniform(0, 1.6)
        else:
            v = float(rng.normal() * 4)
        cases.append((v * rng.choice([-1.0, 1.0]), t, p))
    return cases


def run_prox_batched(name, cases):
    """Call the JAX prox once on all cases, with per-element parameters and per-coordinate steps."""
    v = np.array([c[0] for c in cases], F64)
    t = np.array([c[1] for c in cases], F64)
    keys = cases[0][2].keys()
    params = {k: np.array([c[2][k] for c in cases], F64) for k in keys}
    pen = prox.get(name, **params)
    out = pen.prox(jnp.asarray(v), jnp.asarray(t))
    assert out.dtype == jnp.float64 and out.shape == v.shape
    return np.asarray(out)


@pytest.mark.parametrize("name", SEPARABLE)
def test_separable_prox_is_global_minimiser(name):
    cases = make_cases(name, seed=SEPARABLE.index(name))
    got = run_prox_batched(name, cases)
    n_unique = 0
    for (v, t, p), x in zip(cases, got):
        x_b, f_b, unique = brute_prox(name, p, v, t)
        f_x = t * ref_penalty(name, p, x) + 0.5 * (x - v) ** 2
        assert np.isfinite(x)
        assert f_x <= f_b + 1e-10 * (1 + v * v), (name, v, t, p, x, x_b, f_x, f_b)
        if unique:
            n_unique += 1
            assert abs(x - x_b) <= 1e-6 * (1 + abs(v)), (name, v, t, p, x, x_b)
    assert n_unique > len(cases) // 2  # the argmin check was exercised


@pytest.mark.parametrize("name", ["scad", "mcp", "lsp", "capped_l1"])
def test_nonconvex_branches_hit(name):
    """The random cases do exercise both the strongly convex and the nonconvex regime of each prox."""
    cases = make_cases(name, seed=SEPARABLE.index(name))
    regime = {
        "scad": lambda p, t: p["a"] > 1 + t,
        "mcp": lambda p, t: p["gamma"] > t,
        "lsp": lambda p, t: t * p["lam"] <= p["theta"] ** 2,
        "capped_l1": lambda p, t: t * p["lam"] <= 2 * p["theta"],
    }[name]
    flags = [regime(p, t) for _, t, p in cases]
    assert 20 <= sum(flags) <= len(flags) - 20


def test_known_values():
    """Hand-checked values of the closed forms (step t, u = |v|)."""
    v = jnp.array([-3.0, -1.0, 0.0, 0.5, 2.0, 6.0, 20.0], F64)
    # MCP lam=1, gamma=3, t=1: 0 for u<=1, (u-1)/(1-1/3) for 1<u<=3, v beyond
    np.testing.assert_allclose(prox.mcp(1.0, 3.0).prox(v, 1.0), [-3, 0, 0, 0, 1.5, 6, 20])
    # MCP gamma <= t: hard threshold at lam*sqrt(t*gamma) = 2
    np.testing.assert_allclose(prox.mcp(1.0, 1.0).prox(v, 4.0), [-3, 0, 0, 0, 0, 6, 20])
    # SCAD lam=1, a=3.7, t=1: soft for u<=2, ((a-1)v - a t lam)/(a-2) for 2<u<=3.7
    np.testing.assert_allclose(prox.scad(1.0, 3.7).prox(v, 1.0), [-(2.7 * 3 - 3.7) / 1.7, 0, 0, 0, 1, 6, 20])
    # SCAD a <= 1+t: min(lam, (u - t lam)_+) below the threshold, v above it;
    # t=1.5, a=2.5: threshold lam(a+1+t)/2 = 2.5;  t=10, a=3: t > a+1, threshold lam*sqrt(t(a+1)) = sqrt(40)
    np.testing.assert_allclose(prox.scad(1.0, 2.5).prox(v, 1.5), [-3, 0, 0, 0, 0.5, 6, 20])
    np.testing.assert_allclose(prox.scad(1.0, 3.0).prox(v, 10.0), [0, 0, 0, 0, 0, 0, 20])
    # capped-l1 lam=1, theta=1, t=1: threshold 1.5
    np.testing.assert_allclose(prox.capped_l1(1.0, 1.0).prox(v, 1.0), [-3, 0, 0, 0, 2, 6, 20])
    np.testing.assert_allclose(prox.l1(1.0).prox(v, 0.5), [-2.5, -0.5, 0, 0, 1.5, 5.5, 19.5])
    np.testing.assert_allclose(prox.l2sq(1.0).prox(v, 1.0), np.asarray(v) / 2)
    np.testing.assert_allclose(prox.elastic_net(2.0, 0.25).prox(v, 1.0),
                               np.sign(v) * np.maximum(np.abs(v) - 0.5, 0) / 2.5)
    np.testing.assert_allclose(prox.box(-1.0, 2.5).prox(v, 3.0), np.clip(v, -1, 2.5))
    np.testing.assert_allclose(prox.nonneg().prox(v, 3.0), np.maximum(v, 0))
    np.testing.assert_array_equal(prox.zero().prox(v, 3.0), v)


def test_weighted_l1_and_broadcast_steps():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 6))
    lam = loguniform(rng, 0.01, 2, size=6)
    t = loguniform(rng, 0.1, 3, size=(4, 1))
    got = prox.l1(lam).prox(jnp.asarray(v), jnp.asarray(t))
    np.testing.assert_allclose(got, np.sign(v) * np.maximum(np.abs(v) - t * lam, 0), rtol=1e-14)
    assert got.shape == v.shape


@pytest.mark.parametrize("name", SEPARABLE)
def test_value_matches_reference(name):
    rng = np.random.default_rng(1)
    p = random_params(name, rng)
    x = rng.normal(size=(3, 7)) * 3
    np.testing.assert_allclose(float(prox.get(name, **p).value(jnp.asarray(x))), ref_penalty(name, p, x).sum(),
                               rtol=1e-12)


def test_indicator_and_tv_values():
    x = jnp.array([[0.0, 1.0, 3.0], [2.0, 2.0, -1.0]], F64)
    assert float(prox.box(-1.0, 3.0).value(x)) == 0.0
    assert float(prox.box(0.0, 3.0).value(x)) == np.inf
    assert float(prox.nonneg().value(jnp.abs(x))) == 0.0
    assert float(prox.zero().value(x)) == 0.0
    assert float(prox.tv1d(0.5).value(x)) == pytest.approx(0.5 * (1 + 2 + 0 + 3))


# ---------------------------------------------------------------------------------------------------------
# tv1d


def tv_objective(x, y, lam):
    return 0.5 * np.sum((x - y) ** 2) + lam * np.sum(np.abs(np.diff(x)))


def tv_certificate_error(x, y, lam):
    """Violation of the optimality conditions of 1-D TV denoising (0 for the exact solution).

    With z_k = sum_{j<=k} (y_j - x_j): need z_{N-1} = 0, |z_k| <= lam, z_k = -lam where x jumps up and +lam where
    x jumps down (the dual certificate; convexity makes it sufficient)."""
    z = np.cumsum(y - x)
    scale = 1 + np.abs(y).sum()
    err = abs(z[-1]) / scale
    if len(x) > 1:
        zi, d = z[:-1], np.diff(x)
        err = max(err, np.max(np.abs(zi)) - lam if lam >= 0 else 0.0)
        jump_tol = 1e-9 * (1 + np.abs(y).max())
        up, down = d > jump_tol, d < -jump_tol
        if up.any():
            err = max(err, np.max(np.abs(zi[up] + lam)))
        if down.any():
            err = max(err, np.max(np.abs(zi[down] - lam)))
    return max(err, 0.0)


def tv_enumerate(y, lam):
    """Exact NumPy reference for short signals: enumerate the sign pattern s in {-1,0,1}^(N-1) of diff(x).

    For a fixed pattern, x is constant on the blocks between nonzero s_i and the objective is the quadratic
    1/2||x-y||^2 + lam*sum_i s_i (x_{i+1} - x_i), minimised in closed form (block mean minus lam*(sum of
    s_{j-1} - s_j over the block)/|block|). That quadratic lower-bounds the TV objective on the pattern's subspace
    and equals it at the true solution's pattern, so the candidate with the smallest TV objective is optimal."""
    n = len(y)
    best, best_f = None, np.inf
    for s in itertools.product((-1, 0, 1), repeat=n - 1):
        s = np.array(s, float)
        c = np.concatenate([[0.0], s]) - np.concatenate([s, [0.0]])  # coefficient of x_j in sum s_i(x_{i+1}-x_i)
        x = np.empty(n)
        start = 0
        for end in range(1, n + 1):
            if end == n or s[end - 1] != 0:
                blk = slice(start, end)
                x[blk] = y[blk].mean() - lam * c[blk].sum() / (end - start)
                start = end
        fx = tv_objective(x, y, lam)
        if fx < best_f:
            best, best_f = x, fx
    return best


def tv_signals(rng):
    """Random test signals of several lengths: noise, piecewise constant + noise, and integer-valued (ties)."""
    out = []
    for n in (1, 2, 3, 4, 7, 50, 400):
        out.append(rng.normal(size=n) * 2)
        steps = np.repeat(rng.normal(size=max(1, n // 10)) * 3, 10)[:n]
        out.append(np.pad(steps, (0, n - len(steps))) + 0.3 * rng.normal(size=n))
        out.append(rng.integers(-2, 3, size=n).astype(float))
    return out


TV_LAMS = (0.0, 1e-3, 0.1, 0.7, 3.0, 1e3)


def test_tv1d_optimality_certificate():
    rng = np.random.default_rng(2)
    for y in tv_signals(rng):
        for lam in TV_LAMS:
            x = np.asarray(prox.tv1d(lam).prox(jnp.asarray(y), 1.0))
            err = tv_certificate_error(x, y, lam)
            assert err < 1e-9 * (1 + lam + np.abs(y).max() * len(y)), (len(y), lam, err)


def test_tv1d_matches_enumeration_reference():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 4, 5, 6):
        for _ in range(4):
            y = rng.normal(size=n) * 2 if rng.uniform() < 0.7 else rng.integers(-1, 2, size=n).astype(float)
            lam, t = float(loguniform(rng, 0.01, 3)), float(loguniform(rng, 0.2, 3))
            got = np.asarray(prox.tv1d(lam).prox(jnp.asarray(y), t))
            ref = tv_enumerate(y, t * lam)
            np.testing.assert_allclose(got, ref, atol=1e-10)


def test_tv1d_matches_cvxpy():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 7, 50, 400):
        for lam in (0.05, 0.5, 2.0):
            y = rng.normal(size=n) + np.repeat(rng.normal(size=4) * 2, -(-n // 4))[:n]
            x = cp.Variable(n)
            obj = 0.5 * cp.sum_squares(x - y)
            if n > 1:
                obj = obj + lam * cp.norm1(cp.diff(x))
            cp.Problem(cp.Minimize(obj)).solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12,
                                                tol_feas=1e-12)
            got = np.asarray(prox.tv1d(lam).prox(jnp.asarray(y), 1.0))
            np.testing.assert_allclose(got, x.value, atol=1e-6)
            assert tv_objective(got, y, lam) <= tv_objective(x.value, y, lam) + 1e-9


def test_tv1d_batched_jit_vmap():
    rng = np.random.default_rng(5)
    Y = rng.normal(size=(2, 3, 17))
    pen = prox.tv1d(0.4)
    rows = np.stack([np.asarray(pen.prox(jnp.asarray(y), 0.5)) for y in Y.reshape(-1, 17)]).reshape(Y.shape)
    np.testing.assert_allclose(pen.prox(jnp.asarray(Y), 0.5), rows, atol=1e-12)
    flat = jnp.asarray(Y.reshape(-1, 17))
    np.testing.assert_allclose(jax.vmap(lambda y: pen.prox(y, 0.5))(flat), rows.reshape(-1, 17), atol=1e-12)
    jitted = jax.jit(lambda p, y, t: p.prox(y, t))
    np.testing.assert_allclose(jitted(pen, jnp.asarray(Y), 0.5), rows, atol=1e-12)
    # vmap over lam (regularisation path): each slice equals its own prox
    lams = jnp.array([0.0, 0.1, 1.0, 10.0])
    path = jax.vmap(lambda lam: prox.tv1d(lam).prox(flat[0], 1.0))(lams)
    for lam, x in zip(np.asarray(lams), path):
        np.testing.assert_allclose(x, prox.tv1d(float(lam)).prox(flat[0], 1.0), atol=1e-12)
    np.testing.assert_allclose(path[-1], np.full(17, Y.reshape(-1, 17)[0].mean()), atol=1e-12)


def test_tv1d_float32():
    rng = np.random.default_rng(6)
    y = rng.normal(size=300)
    x32 = prox.tv1d(0.3).prox(jnp.asarray(y, jnp.float32), jnp.float32(1.0))
    assert x32.dtype == jnp.float32
    np.testing.assert_allclose(x32, prox.tv1d(0.3).prox(jnp.asarray(y, jnp.float64), 1.0), atol=2e-4)


# ---------------------------------------------------------------------------------------------------------
# hypothesis properties

FLOATS = st.floats(-20, 20, allow_nan=False, allow_infinity=False)
STEPS = st.one_of(st.floats(1e-3, 100.0), st.sampled_from([1.0, 2.0, 4.7]))


def penalty_strategy(name):
    lam = st.floats(0.0, 5.0)
    pos = st.floats(0.01, 10.0)
    return {
        "l1": st.builds(prox.l1, lam),
        "l2sq": st.builds(prox.l2sq, lam),
        "elastic_net": st.builds(prox.elastic_net, lam, st.floats(0.0, 1.0)),
        "scad": st.builds(prox.scad, lam, st.floats(2.0, 12.0, exclude_min=True)),
        "mcp": st.builds(prox.mcp, lam, pos),
        "lsp": st.builds(prox.lsp, lam, pos),
        "capped_l1": st.builds(prox.capped_l1, lam, pos),
        "box": st.builds(lambda c, w: prox.box(c - w, c + w), st.floats(-3, 3), st.floats(0, 5)),
        "nonneg": st.just(prox.nonneg()),
        "zero": st.just(prox.zero()),
        "tv1d": st.builds(prox.tv1d, lam),
    }[name]


HYP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONVEX = ["l1", "l2sq", "elastic_net", "box", "nonneg", "zero", "tv1d"]


@pytest.mark.parametrize("name", CONVEX)
@HYP
@given(data=st.data())
def test_firm_nonexpansive_convex(name, data):
    pen = data.draw(penalty_strategy(name))
    assert pen.is_convex
    u = np.array(data.draw(st.lists(FLOATS, min_size=6, max_size=6)))
    v = np.array(data.draw(st.lists(FLOATS, min_size=6, max_size=6)))
    t = data.draw(STEPS)
    pu = np.asarray(pen.prox(jnp.asarray(u), t))
    pv = np.asarray(pen.prox(jnp.asarray(v), t))
    d = pu - pv
    assert d @ d <= d @ (u - v) + 1e-9 * (1 + np.sum((u - v) ** 2))


ODD = ["l1", "l2sq", "elastic_net", "scad", "mcp", "lsp", "capped_l1", "zero"]


@pytest.mark.parametrize("name", ODD + ["box", "nonneg"])
@HYP
@given(data=st.data())
def test_monotone_separable(name, data):
    pen = data.draw(penalty_strategy(name))
    v = np.sort(np.array(data.draw(st.lists(FLOATS, min_size=2, max_size=12)) + [0.0]))
    t = data.draw(STEPS)
    x = np.asarray(pen.prox(jnp.asarray(v), t))
    assert np.all(np.diff(x) >= -1e-12 * (1 + np.abs(v[1:])))
    # prox shrinks toward the penalty's minimiser set: |x| <= |v| for the symmetric penalties
    if name in ODD:
        assert np.all(np.abs(x) <= np.abs(v) * (1 + 1e-15))


@pytest.mark.parametrize("name", ODD + ["box", "tv1d"])
@HYP
@given(data=st.data())
def test_odd_symmetry(name, data):
    pen = data.draw(penalty_strategy(name))
    if name == "box":  # symmetric box
        c = data.draw(st.floats(0, 5))
        pen = prox.box(-c, c)
    v = jnp.asarray(np.array(data.draw(st.lists(FLOATS, min_size=1, max_size=8))))
    t = data.draw(STEPS)
    if name == "tv1d":
        np.testing.assert_allclose(pen.prox(-v, t), -pen.prox(v, t), atol=1e-11)
    else:
        np.testing.assert_array_equal(pen.prox(-v, t), -pen.prox(v, t))


# ---------------------------------------------------------------------------------------------------------
# pytree, jit, vmap, dtypes

FACTORIES = {
    "l1": lambda lam: prox.l1(lam),
    "l2sq": lambda lam: prox.l2sq(lam),
    "elastic_net": lambda lam: prox.elastic_net(lam, 0.3),
    "scad": lambda lam: prox.scad(lam, 3.7),
    "mcp": lambda lam: prox.mcp(lam, 3.0),
    "lsp": lambda lam: prox.lsp(lam, 0.5),
    "capped_l1": lambda lam: prox.capped_l1(lam, 0.8),
    "tv1d": lambda lam: prox.tv1d(lam),
    "box": lambda lam: prox.box(-lam, lam),
}


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("step", [0.5, 5.0])
def test_vmap_over_lam(name, step):
    v = jnp.linspace(-4.0, 4.0, 9, dtype=jnp.float64)
    lams = jnp.array([0.1, 0.5, 1.0, 2.0], jnp.float64)
    path = jax.vmap(lambda lam: FACTORIES[name](lam).prox(v, step))(lams)
    assert path.shape == (4, 9)
    for lam, x in zip(np.asarray(lams), path):
        np.testing.assert_allclose(x, FACTORIES[name](float(lam)).prox(v, step), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", list(FACTORIES) + ["zero", "nonneg"])
def test_penalty_is_pytree_and_jit_does_not_retrace(name):
    make = FACTORIES.get(name, lambda lam: prox.get(name))
    traces = []

    @jax.jit
    def f(pen, v, t):
        traces.append(1)
        return pen.prox(v, t), pen.value(v)

    v = jnp.linspace(-3.0, 3.0, 8, dtype=jnp.float64)
    for lam in (0.3, 0.9):
        pen = make(lam)
        leaves, tree = jax.tree_util.tree_flatten(pen)
        assert [np.asarray(leaf).item() if np.ndim(leaf) == 0 else leaf for leaf in leaves] == [
            getattr(pen, fld) for fld in pen._fields]
        rebuilt = jax.tree_util.tree_unflatten(tree, leaves)
        assert type(rebuilt) is type(pen) and rebuilt.name == pen.name
        assert isinstance(pen.is_convex, bool) and isinstance(pen.name, str)
        x, val = f(pen, v, 0.7)
        np.testing.assert_allclose(x, pen.prox(v, 0.7), rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(val, pen.value(v), rtol=1e-14)
        f(pen, v, 0.2)  # a new step value: no retrace either
    assert len(traces) == 1


def test_vmap_over_penalty_pytree():
    v = jnp.array([-2.0, 0.3, 1.5], jnp.float64)
    pens = prox.l1(jnp.array([0.1, 1.0], jnp.float64))
    out = jax.vmap(lambda p: p.prox(v, 1.0))(pens)
    np.testing.assert_allclose(out, [prox.l1(0.1).prox(v, 1.0), prox.l1(1.0).prox(v, 1.0)])


def test_vmap_over_step_and_traced_step():
    v = jnp.array([-2.0, 0.3, 1.5], jnp.float64)
    pen = prox.scad(0.5, 3.7)
    steps = jnp.array([0.1, 1.0, 5.0], jnp.float64)
    out = jax.vmap(lambda t: pen.prox(v, t))(steps)
    for t, x in zip(np.asarray(steps), out):
        np.testing.assert_allclose(x, pen.prox(v, float(t)), rtol=1e-14)


ALL = {**{k: (lambda k=k: FACTORIES[k](0.6)) for k in FACTORIES}, "zero": prox.zero, "nonneg": prox.nonneg}


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_preserved(name, dtype):
    pen = ALL[name]()
    v = jnp.asarray(np.linspace(-3, 3, 10), dtype)
    assert pen.prox(v, 0.5).dtype == dtype
    assert pen.prox(v, jnp.asarray(0.5, jnp.float64)).dtype == dtype
    assert pen.value(v).dtype == dtype
    if name != "tv1d":
        assert pen.prox(v, np.full(10, 0.5)).dtype == dtype  # per-coordinate float64 steps


def test_float64_params_with_float32_input():
    v = jnp.asarray(np.linspace(-3, 3, 7), jnp.float32)
    pen = prox.scad(np.array(0.5, np.float64), np.float64(3.7))
    out = pen.prox(v, np.float64(0.5))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, pen.prox(jnp.asarray(v, jnp.float64), 0.5), rtol=1e-6)


def test_default_dtype_without_x64():
    jax.config.update("jax_enable_x64", False)
    try:
        for pen in (prox.mcp(0.5), prox.tv1d(0.5), prox.l1(np.array([0.1, 0.2, 0.3]))):
            out = pen.prox([1.0, -2.0, 3.0], 0.5)
            assert out.dtype == jnp.float32
            assert pen.value(np.arange(3)).dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)


def test_integer_input_promoted():
    out = prox.l1(0.5).prox(jnp.arange(-2, 3), 1.0)
    assert jnp.issubdtype(out.dtype, jnp.floating)
    np.testing.assert_allclose(out, [-1.5, -0.5, 0, 0.5, 1.5])


# ---------------------------------------------------------------------------------------------------------
# validation and get()


@pytest.mark.parametrize("ctor, kwargs, match", [
    (prox.l1, {"lam": -1.0}, r"l1: lam must be finite and >= 0"),
    (prox.l1, {"lam": float("nan")}, r"lam .*got nan"),
    (prox.l1, {"lam": np.array([0.1, -0.2])}, r"l1: lam"),
    (prox.l2sq, {"lam": float("inf")}, r"l2sq: lam"),
    (prox.elastic_net, {"lam": 1.0, "l1_ratio": 1.5}, r"elastic_net: l1_ratio must be in \[0, 1\]"),
    (prox.elastic_net, {"lam": -1.0}, r"elastic_net: lam"),
    (prox.scad, {"lam": 0.1, "a": 1.5}, r"scad: a must be finite and > 2, got 1.5"),
    (prox.scad, {"lam": 0.1, "a": 2.0}, r"scad: a must be"),
    (prox.scad, {"lam": -0.1}, r"scad: lam"),
    (prox.mcp, {"lam": 0.1, "gamma": 0.0}, r"mcp: gamma must be finite and > 0"),
    (prox.mcp, {"lam": 0.1, "gamma": float("nan")}, r"mcp: gamma"),
    (prox.lsp, {"lam": 0.1, "theta": -1.0}, r"lsp: theta must be finite and > 0"),
    (prox.capped_l1, {"lam": 0.1, "theta": 0.0}, r"capped_l1: theta must be"),
    (prox.capped_l1, {"lam": float("nan"), "theta": 1.0}, r"capped_l1: lam"),
    (prox.tv1d, {"lam": -0.5}, r"tv1d: lam"),
    (prox.tv1d, {"lam": np.array([0.1, 0.2])}, r"tv1d: lam must be a scalar"),
    (prox.box, {"lo": 1.0, "hi": 0.0}, r"box: lo must be <= hi"),
    (prox.box, {"lo": float("nan"), "hi": 0.0}, r"box: lo"),
    (prox.box, {"lo": 0.0, "hi": -np.inf}, r"box: hi"),
])
def test_bad_parameters_raise(ctor, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ctor(**kwargs)


@pytest.mark.parametrize("step", [0.0, -1.0, float("nan"), float("inf"), np.array([0.5, -0.1, 1.0])])
@pytest.mark.parametrize("name", ["l1", "scad", "mcp", "box", "tv1d", "zero"])
def test_bad_step_raises(name, step):
    pen = ALL[name]()
    with pytest.raises(ValueError, match=r"step"):
        pen.prox(jnp.ones(3, jnp.float64), step)


def test_tv1d_step_must_be_scalar():
    with pytest.raises(ValueError, match=r"tv1d.prox: step must be a scalar"):
        prox.tv1d(0.1).prox(jnp.ones(3, jnp.float64), jnp.ones(3, jnp.float64))


def test_get():
    pen = prox.get("scad", lam=0.1, a=3.7)
    assert isinstance(pen, prox.SCAD) and pen.lam == 0.1 and pen.a == 3.7 and not pen.is_convex
    assert prox.get("nonneg").name == "box"
    assert set(prox.names()) >= {"l1", "l2sq", "elastic_net", "scad", "mcp", "lsp", "capped_l1", "tv1d", "box",
                                 "nonneg", "zero"}
    with pytest.raises(ValueError, match="unknown penalty name 'lasso'"):
        prox.get("lasso", lam=1.0)
    with pytest.raises(ValueError, match="scad: a"):
        prox.get("scad", lam=0.1, a=1.0)
    with pytest.raises(TypeError, match="get"):
        prox.get("l1", lam=0.1, theta=3.0)
    assert repr(pen) == "scad(lam=0.1, a=3.7)"
    raw = prox.SCAD(lam=0.2, a=4.0)  # unvalidated class constructor, keywords or positions
    assert (raw.lam, raw.a) == (0.2, 4.0) and prox.SCAD(0.2, 4.0).a == 4.0
    with pytest.raises(TypeError, match="missing"):
        prox.SCAD(0.2)
    assert set(prox.__all__) >= {"l1", "get", "tv1d", "Penalty"}
