"""Ahead-of-time compilation with a cache keyed by the argument signature, so callers can report solver time
without compile time (the compile seconds are returned separately) and count executables per kind.

Executables are cached per ``(kind, static key, pytree structure, shapes, dtypes)``; new *values* (data,
penalty levels, tolerances) reuse them.
"""
from __future__ import annotations

import time
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["compiled", "compile_count"]

_EXECUTABLES: dict = {}
_COUNTS: Counter = Counter()


def _leaf_signature(x):
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):  # the fast path: no dtype promotion machinery
        return x.shape, x.dtype, bool(getattr(x, "weak_type", False))
    return jnp.shape(x), jnp.result_type(x), True


def _signature(args):
    leaves, treedef = jax.tree_util.tree_flatten(args)
    return treedef, tuple(_leaf_signature(x) for x in leaves)


def compiled(kind: str, static_key, jitted, args):
    """``(executable, compile_seconds)`` for ``jitted(*args)``; ``compile_seconds`` is 0 on a cache hit."""
    key = (kind, static_key, _signature(args))
    exe = _EXECUTABLES.get(key)
    if exe is not None:
        return exe, 0.0
    t0 = time.perf_counter()
    exe = jitted.lower(*args).compile()
    _EXECUTABLES[key] = exe
    _COUNTS[kind] += 1
    return exe, time.perf_counter() - t0


def compile_count(kind: str = "inner") -> int:
    """How many executables of ``kind`` (``"inner"``: working-set solvers; ``"outer"``: full-gradient
    evaluations) were compiled in this process."""
    return _COUNTS[kind]
