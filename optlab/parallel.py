r"""Parallel executors: synchronous and (emulated, reproducible) asynchronous workers over devices.

``Sync(n)`` and ``Async(n, max_delay, ...)`` are passed as ``parallel=`` to solvers that can split their
data. Workers are the devices of a one-axis mesh named ``"workers"``; each holds a shard of the rows
of the data and its own worker-local state, and every shared quantity is formed by axis-name
collectives (``psum``, ``all_gather``) only. The per-worker code runs under ``jax.shard_map`` inside the
harness's compiled loop (DESIGN.md asked for ``pmap``: a ``pmap`` cannot live inside the compiled
``while_loop`` of a chunk without leaving it, and recent JAX implements ``pmap`` on top of ``shard_map``
anyway; the worker functions use axis names only, so they are ``pmap``-compatible as written).

**Asynchrony model** (emulated inside SPMD, so it is deterministic and seeded). Worker ``w`` needs
``τ_w`` (simulated) seconds per gradient. The server keeps, per worker, the last gradient that arrived
(a table) and its age in server iterations. Server iteration ``k`` happens at the simulated time

.. math:: t_k = \max\bigl(t_{(m)},\ \max\{r_w : \text{age}_w \ge D\}\bigr),

where :math:`r_w` is the time worker ``w``'s current computation finishes, :math:`t_{(m)}` the ``m``-th
smallest :math:`r_w` (``m = min_arrivals``: a partial barrier) and ``D = max_delay`` (a worker whose
contribution would become older than ``D`` iterations is waited for). Workers with :math:`r_w \le t_k`
deliver a gradient computed at the iterate they read when they started, read the new iterate and start
again (:math:`r_w \leftarrow t_k + τ_w`). ``max_delay = 0`` waits for everyone: the synchronous method.
``Sync`` advances the simulated clock by :math:`\max_w τ_w` per iteration (it waits for the slowest).
A worker's :math:`τ_w` is its speed times the work of one step (:func:`step_times`): its share of the rows for a
step that sums over all of them, its blocks' mini-batches for a sampling method (``Algorithm.minibatch``).
Simulated times are reported as the ``sim_time`` metric and are labelled *simulated* in every figure.

Multi-host: the same code runs after ``jax.distributed.initialize(...)``; the mesh then spans the
devices of all processes (``jax.devices()``).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from .algorithm import Comm, is_rows
from .executor import (STATIONARITY, Prepared, Serial, as_executor, n_rows, pad_rows, reduce_shapes, select,
                       split_shared, trim_rows, warn_all_barrier)

__all__ = ["Serial", "Sync", "SimulatedAsync", "Async", "RayAsync", "Prepared", "as_executor", "AXIS", "mesh", "shard_rows", "worker_times", "step_times", "async_round", "server_round", "spmd",
           "place"]

#: The mesh axis name the worker functions use in their collectives.
AXIS = "workers"


@dataclasses.dataclass(frozen=True)
class Sync:
    """Synchronous data-parallel workers over a one-axis device mesh: ``comm.reduce`` is a ``psum``.

    Every iteration waits for all ``n_workers``; the iterates are the serial ones up to the order of the sums.
    ``speeds`` and ``seed`` only drive the simulated clock (``sim_time``: the slowest worker paces each round).
    """

    n_workers: int
    speeds: str | Sequence[float] = "uniform"
    seed: int = 0

    def __post_init__(self):
        _check_workers(self.n_workers)
        _freeze_speeds(self)

    @property
    def max_delay(self) -> int:
        return 0

    @property
    def min_arrivals(self) -> int:
        return self.n_workers

    def prepare(self, algorithm, state, problem):
        return _prepare_parallel(self, algorithm, state, problem)


@dataclasses.dataclass(frozen=True)
class SimulatedAsync:
    """*Simulated* asynchronous workers with bounded staleness: a deterministic, seeded model of asynchrony run
    inside one SPMD program (see the module docstring). Every worker computes every round and a collective joins
    them, so it gives no wall-clock benefit: it is for studying convergence under staleness, and its clock
    (``sim_time``) is simulated. ``Async`` is the same class under its historical name.

    Args:
        n_workers: number of workers (devices).
        max_delay: no contribution older than this many server iterations is used (an integer ``>= 0``;
            0 is the synchronous method).
        min_arrivals: the server updates once at least this many workers delivered (partial barrier).
        speeds: ``"uniform"`` (all τ = 1), ``"heterogeneous"`` (τ_w drawn log-uniformly in [0.5, 2],
            seeded), ``"straggler"`` (τ = 1 except worker 0 with τ = 4 when there are several workers) or an
            explicit array of τ_w > 0.
        seed: seed of the speed model.
    """

    n_workers: int
    max_delay: int = 3
    min_arrivals: int = 1
    speeds: str | Sequence[float] = "uniform"
    seed: int = 0

    def __post_init__(self):
        _check_workers(self.n_workers)
        _freeze_speeds(self)
        if isinstance(self.max_delay, bool) or not isinstance(self.max_delay, (int, np.integer)) \
                or self.max_delay < 0:
            raise ValueError(f"SimulatedAsync: max_delay must be an integer >= 0 (server iterations), "
                             f"got {self.max_delay!r}")
        if isinstance(self.min_arrivals, bool) or not isinstance(self.min_arrivals, (int, np.integer)) \
                or not 1 <= self.min_arrivals <= self.n_workers:
            raise ValueError(f"SimulatedAsync: min_arrivals must be an integer in [1, n_workers={self.n_workers}], "
                             f"got {self.min_arrivals!r}")

    def prepare(self, algorithm, state, problem):
        return _prepare_parallel(self, algorithm, state, problem)


#: The historical name of :class:`SimulatedAsync`.
Async = SimulatedAsync


def _freeze_speeds(executor) -> None:
    """Speeds as a tuple, so executors stay hashable (they key the compiled steps)."""
    if not isinstance(executor.speeds, str):
        object.__setattr__(executor, "speeds", tuple(float(s) for s in np.ravel(executor.speeds)))


def _check_workers(n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n_workers must be a positive integer, got {n!r}")
    available = len(jax.devices())
    if n > available:
        raise ValueError(
            f"n_workers={n} but JAX sees {available} device(s). On a CPU, simulate more devices by setting "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n} in the environment before JAX starts "
            f"(before the first `import jax` in the process); on GPUs use a machine with {n} devices.")


def worker_times(parallel: Sync | Async) -> np.ndarray:
    """The simulated seconds per gradient ``τ_w`` of each worker, from the seeded speed model."""
    n = parallel.n_workers
    speeds = parallel.speeds
    if isinstance(speeds, str):
        if speeds == "uniform":
            return np.ones(n)
        if speeds == "heterogeneous":
            rng = np.random.default_rng(parallel.seed)
            return np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=n))
        if speeds == "straggler":
            tau = np.ones(n)
            if n > 1:  # a lone worker is the reference, not a straggler
                tau[0] = 4.0
            return tau
        raise ValueError(f"speeds must be 'uniform', 'heterogeneous', 'straggler' or an array, got {speeds!r}")
    tau = np.asarray(speeds, dtype=float)
    if tau.shape != (n,) or not np.all(tau > 0):
        raise ValueError(f"speeds array must have shape ({n},) with positive entries, got {tau}")
    return tau


def mesh(n_workers: int) -> Mesh:
    """A one-axis mesh ``("workers",)`` over the first ``n_workers`` devices."""
    _check_workers(n_workers)
    return Mesh(np.asarray(jax.devices()[:n_workers]), (AXIS,))


def shard_rows(n_workers: int, *arrays):
    """Pad the leading (sample) axis of each array to a multiple of ``n_workers`` with zeros.

    Returns ``(padded arrays..., mask)`` where ``mask`` is 1 for real rows and 0 for padding, so a
    worker's contribution ``Σ_i mask_i · g_i`` ignores the padding. Shards are contiguous row blocks of
    ``ceil(n / n_workers)`` rows; the last worker gets the padding (uneven data is allowed).
    """
    n = arrays[0].shape[0]
    for a in arrays:
        if a.shape[0] != n:
            raise ValueError(f"shard_rows: arrays have {n} and {a.shape[0]} rows; they must match")
    per = -(-n // n_workers)
    pad = per * n_workers - n
    out = [jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a for a in arrays]
    dtype = jnp.result_type(arrays[0])
    mask = jnp.concatenate([jnp.ones(n, dtype), jnp.zeros(pad, dtype)])
    return (*out, mask)


def spmd(fn, n_workers: int, in_specs, out_specs):
    """``fn`` run once per worker over the mesh (``jax.shard_map``); ``fn`` uses axis ``AXIS`` collectives.

    Specs use ``PartitionSpec``: ``PartitionSpec(AXIS)`` for per-worker (sharded) leading axes,
    ``PartitionSpec()`` for replicated values.
    """
    return jax.shard_map(fn, mesh=mesh(n_workers), in_specs=in_specs, out_specs=out_specs, check_vma=False)


SHARDED = PartitionSpec(AXIS)
REPLICATED = PartitionSpec()


def place(tree, specs, n_workers: int):
    """Put the leaves of ``tree`` on the workers mesh with the shardings ``specs`` (a prefix pytree of
    ``PartitionSpec``), as the ``spmd`` outputs will have them.

    The harness feeds a chunk's output state back as the next chunk's input; an initial state on one device
    has other input shardings than that output, so the compiled chunk would be compiled a second time (measured:
    4.2 s + 3.5 s for a consensus SVM ADMM step on 4 simulated devices). Placing the initial state avoids it.
    With several processes (``jax.distributed``) the tree is returned unchanged (the arrays are process-local).
    """
    if jax.process_count() > 1:
        return tree
    m = mesh(n_workers)
    return jax.tree.map(lambda spec, sub: jax.tree.map(
        lambda leaf: jax.device_put(leaf, jax.sharding.NamedSharding(m, spec)), sub),
        specs, tree, is_leaf=lambda x: isinstance(x, PartitionSpec))


def async_round(ready, age, clock, tau, max_delay, min_arrivals):
    """One server event of the asynchrony model (pure; identical on every worker).

    Args:
        ready: (W,) simulated times at which each worker's current gradient is done.
        age: (W,) server iterations since each worker last delivered.
        clock: simulated time of the previous server iteration.
        tau: (W,) seconds per gradient.
        max_delay, min_arrivals: the staleness bound and the partial barrier.
    Returns ``(arrived (W,) bool, new_clock, new_ready, new_age)``.
    """
    kth = jnp.sort(ready)[min_arrivals - 1]
    forced = jnp.max(jnp.where(age >= max_delay, ready, -jnp.inf))
    new_clock = jnp.maximum(jnp.maximum(kth, forced), clock)
    arrived = ready <= new_clock
    new_ready = jnp.where(arrived, new_clock + tau, ready)
    new_age = jnp.where(arrived, 0, age + 1)
    return arrived, new_clock, new_ready, new_age


def server_round(asynchronous: bool, state, tau, max_delay, min_arrivals):
    """The arrivals of one server iteration for a state with ``ready``, ``age``, ``clock`` fields: the
    :func:`async_round` event for ``Async``; for ``Sync`` every worker, the clock advanced by the slowest ``τ_w``.
    Returns ``(arrived, clock, ready, age)``."""
    if asynchronous:
        return async_round(state.ready, state.age, state.clock, tau, max_delay, min_arrivals)
    return jnp.ones(tau.shape, bool), state.clock + jnp.max(tau), state.ready, state.age


# =============================================================================================== executors
def _specs(tree):
    """``PartitionSpec`` prefix tree: :class:`Rows` subtrees sharded by rows, every other leaf replicated."""
    return jax.tree.map(lambda node: SHARDED if is_rows(node) else REPLICATED, tree, is_leaf=is_rows)


# --------------------------------------------------------------------------------------- parallel states
class SyncState(NamedTuple):
    inner: Any          # the algorithm's state (Rows sharded over workers)
    clock: jax.Array    # simulated time (the slowest worker paces every round)


class AsyncState(NamedTuple):
    inner: Any          # the algorithm's state; its shared part is the server's current iterate
    read: tuple         # per worker (leading axis W): the shared state leaves it read when it started computing
    table: dict         # reduce name -> (W, ...) the last contribution each worker delivered
    ready: jax.Array    # (W,) simulated time at which each worker's current computation is done
    age: jax.Array      # (W,) server iterations since each worker last delivered
    clock: jax.Array    # simulated time of the last server iteration


class ParallelProblem(NamedTuple):
    inner: Any          # the algorithm's problem (Rows padded and sharded over workers)
    tau: jax.Array      # (W,) simulated seconds per round of each worker


def _collective_comm(n_workers: int) -> Comm:
    return Comm(reduce=lambda name, local: lax.psum(local, AXIS), worker=lax.axis_index(AXIS), n_workers=n_workers)


@functools.lru_cache(maxsize=None)
def _sync_step(algorithm, n_workers: int):
    def step(state: SyncState, problem: ParallelProblem):
        spec_s, spec_p = _specs(state.inner), _specs(problem.inner)

        def worker(inner, inner_problem):
            return algorithm.step(inner, inner_problem, _collective_comm(n_workers))

        inner, info = spmd(worker, n_workers, (spec_s, spec_p), (spec_s, REPLICATED))(state.inner, problem.inner)
        clock = state.clock + jnp.max(problem.tau)
        return SyncState(inner, clock), {**info, "sim_time": clock,
                                         "arrived": jnp.asarray(n_workers, jnp.int32)}

    step.__name__ = f"{algorithm.name}_sync{n_workers}_step"
    return step


@functools.lru_cache(maxsize=None)
def _async_step(algorithm, n_workers: int, max_delay: int, min_arrivals: int, barrier: bool):
    fresh = algorithm.fresh
    # a step that calls a barrier reduce (e.g. a line search's objective values) waits for every worker: each of
    # its rounds is synchronous (all arrive, the clock advances to the slowest), so no contribution is stale
    if barrier:
        max_delay, min_arrivals = 0, n_workers

    def step(state: AsyncState, problem: ParallelProblem):
        arrived, clock, ready, age = async_round(state.ready, state.age, state.clock, problem.tau, max_delay,
                                                 min_arrivals)
        spec_s, spec_p = _specs(state.inner), _specs(problem.inner)
        table_names = tuple(state.table)

        def worker(inner, read, table, arrived, inner_problem):
            me = lax.axis_index(AXIS)
            mine = arrived[me]
            _, rebuild = split_shared(inner)
            read_w = tuple(r[0] for r in read)
            table_w = {k: v[0] for k, v in table.items()}
            new_table, totals = dict(table_w), {}

            # phase 1 (the workers): each at the shared state it read, with its own rows; an arrived worker's
            # contribution replaces its table entry; every total is formed from the table (stale for the others)
            def reduce_worker(name, local):
                if name in fresh:
                    # in a barrier step every worker has read the current state, so the all-reduce is safe (equal
                    # trip counts in loops) and the per-row updates see the true totals, as under Sync
                    return lax.psum(local, AXIS) if barrier else local
                if name not in table_w:
                    raise ValueError(f"{algorithm.name}: reduce name {name!r} was not seen when the step was "
                                     "traced at the top level; stale-able reduces must not be called inside loops "
                                     "(list such names in Algorithm.fresh)")
                contribution = jnp.where(mine, local.astype(table_w[name].dtype), table_w[name])
                new_table[name] = contribution
                totals[name] = lax.psum(contribution, AXIS)
                return totals[name]

            worker_state, _ = algorithm.step(rebuild(read_w, inner), inner_problem,
                                             Comm(reduce_worker, me, n_workers))

            # phase 2 (the server): its current state, the totals of phase 1; barrier names all-reduced afresh
            def reduce_server(name, local):
                if name in fresh:
                    return lax.psum(local, AXIS)
                return totals[name]

            server_state, info = algorithm.step(inner, inner_problem, Comm(reduce_server, me, n_workers))
            rows_state = select(mine, worker_state, inner)
            new_shared, _ = split_shared(server_state)
            new_inner = rebuild(new_shared, rows_state)
            new_read = tuple(jnp.where(mine, s, r)[None] for s, r in zip(new_shared, read_w))
            return new_inner, new_read, {k: v[None] for k, v in new_table.items()}, info

        read_specs = tuple(SHARDED for _ in state.read)
        table_specs = {k: SHARDED for k in table_names}
        inner, read, table, info = spmd(
            worker, n_workers, (spec_s, read_specs, table_specs, REPLICATED, spec_p),
            (spec_s, read_specs, table_specs, REPLICATED))(state.inner, state.read, state.table, arrived,
                                                           problem.inner)
        new = AsyncState(inner, read, table, ready, age, clock)
        return new, {**info, "sim_time": clock, "arrived": jnp.sum(arrived).astype(jnp.int32)}

    step.__name__ = f"{algorithm.name}_async{n_workers}_d{max_delay}_step"
    return step


@functools.lru_cache(maxsize=None)
def _parallel_metric(fn, n_workers: int):
    def metric(state, problem):
        spec_s, spec_p = _specs(state.inner), _specs(problem.inner)

        def worker(inner, inner_problem):
            return fn(inner, inner_problem, _collective_comm(n_workers))

        return spmd(worker, n_workers, (spec_s, spec_p), REPLICATED)(state.inner, problem.inner)

    return metric


def step_times(algorithm, speeds: np.ndarray, rows_per_worker: int, n: int) -> np.ndarray:
    """The simulated seconds ``τ_w`` of one step of each worker (speeds ``speeds``, ``rows_per_worker`` of the ``n``
    rows each): its share of the rows, ``speed_w · rows_per_worker / n``, for a step that sums over all rows (one
    unit = one pass over the data); for a sampling method (:attr:`optlab.algorithm.Algorithm.minibatch`)
    ``speed_w · iterations · rows_per_worker / block_rows``, its blocks' mini-batches, which do not shrink as the rows
    are split over more workers (one unit = one block's mini-batch)."""
    work = algorithm.minibatch
    if work is None:
        return speeds * rows_per_worker / n
    return speeds * (work.iterations * rows_per_worker / work.block_rows)


def _prepare_parallel(executor, algorithm, state, problem) -> Prepared:
    W = executor.n_workers
    n = n_rows(problem)
    if n < W:
        raise ValueError(f"parallel: {W} workers but only {n} rows to split (data rows, or blocks for block methods); "
                         f"use at most {n} workers")
    per = -(-n // W)
    problem = pad_rows(problem, per * W)
    state = pad_rows(state, per * W)
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    tau = jnp.asarray(step_times(algorithm, worker_times(executor), per, n), dtype)
    wrapped_problem = ParallelProblem(problem, tau)
    spec_s, spec_p = _specs(state), _specs(problem)
    if isinstance(executor, SimulatedAsync):
        shared, _ = split_shared(state)
        shapes, barrier = reduce_shapes(algorithm, trim_rows(state, per), trim_rows(problem, per))
        if barrier and W > 1 and executor.max_delay > 0:
            warn_all_barrier(algorithm, executor)
        table = {name: jnp.zeros((W,) + s.shape, s.dtype) for name, s in shapes.items()}
        wrapped = AsyncState(
            inner=state, read=tuple(jnp.broadcast_to(jnp.asarray(x), (W,) + jnp.shape(x)) for x in shared),
            table=table, ready=tau, age=jnp.full((W,), int(executor.max_delay), jnp.int32),
            clock=jnp.zeros((), dtype))
        specs = AsyncState(spec_s, tuple(SHARDED for _ in shared), {k: SHARDED for k in table}, REPLICATED,
                           REPLICATED, REPLICATED)
        step = _async_step(algorithm, W, int(executor.max_delay), int(executor.min_arrivals), barrier)
    else:
        wrapped = SyncState(state, jnp.zeros((), dtype))
        specs = SyncState(spec_s, REPLICATED)
        step = _sync_step(algorithm, W)
    wrapped = place(wrapped, specs, W)
    wrapped_problem = place(wrapped_problem, ParallelProblem(spec_p, REPLICATED), W)
    metrics = {name: _parallel_metric(fn, W) for name, fn in algorithm.metrics}
    if algorithm.stationarity is not None:
        metrics[STATIONARITY] = _parallel_metric(algorithm.stationarity, W)

    def user_metric(fn):
        return lambda st, pb: fn(st.inner, pb.inner)

    def params(st):
        return algorithm.params(trim_rows(st.inner, n))

    return Prepared(step, wrapped, wrapped_problem, metrics, user_metric, params)


def __getattr__(name):
    # RayAsync (real asynchronous workers, optlab.ray_executor) is loaded on first use: that module builds on the
    # harness, which builds on this module; Ray itself is imported only when a RayAsync is made
    if name == "RayAsync":
        from .ray_executor import RayAsync  # noqa: PLC0415

        return RayAsync
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
