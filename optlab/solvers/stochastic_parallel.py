r"""Data-parallel SPDHG and SPDPEG: ``ol.spdhg(..., parallel=Sync(W) | Async(W, ...))`` (and ``ol.spdpeg``).

The rows are split into ``W`` contiguous shards of ``ceil(n/W)`` rows (the last one padded with masked zero rows,
so any ``n`` works). In every iteration worker ``w`` samples its own mini-batch :math:`I_{k,w}` of ``batch_size``
rows from *its* shard (without replacement: a fresh permutation of the shard every epoch, keyed by the seed, the
worker and the epoch; worker 0 uses the serial solver's permutation), and the mini-batch gradient is the average
over the union of the workers' batches, formed with collectives:

.. math:: G_k = \frac{\sum_w \sum_{i\in I_{k,w}} m_i \nabla\ell_i(x)}{\sum_w\sum_{i\in I_{k,w}} m_i}
          \qquad (m_i = 0 \text{ on padding rows}),

i.e. the ``pmean`` of the workers' mini-batch gradients when no padding row is drawn. Everything else (the dual
step, the primal step, the averages) is the serial update of :mod:`.spdhg` / :mod:`.spdpeg`, computed identically
on every worker from the all-reduced :math:`G_k`. So ``Sync(W)`` is SPDHG/SPDPEG with a mini-batch of ``W·batch_size``
samples drawn stratified over the shards, and ``Sync(1)`` is the serial method (same permutations; equal up to
rounding). ``batch_size`` is **per worker**; an epoch is ``ceil(n/W) // batch_size`` iterations (each worker passes
once over its shard). SPDPEG with ``extragradient="resample"`` all-reduces twice per iteration (the gradient at
:math:`x_k` and at the predictor :math:`\hat x_k`, on the same batches).

**Asynchronous** (``Async``; the model of :mod:`optlab.parallel`): every all-reduce above is a server event. The
server keeps each worker's last delivered gradient sum and sample count (a table) and forms :math:`G` from the table
once the partial barrier (``min_arrivals``) and the staleness bound (``max_delay`` events) allow. A worker that
delivered reads the point the server asks for next (and that iteration's batch of its shard) and computes on it while
the server goes on, so its contribution can be up to ``max_delay`` events old. ``max_delay = 0`` is ``Sync``
exactly. Simulated time: a worker of speed ``s`` needs ``s`` units per mini-batch gradient (``sim_time``).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import harness, parallel as par
from . import _stochastic as S

__all__ = ["ParLoop", "AsyncTable", "ParStochProblem", "make_step", "run", "spdhg_update", "spdpeg_update"]


class ParLoop(NamedTuple):
    perm: jax.Array     # (W, n_w) int32: each worker's permutation of its shard (local row indices)
    seg: jax.Array      # () int32 segment within the epoch
    seed: jax.Array     # () uint32
    epoch: jax.Array    # () uint32 epochs started


class AsyncTable(NamedTuple):
    x_read: jax.Array   # (W, d) point each worker computes its gradient at
    b_read: jax.Array   # (W, B) int32 its batch (local rows)
    table: jax.Array    # (W, d) last delivered gradient sums
    count: jax.Array    # (W,) their sample counts
    fresh: jax.Array    # (W,) bool: delivered at the last event, reads at the next one
    ready: jax.Array    # (W,) simulated time each worker's gradient is done
    age: jax.Array      # (W,) events since each worker last delivered
    clock: jax.Array    # () simulated time of the last event
    arrived: jax.Array  # () int32 arrivals at the last event


class ParStochProblem(NamedTuple):
    base: Any           # the serial problem (SPDHGProblem / SPDPEGProblem), full data for the metrics
    vals: jax.Array     # (W n_w, d) or (W n_w, k) padded rows, sharded
    cols: Any           # (W n_w, k) int32 or None (dense rows)
    y: jax.Array        # (W n_w,)
    mask: jax.Array     # (W n_w,)
    tau: jax.Array      # (W,) simulated time per mini-batch gradient
    max_delay: jax.Array     # () int32 (traced: changing it does not recompile)
    min_arrivals: jax.Array  # () int32


@functools.lru_cache(maxsize=None)
def spdhg_update(variant: str, auto_dual: bool):
    """SPDHG's iteration (:func:`optlab.solvers.spdhg._pd_update`) on the all-reduced gradient at x_k."""
    from . import spdhg

    def update(c, pb, grad_fn):
        return spdhg._pd_update(variant, auto_dual, pb, c, grad_fn(c.x))

    return update


