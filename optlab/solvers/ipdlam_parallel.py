r"""Data-parallel iPDLAM: ``ol.ipdlam(X, y, ..., parallel=Sync(n) | Async(n, max_delay, ...))`` (full batch).

The samples are split over the workers in contiguous row blocks (:func:`optlab.parallel.shard_rows`: when ``n`` is
not a multiple of the number of workers the last shard is padded with zero rows that carry weight 0 in every term,
so the objective is exactly the serial one). Worker ``w`` holds its rows :math:`X_w, y_w` and their auxiliary
variables :math:`a_l^{(w)}` (and their previous values, for the inertia); the weights :math:`(W_l, b_l)` are
replicated. The penalty form of iPDLAM (:mod:`.ipdlam`) has no multipliers, so there are none to distribute.
Every term of

.. math:: \Phi_\rho = \frac1n\sum_w\Bigl[\sum_{i\in I_w}\ell\bigl((a_{L-1}W_L+b_L)_i, y_i\bigr)
          + \frac\rho2\sum_{l<L}\sum_{i\in I_w}\|(a_l - \sigma(a_{l-1}W_l + b_l))_i\|^2\Bigr] + \sum_l r_l(W_l)

is a sum over workers, so the serial Gauss–Seidel sweep runs unchanged with three collectives
(:class:`optlab.solvers.ipdlam.Rows` is the hook): the gradient of a weight block is
:math:`\sum_w G_w` (``psum``), every objective value in the backtracking test is :math:`\sum_w\Phi_w` (``psum``), and
the :math:`a_l` blocks are row-separable, so each worker updates its own rows (with the common constant :math:`c`
that the summed test accepts; its squared step is summed over workers too).

**Sync**: the serial iterates up to the order of the floating-point sums (tested to 1e-6 in float64).

**Async** (bounded staleness, the model of :mod:`optlab.parallel`) **[ours]**: at a server iteration only the workers
whose (simulated) computation has finished take part. The weight-block gradient is
:math:`G = \sum_{w\text{ arrived}} G_w + \sum_{w\text{ absent}} \hat G_w`, :math:`\hat G_w` the last contribution
worker ``w`` delivered (never older than ``max_delay`` iterations: a worker that would be is waited for), and the
absent workers' rows keep their :math:`a_l`. The sufficient-decrease test of a weight block cannot evaluate the
absent workers' terms at the trial point; it uses the model
:math:`\Phi(\hat B + s) \approx \Phi_{\text{arr}}(\hat B) + \langle G, s\rangle + \kappa + \max(\kappa, 0)(1/q - 1)`,
:math:`\kappa = \Phi_{\text{arr}}(\hat B + s) - \Phi_{\text{arr}}(\hat B) - \langle G_{\text{arr}}, s\rangle` the
curvature seen on the arrived rows and :math:`q` their share of the rows (the slope is the one the step used; only
upward curvature is extrapolated). Testing the arrived workers' data alone fails for every ``c`` when their gradient
is not aligned with the mixed sum, and the constants blew up (the first implementation: 2e15 after 10 sweeps).
The inertia is applied only in rounds where every worker delivered; partial rounds take plain proximal-linearised
steps (asynchrony itself acts like momentum: Mitliagkas, Zhang, Hadjis & Ré, "Asynchrony begets momentum",
Allerton 2016). Measured (150 sweeps, 6-16-3 ReLU net, β = 0.5, 3 data seeds × n ∈ {403, 404} × speeds straggler,
heterogeneous, uniform; ``max_delay=3``): async − sync test accuracy in [−3, +2.5] points, within one point in 11
of 18 runs. Full β in every round lost up to 50 points with heterogeneous speeds, and β scaled by the delivered share
up to 33.5 points (n = 403: uneven shards make "uniform" workers drift apart, rounds alternate one and three
arrivals). This is the
stale-synchronous-parallel model (Ho et al., "More effective distributed ML via a stale synchronous parallel
parameter server", NIPS 2013) applied to the block sweep; it carries no convergence guarantee for this nonconvex
problem — the test suite checks one configuration (404 samples, 4 workers, straggler and heterogeneous speeds).
With ``max_delay=0`` everyone arrives every time (:math:`q = 1`) and the iterates are exactly ``Sync``'s.

Simulated clock (``sim_time``): worker ``w`` needs :math:`\tau_w = \text{speed}_w\cdot n_w/n` per sweep.
Mini-batch mode (``batch_size``) is not available with ``parallel=``.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import parallel as par
from . import ipdlam as ip
from . import mlp

__all__ = ["IPDLAMParallelState", "IPDLAMParallelProblem", "make_step", "build"]


class IPDLAMParallelState(NamedTuple):
    net: ip.Net           # W, b replicated; A: per layer (n_workers, rows per worker, h_l), rows sharded
    prev: ip.Net          # previous weights; each worker's a_l before its last update
    c_W: jax.Array
    c_A: jax.Array
    rho: jax.Array
    k: jax.Array
    table: tuple          # per layer (G_W, g_b) of shape (n_workers, ...): the last delivered gradient parts
    ready: jax.Array      # (n_workers,) simulated time each worker's sweep finishes
    age: jax.Array        # (n_workers,) server iterations since each worker last delivered
    clock: jax.Array      # simulated time of the last server iteration


class IPDLAMParallelProblem(NamedTuple):
    base: ip.IPDLAMProblem   # the serial problem (full X, y, test set: train/test metrics)
    Xs: jax.Array            # (n_workers, m, d) row shards (zero-padded)
    ys: jax.Array            # (n_workers, m)
    mask: jax.Array          # (n_workers, m) 1 for real rows
    n: jax.Array             # number of real rows
    tau: jax.Array           # (n_workers,) simulated seconds per sweep
    max_delay: jax.Array     # int32 (traced: Async runs with different delays share one compiled step)
    min_arrivals: jax.Array  # int32


class _WorkerRows(ip.Rows):
    """The per-worker sums of the sweep: masked rows, the global ``n``, sums over the arrived workers."""

    def __init__(self, mask, n, mine, table):
        self.mask, self.n, self.mine, self.table, self.delivered, self.parts = mask, n, mine, table, {}, {}

    def loss(self, loss_name, z, target):
        return jnp.sum(mlp.row_loss(loss_name, z, target) * self.mask) / self.n

    def sq(self, rho, r):
        return rho / (2 * self.n) * jnp.vdot(r * self.mask[:, None], r)

    def value(self, v):
        return lax.psum(jnp.where(self.mine, v, jnp.zeros_like(v)), par.AXIS)

    def grad(self, i, g):
        g = jax.tree.map(lambda fresh, old: jnp.where(self.mine, fresh, old), g, self.table[i])
        self.delivered[i] = g
        total = jax.tree.map(lambda x: lax.psum(x, par.AXIS), g)
        fresh = jax.tree.map(lambda x: lax.psum(jnp.where(self.mine, x, jnp.zeros_like(x)), par.AXIS), g)
        share = lax.psum(jnp.where(self.mine, jnp.sum(self.mask), 0.0), par.AXIS) / self.n
        self.parts[i] = (total, fresh, share)
        return total

    def trial(self, i, v, step, v_hat):
        # Φ(B̂+s) ≈ Φ_arr(B̂) + <G, s> + (curvature seen on the arrived rows) / (their share of the rows):
        # the slope is the one the step used (fresh + stale parts), the curvature is extrapolated from the
        # arrived workers' data. All arrived: = Φ(B̂+s) up to rounding.
        total, fresh, share = self.parts[i]
        dot = lambda a, b: sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))  # noqa: E731
        curvature = self.value(v) - v_hat - dot(fresh, step)
        # only upward curvature is extrapolated (a downward one seen on a quarter of the data is no promise)
        return v_hat + dot(total, step) + curvature + jnp.maximum(curvature, 0.0) * (1 / share - 1)

    def keep(self, new, old):
        return jnp.where(self.mine, new, old)


def _strip(tree):
    return jax.tree.map(lambda x: x[0], tree)


def _lift(tree):
    return jax.tree.map(lambda x: x[None], tree)


def _solver_view(prob: ip.IPDLAMProblem) -> ip.IPDLAMProblem:
    """The serial problem without its data (the workers pass their own rows to the sweep)."""
    return prob._replace(X=None, y=None, X_test=None, y_test=None)


@functools.lru_cache(maxsize=None)
def make_step(cfg: ip.Config, n_workers: int, asynchronous: bool):
    """The pure parallel step (cached per configuration)."""
    S, R = par.SHARDED, par.REPLICATED

    def worker(W, b, A, prev_W, prev_b, prev_A, c_W, c_A, rho, beta, arrived, table, X, y, mask, n, prob):
        me = lax.axis_index(par.AXIS)
        A, prev_A, table, X, y, mask = _strip((A, prev_A, table, X, y, mask))
        rows = _WorkerRows(mask, n, arrived[me], table)
        net, c_W, c_A, rejected, _ = ip.sweep(cfg, prob, ip.Net(W, b, A), ip.Net(prev_W, prev_b, prev_A), c_W, c_A,
                                              rho, beta, X, y, rows=rows)
        new_prev_A = tuple(rows.keep(old, p) for old, p in zip(A, prev_A))
        new_table = tuple(rows.delivered[i] for i in range(cfg.n_layers))
        return net.W, net.b, _lift(net.A), _lift(new_prev_A), c_W, c_A, rejected, _lift(new_table)

    update = par.spmd(worker, n_workers, (R, R, S, R, R, S, R, R, R, R, R, S, S, S, S, R, R),
                      (R, R, S, S, R, R, R, S))

    def step(state: IPDLAMParallelState, p: IPDLAMParallelProblem):
        beta = ip._beta_k(cfg, p.base.beta, state.k)
        arrived, clock, ready, age = par.server_round(asynchronous, state, p.tau, p.max_delay, p.min_arrivals)
        if asynchronous:
            # inertia only in rounds where everyone delivered (always with max_delay=0: exactly Sync's β)
            beta = jnp.where(jnp.all(arrived), beta, 0.0).astype(beta.dtype)
        W, b, A, prev_A, c_W, c_A, rejected, table = update(
            state.net.W, state.net.b, state.net.A, state.prev.W, state.prev.b, state.prev.A, state.c_W, state.c_A,
            state.rho, beta, arrived, state.table, p.Xs, p.ys, p.mask, p.n, _solver_view(p.base))
        net = ip.Net(W, b, A)
        new = IPDLAMParallelState(net=net, prev=ip.Net(state.net.W, state.net.b, prev_A), c_W=c_W, c_A=c_A,
                                  rho=jnp.minimum(p.base.rho_max, p.base.rho_growth * state.rho), k=state.k + 1,
                                  table=table, ready=ready, age=age, clock=clock)
        info = {"rho": state.rho, "beta": beta, "rejected": rejected, "rel_change": ip._rel_change(net, state.net),
                "sim_time": clock, "arrived": jnp.sum(arrived).astype(jnp.int32)}
        return new, info

    step.__name__ = f"ipdlam_{'async' if asynchronous else 'sync'}{n_workers}_step"
    return step


@functools.lru_cache(maxsize=None)
def metrics(cfg: ip.Config, n_workers: int, with_test: bool, with_train: bool) -> dict:
    """Φ_ρ at the current (W, b, a) summed over workers, plus the serial train/test metrics on the full data."""
    S, R = par.SHARDED, par.REPLICATED

    def worker(W, b, A, X, y, mask, n, rho):
        A, X, y, mask = _strip((A, X, y, mask))
        rows = _WorkerRows(mask, n, True, None)
        return rows.value(sum(ip._term(cfg, i, X if i == 0 else A[i - 1], W[i], b[i],
                                       y if i == cfg.n_layers - 1 else A[i], rho, rows)
                              for i in range(cfg.n_layers)))

    data_terms = par.spmd(worker, n_workers, (R, R, S, S, S, S, R, R), R)

    def objective(state, p):
        net = state.net
        return (data_terms(net.W, net.b, net.A, p.Xs, p.ys, p.mask, p.n, state.rho)
                + sum(r.value(W) for r, W in zip(p.base.regs, net.W)))

    serial = ip._metrics(cfg, with_test, with_train)
    out = {name: (lambda fn: lambda state, p: fn(state, p.base))(fn) for name, fn in serial.items()}
    if with_train:
        out["objective"] = objective
    return out


def build(cfg: ip.Config, prob: ip.IPDLAMProblem, state: ip.IPDLAMState, parallel, with_test: bool,
          with_train: bool):
    """Shard the serial ``(cfg, prob, state)`` of :func:`optlab.solvers.ipdlam.build` over ``parallel.n_workers``;
    returns ``(step_fn, state, problem, metrics)``."""
    if cfg.batch_size:
        raise ValueError("ipdlam(parallel=...) runs the full-batch sweep (samples split over workers); "
                         "batch_size is not available with parallel=: pass batch_size=None")
    Wk = parallel.n_workers
    n = prob.X.shape[0]
    if n < Wk:
        raise ValueError(f"ipdlam(parallel=...): {n} samples cannot be split over n_workers={Wk}; use fewer workers")
    Xp, yp, Ap, mask = (lambda out: (out[0], out[1], out[2:-1], out[-1]))(
        par.shard_rows(Wk, prob.X, prob.y, *state.net.A))
    m = Xp.shape[0] // Wk

    def split(a):
        return a.reshape((Wk, m) + a.shape[1:])

    A = tuple(split(a) for a in Ap)
    dt = prob.X.dtype
    table = tuple((jnp.zeros((Wk,) + W.shape, dt), jnp.zeros((Wk,) + b.shape, dt))
                  for W, b in zip(state.net.W, state.net.b))
    rows_w = np.clip(n - m * np.arange(Wk), 0, m)
    tau = jnp.asarray(par.worker_times(parallel) * rows_w / n, dt)
    problem = IPDLAMParallelProblem(base=prob, Xs=split(Xp), ys=split(yp), mask=split(mask).astype(dt),
                                    n=jnp.asarray(n, dt), tau=tau,
                                    max_delay=jnp.asarray(int(parallel.max_delay), jnp.int32),
                                    min_arrivals=jnp.asarray(int(parallel.min_arrivals), jnp.int32))
    net = ip.Net(state.net.W, state.net.b, A)
    pstate = IPDLAMParallelState(net=net, prev=net, c_W=state.c_W, c_A=state.c_A, rho=state.rho, k=state.k,
                                 table=table, ready=tau, age=jnp.full((Wk,), int(parallel.max_delay), jnp.int32),
                                 clock=jnp.zeros((), dt))
    # on the mesh as the step's outputs are, so the harness's chunk is not compiled a second time
    S, R = par.SHARDED, par.REPLICATED
    pstate = par.place(pstate, IPDLAMParallelState(ip.Net(R, R, S), ip.Net(R, R, S), R, R, R, R, S, R, R, R), Wk)
    step = make_step(cfg, Wk, isinstance(parallel, par.Async))
    return step, pstate, problem, metrics(cfg, Wk, with_test, with_train)
