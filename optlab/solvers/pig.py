r"""Proximal inertial gradient descent (PIG / iPiano), single- and multi-block.

Problem: :math:`\min_x F(x) = f(x) + g(x)` with :math:`f` convex, :math:`\nabla f` :math:`L`-Lipschitz, and
:math:`g` convex and proximable (an :mod:`optlab.prox` penalty).

Iteration (Sun, Qiao & Li, "Non-ergodic convergence analysis of heavy-ball algorithms", arXiv:1801.07389,
AAAI-19; the scheme is Ochs et al.'s iPiano):

.. math:: x_{k+1} = \operatorname{prox}_{\gamma g}\bigl(x_k - \gamma\nabla f(x_k) + \beta_k(x_k - x_{k-1})\bigr),
   \qquad x_{-1} = x_0,

with the step condition :math:`0 < \gamma < 2(1-\beta)/L`, :math:`\beta = \sup_k \beta_k \in [0, 1)` (the standard
condition of iPiano, Ochs et al. 2014). :math:`\beta_k = 0` is forward-backward splitting (ISTA), :math:`g = 0` the heavy-ball method.

Defaults **[ours]**: ``beta = 0.5`` (the paper's example), schedule ``"constant"`` and the step
:math:`\gamma = (1-\beta)/L` — half the admissible bound, which for :math:`\beta = 0` is exactly ISTA's
:math:`1/L`, and for a quadratic makes the low-frequency "effective step" :math:`\gamma/(1-\beta)` equal to
:math:`1/L`. ``beta_schedule="diminishing"`` uses :math:`\beta_k = \beta/(k+1)^p` (``beta_power`` :math:`p`,
default 1), the schedule the paper analyses without coercivity; a callable ``beta_schedule(k)`` (``k`` a traced
int32) returns :math:`\beta_k` and must stay in :math:`[0, 1)`; its supremum for the step condition is taken over
the first ``min(maxiter, 10000)`` iterations.

Multi-block (:func:`pig_blocks`): the variable is split into blocks :math:`x = (x^1,\dots,x^s)`,
:math:`g = \sum_i g_i(x^i)`; one iteration updates every block once, in the fixed order (``"cyclic"``,
Gauss–Seidel) or in a fresh uniformly random permutation per iteration (``"random"``, random reshuffling; the
PRNG key is in the state so a checkpoint resumes exactly). Sampling *with* replacement is not offered: a sweep that
happens to miss the moving blocks would then look converged to the ``tol`` test:

.. math:: x^i \leftarrow \operatorname{prox}_{\gamma_i g_i}\bigl(x^i - \gamma_i\nabla_i f(x) + \beta_i(x^i - x^i_{\text{prev}})\bigr),

:math:`x^i_{\text{prev}}` the value of block :math:`i` before its previous update, and per-block steps
:math:`\gamma_i = (1-\beta_i)/L_i` from block Lipschitz constants :math:`L_i` (see :func:`pig_blocks`).

Example:
    >>> import numpy as np, optlab as ol
    >>> A = np.random.default_rng(0).normal(size=(50, 20)); b = A[:, 0]
    >>> res = ol.pig(ol.losses.least_squares_objective(A, b), ol.prox.l1(0.01), np.zeros(20), beta=0.5)
    >>> res.status
    'converged'
"""
from __future__ import annotations

import contextlib
import functools
import operator
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import harness, losses, operators, pytree, row_risk, validate
from ..algorithm import Algorithm, Comm
from .pig_jacobi import check_beta, check_blocks, check_step, pig_jacobi

__all__ = ["pig", "pig_blocks", "PigState", "PigProblem", "PigBlocksState", "PigBlocksProblem", "make_step",
           "make_blocks_step", "algorithm", "blocks_algorithm", "hessian_norm"]

_SCHEDULES = ("constant", "diminishing")


