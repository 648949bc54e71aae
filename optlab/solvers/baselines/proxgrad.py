r"""Proximal gradient (ISTA) and its accelerated version (FISTA), with optional backtracking.

Problem: :math:`\min_x F(x) = f(x) + g(x)` with :math:`f` smooth (:math:`\nabla f` is
:math:`L`-Lipschitz) and :math:`g` proximable (an :mod:`optlab.prox` penalty).

ISTA (forward-backward splitting):

.. math:: x_{k+1} = \operatorname{prox}_{s g}\bigl(x_k - s\nabla f(x_k)\bigr), \qquad 0 < s \le 1/L.

FISTA (Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
problems", SIAM J. Imaging Sci. 2(1), 2009):

.. math::
    x_{k+1} = \operatorname{prox}_{s g}\bigl(y_k - s\nabla f(y_k)\bigr),\quad
    t_{k+1} = \tfrac{1 + \sqrt{1 + 4t_k^2}}{2},\quad
    y_{k+1} = x_{k+1} + \tfrac{t_k - 1}{t_{k+1}}(x_{k+1} - x_k),

with :math:`t_0 = 1, y_0 = x_0`. Backtracking (Beck & Teboulle, §4) shrinks :math:`s` by ``shrink``
until :math:`f(p) \le f(y) + \langle\nabla f(y), p - y\rangle + \|p - y\|^2/(2s)` at the trial point
:math:`p`; the step never grows again, so the :math:`O(1/k)` / :math:`O(1/k^2)` guarantees hold.
The test allows a slack of a few ulps of :math:`f(y)`, and the search is capped at ``max_backtracks``
halvings per iteration: near the optimum, rounding alone can make the exact test fail, which would
shrink the step for no reason.

Both methods are baselines for the inertial methods (proximal inertial gradient) and the proof of the harness.

Data-parallel (``parallel=Sync(n)`` or ``SimulatedAsync(n, max_delay)``, for an
:func:`optlab.losses.empirical_risk` ``f``): the gradient's sum over rows is formed by the executor
(:mod:`optlab.parallel`); with ``SimulatedAsync`` it is a delayed gradient (worker ``w`` contributes
:math:`A_w^\top\ell'(A_w\hat y, y_w)` at the point :math:`\hat y` it last read, at most ``max_delay``
iterations old): the asynchronous proximal-gradient method. Backtracking's function values are always fresh (a
barrier). Delayed gradients need a smaller step, e.g. :math:`1/(L(1 + 2\,\text{max\_delay}))`.

Example:
    >>> import numpy as np, optlab as ol
    >>> A = np.random.default_rng(0).normal(size=(50, 20)); b = A[:, 0]
    >>> res = ol.fista(ol.losses.least_squares_objective(A, b), ol.prox.l1(0.01), np.zeros(20))
    >>> res.status, res.trace.last("objective") > 0
    ('converged', True)

A pytree iterate, e.g. weights and an unpenalised intercept (a penalty per leaf; ``f(params) -> scalar``):

    >>> import jax.numpy as jnp
    >>> f = ol.losses.smooth(lambda p: 0.5 * jnp.mean((A @ p["w"] + p["b"] - b - 1.0) ** 2))
    >>> res = ol.fista(f, {"w": ol.prox.l1(0.01), "b": ol.prox.zero()}, {"w": np.zeros(20), "b": 0.0},
    ...                backtracking=True, maxiter=300)
    >>> sorted(res.params), res.params["w"].shape, bool(abs(res.params["b"] - 1.0) < 0.1)
    (['b', 'w'], (20,), True)
"""
from __future__ import annotations

import functools
import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ... import harness, operators, pytree, row_risk
from ...algorithm import Algorithm, Comm

__all__ = ["ista", "fista", "ProxGradState", "ProxGradProblem", "make_step", "init", "algorithm"]


class ProxGradState(NamedTuple):
    x: Any              # current iterate x_k (an array or a pytree of arrays)
    y: Any              # extrapolated point y_k (= x_k for ISTA)
    t: jax.Array        # FISTA momentum scalar t_k
    step: jax.Array     # current step size s (shrinks under backtracking)