@functools.lru_cache(maxsize=None)
def spdpeg_update(variant: str, extragradient: str):
    """SPDPEG's predictor-corrector (:func:`optlab.solvers.spdpeg._eg_update`); ``"resample"`` all-reduces twice."""
    from . import spdpeg

    same_point = extragradient == "same_point"

    def update(c, pb, grad_fn):
        return spdpeg._eg_update(variant, same_point, pb, c, grad_fn, spdpeg._eta(variant, pb, c.k))

    return update


#: shardings of the asynchrony table and of the sampling loop (per-worker rows sharded, the rest replicated)
TABLE_SPEC = AsyncTable(*([par.SHARDED] * 5 + [par.REPLICATED] * 4))
LOOP_SPEC = ParLoop(par.SHARDED, par.REPLICATED, par.REPLICATED, par.REPLICATED)


def _worker_seed(seed, me):
    return seed ^ (me.astype(jnp.uint32) * jnp.uint32(0x9E3779B9))


@functools.lru_cache(maxsize=None)
def make_step(update, loss_name: str, batch_size: int, segments: int, n_workers: int, asynchronous: bool,
              info_keys: tuple):
    """One segment of an epoch; ``update(core, base_problem, grad_fn) -> core`` is the method's iteration, where
    ``grad_fn(x)`` returns the all-reduced mini-batch gradient (cached per configuration)."""
    loss = S.get_loss(loss_name)
    B, n_seg, W = int(batch_size), int(segments), int(n_workers)
    Sh, R = par.SHARDED, par.REPLICATED

    def worker(core, perm, loop, tab, vals, cols, y, mask, tau, delay, base):
        me = lax.axis_index(par.AXIS)
        n_w = y.shape[0]
        nb = n_w // B
        seg_len = -(-nb // n_seg)
        data = S.LinData(vals, cols, y)
        fresh_perm = S._permutation(_worker_seed(loop.seed, me), loop.epoch, n_w)
        perm_w = jnp.where(loop.seg == 0, fresh_perm, perm[0])
        start = loop.seg * seg_len
        end = jnp.minimum(start + seg_len, nb)
        local = tuple(v[0] for v in (tab.x_read, tab.b_read, tab.table, tab.count, tab.fresh))
        shared = (tab.ready, tab.age, tab.clock, tab.arrived)

        def body(j, carry):
            core, local, shared = carry
            b_now = lax.dynamic_slice(perm_w, (j * B,), (B,))
            box = [local, shared]

            def grad_fn(x):
                (x_read, b_read, table, count, fresh), (ready, age, clock, _) = box
                x_read = jnp.where(fresh, x, x_read)
                b_read = jnp.where(fresh, b_now, b_read)
                if asynchronous:
                    arrived, clock, ready, age = par.async_round(ready, age, clock, tau, delay[0], delay[1])
                else:
                    arrived, clock = jnp.ones((W,), bool), clock + jnp.max(tau)
                go = arrived[me]
                m = mask[b_read]
                c = loss.grad(S.margins(data, x_read, b_read), y[b_read]) * m
                table = jnp.where(go, S.spread(data, b_read, c, x.shape[0]), table)
                count = jnp.where(go, jnp.sum(m), count)
                box[0] = (x_read, b_read, table, count, go)
                box[1] = (ready, age, clock, jnp.sum(arrived).astype(jnp.int32))
                return lax.psum(table, par.AXIS) / lax.psum(count, par.AXIS)

            core = update(core, base, grad_fn)
            return core, box[0], box[1]

        core, local, shared = lax.fori_loop(start, end, body, (core, local, shared))
        tab = AsyncTable(*(v[None] for v in local), *shared)
        return core, perm_w[None], tab

    tab_spec = TABLE_SPEC
    segment = par.spmd(worker, W, (R, Sh, R, tab_spec, Sh, Sh, Sh, Sh, R, R, R), (R, Sh, tab_spec))

    def step(state, pb: ParStochProblem):
        core, loop, tab = state
        base = pb.base._replace(data=None, test=None)
        new_core, perm, tab = segment(core, loop.perm, loop._replace(perm=None), tab, pb.vals, pb.cols, pb.y,
                                      pb.mask, pb.tau, (pb.max_delay, pb.min_arrivals), base)
        epoch = jnp.where(loop.seg == 0, loop.epoch + jnp.uint32(1), loop.epoch)
        loop = ParLoop(perm, (loop.seg + 1) % n_seg, loop.seed, epoch)
        old, new = core.xbar, new_core.xbar
        rel = jnp.linalg.norm(new - old) / jnp.maximum(jnp.linalg.norm(new), jnp.finfo(new.dtype).tiny)
        info = {name: getattr(new_core, attr) for name, attr in info_keys}
        info.update({"rel_change": rel, "sim_time": tab.clock, "arrived": tab.arrived})
        return (new_core, loop, tab), info

    return step


def _shard(data: S.LinData, W: int, batch_size: int, segments: int):
    n = data.y.shape[0]
    per = -(-n // W)
    if per < batch_size:
        raise ValueError(f"batch_size={batch_size} (per worker, with parallel=) is larger than a worker's shard "
                         f"({per} rows = ceil(n/n_workers)); use a smaller batch_size or fewer workers")
    if segments > per // batch_size:
        raise ValueError(f"segments must be <= the iterations per epoch with parallel= "
                         f"(ceil(n/n_workers) // batch_size = {per // batch_size}), got {segments}")
    pad = per * W - n
    padded = [jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a
              for a in (data.vals, data.y) + (() if data.cols is None else (data.cols,))]
    mask = jnp.concatenate([jnp.ones(n, data.vals.dtype), jnp.zeros(pad, data.vals.dtype)])
    cols = None if data.cols is None else padded[2]
    return padded[0], cols, padded[1], mask, per


@functools.lru_cache(maxsize=None)
def _wrap_metric(fn):
    return lambda state, pb: fn(state[0], pb.base)


def run(update, info_keys, pb, core, parallel, *, loss_name, seed, batch_size, segments, maxiter, objective,
        test_loss, meta, log_every, tol, max_time, metrics, callback, progress, checkpoint, resume, jit):
    """Shard ``pb.data`` over ``parallel.n_workers`` and run the parallel method through the harness."""
    if not isinstance(parallel, (par.Sync, par.Async)):
        raise TypeError(f"parallel must be optlab.parallel.Sync(n) or Async(n, ...), got {parallel!r}")
    W = parallel.n_workers
    vals, cols, y, mask, per = _shard(pb.data, W, int(batch_size), int(segments))
    dt = vals.dtype
    tau = jnp.asarray(par.worker_times(parallel), dt)
    ppb = ParStochProblem(pb, vals, cols, y, mask, tau, jnp.asarray(int(parallel.max_delay), jnp.int32),
                          jnp.asarray(int(parallel.min_arrivals), jnp.int32))
    d = core.x.shape[0]
    tab = AsyncTable(x_read=jnp.tile(core.x[None], (W, 1)), b_read=jnp.zeros((W, int(batch_size)), jnp.int32),
                     table=jnp.zeros((W, d), dt), count=jnp.zeros((W,), dt), fresh=jnp.ones((W,), bool),
                     ready=tau, age=jnp.full((W,), int(parallel.max_delay), jnp.int32), clock=jnp.zeros((), dt),
                     arrived=jnp.zeros((), jnp.int32))
    loop = ParLoop(jnp.tile(jnp.arange(per, dtype=jnp.int32)[None], (W, 1)), jnp.zeros((), jnp.int32),
                   jnp.asarray(int(seed) % 2**32, jnp.uint32), jnp.zeros((), jnp.uint32))
    step = make_step(update, loss_name, int(batch_size), int(segments), W, isinstance(parallel, par.Async),
                     tuple(info_keys))
    all_metrics = {"objective": _wrap_metric(objective)}
    if pb.test is not None:
        all_metrics["test_loss"] = _wrap_metric(test_loss)
    all_metrics.update(metrics or {})
    stop = "rel_change" if tol and tol > 0 else None
    state = par.place((core, loop, tab), (par.REPLICATED, LOOP_SPEC, TABLE_SPEC), W)
    if jit:
        return harness.run_jit(step, state, ppb, maxiter=maxiter, log_every=log_every, tol=tol, stop_metric=stop,
                               metrics=all_metrics)
    meta = dict(meta, parallel=repr(parallel), rows_per_worker=per, padding_rows=per * W - pb.data.y.shape[0],
                global_batch=W * int(batch_size), iters_per_epoch=per // int(batch_size))
    return harness.run(step, state, ppb, maxiter=maxiter, log_every=log_every, tol=tol, stop_metric=stop,
                       max_time=max_time, metrics=all_metrics, params=lambda s: {"w": s[0].xbar},
                       callback=callback, progress=progress, checkpoint=checkpoint, resume=resume, meta=meta)