# ----------------------------------------------------------------------------------------------- helpers
def hessian_norm(fun: Callable, x, *, iters: int = 200, tol: float = 1e-10, seed: int = 0) -> float:
    r"""Power-iteration estimate of :math:`\|\nabla^2 f(x)\|_2` at ``x`` (Hessian-vector products by
    ``jax.jvp`` of ``jax.grad``). Exact (to ``tol``) for a quadratic :math:`f`; for other convex :math:`f` it is the
    *local* curvature at ``x``, not a global Lipschitz bound. ``x`` may be any pytree; ``fun(x) -> scalar``."""
    grad = jax.grad(fun)
    leaves, treedef = jax.tree.flatten(x)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    v = jax.tree.unflatten(treedef, [jax.random.normal(k, jnp.shape(l), jnp.result_type(l))
                                     for k, l in zip(keys, leaves)])

    def norm(t):
        return jnp.sqrt(sum(jnp.vdot(a, a) for a in jax.tree.leaves(t)))

    @jax.jit
    def hvp(v):
        return jax.jvp(grad, (x,), (v,))[1]

    est = 0.0
    v = jax.tree.map(lambda a: a / norm(v), v)
    for _ in range(iters):
        w = hvp(v)
        new = float(norm(w))
        if new == 0.0:
            return 0.0
        v = jax.tree.map(lambda a: a / new, w)
        if abs(new - est) <= tol * new:
            est = new
            break
        est = new
    return est * (1 + 1e-6)


def _beta_sup(beta, schedule, maxiter):
    """Supremum of β_k over the run (concrete float), for the step condition."""
    if schedule in _SCHEDULES:
        b = operators.concrete(beta)
        return None if b is None else float(np.max(np.asarray(b)))  # None: traced β (e.g. under vmap)
    ks = jnp.arange(min(max(int(maxiter), 1), 10000), dtype=jnp.int32)
    vals = np.asarray(jax.vmap(lambda k: jnp.asarray(schedule(k)))(ks), float)
    if not np.all(np.isfinite(vals)) or vals.min() < 0 or vals.max() >= 1:
        raise ValueError(f"beta_schedule(k) must return values in [0, 1); got range [{vals.min()}, {vals.max()}] "
                         f"over k = 0..{len(ks) - 1}")
    return float(vals.max())


def _beta_at(schedule, beta, power, k):
    if schedule == "constant":
        return beta
    if schedule == "diminishing":
        return beta / jnp.power((k + 1).astype(jnp.result_type(beta)), power)
    return jnp.asarray(schedule(k)).astype(jnp.result_type(beta))


def _check_schedule(beta_schedule):
    if not (beta_schedule in _SCHEDULES or callable(beta_schedule)):
        raise ValueError(f"beta_schedule must be 'constant', 'diminishing' or a callable k -> beta_k, "
                         f"got {beta_schedule!r}")


def _check_smooth(f, x0, what="x0"):
    """f (callable: row_risk.composite_inputs or losses.smooth checked it) must map x0 to a real scalar and be
    differentiable by JAX."""
    try:
        out = jax.eval_shape(f, x0)
    except Exception as err:  # noqa: BLE001 - report any tracing failure as a clear input error
        raise TypeError(f"f could not be evaluated at {what}: {type(err).__name__}: {err}") from err
    if out.shape != ():
        raise TypeError(f"f must return a scalar, got shape {out.shape} at {what}")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"f must return a real floating scalar, got dtype {out.dtype}; it is not differentiable")
    try:
        jax.eval_shape(jax.grad(f), x0)
    except Exception as err:  # noqa: BLE001
        raise TypeError(f"f is not differentiable by JAX at {what} ({type(err).__name__}: {err}); pig needs "
                        "a smooth f (put nonsmooth terms in g)") from err


def _maybe_float(v):
    """A Python float when ``v`` is concrete; the traced value itself inside ``jit`` (checks then skip)."""
    c = operators.concrete(v)
    return v if c is None else float(c)


def _lipschitz(f, x0, name):
    """L from f.lipschitz(); if unknown, the Hessian norm at x0 (with a warning)."""
    try:
        return _maybe_float(f.lipschitz())
    except losses.LipschitzUnknownError as err:
        if isinstance(f, losses.EmpiricalRisk):
            raise ValueError(f"{name}: {err}") from err
        warnings.warn(f"{name}: f has no known Lipschitz constant; estimating it by power iteration on the "
                      "Hessian at x0 (exact for quadratics, local otherwise). Pass step= or "
                      "lipschitz= to optlab.losses.smooth to be safe.", stacklevel=3)
        return hessian_norm(f, x0)


# ---------------------------------------------------------------------------------------- single block
class PigState(NamedTuple):
    x: Any               # x_k (an array or a pytree of arrays)
    x_prev: Any          # x_{k-1}
    x_avg: Any           # ergodic average (1/(k+1)) sum_{j<=k} x_j; None when not tracked (fewer loop ops)
    k: jax.Array         # iteration counter (int32)
    step: jax.Array      # γ


