r"""Data-parallel ISTA / FISTA for empirical risks: ``ol.ista(f, g, x0, parallel=Sync(4) | Async(4, ...))``.

The smooth part is :math:`f(x) = \frac1n\sum_i \ell(a_i^\top x, y_i) + \frac{\lambda_2}{2}\|x\|^2`
(an :func:`optlab.losses.empirical_risk`). Worker ``w`` holds rows :math:`I_w` and computes
:math:`G_w(x) = \sum_{i\in I_w} \ell'(a_i^\top x, y_i)\,a_i`; the server step is

.. math:: x_{k+1} = \operatorname{prox}_{s g}\Bigl(y_k - s\bigl(\tfrac1n\textstyle\sum_w \hat G_w + \lambda_2 y_k\bigr)\Bigr)

(FISTA's extrapolation as in :mod:`.proxgrad`). ``Sync``: :math:`\hat G_w = G_w(y_k)` — the serial
method up to the order of the floating-point sum. ``Async``: :math:`\hat G_w` is the last gradient worker
``w`` delivered, computed at the point it read when it started (bounded staleness, see
:mod:`optlab.parallel`); this is the asynchronous proximal-gradient scheme with delayed gradients.
The simulated clock is logged as ``sim_time``, in units of one full gradient on one worker of speed 1
(worker ``w`` needs ``τ_w = speed_w · rows_w / n`` per gradient).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ... import losses, parallel as par

__all__ = ["ParallelState", "ParallelProblem", "build", "make_step", "metrics"]


class ParallelState(NamedTuple):
    x: jax.Array          # iterate x_k (replicated)
    y: jax.Array          # extrapolated point y_k (= x_k for ISTA)
    t: jax.Array          # FISTA momentum
    step: jax.Array       # step size
    x_read: jax.Array     # (W, d) point each worker is computing its gradient at
    table: jax.Array      # (W, d) last delivered gradient sum of each worker
    ready: jax.Array      # (W,) simulated time each worker's computation finishes
    age: jax.Array        # (W,) server iterations since each worker last delivered
    clock: jax.Array      # simulated time of the last server iteration


class ParallelProblem(NamedTuple):
    A: jax.Array          # (n_pad, d), rows sharded over workers
    b: jax.Array          # (n_pad,)
    mask: jax.Array       # (n_pad,) 1 for real rows
    n: jax.Array          # number of real rows
    l2: jax.Array
    g: Any                # penalty
    tau: jax.Array        # (W,) simulated seconds per gradient
    f_star: jax.Array


def _local_grad(loss, x, A_w, b_w, mask_w):
    return (loss.grad(A_w @ x, b_w) * mask_w) @ A_w


@functools.lru_cache(maxsize=None)
def make_step(loss, accelerated: bool, n_workers: int, asynchronous: bool, max_delay: int, min_arrivals: int):
    """The pure parallel step (cached per configuration so repeated calls do not recompile)."""
    S, R = par.SHARDED, par.REPLICATED

    def finish(state, problem, grad_sum):
        s, y = state.step, state.y
        x_new = problem.g.prox(y - s * (grad_sum / problem.n + problem.l2 * y), s)
        if accelerated:
            t_new = (1 + jnp.sqrt(1 + 4 * state.t**2)) / 2
            y_new = x_new + ((state.t - 1) / t_new) * (x_new - state.x)
        else:
            t_new, y_new = state.t, x_new
        rel = jnp.linalg.norm(x_new - state.x) / jnp.maximum(jnp.linalg.norm(x_new), jnp.finfo(x_new.dtype).tiny)
        return x_new, y_new, t_new, rel

    if not asynchronous:
        def worker(y, A_w, b_w, mask_w):
            return lax.psum(_local_grad(loss, y, A_w, b_w, mask_w), par.AXIS)

        gradient = par.spmd(worker, n_workers, (R, S, S, S), R)

        def step(state, problem):
            x_new, y_new, t_new, rel = finish(state, problem, gradient(state.y, problem.A, problem.b, problem.mask))
            clock = state.clock + jnp.max(problem.tau)
            new = state._replace(x=x_new, y=y_new, t=t_new, clock=clock)
            return new, {"rel_change": rel, "sim_time": clock, "arrived": jnp.asarray(n_workers, jnp.int32)}

        return step

    def worker(x_read_w, table_w, arrived, A_w, b_w, mask_w):
        me = lax.axis_index(par.AXIS)
        fresh = _local_grad(loss, x_read_w[0], A_w, b_w, mask_w)
        table_w = jnp.where(arrived[me], fresh, table_w[0])[None]
        return table_w, lax.psum(table_w[0], par.AXIS)

    deliver = par.spmd(worker, n_workers, (S, S, R, S, S, S), (S, R))

    def step(state, problem):
        arrived, clock, ready, age = par.async_round(state.ready, state.age, state.clock, problem.tau,
                                                     max_delay, min_arrivals)
        table, grad_sum = deliver(state.x_read, state.table, arrived, problem.A, problem.b, problem.mask)
        x_new, y_new, t_new, rel = finish(state, problem, grad_sum)
        x_read = jnp.where(arrived[:, None], y_new[None, :], state.x_read)
        new = ParallelState(x_new, y_new, t_new, state.step, x_read, table, ready, age, clock)
        return new, {"rel_change": rel, "sim_time": clock, "arrived": jnp.sum(arrived).astype(jnp.int32)}

    return step


@functools.lru_cache(maxsize=None)
def metrics(loss, n_workers: int) -> dict:
    """``{"objective", "gap"}`` metric functions evaluated on the sharded data (cached, so hashable)."""
    S, R = par.SHARDED, par.REPLICATED

    def worker(x, A_w, b_w, mask_w):
        return lax.psum(jnp.sum(loss.value(A_w @ x, b_w) * mask_w), par.AXIS)

    data_sum = par.spmd(worker, n_workers, (R, S, S, S), R)

    def objective(state, problem):
        x = state.x
        return (data_sum(x, problem.A, problem.b, problem.mask) / problem.n
                + 0.5 * problem.l2 * jnp.vdot(x, x) + problem.g.value(x))

    def gap(state, problem):
        return objective(state, problem) - problem.f_star

    return {"objective": objective, "gap": gap}


def build(f, g, x0, step, parallel, f_star, accelerated: bool):
    """Shard ``f``'s data over ``parallel.n_workers``; returns ``(step_fn, state, problem, metrics)``."""
    if not isinstance(f, losses.EmpiricalRisk):
        raise TypeError("parallel= needs f to be an optlab.losses.empirical_risk (or least_squares_objective / "
                        "logistic_objective ...): the executor shards its rows A and labels y over workers")
    A = f.A
    if not isinstance(A, jax.Array):
        raise TypeError("parallel= supports dense A for now; pass A.toarray() (or use the serial solver for "
                        "sparse data)")
    if A.ndim != 2 or x0.ndim != 1:
        raise ValueError("parallel= supports vector iterates x (A of shape (n, d)); softmax-type x of shape "
                         "(d, C) is not supported yet")
    W = parallel.n_workers
    A_pad, b_pad, mask = par.shard_rows(W, A, jnp.asarray(f.y, A.dtype))
    dtype = x0.dtype
    # a worker's gradient costs its shard's share of one full gradient: τ_w = speed_w · rows_w / n
    tau = jnp.asarray(par.worker_times(parallel) * (A_pad.shape[0] // W) / A.shape[0], dtype)
    problem = ParallelProblem(A=A_pad.astype(dtype), b=b_pad.astype(dtype), mask=mask.astype(dtype),
                              n=jnp.asarray(A.shape[0], dtype), l2=jnp.asarray(f.l2, dtype), g=g, tau=tau,
                              f_star=jnp.asarray(np.nan if f_star is None else f_star, dtype))
    asynchronous = isinstance(parallel, par.Async)
    state = ParallelState(
        x=x0, y=x0, t=jnp.ones((), dtype), step=jnp.asarray(step, dtype),
        x_read=jnp.tile(x0[None, :], (W, 1)), table=jnp.zeros((W, x0.shape[0]), dtype),
        ready=tau, age=jnp.full((W,), int(parallel.max_delay), jnp.int32), clock=jnp.zeros((), dtype))
    # per-worker rows sharded, the rest replicated (as the compiled step returns them: no second compile)
    S, R = par.SHARDED, par.REPLICATED
    state = par.place(state, ParallelState(R, R, R, R, S, S, R, R, R), W)
    step_fn = make_step(f.loss, bool(accelerated), W, asynchronous, int(parallel.max_delay),
                        int(parallel.min_arrivals))
    return step_fn, state, problem, metrics(f.loss, W)
