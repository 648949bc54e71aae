r"""GIST: general iterative shrinkage and thresholding (Gong, Zhang, Lu, Huang, Ye; ICML 2013).

Problem: :math:`\min_x F(x) = f(x) + P(x)`, :math:`f` smooth (here: the squared-hinge empirical risk of
the SVM paper's baseline (Guan et al. 2018)), :math:`P` a possibly nonconvex :mod:`optlab.prox` penalty with an exact prox.

Iteration (written from the paper's description): with a Barzilai–Borwein initial curvature
:math:`L = \langle\Delta x, \Delta g\rangle / \|\Delta x\|^2` clipped to :math:`[L_{\min}, L_{\max}]`
(:math:`\Delta x = x_k - x_{k-1}`, :math:`\Delta g = \nabla f(x_k) - \nabla f(x_{k-1})`), repeat

.. math:: x^+ = \operatorname{prox}_{P/L}\bigl(x_k - \nabla f(x_k)/L\bigr),\qquad L \leftarrow \eta L

until the non-monotone acceptance test
:math:`F(x^+) \le \max_{\max(0, k-M+1) \le i \le k} F(x_i) - \tfrac{\sigma}{2} L\|x^+ - x_k\|^2` holds
(M = 5 as in the SVM paper's GIST baseline; :math:`\eta = 2`, :math:`\sigma = 10^{-5}`). The search is capped at ``max_backtracks``.
Stops on the relative change :math:`\|x_{k+1} - x_k\|/\|x_{k+1}\| \le` ``tol``.

Data-parallel (``parallel=``, for an :func:`optlab.losses.empirical_risk` ``f``): the gradient's sum over rows is
formed by the executor (:mod:`optlab.parallel`); under ``SimulatedAsync`` it is a delayed gradient, while the
objective values of the line search are always fresh (a barrier), so every accepted step passes the acceptance test.

Example:
    >>> import numpy as np, optlab as ol
    >>> rng = np.random.default_rng(0); A = rng.normal(size=(80, 10)); y = np.sign(A[:, 0] + 0.1)
    >>> res = ol.gist(ol.losses.squared_hinge_objective(A, y), ol.prox.mcp(0.05, 3.0), np.zeros(10), maxiter=200)
    >>> bool(res.trace.last("objective") < res.trace["objective"][0]), res.params.shape
    (True, (10,))
"""
from __future__ import annotations

import functools
import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ... import harness, pytree, row_risk, validate
from ...algorithm import Algorithm, Comm

__all__ = ["gist", "GISTState", "GISTProblem", "make_step", "algorithm"]


class GISTState(NamedTuple):
    x: Any                # an array or a pytree of arrays
    x_prev: Any
    g_prev: Any
    hist: jax.Array       # (M,) last M objective values (padded with F(x0))
    k: jax.Array
    L: jax.Array          # the last accepted curvature (fallback when the BB quotient is undefined)


class GISTProblem(NamedTuple):
    f: Any
    g: Any
    sigma: jax.Array
    eta: jax.Array
    L_min: jax.Array
    L_max: jax.Array