class PigProblem(NamedTuple):
    f: Any               # optlab.losses.Smooth
    g: Any               # optlab.prox penalty
    beta: jax.Array      # β (constant) or β_0 (diminishing)
    beta_power: jax.Array
    f_star: jax.Array    # NaN when unknown


@functools.lru_cache(maxsize=None)
def make_step(schedule, ergodic: bool = False):
    """The pure ``step(state, problem, comm) -> (state, info)`` for a β schedule (cached, so hashable)."""

    def step(state: PigState, problem: PigProblem, comm: Comm):
        f, g, x, s = problem.f, problem.g, state.x, state.step
        beta_k = _beta_at(schedule, problem.beta, problem.beta_power, state.k)
        x_new = g.prox(jax.tree.map(lambda a, d, b: a - s * d + beta_k * (a - b), x, row_risk.grad(f, x, comm),
                                    state.x_prev), s)
        change = pytree.norm(jax.tree.map(lambda a, b: a - b, x_new, x))
        dt = pytree.dtype(x_new)
        rel_change = change / jnp.maximum(pytree.norm(x_new), jnp.finfo(dt).tiny)
        k1 = state.k + 1
        x_avg = jax.tree.map(lambda m, a: m + (a - m) / (k1 + 1).astype(dt), state.x_avg, x_new) if ergodic else None
        return (PigState(x=x_new, x_prev=x, x_avg=x_avg, k=k1, step=s),
                {"step_norm": change, "rel_change": rel_change, "beta": beta_k})

    step.__name__ = f"pig_{getattr(schedule, '__name__', schedule)}{'_avg' if ergodic else ''}_step"
    return step


objective, gap = row_risk.composite_objective, row_risk.composite_gap


def objective_avg(state, problem, comm: Comm):
    r""":math:`F(\bar x_k)` of the ergodic average."""
    return row_risk.value(problem.f, state.x_avg, comm) + problem.g.value(state.x_avg)


stationarity = row_risk.composite_stationarity
_params = operator.attrgetter("x")              # Result.params: the iterate x_k


@functools.lru_cache(maxsize=None)
def algorithm(schedule="constant", ergodic: bool = False, with_gap: bool = False) -> Algorithm:
    """PIG as an :class:`optlab.algorithm.Algorithm` (gradient sums over rows through ``comm.reduce``)."""
    metrics = (("objective", objective),) + ((("gap", gap),) if with_gap else ()) \
        + ((("objective_avg", objective_avg),) if ergodic else ())
    return Algorithm(name="pig", step=make_step(schedule, ergodic), metrics=metrics, params=_params,
                     stop_metric="rel_change", fresh=frozenset({"value"}), growth_limit=1e3,
                     stationarity=stationarity)


