r"""Jacobi multi-block proximal inertial gradient: every block updated from the same residual.

Problem: :math:`\min_x \frac1n\sum_j \ell(a_j^\top x, y_j) + \frac{\lambda_2}{2}\|x\|^2 + \sum_{i=1}^s g_i(x^i)`, the
coefficient vector cut into 1-D blocks :math:`x = (x^1,\dots,x^s)` with matching column blocks :math:`A_i` (an
:func:`optlab.losses.empirical_risk`, e.g. a Lasso split into column blocks). With the residual
:math:`z_k = Ax_k = \sum_i A_i x^i_k`, one iteration updates every block at once,

.. math:: x^i_{k+1} = \operatorname{prox}_{\gamma_i g_i}\bigl(x^i_k - \gamma_i\nabla_i f(\hat x)
          + \beta_i (x^i_k - x^i_{k-1})\bigr), \qquad
          \nabla_i f(\hat x) = \tfrac1n A_i^\top\ell'(\hat z, y) + \lambda_2 x^i_k ,

and forms the new residual :math:`z_{k+1} = \sum_i A_i x^i_{k+1}` — the one sum the method communicates
(``comm.reduce("z", ·)``). The blocks are the method's :class:`~optlab.algorithm.Rows`: executors spread them over
workers, each worker holding its column blocks (a column split: the data move with the blocks).

**Serial / Sync**: :math:`\hat z = z_k`. This is *not* the Gauss–Seidel sweep of :func:`optlab.pig_blocks` (which
uses the newest blocks); it is one-block PIG with a block-diagonal step, so its answer does not depend on how many
workers share the blocks. The descent lemma must then use the Lipschitz constant :math:`L` of the *whole* gradient
(two identical columns have :math:`L = 2L_i`, and Jacobi with :math:`\gamma = 1/L_i` oscillates). iPiano's argument
(Ochs, Chen, Brox & Pock, SIAM J. Imaging Sci. 2014, Lemma 4.1/Thm 4.8) applied block by block gives
:math:`0 < \gamma_i < 2(1-\beta_i)/L`; the default is half of it, :math:`(1-\beta_i)/L` (with equal β: PIG with
step :math:`(1-\beta)/L`). Richtárik & Takáč (Math. Prog. 2016) quantify the same effect for parallel coordinate
descent (the ESO step :math:`1/(\omega L_i)`).

**Bounded staleness** (``parallel=SimulatedAsync(n, max_delay=τ)``): a worker that delivers writes its blocks,
computed from the residual :math:`\hat z = Ax_{k-d}` it read, :math:`0 \le d \le \tau`; the other blocks stay. A
worker is the only writer of its blocks, so only the cross-block part of the gradient is stale. Step
**[ours, derived]**: with :math:`\|\nabla f(x_k) - \nabla f(\hat x)\| \le L\sum_{j=k-\tau}^{k-1}\|x_{j+1}-x_j\|`,
Young's inequality and the Lyapunov function :math:`F(x_k) + \frac L2\sum_{j=k-\tau}^{k-1}(j-k+\tau+1)\|x_{j+1}-x_j\|^2`
(plus iPiano's inertial term), the bounded-delay argument of Sun, Hannah & Yin (NeurIPS 2017) gives
:math:`0 < \gamma_i < 2(1-\beta_i)/(L(1+2\tau))`; the default is half of it.

Stop test: :math:`\sqrt{\sum_i\|\Delta_i\|^2}/\|x\|`, :math:`\Delta_i` the change of block :math:`i` at its owner's
*last delivery* (under staleness the executor's table holds exactly that): a round in which only workers whose
blocks sit at zero deliver would otherwise look converged.

Example:
    >>> import numpy as np, optlab as ol
    >>> A = np.random.default_rng(0).normal(size=(60, 12)); b = A[:, 0]
    >>> f = ol.losses.least_squares_objective(A, b)
    >>> res = ol.pig_jacobi(f, [ol.prox.l1(0.01)] * 3, np.array_split(np.zeros(12), 3), maxiter=3000)
    >>> res.status
    'converged'
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import harness, losses, operators
from ..algorithm import Algorithm, Comm, Rows
from ..parallel import as_executor

__all__ = ["pig_jacobi", "JacobiState", "JacobiProblem", "algorithm", "check_blocks", "check_beta", "check_step"]


class JacobiState(NamedTuple):
    blocks: Rows         # x (s, D), x_prev (s, D): each block zero-padded to D entries
    z: jax.Array         # (n,) the residual A x_k (shared)


class JacobiProblem(NamedTuple):
    blocks: Rows         # A (s, n, D) column blocks, step (s, D), beta (s, D), index (s,) int32, weight (s,)
    y: jax.Array         # (n,) targets / labels
    n: jax.Array
    l2: jax.Array
    gs: tuple            # one penalty per block
    f_star: jax.Array


def _per_block(sizes: tuple, gs, index, v, fn):
    """``fn(g_i, v[:size_i])`` for the block with the (traced) ``index`` (one branch per block)."""
    def branch(i):
        return lambda g_tuple, vec: fn(g_tuple[i], vec[:sizes[i]], vec)
    return jax.lax.switch(index, [branch(i) for i in range(len(sizes))], gs, v)


@functools.lru_cache(maxsize=None)
def _make_step(loss, sizes: tuple):
    def prox_block(gs, index, v, step):
        return _per_block(sizes, gs, index, v,
                          lambda g, part, vec: vec.at[:part.shape[0]].set(g.prox(part, step[0])))

    def step(state: JacobiState, problem: JacobiProblem, comm: Comm):
        rows, st = problem.blocks, state.blocks
        dual = loss.grad(state.z, problem.y)                             # ℓ'(ẑ, y), (n,)
        grads = jnp.einsum("n,snd->sd", dual, rows.A) / problem.n + problem.l2 * st.x
        v = st.x - rows.step * grads + rows.beta * (st.x - st.x_prev)
        x_new = jax.vmap(prox_block, in_axes=(None, 0, 0, 0))(problem.gs, rows.index, v, rows.step)
        sq = jnp.sum(jnp.square(x_new - st.x), axis=1) * rows.weight
        z = comm.reduce("z", jnp.einsum("snd,sd->n", rows.A, x_new))
        change = jnp.sqrt(comm.reduce("change_sq", jnp.sum(sq)))
        norm = jnp.sqrt(comm.reduce("norm_sq", jnp.sum(jnp.square(x_new))))
        rel = change / jnp.maximum(norm, jnp.finfo(norm.dtype).tiny)
        new = JacobiState(blocks=st.replace(x=x_new, x_prev=st.x), z=z)
        return new, {"step_norm": change, "rel_change": rel}

    step.__name__ = f"pig_jacobi_{len(sizes)}_step"
    return step


@functools.lru_cache(maxsize=None)
def algorithm(loss, sizes: tuple, with_gap: bool = False) -> Algorithm:
    """Jacobi PIG for the loss and block sizes (static), as an :class:`optlab.algorithm.Algorithm`."""
    def objective(state, problem, comm):
        rows, x = problem.blocks, state.blocks.x
        values = jax.vmap(lambda i, v: _per_block(sizes, problem.gs, i, v, lambda g, part, _: g.value(part)))(
            rows.index, x)
        penalty = comm.reduce("penalty", jnp.sum(values * rows.weight))
        x_sq = comm.reduce("x_sq", jnp.sum(jnp.square(x)))
        return jnp.mean(loss.value(state.z, problem.y)) + 0.5 * problem.l2 * x_sq + penalty

    def gap(state, problem, comm):
        return objective(state, problem, comm) - problem.f_star

    def params(state):
        x = state.blocks.x
        return [x[i, :size] for i, size in enumerate(sizes)]

    metrics = (("objective", objective),) + ((("gap", gap),) if with_gap else ())
    return Algorithm(name="pig_jacobi", step=_make_step(loss, sizes), metrics=metrics, params=params,
                     stop_metric="rel_change", growth_limit=1e3)


def check_blocks(gs, x0s, risk=None) -> tuple:
    """``gs`` and ``x0s`` of the multi-block solvers (:func:`pig_jacobi`, :func:`optlab.pig_blocks`): lists of the
    same nonzero length, an :mod:`optlab.prox` penalty and a finite floating block (one dtype for all) each; with an
    empirical ``risk`` on their concatenation, non-empty 1-D blocks whose sizes add up to its features. Returns the
    blocks as JAX arrays."""
    if not isinstance(gs, (list, tuple)) or not isinstance(x0s, (list, tuple)):
        raise TypeError("gs and x0s must be lists: one penalty and one starting block per block")
    if len(gs) != len(x0s) or len(gs) == 0:
        raise ValueError(f"gs and x0s must have the same nonzero length, got {len(gs)} penalties and {len(x0s)} blocks")
    for i, g in enumerate(gs):
        if not (hasattr(g, "prox") and hasattr(g, "value")):
            raise TypeError(f"gs[{i}] must be an optlab.prox penalty with value() and prox(), got {type(g).__name__}; "
                            "use ol.prox.zero() for no penalty")
    x0s = tuple(jnp.asarray(x) for x in x0s)
    for i, x in enumerate(x0s):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x0s[{i}] must be a floating-point array, got dtype {x.dtype}")
        operators.check_finite(f"x0s[{i}]", x)
    if any(x.dtype != x0s[0].dtype for x in x0s):
        raise TypeError(f"all blocks must share one dtype, got {[str(x.dtype) for x in x0s]}")
    if risk is not None:
        for i, x in enumerate(x0s):
            if x.ndim != 1 or x.shape[0] == 0:
                raise ValueError(f"x0s[{i}] must be a non-empty 1-D floating array (a slice of the coefficient "
                                 "vector)")
        sizes = [int(x.shape[0]) for x in x0s]
        if sum(sizes) != risk.A.shape[1]:
            raise ValueError(f"the blocks' sizes {sizes} sum to {sum(sizes)}, but f has {risk.A.shape[1]} features")
    return x0s


def check_beta(beta, where="beta"):
    """An inertia β of the PIG solvers (:func:`optlab.pig`, :func:`optlab.pig_blocks`, :func:`pig_jacobi`) in
    [0, 1) (a traced β is not checked)."""
    b = operators.concrete(beta)
    if b is None:
        return
    b = np.asarray(b, float)
    if not np.all(np.isfinite(b)) or np.any(b < 0) or np.any(b >= 1):
        raise ValueError(f"{where} must lie in [0, 1), got {beta}")


def check_step(step, beta_sup, L, allow_unsafe_step, where="step", L_name="L"):
    """A PIG step: finite and > 0, and below iPiano's bound 2(1 − β)/L unless ``allow_unsafe_step`` (``L`` None or
    traced: nothing to check against). ``L_name`` names ``L`` in the message (:func:`pig_jacobi`: the delay-scaled
    constant)."""
    s = np.asarray(step, float)
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"{where} must be > 0 and finite, got {step}")
    if L is None or allow_unsafe_step or operators.concrete(L) is None:
        return
    bound = 2 * (1 - np.asarray(beta_sup, float)) / np.asarray(L, float)
    if np.any(s >= bound):
        raise ValueError(f"{where}={step} violates the convergence condition 0 < step < 2(1 − β)/{L_name} = {bound} "
                         f"(β = {beta_sup}, {L_name} = {L}); lower the step or β, or pass allow_unsafe_step=True")


def pig_jacobi(f, gs, x0s, *, step=None, beta=0.5, maxiter=1000, tol=1e-10, f_star=None, allow_unsafe_step=False,
               parallel=None, **run):
    r"""Jacobi multi-block proximal inertial gradient (module docstring for the update and the step conditions).

    Args:
        f: an :func:`optlab.losses.empirical_risk` on the concatenation of the 1-D blocks.
        gs: one :mod:`optlab.prox` penalty per block.
        x0s: one starting block per penalty (1-D floating arrays).
        step: per-block steps :math:`\gamma_i` (a number or a list); default :math:`(1-\beta_i)/(L(1+2\tau))`,
            :math:`\tau` the executor's ``max_delay`` (0 for serial and ``Sync``).
        beta: per-block inertia :math:`\beta_i \in [0, 1)`.
        allow_unsafe_step: skip the check :math:`\gamma_i < 2(1-\beta_i)/(L(1+2\tau))`.
        parallel: an executor of :mod:`optlab.parallel`; the blocks are spread over its workers.
        maxiter, tol, f_star, **run: as in :func:`optlab.pig`.

    Returns:
        :class:`optlab.Result` with ``params`` the list of blocks; the trace logs ``objective``, ``step_norm``,
        ``rel_change`` (and ``gap``).
    """
    if not isinstance(f, losses.EmpiricalRisk):
        raise TypeError("pig_jacobi needs f to be an optlab.losses.empirical_risk (e.g. least_squares_objective(A, b)) "
                        "on the concatenated 1-D blocks: the blocks own column blocks of its A")
    if not isinstance(f.A, jax.Array) or f.A.ndim != 2:
        raise TypeError("pig_jacobi supports a dense 2-d A; pass A.toarray()")
    if f.loss.smoothness is None:
        raise ValueError(f"pig_jacobi: the {f.loss.name} loss is not smooth; use a smooth loss")
    x0s = check_blocks(gs, x0s, f)
    sizes = tuple(int(x.shape[0]) for x in x0s)
    s, dt = len(sizes), x0s[0].dtype
    executor = as_executor(parallel)
    delay = int(getattr(executor, "max_delay", 0))
    betas = [float(b) for b in np.broadcast_to(np.asarray(beta, float), (s,))]
    for i, b in enumerate(betas):
        check_beta(b, f"beta[{i}]")
    L = float(f.lipschitz())                      # the full constant: Jacobi moves every block at once
    L_eff = L * (1 + 2 * delay)
    steps = ([(1 - b) / L_eff for b in betas] if step is None
             else [float(v) for v in np.broadcast_to(np.asarray(step, float), (s,))])
    for i, (st, b) in enumerate(zip(steps, betas)):
        check_step(st, b, L_eff, allow_unsafe_step, f"step[{i}]", "(L(1 + 2·max_delay))")
    D = max(sizes)
    cols = np.cumsum((0,) + sizes)
    A_host = np.asarray(f.A, dtype=dt)
    A = np.zeros((s, A_host.shape[0], D), dt)
    x = np.zeros((s, D), dt)
    step_vec, beta_vec = np.zeros((s, D), dt), np.zeros((s, D), dt)
    for i, size in enumerate(sizes):
        A[i, :, :size] = A_host[:, cols[i]:cols[i + 1]]
        x[i, :size] = np.asarray(x0s[i])
        step_vec[i, :size], beta_vec[i, :size] = steps[i], betas[i]
    z0 = jnp.asarray(A_host @ np.concatenate([np.asarray(v) for v in x0s]), dt)
    problem = JacobiProblem(
        blocks=Rows(A=jnp.asarray(A), step=jnp.asarray(step_vec), beta=jnp.asarray(beta_vec),
                    index=jnp.arange(s, dtype=jnp.int32), weight=jnp.ones(s, dt)),
        y=jnp.asarray(f.y, dt), n=jnp.asarray(f.n, dt), l2=jnp.asarray(f.l2, dt), gs=tuple(gs),
        f_star=jnp.asarray(np.nan if f_star is None else f_star, dt))
    x = jnp.asarray(x)
    state = JacobiState(blocks=Rows(x=x, x_prev=x), z=z0)
    meta = {"steps": steps, "betas": betas, "lipschitz": L, "sizes": list(sizes), "dtype": str(dt)}
    return harness.solve(algorithm(f.loss, sizes, f_star is not None), state, problem, executor=executor,
                         maxiter=maxiter, tol=tol, meta=meta, **run)
