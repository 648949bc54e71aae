r"""Data-parallel ADMMiRNN (SP/AP-ADMMiRNN): ``ol.admm_irnn(X, y, ..., parallel=Sync(n) | Async(n, max_delay, ...))``.

The samples are split over the workers in contiguous row blocks (:func:`optlab.parallel.shard_rows`; when ``n`` is
not a multiple of the number of workers the last shard is padded with zero rows that carry weight 0 in every sum,
so the problem is exactly the serial one). Worker ``w`` holds its rows :math:`X^{(w)}_t, y^{(w)}` and their
auxiliaries and multipliers :math:`A_t, S_t, O_t, \Lambda^1_t, \Lambda^2_t, \Lambda^3_t` (the state arrays are the
serial ones, ``(T, n_padded, ·)``, sharded along the sample axis); the weights :math:`(U, W, b)` and :math:`(V, c)`
are replicated.

Every block of the serial sweep (:mod:`.admm_irnn`) is either *row-separable* — the :math:`O` prox steps, the
:math:`S_t`/:math:`A_t` Gauss–Seidel-over-time (or Jacobi) updates, the multiplier update and the re-projection onto
the forward pass act on each sample alone, given the weights — and runs unchanged on each worker's rows, or a
*least-squares problem over all samples*, whose normal equations are sums over workers:

.. math:: \Bigl(\rho\sum_w Z_w^\top M_w Z_w + \varepsilon I\Bigr)\theta
          = \rho\sum_w Z_w^\top M_w Y_w + \varepsilon\theta_k,

:math:`Z_w = [S^{(w)}_t\;\mathbf 1]` stacked over the output steps for :math:`(V, c)` (target :math:`O + \Lambda^3
/\rho_3`), :math:`Z_w = [X^{(w)}_t\; S^{(w)}_{t-1}\;\mathbf 1]` stacked over all steps for :math:`(U, W, b)` (target
:math:`A + \Lambda^1/\rho_1`), :math:`M_w` the padding mask. Each worker forms its Gram matrix and right-hand side,
one ``psum`` per weight solve (three per iteration: :math:`(V, c)` in the backward sweep, :math:`(U, W, b)`,
:math:`(V, c)` in the forward sweep), and every worker solves the same small system. The residual sums and the
forward-pass / auxiliary losses of the adaptive penalty schedule are ``psum``-ed the same way.

**Sync**: the serial iterates up to the order of the floating-point sums (tested to 1e-6 in float64 against
:func:`optlab.admm_irnn`, same seed and options).

**Async** (bounded staleness, the model of :mod:`optlab.parallel`) **[ours]**: at a server iteration only the
workers whose (simulated) computation has finished take part. An arrived worker runs its row-separable blocks with
the current weights and delivers fresh Gram/right-hand-side terms; an absent worker keeps its local variables and
its *last delivered* terms enter each of the three sums (never older than ``max_delay`` iterations: a worker that
would be is waited for), and so do its last delivered loss and residual sums in the adaptive schedule. This is the
stale-synchronous-parallel parameter server (Ho et al., "More effective distributed ML via a stale synchronous
parallel parameter server", NIPS 2013) applied to ADMM's global least-squares blocks, in the spirit of asynchronous
distributed ADMM (Zhang & Kwok, "Asynchronous distributed ADMM for consensus optimization", ICML 2014, who keep
the absent workers' last contributions in the consensus update); for this nonconvex problem it carries no
convergence guarantee — the test suite checks that ``Async(4, max_delay=3)`` reaches the synchronous test accuracy
within one point on a small sequence-classification problem. With ``max_delay=0`` everyone arrives every time and
the iterates are exactly ``Sync``'s (the same compiled worker code with every worker marked arrived).

Simulated clock (``sim_time``): worker ``w`` needs :math:`\tau_w = \text{speed}_w\cdot n_w/n` per iteration (one
sweep over its rows), so one time unit is one serial sweep on a speed-1 worker.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec

from .. import parallel as par
from . import admm_irnn as ad

__all__ = ["AdmmIrnnParallelState", "AdmmIrnnParallelProblem", "make_step", "build"]

_AUX = ("A", "S", "O", "L1", "L2", "L3")   # the per-sample (row-sharded) fields of the serial state


class AdmmIrnnParallelState(NamedTuple):
    U: jax.Array    # weights: replicated
    W: jax.Array
    b: jax.Array
    V: jax.Array
    c: jax.Array
    A: jax.Array    # (T, n_padded, h): the serial auxiliaries and multipliers, samples sharded over the workers
    S: jax.Array
    O: jax.Array
    L1: jax.Array
    L2: jax.Array
    L3: jax.Array
    rho: jax.Array
    k: jax.Array
    f_prev: jax.Array
    table: dict     # per worker (leading axis n_workers): the last delivered Gram/RHS terms and loss/residual sums
    ready: jax.Array  # (n_workers,) simulated time each worker's sweep finishes
    age: jax.Array    # (n_workers,) server iterations since each worker last delivered
    clock: jax.Array  # simulated time of the last server iteration


class AdmmIrnnParallelProblem(NamedTuple):
    base: ad.AdmmIrnnProblem   # the serial problem (full, unpadded data: the trace's metrics)
    X: jax.Array               # (T, n_padded, d) time-major inputs, zero-padded rows
    Y: jax.Array               # (To, n_padded) labels
    mask: jax.Array            # (n_padded,) 1 for real rows
    n: jax.Array               # number of real rows
    tau: jax.Array             # (n_workers,) simulated seconds per sweep
    max_delay: jax.Array       # int32 (traced: Async runs with different delays share one compiled step)
    min_arrivals: jax.Array    # int32


def _serial(state, n=None) -> ad.AdmmIrnnState:
    """The serial state (the first ``n`` rows of the auxiliaries when ``n`` is given: padding dropped)."""
    fields = {f: getattr(state, f) for f in ad.AdmmIrnnState._fields}
    if n is not None:
        fields.update({f: fields[f][:, :n] for f in _AUX})
    return ad.AdmmIrnnState(**fields)


def _normal(Z, target, w):
    """Zᵀ diag(w) Z and Zᵀ diag(w) target (one worker's share of the normal equations)."""
    Zw = Z * w[:, None]
    return jnp.einsum("ki,kj->ij", Zw, Z), jnp.einsum("ki,kj->ij", Zw, target)


def _ones(rows, like):
    return jnp.ones((rows, 1), like.dtype)


def _solve_vc(st, prob, mask, total, key):
    """(V, c) from the summed normal equations (the serial :func:`admm_irnn.update_vc`)."""
    To, m, C = st.O.shape
    h = st.V.shape[0]
    r3 = st.rho[2]
    S = st.S[-To:].reshape(-1, h)
    G, R = total(key, _normal(jnp.concatenate([S, _ones(S.shape[0], S)], 1), (st.O + st.L3 / r3).reshape(-1, C),
                              jnp.tile(mask, To)))
    theta = ad._ls_gram(G, R, jnp.concatenate([st.V, st.c[None]], 0), r3, prob.ls_prox)
    return st._replace(V=theta[:h], c=theta[h])


def _solve_uwb(st, prob, mask, total):
    """(U, W, b) from the summed normal equations (the serial :func:`admm_irnn.update_uwb`)."""
    T, m, h = st.A.shape
    d = prob.X.shape[2]
    r1 = st.rho[0]
    X = prob.X.reshape(-1, d)
    Z = jnp.concatenate([X, ad._shift(st.S).reshape(-1, h), _ones(X.shape[0], X)], 1)
    G, R = total("uwb", _normal(Z, (st.A + st.L1 / r1).reshape(-1, h), jnp.tile(mask, T)))
    theta = ad._ls_gram(G, R, jnp.concatenate([st.U, st.W, st.b[None]], 0), r1, prob.ls_prox)
    return st._replace(U=theta[:d], W=theta[d:d + h], b=theta[d + h])


def _lift(tree):
    return jax.tree.map(lambda x: x[None], tree)


@functools.lru_cache(maxsize=None)
def make_step(cfg: tuple, n_workers: int, asynchronous: bool):
    """The pure parallel step for the static serial configuration ``cfg = (o_steps, a_steps, a_halvings, adaptive,
    sweep, reproject, estimate)`` of :func:`optlab.solvers.admm_irnn.make_step` (cached)."""
    o_steps, a_steps, a_halvings, adaptive, sweep, reproject, estimate = cfg
    S, R, SR = par.SHARDED, par.REPLICATED, PartitionSpec(None, par.AXIS)
    state_spec = ad.AdmmIrnnState(*(SR if f in _AUX else R for f in ad.AdmmIrnnState._fields))

    def worker(st, table, arrived, X, Y, mask, consts):
        mine = arrived[lax.axis_index(par.AXIS)]
        table = jax.tree.map(lambda x: x[0], table)
        prob = ad.AdmmIrnnProblem(X, Y, None, None, *consts)
        old = st
        delivered = {}

        def total(key, fresh):   # fresh terms of an arrived worker, the last delivered ones of an absent one
            g = jax.tree.map(lambda f, o: jnp.where(mine, f, o), fresh, table[key])
            delivered[key] = g
            return jax.tree.map(lambda x: lax.psum(x, par.AXIS), g)

        # the serial iteration (admm_irnn.make_step) with the least-squares blocks summed over workers
        st = ad.update_o(st, prob, o_steps)
        st = _solve_vc(st, prob, mask, total, "vc_backward")
        if sweep == "sequential":
            st = ad.update_as_backward(st, prob, a_steps, a_halvings)
        else:
            st = ad.update_a(ad.update_s(st, prob), prob, a_steps, a_halvings)
        st = _solve_uwb(st, prob, mask, total)
        if sweep == "sequential":
            st = ad.update_as_forward(st, prob, a_steps, a_halvings)
        else:
            st = ad.update_s(ad.update_a(st, prob, a_steps, a_halvings), prob)
        st = _solve_vc(st, prob, mask, total, "vc_forward")
        st = ad.update_o(st, prob, o_steps)
        st, res = ad.update_multipliers(st, prob)
        if reproject:
            st = lax.cond((st.k + 1) % reproject == 0, functools.partial(ad._reproject, multipliers=estimate),
                          lambda s, p: s, st, prob)
        # residual sums (before the re-projection), forward-pass and auxiliary loss sums
        To = st.O.shape[0]
        sums = [jnp.vdot(r * mask[:, None], r) for r in res]
        sums += [jnp.sum(ad._CE.value(O, Y) * mask) for O in (ad._forward_scores(st, X, To), st.O)]
        stats = total("stats", jnp.stack(sums))
        # an absent worker keeps its rows' variables
        st = st._replace(**{f: jnp.where(mine, getattr(st, f), getattr(old, f)) for f in _AUX})
        return st, _lift(delivered), stats

    update = par.spmd(worker, n_workers, (state_spec, S, R, SR, SR, S, R), (state_spec, S, R))

    def step(state: AdmmIrnnParallelState, p: AdmmIrnnParallelProblem):
        arrived, clock, ready, age = par.server_round(asynchronous, state, p.tau, p.max_delay, p.min_arrivals)
        b = p.base
        st = start = _serial(state)
        theta_old = jnp.concatenate([x.reshape(-1) for x in ad._params(st).values()])
        st, table, stats = update(st, state.table, arrived, p.X, p.Y, p.mask,
                                  (b.rho_growth, b.rho_max, b.gap_tol, b.ls_prox))
        theta = jnp.concatenate([x.reshape(-1) for x in ad._params(st).values()])
        n = p.n
        info = {"r1": jnp.sqrt(stats[0] / n), "r2": jnp.sqrt(stats[1] / n), "r3": jnp.sqrt(stats[2] / n),
                "rel_change": jnp.linalg.norm(theta - theta_old) / jnp.maximum(jnp.linalg.norm(theta),
                                                                             jnp.finfo(theta.dtype).tiny),
                "rho1": st.rho[0], "rho3": st.rho[2], "residual": jnp.sqrt((stats[0] + stats[1] + stats[2]) / n)}
        # the serial penalty schedule, with the loss sums over workers
        To = st.O.shape[0]
        f, aux = (stats[3] / (To * n), stats[4] / (To * n)) if adaptive else (None, None)
        rho, f, reject = ad.penalty_schedule(start, f, aux, b, adaptive, bool(reproject), info)
        if reject is not None:   # state and delivered terms back to the round's start
            keep = lambda old, new: jnp.where(reject, old, new)  # noqa: E731
            st, table = jax.tree.map(keep, start, st), jax.tree.map(keep, state.table, table)
        st = st._replace(rho=rho, k=start.k + 1, f_prev=f)
        info.update(sim_time=clock, arrived=jnp.sum(arrived).astype(jnp.int32))
        return AdmmIrnnParallelState(*st, table=table, ready=ready, age=age, clock=clock), info

    step.__name__ = f"admm_irnn_{'async' if asynchronous else 'sync'}{n_workers}_step"
    return step


@functools.lru_cache(maxsize=None)
def _wrap(fn, n):
    """The serial metric ``fn`` on the unpadded state and the serial problem (cached: one compiled chunk per shape)."""
    return lambda state, p: fn(_serial(state, n), p.base)


def build(cfg: tuple, problem: ad.AdmmIrnnProblem, state: ad.AdmmIrnnState, metrics: dict, parallel):
    """Shard the serial ``(problem, state)`` of :func:`optlab.admm_irnn` over ``parallel.n_workers``; ``metrics``
    are serial ``(state, problem)`` functions (they see the unpadded serial state and problem). Returns
    ``(step_fn, state, problem, metrics)``."""
    Wk = parallel.n_workers
    T, n, d = problem.X.shape
    if n < Wk:
        raise ValueError(f"admm_irnn(parallel=...): {n} samples cannot be split over n_workers={Wk}; "
                         f"use at most {n} workers")
    # shard_rows pads the leading axis: the sample axis goes first and back
    rows = [jnp.swapaxes(problem.X, 0, 1), problem.Y.T] + [jnp.swapaxes(getattr(state, f), 0, 1) for f in _AUX]
    *padded, mask = par.shard_rows(Wk, *rows)
    Xp, Yp, *aux = [jnp.swapaxes(a, 0, 1) for a in padded]
    m = Xp.shape[1] // Wk
    dt = problem.X.dtype
    rows_w = np.clip(n - m * np.arange(Wk), 0, m)
    tau = jnp.asarray(par.worker_times(parallel) * rows_w / n, dt)
    h, C, dd = state.W.shape[0], state.V.shape[1], d + state.W.shape[0] + 1

    def zeros(*shape):
        return jnp.zeros((Wk,) + shape, dt)

    table = {"vc_backward": (zeros(h + 1, h + 1), zeros(h + 1, C)), "uwb": (zeros(dd, dd), zeros(dd, h)),
             "vc_forward": (zeros(h + 1, h + 1), zeros(h + 1, C)), "stats": zeros(5)}
    pproblem = AdmmIrnnParallelProblem(base=problem, X=Xp, Y=Yp, mask=mask.astype(dt), n=jnp.asarray(n, dt), tau=tau,
                                       max_delay=jnp.asarray(int(parallel.max_delay), jnp.int32),
                                       min_arrivals=jnp.asarray(int(parallel.min_arrivals), jnp.int32))
    fields = state._asdict()
    fields.update(zip(_AUX, aux))
    pstate = AdmmIrnnParallelState(**fields, table=table, ready=tau,
                                   age=jnp.full((Wk,), int(parallel.max_delay), jnp.int32), clock=jnp.zeros((), dt))
    # on the mesh as the step's outputs are, so the harness's chunk is not compiled a second time
    S, R, SR = par.SHARDED, par.REPLICATED, PartitionSpec(None, par.AXIS)
    specs = AdmmIrnnParallelState(*(SR if f in _AUX else R for f in ad.AdmmIrnnState._fields), table=S, ready=R,
                                  age=R, clock=R)
    pstate = par.place(pstate, specs, Wk)
    step = make_step(tuple(cfg), Wk, isinstance(parallel, par.Async))
    return step, pstate, pproblem, {name: _wrap(fn, n) for name, fn in metrics.items()}