def pig(f, g, x0, *, step=None, beta=0.5, beta_schedule="constant", beta_power=1.0, maxiter=1000, tol=1e-10,
        f_star=None, ergodic=False, allow_unsafe_step=False, parallel=None, **run):
    r"""Proximal inertial gradient descent for :math:`f + g` (module docstring for the math and defaults).

    Args:
        f: the smooth convex part: an :class:`optlab.losses.Smooth` or any JAX-differentiable ``f(x) -> scalar``
            (``f(params) -> scalar`` for a pytree ``x0``).
        g: an :mod:`optlab.prox` penalty (``ol.prox.zero()`` gives the heavy-ball method); for a pytree ``x0``, one
            penalty for every leaf or a pytree of penalties matching ``x0`` (:func:`optlab.prox.leafwise`).
        x0: starting point: a floating array or a pytree of floating arrays of one dtype (its dtype is the working
            dtype; norms run over all leaves); :math:`x_{-1} = x_0`.
        step: :math:`\gamma`; default :math:`(1-\beta)/L` with :math:`L` = ``f.lipschitz()`` (if unknown, a
            power-iteration estimate of the Hessian norm at ``x0``, with a warning).
        beta: :math:`\beta \in [0, 1)` (``beta=0`` is forward-backward / ISTA).
        beta_schedule: ``"constant"`` (:math:`\beta_k = \beta`), ``"diminishing"``
            (:math:`\beta_k = \beta/(k+1)^p`, ``p = beta_power``) or a callable ``k -> beta_k`` (jit-traceable).
        maxiter, tol: stop when ``‖x_{k+1} − x_k‖/‖x_{k+1}‖ <= tol`` (status ``"converged"``) or after ``maxiter``.
        f_star: optimal value; adds the metric ``gap = F(x_k) − f_star``.
        ergodic: also track the ergodic average :math:`\bar x_k` and log ``objective_avg`` = :math:`F(\bar x_k)`.
        allow_unsafe_step: skip the check :math:`0 < \gamma < 2(1-\beta)/L` (a step > 0 is still required).
        **run: the harness options ``metrics``, ``callback``, ``log_every``, ``max_time``, ``progress``,
            ``checkpoint``, ``resume``, ``jit`` (a :class:`optlab.harness.JitRun`, usable under ``jax.vmap``, e.g.
            over a penalty's ``lam``): see :func:`optlab.harness.solve`.
        parallel: an executor of :mod:`optlab.parallel` (``Sync(n)``, ``SimulatedAsync(n, max_delay)``) for an
            :func:`optlab.losses.empirical_risk` ``f``: the gradient's sum over rows is split over ``n`` workers
            (delayed gradients under ``SimulatedAsync``: pass a smaller step, e.g. :math:`(1-\beta)/(L(1+2\tau))`).

    Returns:
        :class:`optlab.Result` with ``params = x``; the trace logs ``objective``, ``step_norm``
        (:math:`\|x_k - x_{k-1}\|`), ``rel_change``, ``beta`` (:math:`\beta_{k-1}`) and ``gap`` /
        ``objective_avg`` when asked. No iterate history is kept.

    Raises:
        TypeError: f not scalar-valued or not differentiable, g without a prox, non-floating ``x0``.
        ValueError: ``step <= 0``, ``beta`` outside [0, 1), an unknown schedule, or a step violating the
            condition (unless ``allow_unsafe_step``).
    """
    f, g, x0, risk = row_risk.composite_inputs("pig", f, g, x0, parallel)
    _check_smooth(f, x0)
    _check_schedule(beta_schedule)
    check_beta(beta)
    beta_sup = _beta_sup(beta, beta_schedule, maxiter)
    if beta_sup is None and step is None:
        raise ValueError("pig: beta is traced (e.g. under jax.vmap), so the default step (1 − β)/L cannot be "
                         "formed; pass step= explicitly")
    L = None                                      # None: nothing to check the step against
    if beta_sup is not None and step is None:
        L = _lipschitz(f, x0, "pig")
        step = (1 - beta_sup) / L
    elif beta_sup is not None and not allow_unsafe_step:
        with contextlib.suppress(losses.LipschitzUnknownError):     # a user step with no known L stays unchecked
            L = _maybe_float(f.lipschitz())
    if operators.concrete(step) is not None:        # (the step check also refuses step <= 0)
        check_step(step, beta_sup, L, allow_unsafe_step)

    dt = pytree.dtype(x0)
    problem = PigProblem(f=risk, g=g, beta=jnp.asarray(beta, dt), beta_power=jnp.asarray(beta_power, dt),
                         f_star=jnp.asarray(np.nan if f_star is None else f_star, dt))
    state = PigState(x=x0, x_prev=x0, x_avg=x0 if ergodic else None, k=jnp.zeros((), jnp.int32),
                     step=jnp.asarray(step, dt))
    meta = {"step": float(np.asarray(step)) if operators.concrete(step) is not None else None,
            "beta": float(np.asarray(beta)) if operators.concrete(beta) is not None else None,
            "beta_schedule": getattr(beta_schedule, "__name__", str(beta_schedule)),
            "beta_power": float(beta_power), "dtype": str(dt), "penalty": getattr(g, "name", type(g).__name__)}
    return harness.solve(algorithm(beta_schedule, bool(ergodic), f_star is not None), state, problem,
                         executor=parallel, maxiter=maxiter, tol=tol, meta=meta, **run)


# ------------------------------------------------------------------------------------------ multi block
class PigBlocksState(NamedTuple):
    x: tuple             # blocks x^i
    x_prev: tuple        # each block before its previous update
    key: jax.Array       # raw uint32 PRNG key data (random order): a plain array, so checkpoints and tests read it
    k: jax.Array


class PigBlocksProblem(NamedTuple):
    f: Any               # Smooth taking the tuple of blocks
    gs: tuple            # penalties
    steps: tuple         # γ_i
    betas: tuple         # β_i
    f_star: jax.Array