class ProxGradProblem(NamedTuple):
    f: Any              # optlab.losses.Smooth (serial) or optlab.row_risk.RowRisk (data-parallel)
    g: Any              # optlab.prox penalty (optlab.prox.Leafwise for a pytree x)
    shrink: jax.Array   # backtracking factor in (0, 1)
    f_star: jax.Array   # known optimal value (NaN when unknown) for the "gap" metric


def init(x0, step) -> ProxGradState:
    x0 = jnp.asarray(x0) if pytree.is_array_like(x0) else jax.tree.map(jnp.asarray, x0)
    dt = pytree.dtype(x0)
    return ProxGradState(x=x0, y=x0, t=jnp.ones((), dt), step=jnp.asarray(step, dt))


def _backtrack(f, g, y, fy, grad_y, step, shrink, max_backtracks, comm):
    """Largest s in {step·shrink^j} satisfying the quadratic upper-bound test at y (capped search)."""
    def trial(s):
        p = g.prox(jax.tree.map(lambda a, b: a - s * b, y, grad_y), s)
        d = jax.tree.map(lambda a, b: a - b, p, y)
        bound = fy + pytree.vdot(grad_y, d) + pytree.vdot(d, d) / (2 * s)
        slack = 8 * jnp.finfo(fy.dtype).eps * jnp.abs(fy)
        return p, row_risk.value(f, p, comm, "trial_value") <= bound + slack

    def cond(c):
        j, _, _, ok = c
        return (~ok) & (j < max_backtracks)

    def body(c):
        j, s, _, _ = c
        s = s * shrink
        p, ok = trial(s)
        return j + 1, s, p, ok

    p0, ok0 = trial(step)
    _, s, p, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), step, p0, ok0))
    return p, s


@functools.lru_cache(maxsize=None)
def make_step(accelerated: bool, backtracking: bool, max_backtracks: int = 40):
    """The pure ``step(state, problem, comm) -> (state, info)`` for the chosen variant (cached, so hashable)."""

    def step(state: ProxGradState, problem: ProxGradProblem, comm: Comm):
        f, g = problem.f, problem.g
        y = state.y
        if backtracking:
            fy, grad_y = row_risk.value_and_grad(f, y, comm)
            x_new, s = _backtrack(f, g, y, fy, grad_y, state.step, problem.shrink, max_backtracks, comm)
        else:
            s = state.step
            x_new = g.prox(jax.tree.map(lambda a, b: a - s * b, y, row_risk.grad(f, y, comm)), s)
        if accelerated:
            t_new = (1 + jnp.sqrt(1 + 4 * state.t**2)) / 2
            y_new = jax.tree.map(lambda a, b: a + ((state.t - 1) / t_new) * (a - b), x_new, state.x)
        else:
            t_new, y_new = state.t, x_new
        change = pytree.norm(jax.tree.map(lambda a, b: a - b, x_new, state.x))
        rel_change = change / jnp.maximum(pytree.norm(x_new), jnp.finfo(pytree.dtype(x_new)).tiny)
        new_state = ProxGradState(x=x_new, y=y_new, t=t_new, step=s)
        return new_state, {"rel_change": rel_change, "step": s}

    step.__name__ = f"{'fista' if accelerated else 'ista'}{'_bt' if backtracking else ''}_step"
    return step


objective, gap = row_risk.composite_objective, row_risk.composite_gap
stationarity = row_risk.composite_stationarity
_params = operator.attrgetter("x")              # Result.params: the iterate x_k


@functools.lru_cache(maxsize=None)
def algorithm(accelerated: bool, backtracking: bool = False, max_backtracks: int = 40,
              with_gap: bool = False) -> Algorithm:
    """ISTA (``accelerated=False``) or FISTA as an :class:`optlab.algorithm.Algorithm`."""
    name = "fista" if accelerated else "ista"
    metrics = (("objective", objective),) + ((("gap", gap),) if with_gap else ())
    return Algorithm(name=name, step=make_step(accelerated, backtracking, max_backtracks), metrics=metrics,
                     params=_params, stop_metric="rel_change", fresh=frozenset({"value", "trial_value"}), growth_limit=1e3,
                     stationarity=stationarity)


