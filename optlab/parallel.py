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
Simulated times are reported as the ``sim_time`` metric and are labelled *simulated* in every figure.

Multi-host: the same code runs after ``jax.distributed.initialize(...)``; the mesh then spans the
devices of all processes (``jax.devices()``).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

__all__ = ["Sync", "Async", "AXIS", "mesh", "shard_rows", "worker_times", "async_round", "server_round", "spmd",
           "place"]

#: The mesh axis name the worker functions use in their collectives.
AXIS = "workers"


@dataclasses.dataclass(frozen=True)
class Sync:
    """Synchronous data-parallel workers: every iteration waits for all ``n_workers``."""

    n_workers: int
    speeds: str | Sequence[float] = "uniform"
    seed: int = 0

    def __post_init__(self):
        _check_workers(self.n_workers)

    @property
    def max_delay(self) -> int:
        return 0

    @property
    def min_arrivals(self) -> int:
        return self.n_workers


@dataclasses.dataclass(frozen=True)
class Async:
    """Asynchronous workers with bounded staleness (see the module docstring for the model).

    Args:
        n_workers: number of workers (devices).
        max_delay: no contribution older than this many server iterations is used (``>= 0``).
        min_arrivals: the server updates once at least this many workers delivered (partial barrier).
        speeds: ``"uniform"`` (all τ = 1), ``"heterogeneous"`` (τ_w drawn log-uniformly in [0.5, 2],
            seeded), ``"straggler"`` (τ = 1 except worker 0 with τ = 4 when there are several workers) or an explicit array of τ_w > 0.
        seed: seed of the speed model.
    """

    n_workers: int
    max_delay: int = 3
    min_arrivals: int = 1
    speeds: str | Sequence[float] = "uniform"
    seed: int = 0

    def __post_init__(self):
        _check_workers(self.n_workers)
        if int(self.max_delay) < 0:
            raise ValueError(f"Async: max_delay must be >= 0 iterations, got {self.max_delay}")
        if not 1 <= int(self.min_arrivals) <= self.n_workers:
            raise ValueError(f"Async: min_arrivals must be in [1, n_workers={self.n_workers}], "
                             f"got {self.min_arrivals}")


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
