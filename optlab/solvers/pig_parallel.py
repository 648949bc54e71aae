r"""Multi-block proximal inertial gradient over workers: ``ol.pig_blocks(f, gs, x0s, parallel=Sync(n) | Async(n, ...))``.

Problem: :math:`\min_x \frac1n\sum_j \ell(a_j^\top x, y_j) + \frac{\lambda_2}{2}\|x\|^2 + \sum_{i=1}^s g_i(x^i)` with
the coefficient vector cut into 1-D blocks :math:`x = (x^1,\dots,x^s)` (an :func:`optlab.losses.empirical_risk`, e.g.
a Lasso split into column blocks). The blocks are spread over the workers in contiguous groups
(``np.array_split`` of the block indices); worker ``w`` holds its blocks :math:`x^{(w)}` and the matching columns
:math:`A_{(w)}` of the data (a column split: the data move with the blocks). The residual is formed by one
collective per iteration, :math:`z = Ax = \sum_w A_{(w)} x^{(w)}` (``psum``), and every worker updates its own blocks

.. math:: x^i_{k+1} = \operatorname{prox}_{\gamma_i g_i}\bigl(x^i_k - \gamma_i\nabla_i f(\hat x_k)
          + \beta_i (x^i_k - x^i_{\text{prev}})\bigr),
   \qquad \nabla_i f(\hat x) = \tfrac1n A_i^\top\ell'(\hat z, y) + \lambda_2 x^i_k .

**Sync (Jacobi).** :math:`\hat x_k = x_k`: every block is updated from the same iterate. This is *not* the
Gauss–Seidel sweep of the serial :func:`optlab.pig_blocks` (which uses the newest blocks); it is the one-block PIG
iteration with a block-diagonal step, so its answer does not depend on how many workers share the blocks. Step
condition: the Jacobi update moves all blocks at once, so the descent lemma must be applied with the Lipschitz
constant :math:`L` of the *whole* gradient, not the block constants :math:`L_i` (two identical columns have
:math:`L = 2L_i`, and Jacobi with :math:`\gamma = 1/L_i` then oscillates). iPiano's argument (Ochs, Chen, Brox &
Pock, SIAM J. Imaging Sci. 2014, Lemma 4.1/Thm 4.8; the condition of :func:`optlab.pig`) applied block by block —
the descent-lemma term :math:`\frac L2\|d\|^2 = \sum_i\frac L2\|d^i\|^2` splits over blocks — gives

.. math:: 0 < \gamma_i < 2(1-\beta_i)/L ,

and the default is half of it, :math:`\gamma_i = (1-\beta_i)/L` (for ``Sync`` with equal β this *is* PIG with
step :math:`(1-\beta)/L`). Richtárik & Takáč (Math. Prog. 2016, "Parallel coordinate descent methods for big data
optimization") quantify the same effect: updating :math:`\tau` blocks in parallel needs the step of the
"expected separable over-approximation", :math:`1/(\omega L_i)` for full parallelism with partial separability
:math:`\omega`; :math:`1/L \ge 1/(\omega\max_i L_i)` is the tighter constant we can compute.

**Async (bounded staleness).** Emulated with the model of :mod:`optlab.parallel`: a worker that delivers at server
iteration ``k`` writes its blocks, computed from the residual :math:`\hat z = A x_{k-d}` it read when it started,
:math:`0 \le d \le \tau` (``max_delay``); the other blocks stay. A worker is the only writer of its blocks, so its
own :math:`x^i_k` and :math:`x^i_{\text{prev}}` are always current: only the cross-block part of the gradient is
stale. Step **[ours, derived]**: with :math:`\|\nabla f(x_k) - \nabla f(\hat x)\| \le L\sum_{j=k-\tau}^{k-1}\|x_{j+1}-x_j\|`,
Young's inequality and the Lyapunov function
:math:`F(x_k) + \frac L2\sum_{j=k-\tau}^{k-1}(j-k+\tau+1)\|x_{j+1}-x_j\|^2` (plus iPiano's inertial term), the
standard bounded-delay argument (Sun, Hannah & Yin, "Asynchronous coordinate descent under more realistic
assumptions", NeurIPS 2017 — deterministic block choices and bounded delays, as here; Peng, Xu, Yan & Yin, ARock,
SIAM J. Sci. Comput. 2016, for the random-block version) gives the sufficient condition

.. math:: 0 < \gamma_i < \frac{2(1-\beta_i)}{L(1+2\tau)} ,

and the default is half of it, :math:`(1-\beta_i)/(L(1+2\tau))`. With :math:`\tau = 0` both are the Jacobi ones,
and ``Async(max_delay=0)`` runs exactly the ``Sync`` iterates (everyone is waited for).

Stop test and ``step_norm``: :math:`\sqrt{\sum_w \|\Delta_w\|^2}`, :math:`\Delta_w` the change of worker ``w``'s
blocks at its *last delivery* (for ``Sync`` the change of the whole vector): a round in which only workers whose
blocks sit at zero deliver would otherwise stop the run at ``tol`` (seen: a 19% gap reported as converged).

Simulated clock (``sim_time``): worker ``w`` needs :math:`\tau_w = \text{speed}_w\cdot d_w/d` per update
(:math:`d_w` its columns; :func:`optlab.parallel.worker_times` for the speed model).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import losses, parallel as par

__all__ = ["BlocksParallelState", "BlocksParallelProblem", "layout", "make_step", "build"]


class BlocksParallelState(NamedTuple):
    x: jax.Array          # (W, D) each worker's blocks, concatenated and zero-padded to D columns
    x_prev: jax.Array     # (W, D) each block before its previous update
    z_read: jax.Array     # (W, n) the residual A x̂ each worker computes its update from
    z: jax.Array          # (n,) the current residual A x_k
    last_sq: jax.Array    # (W,) squared change of each worker's blocks at its last delivery (the stop test)
    ready: jax.Array      # (W,) simulated time each worker's computation finishes
    age: jax.Array        # (W,) server iterations since each worker last delivered
    clock: jax.Array      # simulated time of the last server iteration


class BlocksParallelProblem(NamedTuple):
    A: jax.Array          # (W, n, D) column blocks of each worker (zero columns for padding)
    y: jax.Array          # (n,) labels / targets (replicated)
    n: jax.Array
    l2: jax.Array
    gs: tuple             # penalties, one per block
    steps: tuple          # γ_i, one per block
    step_vec: jax.Array   # (W, D) γ per coordinate (0 on padding)
    beta_vec: jax.Array   # (W, D) β per coordinate (0 on padding)
    tau: jax.Array        # (W,) simulated seconds per update
    max_delay: jax.Array  # int32 (traced: Async runs with different delays share one compiled step)
    min_arrivals: jax.Array
    f_star: jax.Array


def layout(sizes, n_workers: int):
    """Blocks → workers: contiguous groups of block indices (``np.array_split``). Returns ``(owner, offset, width)``
    with ``owner[i]``/``offset[i]`` the worker of block ``i`` and its first local column, and ``width`` the padded
    number of columns every worker holds (the largest group)."""
    s = len(sizes)
    if n_workers > s:
        raise ValueError(f"pig_blocks: parallel has n_workers={n_workers} but there are only {s} blocks; each "
                         f"worker needs at least one block: use n_workers <= {s} or split x0s into more blocks")
    owner, offset, widths = [], [], []
    for w, group in enumerate(np.array_split(np.arange(s), n_workers)):
        off = 0
        for i in group:
            owner.append(w)
            offset.append(off)
            off += int(sizes[i])
        widths.append(off)
    return tuple(owner), tuple(offset), max(widths), tuple(widths)


@functools.lru_cache(maxsize=None)
def make_step(loss, blocks: tuple, n_workers: int, asynchronous: bool):
    """The pure parallel step; ``blocks`` = ((owner, offset, size), ...) (static, so the step is cached)."""
    S, R = par.SHARDED, par.REPLICATED

    def branch(w):
        mine = [(i, off, size) for i, (o, off, size) in enumerate(blocks) if o == w]

        def apply(v, gs, steps):
            for i, off, size in mine:
                v = v.at[off:off + size].set(gs[i].prox(v[off:off + size], steps[i]))
            return v
        return apply

    branches = [branch(w) for w in range(n_workers)]

    def worker(x_w, xp_w, zr_w, sv_w, bv_w, arrived, A_w, y, n, l2, gs, steps):
        me = lax.axis_index(par.AXIS)
        x_w, xp_w, zr_w, A_w = x_w[0], xp_w[0], zr_w[0], A_w[0]
        grad = loss.grad(zr_w, y) @ A_w / n + l2 * x_w        # r @ A: no transposed copy (operators.rmatvec)
        v = x_w - sv_w[0] * grad + bv_w[0] * (x_w - xp_w)
        new = lax.switch(me, branches, v, gs, steps)
        mine = arrived[me]
        x_new = jnp.where(mine, new, x_w)
        xp_new = jnp.where(mine, x_w, xp_w)
        z = lax.psum(A_w @ x_new, par.AXIS)
        zr_new = jnp.where(mine, z, zr_w)
        sq = jnp.sum(jnp.square(x_new - x_w))[None]
        nrm = lax.psum(jnp.sum(jnp.square(x_new)), par.AXIS)
        return x_new[None], xp_new[None], zr_new[None], z, sq, nrm

    update = par.spmd(worker, n_workers, (S, S, S, S, S, R, S, R, R, R, R, R), (S, S, S, R, S, R))

    def step(state: BlocksParallelState, p: BlocksParallelProblem):
        arrived, clock, ready, age = par.server_round(asynchronous, state, p.tau, p.max_delay, p.min_arrivals)
        x, xp, zr, z, sq, nrm = update(state.x, state.x_prev, state.z_read, p.step_vec, p.beta_vec, arrived, p.A,
                                       p.y, p.n, p.l2, p.gs, p.steps)
        # the stop test uses each worker's *last delivered* change: a round in which only workers whose blocks
        # sit at zero deliver would otherwise look converged (the same trap as random block draws)
        last_sq = jnp.where(arrived, sq, state.last_sq)
        change = jnp.sqrt(jnp.sum(last_sq))
        rel = change / jnp.maximum(jnp.sqrt(nrm), jnp.finfo(x.dtype).tiny)
        new = BlocksParallelState(x, xp, zr, z, last_sq, ready, age, clock)
        return new, {"step_norm": change, "rel_change": rel, "sim_time": clock,
                     "arrived": jnp.sum(arrived).astype(jnp.int32)}

    step.__name__ = f"pig_blocks_{'async' if asynchronous else 'sync'}{n_workers}_step"
    return step


def _blocks_of(x, blocks):
    return [x[o, off:off + size] for o, off, size in blocks]


@functools.lru_cache(maxsize=None)
def metrics(loss, blocks: tuple) -> dict:
    def objective(state, p):
        data = jnp.sum(loss.value(state.z, p.y)) / p.n + 0.5 * p.l2 * jnp.vdot(state.x, state.x)
        return data + sum(g.value(xi) for g, xi in zip(p.gs, _blocks_of(state.x, blocks)))

    def gap(state, p):
        return objective(state, p) - p.f_star

    return {"objective": objective, "gap": gap}


def build(f, gs, x0s, *, step, beta, parallel, f_star, allow_unsafe_step, check_step):
    """Lay the blocks out over ``parallel.n_workers``; returns ``(step_fn, state, problem, metrics, params, meta)``.

    ``check_step(step_i, beta_i, bound_L, allow_unsafe_step, where)`` is :func:`optlab.solvers.pig._check_step`
    (passed in to keep one definition); it is called with ``L(1+2τ)`` as the Lipschitz constant.
    """
    if not isinstance(f, losses.EmpiricalRisk):
        raise TypeError("pig_blocks(parallel=...) needs f to be an optlab.losses.empirical_risk (e.g. "
                        "least_squares_objective(A, b)) on the concatenated 1-D blocks: the workers hold column "
                        "blocks of its A")
    if not isinstance(f.A, jax.Array) or f.A.ndim != 2:
        raise TypeError("pig_blocks(parallel=...) supports a dense 2-d A for now; pass A.toarray() or run serially")
    if f.loss.smoothness is None:
        raise ValueError(f"pig_blocks: the {f.loss.name} loss is not smooth; parallel= needs a smooth loss")
    if any(x.ndim != 1 for x in x0s):
        raise ValueError("pig_blocks(parallel=...): every block must be 1-D (a slice of the coefficient vector)")
    sizes = [int(x.shape[0]) for x in x0s]
    d = f.A.shape[1]
    if sum(sizes) != d:
        raise ValueError(f"the blocks' sizes {sizes} sum to {sum(sizes)}, but f has {d} features")
    if any(v == 0 for v in sizes):
        raise ValueError(f"pig_blocks(parallel=...): empty block(s) in sizes {sizes}; drop them")
    W, s = parallel.n_workers, len(x0s)
    owner, offset, D, widths = layout(sizes, W)
    blocks = tuple(zip(owner, offset, sizes))
    dt = x0s[0].dtype
    tau_delay = int(parallel.max_delay)

    betas = [float(b) for b in np.broadcast_to(np.asarray(beta, float), (s,))]
    L = float(f.lipschitz())                      # the full constant: Jacobi moves every block at once
    L_eff = L * (1 + 2 * tau_delay)
    steps = ([(1 - b) / L_eff for b in betas] if step is None
             else [float(v) for v in np.broadcast_to(np.asarray(step, float), (s,))])
    for i in range(s):
        check_step(steps[i], betas[i], L_eff, allow_unsafe_step, f"step[{i}] (parallel: bound 2(1-β)/(L(1+2·max_delay)))")

    cols = np.cumsum([0] + sizes)
    A = np.zeros((W, f.A.shape[0], D), dtype=dt)
    x = np.zeros((W, D), dtype=dt)
    sv, bv = np.zeros((W, D), dtype=dt), np.zeros((W, D), dtype=dt)
    A_host = np.asarray(f.A, dtype=dt)
    for i, (o, off, size) in enumerate(blocks):
        A[o, :, off:off + size] = A_host[:, cols[i]:cols[i + 1]]
        x[o, off:off + size] = np.asarray(x0s[i])
        sv[o, off:off + size], bv[o, off:off + size] = steps[i], betas[i]
    A, x = jnp.asarray(A), jnp.asarray(x)
    y = jnp.asarray(f.y, dt)
    z0 = jnp.asarray(A_host @ np.concatenate([np.asarray(v) for v in x0s]), dt)
    tau = jnp.asarray(par.worker_times(parallel) * np.asarray(widths) / d, dt)
    problem = BlocksParallelProblem(A=A, y=y, n=jnp.asarray(f.n, dt), l2=jnp.asarray(f.l2, dt), gs=tuple(gs),
                                    steps=tuple(jnp.asarray(v, dt) for v in steps), step_vec=jnp.asarray(sv),
                                    beta_vec=jnp.asarray(bv), tau=tau, max_delay=jnp.asarray(tau_delay, jnp.int32),
                                    min_arrivals=jnp.asarray(int(parallel.min_arrivals), jnp.int32),
                                    f_star=jnp.asarray(np.nan if f_star is None else f_star, dt))
    state = BlocksParallelState(x=x, x_prev=x, z_read=jnp.tile(z0[None], (W, 1)), z=z0,
                                last_sq=jnp.full((W,), jnp.inf, dt), ready=tau,
                                age=jnp.full((W,), tau_delay, jnp.int32), clock=jnp.zeros((), dt))
    # on the mesh as the step's outputs are, so the harness's chunk is not compiled a second time
    S, R = par.SHARDED, par.REPLICATED
    state = par.place(state, BlocksParallelState(S, S, S, R, S, R, R, R), W)
    asynchronous = isinstance(parallel, par.Async)
    step_fn = make_step(f.loss, blocks, W, asynchronous)
    meta = {"solver": "pig_blocks", "parallel": repr(parallel), "order": "jacobi" if not asynchronous else "async",
            "steps": steps, "betas": betas, "lipschitz": L, "owner": list(owner), "dtype": str(dt)}
    return step_fn, state, problem, metrics(f.loss, blocks), (lambda st: _blocks_of(st.x, blocks)), meta