_DOC_ARGS = """
    Args:
        f: the smooth part: an :class:`optlab.losses.Smooth` (e.g. ``least_squares_objective(A, b)``; its
            data are traced, so new data of the same shape do not recompile) or any JAX-differentiable
            ``f(x) -> scalar`` (``f(params) -> scalar`` for a pytree ``x0``).
        g: an :mod:`optlab.prox` penalty (``ol.prox.zero()`` for none); for a pytree ``x0``, one penalty for every
            leaf or a pytree of penalties matching ``x0`` (``ol.prox.zero()`` for unpenalised leaves such as an
            intercept), see :func:`optlab.prox.leafwise`.
        x0: starting point: a floating array or any pytree of floating arrays of one dtype (e.g.
            ``{"w": np.zeros(d), "b": 0.0}``); its dtype is the working dtype. Norms and inner products run over
            all leaves.
        step: step size s; default ``1 / f.lipschitz()`` (or 1.0 as the first trial with backtracking).
        backtracking: shrink the step until the sufficient-decrease test holds (step never grows).
        maxiter, tol: stop when ``‖x_{k+1} - x_k‖ / ‖x_{k+1}‖ <= tol`` (status ``"converged"``) or after
            ``maxiter`` iterations.
        f_star: optimal value; adds the metric ``gap = F(x_k) - f_star``.
        parallel: an executor of :mod:`optlab.parallel` (``Sync(n)``, ``SimulatedAsync(n, max_delay)``): split
            the rows of an :func:`optlab.losses.empirical_risk` over ``n`` devices; adds the ``sim_time``
            (simulated clock) and ``arrived`` diagnostics.
        **run: the harness options ``log_every``, ``max_time``, ``metrics``, ``callback``, ``progress``,
            ``checkpoint``, ``resume`` and ``jit`` (return a :class:`optlab.harness.JitRun` from the fully compiled
            loop, usable under ``jax.vmap``, e.g. over ``lam``; the solution is ``.state.x``); see
            :func:`optlab.harness.solve`.

    Returns:
        :class:`optlab.Result` with ``params = x``; the trace logs ``objective``, ``rel_change``,
        ``step`` (and ``gap``).
"""


def _public(name: str, accelerated: bool, summary: str):
    def solver(f, g, x0, *, step=None, backtracking=False, shrink=0.5, max_backtracks=40, maxiter=1000, tol=1e-10,
               f_star=None, parallel=None, **run):
        f, g, x0, risk = row_risk.composite_inputs(name, f, g, x0, parallel)
        if step is not None and operators.concrete(step) is not None and not np.all(operators.concrete(step) > 0):
            raise ValueError(f"step must be > 0, got {step}")
        dt = pytree.dtype(x0)
        if not 0 < shrink < 1:
            raise ValueError(f"shrink must be in (0, 1), got {shrink}")
        if step is None:
            try:
                step = 1.0 / f.lipschitz()
            except (ValueError, NotImplementedError) as err:
                if not backtracking:
                    raise ValueError(f"{name}: no step given and f has no Lipschitz constant ({err}); pass "
                                     "step=1/L or backtracking=True") from err
                step = 1.0
        problem = ProxGradProblem(f=risk, g=g, shrink=jnp.asarray(shrink, dt),
                                  f_star=jnp.asarray(np.nan if f_star is None else f_star, dt))
        alg = algorithm(accelerated, bool(backtracking), int(max_backtracks), f_star is not None)
        step_value = operators.concrete(step)
        meta = {"step": float(step_value) if step_value is not None else None, "backtracking": bool(backtracking),
                "dtype": str(dt), "penalty": getattr(g, "name", type(g).__name__)}
        return harness.solve(alg, init(x0, step), problem, executor=parallel, maxiter=maxiter, tol=tol, meta=meta,
                             **run)

    solver.__name__ = solver.__qualname__ = name
    solver.__doc__ = summary + "\n" + _DOC_ARGS
    return solver


ista = _public("ista", False, "Proximal gradient descent (ISTA / forward-backward splitting) for f + g.")
fista = _public("fista", True, "FISTA (Beck & Teboulle 2009): accelerated proximal gradient for f + g.")
