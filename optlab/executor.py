"""The executor interface and the serial executor, with the helpers every executor shares.

An executor turns an :class:`optlab.algorithm.Algorithm` into what :func:`optlab.harness.run` drives: a plain
``step(state, problem) -> (state, info)`` and metric functions (:class:`Prepared`). :class:`Serial` (the default) runs
the algorithm with ``comm.reduce`` the identity; :mod:`optlab.parallel` holds the multi-worker executors (``Sync``,
``SimulatedAsync``, ``RayAsync``). The helpers below handle the per-row leaves (:class:`optlab.algorithm.Rows`):
counting, zero-padding and trimming rows, splitting a state into its shared and per-row parts, and finding the
names and shapes of the reduces a step calls.
"""
from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse

from .algorithm import Comm, is_rows, serial_comm

__all__ = ["Serial", "Prepared", "STATIONARITY", "as_executor", "n_rows", "pad_rows", "trim_rows", "split_shared", "reduce_shapes",
           "serial_metric", "warn_all_barrier"]


@dataclasses.dataclass(frozen=True)
class Serial:
    """One process, one device: ``comm.reduce`` is the identity (the default executor)."""

    @property
    def n_workers(self) -> int:
        return 1

    def prepare(self, algorithm, state, problem):
        return _prepare_serial(algorithm, state, problem)


class Prepared(NamedTuple):
    """An algorithm made runnable by an executor: what :func:`optlab.harness.run` takes.

    ``step(state, problem) -> (state, info)`` and ``metrics`` (``name -> fn(state, problem)``) are the executor's
    wrappers of the algorithm's; ``state``/``problem`` are the executor's (padded, placed, wrapped) versions;
    ``user_metric(fn)`` adapts a user metric ``fn(state, problem)`` of the algorithm's own state and problem;
    ``params(state)`` reads ``Result.params`` from the executor's state (padding rows removed).
    """

    step: Callable
    state: Any
    problem: Any
    metrics: dict
    user_metric: Callable
    params: Callable


def as_executor(parallel):
    """``None`` -> :class:`Serial`; an executor is returned as is; anything else is a clear error."""
    if parallel is None:
        return Serial()
    if hasattr(parallel, "prepare"):
        return parallel
    raise TypeError(f"parallel must be an executor such as ol.parallel.Sync(4) or ol.parallel.SimulatedAsync(4, "
                    f"max_delay=3) (or None for serial), got {parallel!r}")


# ------------------------------------------------------------------------------------------------- serial
@functools.lru_cache(maxsize=None)
def _serial_step(algorithm):
    def step(state, problem):
        return algorithm.step(state, problem, serial_comm)

    step.__name__ = f"{algorithm.name}_step"
    return step


@functools.lru_cache(maxsize=None)
def serial_metric(fn):
    def metric(state, problem):
        return fn(state, problem, serial_comm)

    return metric


#: The key under which executors pass :attr:`optlab.algorithm.Algorithm.stationarity` to the harness.
STATIONARITY = "__stationarity__"


def _prepare_serial(algorithm, state, problem) -> Prepared:
    metrics = {name: serial_metric(fn) for name, fn in algorithm.metrics}
    if algorithm.stationarity is not None:
        metrics[STATIONARITY] = serial_metric(algorithm.stationarity)
    return Prepared(_serial_step(algorithm), state, problem, metrics, lambda fn: fn, algorithm.params)


# ------------------------------------------------------------------------------------- rows and padding
def _rows_leaves(tree) -> list:
    return [leaf for node in jax.tree.leaves(tree, is_leaf=is_rows) if is_rows(node)
            for leaf in jax.tree.leaves(node)]


def n_rows(problem) -> int:
    leaves = _rows_leaves(problem)
    if not leaves:
        raise ValueError("this solver's problem has no per-row data (no optlab.algorithm.Rows), so it cannot be "
                         "split over workers; run it without parallel=")
    counts = {int(np.shape(x)[0]) for x in leaves}
    if len(counts) != 1:
        raise ValueError(f"per-row arrays of the problem have different row counts {sorted(counts)}")
    return counts.pop()


def pad_rows(tree, n_pad: int):
    """Zero-pad the leading axis of every leaf under a :class:`Rows` node to ``n_pad`` rows."""
    def pad_leaf(x):
        if isinstance(x, jsparse.BCOO):
            raise TypeError("parallel executors split dense per-row arrays; got a sparse matrix: pass X.toarray() "
                            "or run without parallel=")
        x = jnp.asarray(x)
        extra = n_pad - x.shape[0]
        if extra == 0:
            return x
        return jnp.concatenate([x, jnp.zeros((extra,) + x.shape[1:], x.dtype)])

    def pad_node(node):
        if not is_rows(node):
            return node
        return jax.tree.map(pad_leaf, node, is_leaf=lambda x: isinstance(x, jsparse.BCOO))

    return jax.tree.map(pad_node, tree, is_leaf=is_rows)


def trim_rows(tree, n: int):
    def trim_node(node):
        return jax.tree.map(lambda x: x[:n], node) if is_rows(node) else node

    return jax.tree.map(trim_node, tree, is_leaf=is_rows)


def split_shared(tree):
    """``(shared_leaves, rebuild)``: the leaves outside :class:`Rows` nodes, and ``rebuild(shared, rows_from)``
    that puts shared leaves back into the structure of ``rows_from`` (whose Rows nodes are kept)."""
    nodes, treedef = jax.tree.flatten(tree, is_leaf=is_rows)
    shared = tuple(n for n in nodes if not is_rows(n))

    def rebuild(new_shared, rows_from):
        rows_nodes = jax.tree.flatten(rows_from, is_leaf=is_rows)[0]
        it = iter(new_shared)
        return treedef.unflatten([r if is_rows(r) else next(it) for r in rows_nodes])

    return shared, rebuild


def select(pred, a, b):
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


def reduce_shapes(algorithm, state, problem) -> tuple[dict, bool]:
    """``(name -> ShapeDtypeStruct of every stale-able reduce the step calls, whether the step calls a barrier)``."""
    shapes: dict = {}
    barrier = []

    def record(name, local):
        if name in algorithm.fresh:
            barrier.append(name)
        else:
            if name in shapes:
                raise ValueError(f"{algorithm.name}: reduce name {name!r} is used twice in one step; give each "
                                 "communicated quantity its own name")
            shapes[name] = jax.ShapeDtypeStruct(jnp.shape(local), jnp.result_type(local))
        return local

    jax.eval_shape(lambda s, p: algorithm.step(s, p, Comm(record, 0, 1)), state, problem)
    return shapes, bool(barrier)


def warn_all_barrier(algorithm, executor) -> None:
    """Warn that an asynchronous executor (``max_delay > 0``) runs every step of ``algorithm`` as a synchronous round
    because every step calls a barrier reduce (:attr:`Algorithm.fresh`): the result is the Sync run."""
    fresh = ", ".join(sorted(algorithm.fresh))
    warnings.warn(
        f"{algorithm.name}: every step calls a barrier reduce ({fresh}; Algorithm.fresh), so "
        f"{type(executor).__name__}({executor.n_workers}, max_delay={executor.max_delay}) runs each step as a "
        "synchronous round and gives the Sync run: nothing is asynchronous. To run asynchronously, make a harness step "
        "call its reduces at the top level and outside loops; for the stochastic solvers (spdhg, spdpeg, the stochastic "
        "ADMM baselines) pass segments = iterations per epoch (trace.meta['iters_per_epoch']), one iteration per step.",
        RuntimeWarning, stacklevel=3)