@functools.lru_cache(maxsize=None)
def make_step(M: int = 5, max_backtracks: int = 50):
    def step(st: GISTState, pb: GISTProblem, comm: Comm):
        f, P = pb.f, pb.g
        x = st.x
        fx, gx = row_risk.value_and_grad(f, x, comm)
        sub = functools.partial(jax.tree.map, lambda a, b: a - b)
        dt = pytree.dtype(x)
        dx, dg = sub(x, st.x_prev), sub(gx, st.g_prev)
        dxdx = pytree.vdot(dx, dx)
        bb = pytree.vdot(dx, dg) / jnp.maximum(dxdx, jnp.finfo(dt).tiny)
        # BB is undefined when x did not move (Δx = 0) and useless when not positive: start from the last
        # accepted L instead of L_min (else a stalled float32 run starts the search at L_min = 1e-30).
        bb = jnp.where((dxdx > 0) & (bb > 0) & jnp.isfinite(bb), bb, st.L)
        L0 = jnp.clip(jnp.where(st.k == 0, 1.0, bb), pb.L_min, pb.L_max)
        ref = jnp.max(st.hist)

        def trial(L):
            xp = P.prox(jax.tree.map(lambda a, b: a - b / L, x, gx), 1 / L)
            Fp = row_risk.value(f, xp, comm, "trial_value") + P.value(xp)
            d = sub(xp, x)
            return xp, Fp, Fp <= ref - 0.5 * pb.sigma * L * pytree.vdot(d, d)

        def cond(c):
            j, _, _, _, ok = c
            return (~ok) & (j < max_backtracks)

        def body(c):
            j, L, _, _, _ = c
            L = L * pb.eta
            xp, Fp, ok = trial(L)
            return j + 1, L, xp, Fp, ok

        xp0, Fp0, ok0 = trial(L0)
        _, L, xp, Fp, ok = jax.lax.while_loop(cond, body, (jnp.int32(0), L0, xp0, Fp0, ok0))
        # A search that ran out of backtracks without passing the test is rejected: x stays (never accept an
        # uphill point; the next iteration restarts from the larger L reached).
        xp = jax.tree.map(lambda a, b: jnp.where(ok, a, b), xp, x)
        Fp = jnp.where(ok, Fp, fx + P.value(x))
        hist = jnp.roll(st.hist, -1).at[-1].set(Fp)
        rel = pytree.norm(sub(xp, x)) / jnp.maximum(pytree.norm(xp), jnp.finfo(dt).tiny)
        return (GISTState(x=xp, x_prev=x, g_prev=gx, hist=hist, k=st.k + 1, L=L),
                {"rel_change": rel, "L": L, "search_failed": (~ok).astype(dt)})

    step.__name__ = f"gist_M{M}_step"
    return step


objective = row_risk.composite_objective
_params = operator.attrgetter("x")              # Result.params: the iterate x_k


def stationarity(state, problem, comm: Comm):
    """The proximal-gradient mapping's norm at :math:`x_k` with the step :math:`1/L` of the last search."""
    return row_risk.gradient_mapping_norm(problem.f, problem.g, state.x, 1 / state.L, comm)


@functools.lru_cache(maxsize=None)
def algorithm(M: int = 5, max_backtracks: int = 50) -> Algorithm:
    """GIST as an :class:`optlab.algorithm.Algorithm` (line-search values are fresh reduces)."""
    return Algorithm(name="gist", step=make_step(M, max_backtracks), metrics=(("objective", objective),),
                     params=_params, stop_metric="rel_change", fresh=frozenset({"value", "trial_value"}), growth_limit=1e3,
                     stationarity=stationarity)


def gist(f, g, x0, *, M=5, sigma=1e-5, eta=2.0, L_min=1e-30, L_max=1e30, max_backtracks=50, maxiter=1000,
         tol=1e-6, parallel=None, **run):
    """GIST for ``f + g`` (``f``: an :class:`optlab.losses.Smooth`, e.g. ``squared_hinge_objective(A, y)``;
    ``g``: an :mod:`optlab.prox` penalty, nonconvex allowed); ``parallel``: an executor of :mod:`optlab.parallel`
    (needs an empirical-risk ``f``); ``**run``: the harness options of :func:`optlab.harness.solve`. Returns an
    :class:`optlab.Result` with ``params = x``; trace metrics ``objective``, ``rel_change``, ``L``,
    ``search_failed``."""
    M, max_backtracks = validate.count("M", M, minimum=1), validate.count("max_backtracks", max_backtracks)
    sigma, eta, L_min, L_max = validate.gist_search(sigma, eta, L_min, L_max)
    f, g, x0, risk = row_risk.composite_inputs("gist", f, g, x0, parallel)
    dt = pytree.dtype(x0)
    F0 = f(x0) + g.value(x0)
    state = GISTState(x=x0, x_prev=x0, g_prev=jax.tree.map(jnp.zeros_like, x0),
                      hist=jnp.full((M,), F0, dt), k=jnp.zeros((), jnp.int32), L=jnp.ones((), dt))
    problem = GISTProblem(f=risk, g=g, sigma=jnp.asarray(sigma, dt), eta=jnp.asarray(eta, dt),
                          L_min=jnp.asarray(L_min, dt), L_max=jnp.asarray(L_max, dt))
    return harness.solve(algorithm(M, max_backtracks), state, problem, executor=parallel, maxiter=maxiter, tol=tol,
                         meta={"M": M, "penalty": repr(g), "dtype": str(dt)}, **run)