@functools.lru_cache(maxsize=None)
def make_blocks_step(n_blocks: int, order: str):
    """``step(state, problem, comm)``: one sweep of ``n_blocks`` block updates, cyclic or random (cached; the blocks
    are not split over workers, so ``comm`` is unused)."""

    def update(i, x, x_prev, problem):
        # gradient with respect to block i only, at the current point
        gi = jax.grad(lambda xi: problem.f(x[:i] + (xi,) + x[i + 1:]))(x[i])
        s, b = problem.steps[i], problem.betas[i]
        new_i = problem.gs[i].prox(x[i] - s * gi + b * (x[i] - x_prev[i]), s)
        return x[:i] + (new_i,) + x[i + 1:], x_prev[:i] + (x[i],) + x_prev[i + 1:]

    def step(state: PigBlocksState, problem: PigBlocksProblem, comm: Comm = None):
        x, x_prev, key = state.x, state.x_prev, state.key
        if order == "cyclic":
            for i in range(n_blocks):
                x, x_prev = update(i, x, x_prev, problem)
        else:
            key, sub = jax.random.split(key)
            picks = jax.random.permutation(sub, n_blocks)
            branches = [functools.partial(lambda i, c: update(i, c[0], c[1], problem), i) for i in range(n_blocks)]

            def body(j, c):
                return jax.lax.switch(picks[j], branches, c)

            x, x_prev = jax.lax.fori_loop(0, n_blocks, body, (x, x_prev))
        sq = sum(jnp.sum(jnp.square(a - b)) for a, b in zip(x, state.x))
        nrm = sum(jnp.sum(jnp.square(a)) for a in x)
        change = jnp.sqrt(sq)
        rel = change / jnp.maximum(jnp.sqrt(nrm), jnp.finfo(x[0].dtype).tiny)
        return PigBlocksState(x=x, x_prev=x_prev, key=key, k=state.k + 1), {"step_norm": change, "rel_change": rel}

    step.__name__ = f"pig_blocks_{order}_{n_blocks}_step"
    return step


def _blocks_objective(state, problem, comm: Comm = None):
    return problem.f(state.x) + sum(g.value(x) for g, x in zip(problem.gs, state.x))


def _blocks_gap(state, problem, comm: Comm = None):
    return _blocks_objective(state, problem) - problem.f_star


def _block_list(state):
    return list(state.x)


@functools.lru_cache(maxsize=None)
def blocks_algorithm(n_blocks: int, order: str, with_gap: bool = False) -> Algorithm:
    """:func:`pig_blocks` (Gauss–Seidel, one process) as an :class:`optlab.algorithm.Algorithm`."""
    metrics = (("objective", _blocks_objective),) + ((("gap", _blocks_gap),) if with_gap else ())
    return Algorithm(name="pig_blocks", step=make_blocks_step(n_blocks, order), metrics=metrics, params=_block_list,
                     stop_metric="rel_change")


def _concat_blocks(blocks, risk):
    return risk(jnp.concatenate(blocks))


def pig_blocks(f, gs, x0s, *, order="cyclic", seed=0, step=None, beta=0.5, lipschitz=None, maxiter=1000, tol=1e-10,
               f_star=None, allow_unsafe_step=False, parallel=None, **run):
    r"""Multi-block proximal inertial gradient: one iteration updates ``s`` blocks (module docstring).

    Args:
        f: either a JAX-differentiable ``f(blocks) -> scalar`` taking the tuple of blocks, or an
            :class:`optlab.losses.EmpiricalRisk` on the concatenation of 1-D blocks (e.g. a Lasso split into
            column blocks).
        gs: one :mod:`optlab.prox` penalty per block.
        x0s: one starting block per penalty (floating arrays of a common dtype).
        order: ``"cyclic"`` (blocks 1..s in turn) or ``"random"`` (a uniformly random permutation of the blocks
            per iteration, seeded by ``seed``; the key lives in the state so checkpoint/resume is exact).
        step: per-block steps (a number or a list); default :math:`\gamma_i = (1-\beta_i)/L_i`.
        beta: per-block inertia :math:`\beta_i \in [0, 1)` (a number or a list).
        lipschitz: per-block Lipschitz constants :math:`L_i`. Default: for an ``EmpiricalRisk``,
            :math:`L_i = \text{smoothness}\cdot\|A_{:,i}\|_2^2/n + \lambda_2` from the column block :math:`A_{:,i}`
            (spectral norm by power iteration, with the same safety margin as ``f.lipschitz()``); otherwise
            the power-iteration norm of the block Hessian :math:`\nabla^2_{ii} f(x_0)` (Hessian-vector products by
            ``jax.jvp`` of ``jax.grad``; exact for quadratics, local curvature otherwise).
        maxiter, tol, f_star, allow_unsafe_step, **run: as in :func:`pig`; ``tol`` tests the relative change of
            the whole vector per sweep.
        parallel: an executor of :mod:`optlab.parallel`: runs :func:`optlab.pig_jacobi` instead (the Jacobi update,
            every block from the same residual, stale residuals under ``SimulatedAsync``; its docstring states the
            step conditions), the blocks spread over the workers; needs an ``EmpiricalRisk`` f;
            ``order``/``seed``/``lipschitz`` do not apply. Adds ``sim_time``.

    Returns:
        :class:`optlab.Result` with ``params`` the list of blocks; the trace logs ``objective``, ``step_norm``,
        ``rel_change`` (and ``gap``).
    """
    validate.choice("order", order, ("cyclic", "random"))
    risk = f if isinstance(f, losses.EmpiricalRisk) else None
    x0s = check_blocks(gs, x0s, risk)
    dt, s = x0s[0].dtype, len(x0s)
    if parallel is not None:
        if order != "cyclic" or lipschitz is not None:
            raise ValueError("pig_blocks(parallel=...): order= and lipschitz= (block constants) do not apply to the "
                             "Jacobi/async update, whose step uses the full Lipschitz constant; pass step= instead")
        return pig_jacobi(f, list(gs), list(x0s), step=step, beta=beta, maxiter=maxiter, tol=tol, f_star=f_star,
                          allow_unsafe_step=allow_unsafe_step, parallel=parallel, **run)

    if risk is not None:
        fb = losses.smooth(_concat_blocks, risk)
    else:
        fb = f if isinstance(f, losses.Smooth) else losses.smooth(f)  # called with the tuple of blocks
    _check_smooth(fb, x0s, "x0s (the tuple of blocks)")

    betas = [float(b) for b in np.broadcast_to(np.asarray(beta, float), (s,))]
    for i, b in enumerate(betas):
        check_beta(b, f"beta[{i}]")
    if lipschitz is not None:
        Ls = [float(v) for v in np.broadcast_to(np.asarray(lipschitz, float), (s,))]
    elif step is not None and allow_unsafe_step:
        Ls = None
    elif risk is not None:
        if risk.loss.smoothness is None:
            raise ValueError(f"pig_blocks: the {risk.loss.name} loss is not smooth; pass step= and lipschitz=")
        bounds = np.cumsum([0] + [x.shape[0] for x in x0s])
        sigmas = [float(operators.spectral_norm(risk.A[:, lo:hi])) for lo, hi in zip(bounds[:-1], bounds[1:])]
        margin = max(1e-6, 16 * float(jnp.finfo(dt).eps))
        Ls = [risk.loss.smoothness * sig**2 * (1 + margin) / risk.n + risk.l2 for sig in sigmas]
    else:
        Ls = [hessian_norm(lambda xi, i=i: fb(x0s[:i] + (xi,) + x0s[i + 1:]), x0s[i]) for i in range(s)]
    if Ls is not None and any(not (np.isfinite(v) and v > 0) for v in Ls):
        raise ValueError(f"block Lipschitz constants must be finite and > 0, got {Ls}; pass lipschitz= or step=")
    steps = ([(1 - b) / L for b, L in zip(betas, Ls)] if step is None
             else [float(v) for v in np.broadcast_to(np.asarray(step, float), (s,))])
    for i in range(s):
        check_step(steps[i], betas[i], None if Ls is None else Ls[i], allow_unsafe_step, f"step[{i}]")

    problem = PigBlocksProblem(f=fb, gs=tuple(gs), steps=tuple(jnp.asarray(v, dt) for v in steps),
                               betas=tuple(jnp.asarray(v, dt) for v in betas),
                               f_star=jnp.asarray(np.nan if f_star is None else f_star, dt))
    state = PigBlocksState(x=x0s, x_prev=x0s, key=jax.random.PRNGKey(seed), k=jnp.zeros((), jnp.int32))
    meta = {"order": order, "seed": int(seed), "steps": steps, "betas": betas, "lipschitz": Ls, "dtype": str(dt)}
    return harness.solve(blocks_algorithm(s, order, f_star is not None), state, problem, maxiter=maxiter, tol=tol,
                         meta=meta, **run)
